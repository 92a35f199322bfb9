"""Secrets, authentication and exposure, through real workers where the parts allow it.

- Settings never show a secret in ``repr``; worker logs at DEBUG never contain the Kafka SASL
  password or the Redis password (kafka-python logs its admin configuration, password included,
  at DEBUG: ``streams.redact`` masks it).
- Redis AUTH end to end against a valkey started with ``--requirepass``: one worker gets the
  password from ``CHURNWATCH_REDIS_PASSWORD`` (URL without one), the other from the URL.
- No user id in any metric label or value of ``/metrics``.
- The metrics server listens on ``CHURNWATCH_METRICS_BIND`` only.
- Kafka SASL/SSL client options. Tansu speaks neither SASL nor TLS, so the workers here run
  ``PLAINTEXT`` with a SASL mechanism and password configured (aiokafka and kafka-python then carry
  the password in their configuration without using it: enough for the log checks). SSL is
  checked as client options, and the worker's producer against a bare TLS listener that only
  completes the handshake (standing in for a broker's TLS, not for Kafka).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import logging
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import pytest
import redis as redis_lib
from prometheus_client.parser import text_string_to_metric_families

from models.events import Event
from streams.worker.consumer import KafkaSink
from streams.local import REDIS_TUNING, Service, free_port, valkey_binary
from streams.redact import MASK, RedactingFormatter, install, secret_values
from streams.settings import Settings, aiokafka_client_kwargs
from tests.harness import ROOT, Worker, dump_state, publish_events, wait_progress, wait_quiet, wait_reviewed
from tests.test_bad_input_e2e import _topics

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:10]
KAFKA_SECRET = f"ksasl-{RUN}-secret"
REDIS_SECRET = f"rpass-{RUN}-secret"
DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01
USERS = [f"sec-user-{RUN}-{i}" for i in range(4)]
BAD_USER = f"sec-baduser-{RUN}"  # only in a record the DLQ gets
ALLOWED_LABELS = {"reason", "op", "kind", "partition", "stage", "phase", "le", "model", "outcome", "how",
                  "node"}  # of churnwatch_* (docs/ARCHITECTURE.md); node: a Redis node's run id (and host:port on a cluster)


# -- a Redis that requires a password ---------------------------------------------------------


@pytest.fixture(scope="module")
def auth_redis_port() -> Iterator[int]:
    """valkey-server with ``--requirepass``: every client must AUTH."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="churnwatch-auth-redis-")
    args = [valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", workdir, "--requirepass", REDIS_SECRET]
    for key, value in REDIS_TUNING.items():
        args += [f"--{key}", value]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        client = redis_lib.Redis(port=port, password=REDIS_SECRET, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Secured:
    port: int  # of the password-protected Redis
    bootstrap: str
    workers: dict[str, Worker]  # "env_password" binds 127.0.0.1, "url_password" binds 127.0.0.2
    prefixes: dict[str, str]
    events_topic: str

    @property
    def url(self) -> str:
        return f"redis://:{REDIS_SECRET}@127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def secured(kafka_service: Service, auth_redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """Two DEBUG-level workers with every secret set, both reading one events topic to the end."""
    bootstrap = kafka_service.address
    tmp = tmp_path_factory.mktemp("security")
    events = [Event(USERS[i % len(USERS)], START_MS + i * DAY_MS // 3, ("view", "click", "purchase")[i % 3], f"sec-{i}",
                    9.5 if i % 3 == 2 else 0.0) for i in range(60)]
    bad = (BAD_USER.encode(), f'{{"event_id":"x","user_id":"{BAD_USER}","type":"view","ts":"yesterday"}}'.encode())
    base = _topics(bootstrap, f"sec{RUN}")
    last = publish_events(bootstrap, base["events"], events, extra=[bad])
    plain_url = f"redis://127.0.0.1:{auth_redis_port}/0"
    secured = Secured(auth_redis_port, bootstrap, {}, {}, base["events"])
    common = {"CHURNWATCH_LOG_LEVEL": "DEBUG", "CHURNWATCH_IDLE_PARTITION_MS": "1000",
              "CHURNWATCH_KAFKA_SASL_MECHANISM": "PLAIN", "CHURNWATCH_KAFKA_SASL_USERNAME": "churnwatch",
              "CHURNWATCH_KAFKA_SASL_PASSWORD": KAFKA_SECRET}
    for name, redis_url, env in (
        ("env_password", plain_url, {"CHURNWATCH_REDIS_PASSWORD": REDIS_SECRET, "CHURNWATCH_METRICS_BIND": "127.0.0.1"}),
        ("url_password", secured.url, {"CHURNWATCH_METRICS_BIND": "127.0.0.2"}),
    ):
        topics = {**_topics(bootstrap, f"sec{RUN}-{name.replace('_', '')}"), "events": base["events"]}
        prefix = f"cw{name.replace('_', '')}{RUN}"
        secured.prefixes[name] = prefix
        secured.workers[name] = Worker(bootstrap, redis_url, topics, tmp / f"{name}.log",
                                       env={**common, **env, "CHURNWATCH_KEY_PREFIX": prefix})
    try:
        for w in secured.workers.values():
            w.start()
        for name, w in secured.workers.items():
            wait_progress(secured.url, base["events"], last, 90, [w], prefix=secured.prefixes[name])
        for prefix in secured.prefixes.values():
            wait_reviewed(secured.url, base["events"], prefix)
            wait_quiet(secured.url, prefix, quiet_s=1.5)
        yield secured
    finally:
        with ThreadPoolExecutor(len(secured.workers)) as pool:  # SIGTERM both at once
            list(pool.map(lambda w: w.stop(), secured.workers.values()))


def _get(host: str, port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as reply:
        return bytes(reply.read())


# -- (a) secrets in repr and logs -------------------------------------------------------------


def test_settings_repr_hides_every_secret() -> None:
    env = {"CHURNWATCH_KAFKA_SASL_PASSWORD": KAFKA_SECRET, "CHURNWATCH_REDIS_PASSWORD": REDIS_SECRET,
           "CHURNWATCH_KAFKA_SASL_USERNAME": "svc-user", "REDIS_URL": f"redis://app:{REDIS_SECRET}%21@redis.internal:6380/2"}
    settings = Settings.from_env(env)
    assert settings.redis_password == REDIS_SECRET and settings.kafka_sasl_password == KAFKA_SECRET
    for text in (repr(settings), str(settings), f"{settings}", repr(settings.with_(group_id="g2")), repr([settings])):
        assert REDIS_SECRET not in text and KAFKA_SECRET not in text, text
        assert "svc-user" in text and "app:***@redis.internal:6380/2" in text, "the rest stays visible"
    assert secret_values(settings)[:3] == [f"{REDIS_SECRET}%21", f"{REDIS_SECRET}!", KAFKA_SECRET]


def test_log_formatter_masks_secrets_in_arguments_and_tracebacks() -> None:
    settings = Settings(kafka_sasl_password=KAFKA_SECRET, redis_url=f"redis://:{REDIS_SECRET}@h:6379/0")
    logger = logging.getLogger(f"churnwatch-test-{RUN}")
    logger.propagate = False
    handler = logging.StreamHandler(stream := io.StringIO())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        install(settings, logger)
        install(settings, logger)  # idempotent: one wrapper
        assert isinstance(handler.formatter, RedactingFormatter) and not isinstance(handler.formatter.inner, RedactingFormatter)
        logger.warning("config %s", {"sasl_plain_password": KAFKA_SECRET})
        try:
            raise ConnectionError(f"cannot reach redis://:{REDIS_SECRET}@h:6379/0")
        except ConnectionError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert KAFKA_SECRET not in text and REDIS_SECRET not in text, text
    assert text.count(MASK) == 2, text  # the argument and the exception message (the source line shows no value)
    assert "WARNING config" in text and "Traceback" in text


def test_worker_debug_logs_never_contain_the_passwords(secured: Secured) -> None:
    for name, w in secured.workers.items():
        log = w.output()
        assert " DEBUG kafka" in log and " DEBUG streams." in log, f"{name}: the log must be at DEBUG, libraries included"
        for secret in (KAFKA_SECRET, REDIS_SECRET):
            lines = [line[:300] for line in log.splitlines() if secret in line]
            assert not lines, f"{name}: secret in the log:\n" + "\n".join(lines)


# -- (b) Redis AUTH ---------------------------------------------------------------------------


def test_redis_auth_end_to_end_with_the_password_from_env_or_url(secured: Secured) -> None:
    unauthenticated = redis_lib.Redis(host="127.0.0.1", port=secured.port, retry=None)  # redis-py retries auth errors ~4 s
    with pytest.raises(redis_lib.AuthenticationError):
        unauthenticated.ping()  # AUTH is really required
    unauthenticated.close()
    states = {name: dump_state(secured.url, prefix) for name, prefix in secured.prefixes.items()}
    assert set(states["env_password"]) == set(USERS)
    assert states["env_password"] == states["url_password"], "both workers applied the same events"


@pytest.mark.parametrize("how", ["wrong password", "no password"])
def test_a_worker_refused_by_redis_stops_with_one_line(kafka_service: Service, auth_redis_port: int, how: str) -> None:
    """Waiting cannot fix refused credentials: the worker exits 2 with one readable line (that
    does not echo the password it tried) instead of retrying forever."""
    wrong = "not-the-" + REDIS_SECRET[:4]
    url = f"redis://:{wrong}@127.0.0.1:{auth_redis_port}/0" if how == "wrong password" else f"redis://127.0.0.1:{auth_redis_port}/0"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_service.address, "REDIS_URL": url,
           "CHURNWATCH_METRICS_PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("churnwatch worker: error: Redis at redis://") and "refused the credentials" in last, proc.stderr
    assert wrong not in proc.stderr + proc.stdout


# -- (c) no user ids in metrics ---------------------------------------------------------------


def test_no_user_id_appears_in_metrics(secured: Secured) -> None:
    for name, host in (("env_password", "127.0.0.1"), ("url_password", "127.0.0.2")):
        text = _get(host, secured.workers[name].metrics_port, "/metrics").decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        processed = families["churnwatch_events_processed"].samples[0].value
        rejected = {s.labels["reason"]: s.value for s in families["churnwatch_events_rejected"].samples if "reason" in s.labels}
        assert processed == 60 and rejected.get("bad_timestamp") == 1, "the metrics must describe the run"
        for user in [*USERS, BAD_USER, f"sec-user-{RUN}"]:
            assert user not in text, f"{name}: user id {user} in /metrics"
        labels = {k for f in families.values() if f.name.startswith("churnwatch_") for s in f.samples for k in s.labels}
        assert labels <= ALLOWED_LABELS, f"unexpected labels {labels - ALLOWED_LABELS}"


# -- (d) the metrics server binds only where told -----------------------------------------------


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _reachable_here(host: str) -> bool:
    """Control: something listening on all addresses is reachable through ``host``."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        try:
            socket.create_connection((host, server.getsockname()[1]), timeout=2).close()
            return True
        except OSError:
            return False


def _non_loopback_ipv4() -> list[str]:
    """This machine's IPv4 addresses outside 127/8 (SIOCGIFADDR per interface; Linux)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
                address = socket.inet_ntoa(packed[20:24])
                if not address.startswith("127."):
                    found.append(address)
    return found


def test_metrics_server_listens_only_on_the_configured_loopback_address(secured: Secured) -> None:
    on_1, on_2 = secured.workers["env_password"].metrics_port, secured.workers["url_password"].metrics_port
    assert _get("127.0.0.1", on_1, "/healthz") and _get("127.0.0.2", on_2, "/healthz")
    assert _reachable_here("127.0.0.2") and _reachable_here("127.0.0.1"), "control: both loopback addresses work here"
    assert _refused("127.0.0.2", on_1), "bound to 127.0.0.1, yet answers on 127.0.0.2"
    assert _refused("127.0.0.1", on_2), "bound to 127.0.0.2, yet answers on 127.0.0.1"


def test_metrics_server_bound_to_loopback_is_not_reachable_from_the_network_address(secured: Secured) -> None:
    others = [a for a in _non_loopback_ipv4() if _reachable_here(a)]
    if not others:
        pytest.skip("this machine has no non-loopback IPv4 address")
    port = secured.workers["env_password"].metrics_port
    for address in others:
        assert _refused(address, port), f"metrics bound to 127.0.0.1 answer on {address}"


# -- (e) Kafka SASL / SSL client options --------------------------------------------------------


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI): (cert = CA file, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


@pytest.mark.parametrize("protocol, mechanism", [
    ("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-512"), ("SSL", ""), ("PLAINTEXT", ""),
])
def test_settings_kafka_kwargs_carry_protocol_and_sasl(protocol: str, mechanism: str) -> None:
    s = Settings(kafka_bootstrap_servers="b1:9093,b2:9093", kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism,
                 kafka_sasl_username="svc", kafka_sasl_password=KAFKA_SECRET)
    kw = s.kafka_client_kwargs()
    assert kw["bootstrap_servers"] == "b1:9093,b2:9093"
    assert kw.get("security_protocol", "PLAINTEXT") == protocol
    if mechanism:
        assert (kw["sasl_mechanism"], kw["sasl_plain_username"], kw["sasl_plain_password"]) == (mechanism, "svc", KAFKA_SECRET)
    else:
        assert not {"sasl_mechanism", "sasl_plain_username", "sasl_plain_password"} & set(kw)


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_aiokafka_kwargs_build_a_verifying_ssl_context_that_aiokafka_accepts(protocol: str, tls_cert: tuple[str, str]) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    cafile, _ = tls_cert
    s = Settings(kafka_security_protocol=protocol, kafka_ssl_cafile=cafile,
                 kafka_sasl_mechanism="PLAIN" if protocol == "SASL_SSL" else "", kafka_sasl_password=KAFKA_SECRET)
    kw = aiokafka_client_kwargs(s)
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert any(dict(x[0] for x in c["subject"]).get("commonName") == "127.0.0.1" for c in ctx.get_ca_certs()), "CA loaded"

    async def construct() -> None:  # aiokafka checks its options in the constructors (inside a loop)
        AIOKafkaProducer(**kw)
        AIOKafkaConsumer(group_id="g", **kw)

    asyncio.run(construct())


class TlsListener:
    """Accepts TCP connections on 127.0.0.1 and completes a TLS handshake, nothing more."""

    def __init__(self, cert: str, key: str) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(5)
            with contextlib.suppress(OSError, ssl.SSLError):
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes += 1
                    tls.recv(4)  # the client's first Kafka request; then we hang up
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_worker_producer_speaks_tls_when_the_protocol_is_ssl(tls_cert: tuple[str, str]) -> None:
    from aiokafka.errors import KafkaError

    listener = TlsListener(*tls_cert)
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{listener.port}", kafka_security_protocol="SSL",
                        kafka_ssl_cafile=tls_cert[0])
    sink = KafkaSink(settings)  # what the worker's pipeline produces alerts and DLQ records with

    async def start() -> BaseException | None:
        try:
            await asyncio.wait_for(sink.start(), 20)
        except (KafkaError, asyncio.TimeoutError, ValueError) as exc:
            return exc
        await sink.stop()
        return None

    try:
        outcome = asyncio.run(start())
    finally:
        listener.close()
    assert not isinstance(outcome, ValueError), f"the producer was not even built: {outcome}"
    assert listener.handshakes >= 1, f"no TLS handshake reached the listener ({outcome!r})"
