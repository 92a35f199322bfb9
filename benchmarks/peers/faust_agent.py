"""The per-user work as a Faust agent with a table, tuned as far as Faust supports it.

Written the way faust-streaming's docs show stateful processing: an ``app.agent`` iterating the
events stream, a ``Table`` (in-memory store with its Kafka changelog, the default) keyed by user,
``table[user] = state`` per event. The events topic is keyed by user, so the table and the stream
are co-partitioned without ``group_by``. Best supported settings measured on this machine
(benchmarks/RESULTS.md, the peers section): uvloop, ``cython_optimizations``, a no-op Monitor (sensors off), web off, a
short session timeout for Tansu's group join. Measured here and left at the default: the
producer linger (each table write is a changelog record sent on its own, a third of the CPU in
socket writes by py-spy; ``producer_linger=0.01`` made it slower, 1.3k -> 0.85k events/s).

One patch, for the broker rather than for Faust: Faust hard-codes aiokafka's ``fetch_max_wait_ms``
to 1500 (no setting), and Tansu 0.6.0 holds every fetch reply for half of that even when data is
there (Apache Kafka answers at once): ~750 ms of idling per fetch, about 1.1k events/s here. The
consumer Faust creates gets ``FETCH_MAX_WAIT_MS``, the value churnwatch's own consumer uses.
"""

from __future__ import annotations

import os
import sys

from benchmarks.peers.common import Progress, parse_args
from benchmarks.peers.work import update
from streams.settings import Settings

__all__ = ["main"]


FETCH_MAX_WAIT_MS = Settings().fetch_max_wait_ms  # churnwatch's own default (measured at 10 before 2 Dec)


def _patch_fetch_wait() -> None:
    """Make the consumers Faust's aiokafka driver creates use FETCH_MAX_WAIT_MS (module doc)."""
    import aiokafka
    from faust.transport.drivers import aiokafka as driver

    class Consumer(aiokafka.AIOKafkaConsumer):  # type: ignore[misc]
        def __init__(self, *a: object, **k: object) -> None:
            k["fetch_max_wait_ms"] = FETCH_MAX_WAIT_MS
            super().__init__(*a, **k)

    class Module:  # the driver calls ``aiokafka.AIOKafkaConsumer(...)``; everything else unchanged
        def __getattr__(self, name: str) -> object:
            return Consumer if name == "AIOKafkaConsumer" else getattr(aiokafka, name)

    driver.aiokafka = Module()  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    args = parse_args("peers.faust_agent", argv)
    import faust
    from faust.sensors.monitor import Monitor

    _patch_fetch_wait()

    class NoMonitor(Monitor):
        """The default Monitor keeps per-event statistics; a no-op one was worth 5-10% here."""

        def on_stream_event_in(self, *a: object, **k: object) -> None:  # type: ignore[override]
            return None

        def on_stream_event_out(self, *a: object, **k: object) -> None:  # type: ignore[override]
            return None

        def on_message_in(self, *a: object, **k: object) -> None:  # type: ignore[override]
            return None

        def on_message_out(self, *a: object, **k: object) -> None:  # type: ignore[override]
            return None

        def on_table_get(self, *a: object, **k: object) -> None:  # type: ignore[override]
            return None

        def on_table_set(self, *a: object, **k: object) -> None:  # type: ignore[override]
            return None

    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=str(args.state_dir),
        web_enabled=False,
        cython_optimizations=True,
        broker_session_timeout=6,
        broker_heartbeat_interval=2,
        topic_partitions=8,
        Monitor=NoMonitor,
    )
    events = app.topic(args.topic, value_serializer="json", key_serializer="raw", partitions=8)
    table = app.Table("users", partitions=8)
    progress = Progress(args.events, args.out)

    @app.agent(events)
    async def process(stream):  # type: ignore[no-untyped-def]
        async for ev in stream:
            user = ev["user_id"]
            table[user] = update(table.get(user), ev["type"], ev["ts"])
            if progress.tick(user):
                os._exit(0)  # the figure is written; Faust's shutdown (tens of seconds on Tansu) is not measured

    sys.argv = [sys.argv[0], "--loop", "uvloop", "worker", "--loglevel", "warn", "--without-web"]
    app.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
