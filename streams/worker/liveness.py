"""Each running worker's mark in Redis, so that ``churnwatch relayout`` refuses while one runs (QA20b F11).

Why Redis and not the broker's group: relayout moves the state of one key prefix and events topic, and
Redis is where the workers of that state meet, whatever their group id; the broker's DescribeGroups
needs the group id, a DESCRIBE ACL on the group, and a client that reads Tansu's answer (kafka-python
3.0.12 raised "15 is not a valid ACLOperation" there; aiokafka's admin client answers, with members but
no host or assignment). Why a lifetime by Redis's clock: a worker that crashed (kill -9, OOM, a lost
host) cannot remove its mark, so each mark expires ``MARK_MS`` after its last refresh, judged by the
clock of the node holding the key (the workers' and the operator's hosts may disagree).

The mark is ``Keys.running(topic)``: a ZSET worker -> expiry (epoch ms, Redis's clock), one key per
topic (no SCAN), written at the worker's start before it joins the group, refreshed by its gauge
timer (every 2 s, nothing per event or cycle; also while it is halted or waits for its topic: it
still holds its partitions), and removed when it stops cleanly, after it left the group.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import Any

__all__ = ["MARK_MS", "RunningMark", "running_workers", "worker_name"]

#: How long a worker's mark lasts after its last refresh (the gauge timer refreshes it every 2 s):
#: after a crash, relayout refuses for up to this long. Longer than the group session (6 s by
#: default): a worker whose loop stalled that long has left the group anyway.
MARK_MS = 15_000

# KEYS[1] the topic's marks; ARGV[1] the worker, ARGV[2] MARK_MS. Expired marks are dropped on the way.
_REFRESH = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])"""
# KEYS[1] the topic's marks -> {now ms, worker, expiry ms, worker, expiry ms, ...} of the live ones.
_LIVE = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local found = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf', 'WITHSCORES')
table.insert(found, 1, string.format('%d', now))
return found"""


def worker_name() -> str:
    """What an operator recognises a worker by: its host (a container's or pod's name) and pid, and
    a few random characters (two containers may share both)."""
    return f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:4]})"


class RunningMark:
    """This worker's mark on ``topic`` in ``store`` (``Keys.running``): ``start`` writes it, ``refresh``
    renews it once started, ``end`` removes it for good (a refresh in flight finishes first: none
    comes after)."""

    def __init__(self, store: Any, topic: str) -> None:
        self.store = store
        self.topic = topic
        self.name = worker_name()
        self._on = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._on = True
        await self.refresh()

    async def refresh(self) -> None:
        async with self._lock:
            if self._on:
                await self.store.client.eval(_REFRESH, 1, self.store.keys.running(self.topic), self.name, MARK_MS)

    async def end(self) -> None:
        async with self._lock:
            was, self._on = self._on, False
            if was:
                await self.store.client.zrem(self.store.keys.running(self.topic), self.name)


async def running_workers(client: Any, key: str) -> list[tuple[str, float]]:
    """The workers whose mark on ``key`` is live: (name, seconds since its last refresh), by name."""
    raw = await client.eval(_LIVE, 1, key)
    now = int(raw[0])
    text = [v.decode() if isinstance(v, bytes) else str(v) for v in raw[1:]]
    return sorted((name, max(0.0, (MARK_MS - (float(expiry) - now)) / 1000))
                  for name, expiry in zip(text[::2], text[1::2]))
