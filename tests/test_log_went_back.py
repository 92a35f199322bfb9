"""A partition's log that looks as if it went back (a fetch reply's log end below the next offset
to take), and cycles abandoned for it (review 9): unit-level, on a real consumer object with a
real broker topic and a real Redis, the decisions staged deterministically (no loop, no timing).

The consumer is a ``StreamConsumer`` whose Kafka side is a plain assigned ``AIOKafkaConsumer``
(what the group's assignment gives it), as in tests/test_broker_loss.py's last test. A fetch
reply's log end is aiokafka's own (``highwater``), set by real fetches: a log end that "lags"
is one read before more records were published, exactly what a caught-up worker holds when a new
leader's high watermark lags the records it read (KAFKA-2334), which a single Tansu never does.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from models.model import load_model
from streams.settings import Settings, aiokafka_client_kwargs
from streams.worker import consumer as consumer_module
from streams.worker import metrics
from streams.worker.consumer import KafkaSink, StreamConsumer
from streams.worker.phases import record_fingerprint
from streams.worker.pipeline import CycleAbandoned, CycleResult, Flight, Pipeline
from streams.worker.store import Store

pytestmark = [pytest.mark.integration]



def _topics(bootstrap: str, unique_name: str) -> dict[str, str]:
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topics[k], 2, 1) for k in ("events", "alerts", "dlq")])
    finally:
        admin.close()
    return topics


def _publish(bootstrap: str, topic: str, partition: int, n: int) -> None:
    """``n`` plain records into ``partition`` (what they hold does not matter: no cycle decodes them),
    one batch each: Tansu's ListOffsets answers the base offset of the last batch + 1, the log end
    only when that batch holds one record. With a last batch of several records it answers below
    the end read, and would "confirm" the lagging reply of test 2 (see ``_confirm_drops``)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(n):
        producer.send(topic, key=None, value=b"r%d" % i, partition=partition).get(10)
    producer.close()


class Staged:
    """A ``StreamConsumer`` owning partitions 0 and 1 of the events topic, its Kafka side assigned."""

    def __init__(self, settings: Settings) -> None:
        self.store = Store(settings)
        self.sink = KafkaSink(settings)
        self.pipeline = Pipeline(settings, self.store, self.sink, load_model())
        self.worker = StreamConsumer(settings, self.store, self.pipeline, self.sink)
        self.kafka = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50,
                                      **aiokafka_client_kwargs(settings))
        self.tps = [TopicPartition(settings.topic_events, p) for p in (0, 1)]
        self.sent: list[str] = []  # the topic of every send_all call, in order

    async def start(self) -> None:
        await self.store.connect()
        await self.sink.start()
        send_all = self.sink.send_all

        async def recording(topic: str, records: Any) -> None:
            self.sent.append(topic)
            await send_all(topic, records)

        self.sink.send_all = recording  # type: ignore[method-assign]
        await self.kafka.start()
        self.kafka.assign(self.tps)
        self.worker.consumer, self.worker.assigned = self.kafka, set(self.tps)

    async def read(self, tp: TopicPartition, start: int, end: int) -> list[Any]:
        """The records ``start..end-1`` of ``tp`` (aiokafka's highwater of ``tp`` set by the replies)."""
        self.kafka.resume(tp)
        self.kafka.seek(tp, start)
        out: list[Any] = []
        while len(out) < end - start:
            got = await self.kafka.getmany(tp, timeout_ms=200, max_records=end - start - len(out))
            out += got.get(tp, [])
        return out

    async def fetch_end(self, tp: TopicPartition, at: int, then: int) -> None:
        """A fetch reply for ``tp`` read at ``at`` (its log end), so that aiokafka holds its highwater;
        then ``tp`` paused at ``then`` (the worker's next offset, not ``at``), so that the highwater
        stays the one read whatever is published after: aiokafka's background fetcher asks nothing
        more of a paused partition, and a reply to a fetch from ``at`` still in flight is discarded
        (its offset is not the position). Unpaused, such a reply could raise it first (review 12)."""
        assert then != at, "a reply in flight from the position would be taken"
        self.kafka.resume(tp)
        self.kafka.seek(tp, at)
        while self.kafka.highwater(tp) is None or self.kafka.last_poll_timestamp(tp) is None:
            await self.kafka.getmany(tp, timeout_ms=100)
        self.kafka.pause(tp)
        self.kafka.seek(tp, then)

    def at(self, p: int, next_offset: int, applied: int | None = None) -> None:
        self.worker._next[p], self.worker._applied[p] = next_offset, next_offset if applied is None else applied

    async def stop(self) -> None:
        await self.kafka.stop()
        await self.sink.stop()
        await self.store.close()


