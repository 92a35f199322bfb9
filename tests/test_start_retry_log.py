"""A worker that cannot start (Redis or the broker down) says so through the retry logger, whose
lines the CLI holds back to one per kind every 10 s with a count (QA20 F6: "cannot start yet" came
every 2 s, 30 lines a minute, while docs/OPERATE.md promised the worker's retry lines limited)."""

from __future__ import annotations

import asyncio
import logging

from models.model import load_model
from streams.kafka_admin import RETRY_LOGGER, RepeatLimit
from streams.settings import Settings
from streams.worker.service import WorkerRuntime


class _Lines(logging.Handler):
    """The retry logger's own records, before any filter of the root's handlers (the CLI's RepeatLimit,
    installed there by any earlier ``main()`` in the same process, holds repeats back)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_cannot_start_yet_is_a_retry_line() -> None:
    runtime = WorkerRuntime(Settings(redis_url="redis://127.0.0.1:1/0", buckets=4, groups_per_bucket=8), load_model())
    tries: list[int] = []

    async def refuse() -> None:
        tries.append(1)
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    runtime.consumer.start = refuse  # type: ignore[method-assign]

    async def scenario() -> bool:
        try:
            return await runtime.start(should_stop=lambda: len(tries) >= 3)
        finally:
            await runtime.store.close()

    logger, handler = logging.getLogger(RETRY_LOGGER), _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        assert asyncio.run(scenario()) is False, "stopped before it could start"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [r for r in handler.records if str(r.msg).startswith("cannot start yet")]
    assert len(lines) == 3
    assert {r.name for r in lines} == {RETRY_LOGGER}
    assert any(RETRY_LOGGER.startswith(p) for p in RepeatLimit().prefixes), "the CLI's filter holds them back"
