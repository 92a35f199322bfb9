# churnwatch worker image: `docker build -t churnwatch:local .`
# Runs `churnwatch worker` by default; any other subcommand works too
# (`docker run --rm churnwatch:local topics`, `... simulate --users 5000 --publish`).
#
# Two stages: the build stage has a compiler (in case a dependency has no wheel for this
# platform) and builds a virtual environment; the runtime stage copies only that environment,
# so no compiler, headers or pip cache are left in the final image.
# Versions: the base image is pinned, pyproject.toml pins the direct dependencies and
# deploy/constraints.txt pins the whole runtime closure (deploy/tools/lock_runtime.py).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/churnwatch
WORKDIR /src
# Dependencies first, exactly as locked (their layer is reused while only the code changes);
# then the project itself without resolving anything again.
COPY deploy/constraints.txt deploy/constraints.txt
RUN /opt/churnwatch/bin/pip install --no-deps -r deploy/constraints.txt
COPY pyproject.toml setup.py README.md ./
COPY models models
COPY streams streams
RUN /opt/churnwatch/bin/pip install --no-deps . \
    && /opt/churnwatch/bin/pip check \
    && /opt/churnwatch/bin/python -m compileall -q /opt/churnwatch/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="churnwatch" \
      org.opencontainers.image.description="Real-time customer churn detection on Kafka and Redis" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid so Kubernetes can check runAsNonRoot and volumes get predictable owners.
RUN groupadd --system --gid 10001 churnwatch \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin churnwatch
COPY --from=build /opt/churnwatch /opt/churnwatch
ENV PATH=/opt/churnwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHURNWATCH_METRICS_BIND=0.0.0.0 \
    CHURNWATCH_METRICS_PORT=9108
# The worker writes nothing but a scratch directory under /tmp (Faust's datadir), so the root
# filesystem can be mounted read-only with a writable /tmp (see deploy/k8s/deployment.yaml).
WORKDIR /tmp
USER 10001:10001
EXPOSE 9108
# /healthz answers 200 while the process is alive; /readyz (readiness) is for orchestrators.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CHURNWATCH_METRICS_PORT', '9108'), timeout=2)"]
ENTRYPOINT ["churnwatch"]
CMD ["worker"]