def _settings(kafka_bootstrap: str, redis_url: str, topics: dict[str, str], unique_name: str) -> Settings:
    return Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, topic_events=topics["events"],
                    topic_alerts=topics["alerts"], topic_dlq=topics["dlq"], partitions=2,
                    key_prefix=f"cw{unique_name.replace('-', '')}")


def _resets() -> float:
    """Partitions restarted so far in this process (``churnwatch_topic_resets_total``)."""
    return sum(metrics.TOPIC_RESETS.labels(reason)._value.get() for reason in ("beyond_log_end", "replaced"))



@asynccontextmanager
async def staged(bootstrap: str, redis_url: str, unique_name: str,
                 published: dict[int, int] | None = None) -> AsyncIterator[tuple["Staged", dict[str, str]]]:
    """A started ``Staged`` on topics of its own, ``published`` = {partition: n} plain records in
    them first (``_publish``), with the topics' names; stopped after."""
    topics = _topics(bootstrap, unique_name)
    for partition, n in (published or {}).items():
        _publish(bootstrap, topics["events"], partition, n)
    s = Staged(_settings(bootstrap, redis_url, topics, unique_name))
    await s.start()
    try:
        yield s, topics
    finally:
        await s.stop()

def test_a_rewind_during_a_restart_makes_the_batch_in_hand_continue_the_lowered_offsets(
        kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    """Review 9, finding 1 (record loss). Partition 1's cycle of records 10-19 is in flight
    (applied up to 10, next 20) and the batch in hand holds 20-29. Partition 0's log went back
    (its log end 5, below the next offset 50; ListOffsets agrees), so ``_check_log`` restarts it,
    and the restart's drain settles the cycle in flight, which was abandoned (its heartbeats may
    not go into a log that went back): ``_rewind`` seeks partition 1 back to 10. The batch's
    records from 20 then passed for a forward gap and went to a cycle: 10-19 never applied.
    Now only an exact continuation of the lowered offset is taken, and 1 is read again from 10."""
    async def scenario() -> tuple[list[int], int, int, float]:
        async with staged(kafka_bootstrap, redis_url, unique_name, {0: 5, 1: 30}) as (s, topics):
            p, q = s.tps
            await s.fetch_end(p, 5, then=50)
            in_flight = await s.read(q, 10, 20)
            batch = {q: await s.read(q, 20, 30)}
            s.at(0, 50)
            s.at(1, 20, applied=10)
            pipeline, worker = s.pipeline, s.worker

            async def tail() -> CycleResult:  # a tail sending heartbeats: abandoned, partition 0's log went back
                await pipeline._send_events("heartbeats", pipeline.heartbeats.records({1: 0}))
                return CycleResult()

            flight = Flight(CycleResult(), routes=pipeline.router.snapshot(), beats=pipeline.heartbeats.snapshot())
            flight.task = asyncio.ensure_future(tail())
            pipeline._flights.append(flight)
            worker._flights.append((flight, {q: in_flight}))
            generation, rewinds = worker._generation, worker._rewinds
            resets = _resets()
            taken = await worker._judge(batch, generation, rewinds)
            assert taken is not None
            return ([r.offset for r in taken.get(q, [])], worker._next[1], await s.kafka.position(q),
                    _resets() - resets)

    offsets, next_q, position, resets = asyncio.run(scenario())
    assert resets == 1, "partition 0 was restarted (its log went back, ListOffsets agrees)"
    assert offsets == [], f"records {offsets[:1]}.. taken while 10-19 were never applied"
    assert (next_q, position) == (10, 10), "partition 1 is read again from the first offset not applied"


def test_a_fetch_reply_below_the_next_offset_restarts_nothing_unless_list_offsets_confirms_it(
        kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    """Review 9, finding 2. A caught-up worker holds a fetch reply whose log end (5) is below its
    next offset (8): what a new leader's lagging high watermark hands it after a leader election
    on replicated Kafka (KAFKA-2334). Before, ``_check_log`` took that for a replaced topic and
    restarted the partition at offset 0 with the states kept (the whole log applied twice), and
    every cycle's copies were refused. ListOffsets, which does not lag (KIP-207), says the log
    ends at 12: nothing is restarted and copies may go; a drop it confirms still restarts."""
    async def scenario() -> tuple[float, int, str | None, int | None, int | None, float, int]:
        async with staged(kafka_bootstrap, redis_url, unique_name, {0: 5}) as (s, topics):
            p, _ = s.tps
            await s.fetch_end(p, 5, then=8)  # paused: no reply raises the highwater before it is judged
            _publish(kafka_bootstrap, topics["events"], 0, 7)  # the log end is 12; the reply held says 5
            s.at(0, 8)
            worker = s.worker
            resets = _resets()
            await worker._check_log({}, rebalanced=False)
            lagging = (_resets() - resets, worker._next[0], await worker._events_unusable(False),
                       worker._end_checks[0][1], s.kafka.highwater(p))
            s.at(0, 20)  # beyond what ListOffsets says too: the log went back for real
            worker._end_checks.clear()  # the answer of a second ago stands LOG_END_RECHECK_S: asked again now
            await worker._check_log({}, rebalanced=False)
            return (*lagging, _resets() - resets, worker._next[0])

    lag_resets, lag_next, objection, listed, highwater, resets, next_offset = asyncio.run(scenario())
    assert (listed, highwater) == (12, 5), "ListOffsets was not asked and refuting a drop still shown"
    assert (lag_resets, lag_next) == (0, 8), "a lagging fetch reply restarted the partition"
    assert objection is None, f"copies refused for a lagging fetch reply: {objection}"
    assert (resets, next_offset) == (1, 0), "a drop ListOffsets confirms restarts the partition at 0"


def test_a_log_a_tail_found_gone_back_is_restarted_though_the_rewind_hid_it(
        kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    """Review 9, finding 4. A tail finds partition 0's log ended below what the worker read (the
    log end 5, the next offset 8; ListOffsets agrees: replaced) and is abandoned; the rewind then
    seeks 0 back to 3, the first offset not applied, below the new log's end, so ``_check_log`` no
    longer saw a drop, and 0 went on reading the new log from 3 as if it continued the old one
    (new-log records 0-2 never applied). Now the tail's finding is remembered and 0 is restarted."""
    async def scenario() -> tuple[str | None, float, int]:
        async with staged(kafka_bootstrap, redis_url, unique_name, {0: 5}) as (s, topics):
            p, _ = s.tps
            records = await s.read(p, 0, 5)
            await s.fetch_end(p, 5, then=8)
            s.at(0, 8, applied=3)
            worker = s.worker
            why = await worker._events_unusable(False)  # a tail's send: refused, the cycle abandoned
            worker._flights.append((Flight(CycleResult()), {p: records[3:]}))
            worker._rewind()  # its settle: read again from 3
            resets = _resets()
            await worker._check_log({}, rebalanced=False)
            return why, _resets() - resets, worker._next[0]

    why, resets, next_offset = asyncio.run(scenario())
    assert why is not None and "below the next offset to take 8" in why, why
    assert (resets, next_offset) == (1, 0), "the replaced log was read on from 3 as if it continued the old one"


def test_a_cycle_whose_copies_are_refused_sends_no_alert(kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    """Review 9, finding 3. A cycle's copies may not go (partition 0's log went back, confirmed):
    the cycle is abandoned and read again. Its alerts were queued in the same turn as the copies'
    first attempt, so they went out at every such cycle (the same ids again and again while it
    lasts). Now the objection is asked before any send of the cycle's tail is made."""
    async def scenario() -> tuple[list[str], str]:
        async with staged(kafka_bootstrap, redis_url, unique_name, {0: 5}) as (s, topics):
            p, _ = s.tps
            await s.fetch_end(p, 5, then=8)
            s.at(0, 8)
            copy = (b"acme", b"{}", [("churnwatch-account", b"0:1")])
            with pytest.raises(CycleAbandoned) as abandoned:
                await s.pipeline._produce([(b"u1", b"{}")], [], [copy])
            return s.sent, str(abandoned.value)

    sent, why = asyncio.run(scenario())
    assert "copies not sent" in why and "below the next offset" in why, why
    assert sent == [], f"an abandoned cycle sent into {sent}"


def test_a_revocation_during_the_listing_stops_the_send(kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    """Review 9, finding 5. A failed copy send lists the topics before the next attempt (up to
    5 s); a revocation that came meanwhile waited for the whole send after it as well (up to the
    producer's 15 s), the rebalance with it. Now the attempt gives up once the listing returns."""
    async def scenario() -> tuple[list[str], str, list[bool]]:
        async with staged(kafka_bootstrap, redis_url, unique_name) as (s, topics):
            worker, pipeline = s.worker, s.pipeline
            asked: list[bool] = []

            async def unusable(failed: bool) -> str | None:  # the consumer's own, a revocation arriving during it
                asked.append(failed)
                why = await worker._events_unusable(True)
                worker._revoking = True
                return why

            pipeline.events_unusable = unusable
            with pytest.raises(CycleAbandoned) as abandoned:
                await pipeline._send_events("copies", [(b"acme", b"{}", [("churnwatch-account", b"0:1")])])
            return s.sent, str(abandoned.value), asked

    sent, why, asked = asyncio.run(scenario())
    assert asked == [False], f"not one first attempt: {asked}"
    assert sent == [], "sent after the revocation"
    assert "abandoned before copies" in why, why


def test_an_abandoned_heartbeat_does_not_count_as_sent(kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    """Review 9, finding 6. ``Heartbeats.due`` counts heartbeats as sent when it hands them out;
    one abandoned (here: partition 0's log went back) stayed counted, so the next heartbeat of a
    mark that entered a new period waited 30 s, not 1 s, and other partitions' account watermarks
    with it. Now an abandoned cycle restores the heartbeats' state with its clocks."""
    async def scenario() -> tuple[tuple[int, dict[int, int]], tuple[int, dict[int, int]], list[str]]:
        async with staged(kafka_bootstrap, redis_url, unique_name, {0: 5}) as (s, topics):
            p, _ = s.tps
            await s.fetch_end(p, 5, then=8)
            s.at(0, 8)
            pipeline = s.pipeline
            now = int(time.time() * 1000)
            pipeline.assign(0, (7, now - 60_000), now)
            pipeline.heartbeats.active = True
            before = pipeline.heartbeats.snapshot()
            with pytest.raises(CycleAbandoned):
                flight = await pipeline.submit({}, now)
                await pipeline.settle(flight)
            return before, pipeline.heartbeats.snapshot(), s.sent

    before, after, sent = asyncio.run(scenario())
    assert sent == [], "the heartbeats were not sent"
    assert after == before, "an abandoned heartbeat counted as sent"


@pytest.mark.parametrize("stored", [7, 6], ids=["matching", "gone"])
def test_a_resumed_log_whose_record_verifies_forgets_a_tails_older_finding(
        kafka_bootstrap: str, redis_url: str, unique_name: str, stored: int) -> None:
    """Review 12, finding 1. Partition 0 is resumed at the stored offset 7 (``_verify``) after its
    topic was created again. A tail finds its log ends at 5, below 7 (ListOffsets agrees), and flags
    it (``_went_back``). The republish then passes 7, and the next reply holds the record at 7 with
    the stored checksum (or, ``gone``, starts after the stored 6: nothing to compare): the resume
    check accepts it and 8.. go to a cycle. The flag outlived it, so the next pass restarted 0 at
    offset 0 with the states kept (0..7 applied twice). The record read wins now."""
    async def scenario() -> tuple[str | None, float, int, bool]:
        async with staged(kafka_bootstrap, redis_url, unique_name, {0: 5}) as (s, topics):
            p, _ = s.tps
            worker = s.worker
            await s.fetch_end(p, 5, then=stored)
            s.at(0, stored)
            worker._verify[0] = (stored, "not read yet")
            why = await worker._events_unusable(False)  # a tail's send: refused, 0 flagged
            _publish(kafka_bootstrap, topics["events"], 0, 5)  # the republish: the log ends at 10
            records = await s.read(p, 7, 10)
            worker._verify[0] = (stored, record_fingerprint(records[0]))
            resets = _resets()
            taken = await worker._check_log({p: records}, rebalanced=False)  # the resume check passes
            assert [r.offset for r in taken[p]] == ([8, 9] if stored == 7 else [7, 8, 9]), taken
            await worker._check_log({}, rebalanced=False)  # the next pass
            return why, _resets() - resets, worker._next[0], 0 in worker._went_back

    why, resets, next_offset, flagged = asyncio.run(scenario())
    assert why is not None and f"below the next offset to take {stored}" in why, why
    assert (resets, next_offset) == (0, stored + 1), "a log whose resume check passed was restarted at 0"
    assert not flagged, "the tail's finding outlived the resume check"


def test_a_partition_without_a_list_offsets_answer_leaves_the_others_their_verdicts(
        kafka_bootstrap: str, redis_url: str, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 12, finding 4. aiokafka retries a ListOffsets request as a whole until every partition
    in it answers, so one partition without an answer (a lagging new leader's LEADER_NOT_AVAILABLE;
    here a partition the cluster does not have: StaleMetadata, retried the same way) left every
    partition asked with it unanswered: a replaced log not restarted, every tail's copies and
    heartbeats waiting. Now each partition is asked on its own: partition 0's drop is confirmed."""
    monkeypatch.setattr(consumer_module, "LOG_END_CHECK_TIMEOUT_S", 1.0)  # the unanswered one's wait

    async def scenario() -> dict[int, bool | None]:
        async with staged(kafka_bootstrap, redis_url, unique_name, {0: 5}) as (s, topics):
            p, _ = s.tps
            unanswered = TopicPartition(p.topic, 7)
            verdicts = await s.worker._confirm_drops({p: (5, 8), unanswered: (0, 1)})
            return {tp.partition: verdict for tp, verdict in verdicts.items()}

    assert asyncio.run(scenario()) == {0: True, 7: None}, "one unanswered partition left the other unanswered"
