"""The worker's fetched records as aiokafka's own record objects, not one ``ConsumerRecord`` each.

Why: aiokafka hands every record out through a generator, a ``__next__`` method, a Python
``_consumer_record`` call and a dataclass ``__init__`` (four Python frames and a dict-backed object
a record), ~10.9k instructions a record with the freeing (callgrind, 8 partitions x 1,250 records
of the realistic workload's size): 9.2% of the worker's samples on the realistic workload, 5.4% on
the review-heavy one (py-spy, main 0b324fa). The records it reads them from (``DefaultRecord``,
made by its C extension as it walks a record batch) already have everything the worker reads of a
record (``streams.worker.phases.RecordLike``: offset, key, value, timestamp, headers), so
``lean_fetches`` has the worker's consumer hand those out, a whole record batch turned into a list
in one C call: ~2.3k instructions a record (``benchmarks/shell_callgrind.py``'s fetch phase). Nothing else changes: the same records, in the same
order, the same positions, fetches, errors and waits (aiokafka's ``fetched_records`` and
``FetchResult.getall`` still run; only what they iterate is ours).

How: the fetcher keeps each partition's fetch reply in ``Fetcher._records`` (partition -> a
``FetchResult`` holding a ``PartitionRecords``); ``lean_fetches`` swaps that dict for one that
puts a :class:`LeanRecords` in place of each ``PartitionRecords`` stored. aiokafka's ``getall``
iterates it (a list iterator a record batch, chained in C: one C step a record), stopping after
``max_records``, then reads its ``next_fetch_offset``, which counts what the iterators handed out.
A reply is unpacked a record batch at a time, as aiokafka does: nothing more is held unpacked.

Left to aiokafka's own path: a consumer with deserializers or ``read_committed`` (aborted
transactions), and any aiokafka other than the pinned one (``_CHECKED``): the worker then runs as
before. Tested against aiokafka's records on a real broker (tests/test_fetch_lean.py).
"""

from __future__ import annotations

import collections
import logging
from itertools import chain
from operator import length_hint
from typing import Any, Final, Iterator

import aiokafka
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.errors import CorruptRecordException

__all__ = ["LeanRecords", "lean_fetches"]

logger = logging.getLogger(__name__)

#: The aiokafka whose fetcher internals this module was written and tested against (pyproject pins it).
_CHECKED: Final[str] = "0.14.0"
_READ_UNCOMMITTED: Final[int] = 0  # aiokafka.consumer.fetcher.READ_UNCOMMITTED


class LeanRecords:
    """One partition's fetch reply for aiokafka's ``FetchResult`` (its ``PartitionRecords``'s part):
    iterated, the records from the fetch offset on that were not handed out yet, a record batch
    unpacked at a time (one list iterator a batch, chained in C, so nothing is unpacked ahead of
    what is taken but the rest of the batch in hand); ``next_fetch_offset``, where the partition
    continues after those handed out. As ``PartitionRecords._unpack_records``: CRCs checked a batch
    at a time, control batches skipped, records below the fetch offset (a batch that begins before
    it) left out. A batch failing its CRC ends the reply there: the records before it are handed
    out, and the partition continues at that batch (fetched again), whose reply raises
    ``CorruptRecordException`` once; no record is lost or skipped."""

    __slots__ = ("_memory", "_tp", "_check_crcs", "_batch", "_it", "_end", "_corrupt")

    def __init__(self, stock: PartitionRecords) -> None:
        self._memory: Any = stock._records  # aiokafka's MemoryRecords of the reply
        self._tp, self._check_crcs = stock._tp, stock._check_crcs
        self._batch: list[Any] = []  # the records of the batch in hand (unpacked last)
        self._it: Any = iter(self._batch)  # at its first record not handed out
        self._end: int = stock.next_fetch_offset  # where the partition continues after the batch in hand
        self._corrupt: CorruptRecordException | None = None

    def __iter__(self) -> Any:
        if not length_hint(self._it):
            self._next_batch()  # here, not in the chain: a failed CRC with nothing handed out raises
            if self._corrupt is not None and not self._batch:
                exc, self._corrupt = self._corrupt, None
                raise exc
        return chain.from_iterable(self._batches())

    def __next__(self) -> Any:
        """One record (aiokafka's ``getone``)."""
        for record in self:
            return record
        raise StopIteration

    @property
    def next_fetch_offset(self) -> int:
        left = length_hint(self._it)
        return self._batch[-left].offset if left else self._end  # type: ignore[no-any-return]

    def _batches(self) -> Iterator[Any]:
        """The batch in hand's iterator, then each next batch's, until the reply (or a failed CRC) ends."""
        yield self._it
        while self._next_batch():
            yield self._it

    def _next_batch(self) -> bool:
        """Unpack the next batch with records to hand out into ``_batch``/``_it``; False at the reply's end."""
        memory = self._memory
        while self._corrupt is None and memory.has_next():
            batch = memory.next_batch()
            if self._check_crcs and not batch.validate_crc():
                self._corrupt = CorruptRecordException(f"Invalid CRC - {self._tp}")
                self._memory = _EMPTY  # the rest is fetched again from this batch on
                break
            end, self._end = self._end, batch.next_offset
            if batch.is_control_batch:
                continue
            records = list(batch)
            if records and records[0].offset < end:  # a batch begun below the fetch offset
                records = [r for r in records if r.offset >= end]
            if records:
                self._batch, self._it = records, iter(records)
                return True
        self._batch, self._it = [], iter(())
        return False


class _Empty:
    """A reply with no batch left."""

    @staticmethod
    def has_next() -> bool:
        return False


_EMPTY: Final = _Empty()


class _LeanReplies(collections.OrderedDict):  # type: ignore[type-arg]
    """``Fetcher._records`` that stores each fetch reply with a :class:`LeanRecords`."""

    def __setitem__(self, tp: Any, result: Any) -> None:
        if type(result) is FetchResult:
            stock = result._partition_records
            if (type(stock) is PartitionRecords and stock._key_deserializer is None and stock._value_deserializer is None
                    and stock._isolation_level == _READ_UNCOMMITTED):
                result._partition_records = LeanRecords(stock)
        super().__setitem__(tp, result)


def lean_fetches(consumer: aiokafka.AIOKafkaConsumer) -> bool:
    """Have ``consumer`` (started, nothing fetched yet) hand out aiokafka's record objects; whether it does."""
    fetcher = getattr(consumer, "_fetcher", None)
    records = getattr(fetcher, "_records", None)
    if aiokafka.__version__ != _CHECKED or type(records) is not collections.OrderedDict:
        logger.info("aiokafka %s: fetched records handed out as ConsumerRecords (the lean path knows %s)",
                    aiokafka.__version__, _CHECKED)
        return False
    lean = _LeanReplies()
    for tp, result in records.items():  # kept as they are (none, once started: fetching waits for an assignment)
        collections.OrderedDict.__setitem__(lean, tp, result)
    fetcher._records = lean  # type: ignore[union-attr]
    return True
