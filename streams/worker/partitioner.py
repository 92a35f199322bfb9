"""Kafka's default partitioner (murmur2 of the key) for a whole cycle's records at once.

Why: aiokafka picks each record's partition with a pure-Python murmur2 of its key, about 5 us a
key: the largest part of an alert's send in the review-heavy profile (one alert per three
events). The same hash over numpy arrays, one row per key and one pass per key length, costs a
few hundred nanoseconds a key for a cycle's alerts, and gives the same partitions as aiokafka's
``DefaultPartitioner``, kafka-python's and the Java client's (tests/test_partitioner.py
compares it with aiokafka's on random keys), so a user's alerts stay on the partition they
always had.

numpy is imported at the first call, not with the module: the console and the CLI's readers
import this module through the store (streams.worker.watermark) and never hash a key, and
numpy's import is ~0.1-0.15 s of their start-up (the worker loads it as it starts:
streams.worker.service.run_worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np

__all__ = ["murmur2_many", "partitions_of"]

_SEED = 0x9747B28C


def _murmur2_rows(raw: np.ndarray, length: int) -> np.ndarray:
    """murmur2 of each row of ``raw`` (uint8, ``n x length``): uint32 arithmetic wraps as the
    reference masks with 0xFFFFFFFF."""
    import numpy as np

    m = np.uint32(0x5BD1E995)
    r24, r13, r15 = np.uint32(24), np.uint32(13), np.uint32(15)
    h = np.full(raw.shape[0], (_SEED ^ length) & 0xFFFFFFFF, dtype=np.uint32)
    words = length // 4
    if words:
        block = np.ascontiguousarray(raw[:, :4 * words]).view("<u4")
        for j in range(words):
            k = block[:, j] * m
            k ^= k >> r24
            k *= m
            h *= m
            h ^= k
    tail, base = length & 3, 4 * words
    if tail:
        if tail == 3:
            h ^= raw[:, base + 2].astype(np.uint32) << np.uint32(16)
        if tail >= 2:
            h ^= raw[:, base + 1].astype(np.uint32) << np.uint32(8)
        h ^= raw[:, base].astype(np.uint32)
        h *= m
    h ^= h >> r13
    h *= m
    h ^= h >> r15
    return h


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """``murmur2(key) & 0x7FFFFFFF`` of each key (aiokafka.partitioner.murmur2 made positive, as
    its partitioner does), in order.

    >>> murmur2_many([b"user-1", b"", b"abcd"]) == [1404122828, 275646681, 823834100]
    True
    """
    import numpy as np

    lengths = set(map(len, keys))
    if len(lengths) == 1:  # the usual cycle (user ids of one length): one pass, no per-key Python
        length = lengths.pop()
        raw = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
        return (_murmur2_rows(raw, length) & np.uint32(0x7FFFFFFF)).tolist()  # type: ignore[no-any-return]
    out = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    for length, rows in by_length.items():
        raw = np.frombuffer(b"".join([keys[i] for i in rows]), dtype=np.uint8).reshape(len(rows), length)
        for i, h in zip(rows, (_murmur2_rows(raw, length) & np.uint32(0x7FFFFFFF)).tolist()):
            out[i] = h
    return out


def partitions_of(keys: Sequence[bytes], partitions: Sequence[int]) -> list[int]:
    """The partition aiokafka's ``DefaultPartitioner`` picks for each key, given the topic's
    partitions in the order aiokafka lists them (``list(producer.partitions_for(topic))``)."""
    n = len(partitions)
    return [partitions[h % n] for h in murmur2_many(keys)]
