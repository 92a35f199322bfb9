"""Bad input through the real pipeline: real broker, real Redis, the real ``churnwatch worker``.

Six users' good events (about six weeks, two of them go quiet so alerts are raised) are published
with bad records interleaved, keyed by the good users so they share their partitions. A second
worker reads only the records that should be accepted (same bytes, same order, same keys) on its
own topic and key prefix: the clean reference. Worker settings: ``CHURNWATCH_MAX_EVENT_BYTES=512``,
``CHURNWATCH_MAX_CLOCK_SKEW_MS=5m``, ``CHURNWATCH_ALLOWED_LATENESS_MS=6h``.

Inputs and outcomes (reason = DLQ ``reason`` and the ``reason`` label of
``churnwatch_events_rejected_total``):

======================================================  ====================================
input                                                   outcome
======================================================  ====================================
truncated JSON text                                     DLQ ``malformed_json``
record without a value (tombstone)                      DLQ ``malformed_json``
empty value                                             DLQ ``malformed_json``
``[1, 2, 3]`` / ``"text"`` (JSON but not an object)     DLQ ``not_an_object``
raw bytes ``ff fe 00 ...``                              DLQ ``not_utf8`` (value kept as base64)
JSON object with a Latin-1 byte inside ``user_id``      DLQ ``not_utf8``
no ``user_id`` / no ``ts`` / ``type`` null              DLQ ``missing_field``
``event_id`` empty                                      DLQ ``missing_field``
``event_id`` a number, ``user_id`` a number             DLQ ``bad_type``
``user_id`` of 300 characters (limit 256)               DLQ ``bad_type``
``type`` a list, ``ts`` true, ``ts`` an object          DLQ ``bad_type``
``user_id`` ""                                          DLQ ``empty_user_id``
``type`` "" / ``type`` "   "                            DLQ ``empty_type``
``ts`` "yesterday", ``ts`` "2026-13-45T99:00:00Z"       DLQ ``bad_timestamp``
``ts`` wall clock + 1 h (beyond the 5 min skew)         DLQ ``future``
``ts`` year 9999 (ISO), ``ts`` 1e16 ms                  DLQ ``future``
``ts`` 1999-12-31 (ISO), epoch seconds, ``ts`` -1       DLQ ``too_old``
``amount`` the bare token NaN / Infinity / 1e999        DLQ ``malformed_json`` (not valid JSON)
``amount`` "NaN", "Infinity", "19.90" (strings)         DLQ ``bad_amount``
``amount`` -5, ``amount`` true                          DLQ ``bad_amount``
``amount`` 1e308 (finite, above ``MAX_AMOUNT`` 1e12)    DLQ ``bad_amount``
subscription ``active`` without ``mrr``, ``past_due``   DLQ ``bad_subscription`` (only a cancelled
  with ``mrr`` null                                     statement may leave mrr out)
valid event of 700 bytes (limit 512)                    DLQ ``oversized``; DLQ value cut to
                                                        512 bytes, ``value_truncated``,
                                                        ``value_bytes`` = 700
valid event 1 day before the partition's stream time    DLQ ``late`` (same key as the user
  minus lateness (same user, so same partition)         whose events moved the stream time)
exact copy of a good event right after it               DLQ ``duplicate_event_id``
same user + ``event_id`` again, other time and type     DLQ ``duplicate_event_id``
unknown type "teleport"                                 accepted under its own name (the product's
                                                        vocabulary); ``churnwatch_events_unknown_type_total`` stays 0
one ``event_id`` used by two different users            both accepted (ids are per user)
``amount`` 0 on a purchase, extra unknown fields        accepted
``amount`` exactly ``MAX_AMOUNT``                       accepted
------------------------------------------------------  ------------------------------------
separate runs (both were bugs, fixed in streams/worker/pipeline.py and streams/worker/codec.py):
same id again stamped 3 days later, then the user's     one DLQ ``duplicate_event_id``; the
  next good events (one partition)                      rejected copy does not move the
                                                        partition's stream time, so the good
                                                        events after it are not ``late``
two purchases of 1e308, then silence for weeks while   both DLQ ``bad_amount``; no cycle
  another user keeps event time moving                  fails, every Redis stat stays finite
======================================================  ====================================

Checks: each bad record gives exactly one DLQ record, whose ``partition``/``offset`` point at it in
the events topic and whose value is its original bytes (text or base64); the worker's ``/metrics``
counts the same reasons, every record as consumed and every good one as processed; the good users'
state bytes and the alert ids equal the clean run's; the worker still answers ``/healthz`` and
stops with exit code 0.

Duplicates are caught only inside one batch (streams/worker/codec.py): the copies are published right
after their original with one producer flush and read by a worker started afterwards with
batches of up to 10,000 records, so each pair arrives in one fetch.
"""

from __future__ import annotations

import base64
import math
import os
import random
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson
import pytest
import redis as redis_lib
from prometheus_client.parser import text_string_to_metric_families

from models.events import Event
from models.state import UserState
from streams.worker.topics import ensure_topics
from streams.worker.codec import MAX_AMOUNT
from streams.local import Service
from streams.settings import Settings, parse_duration_ms
from streams.publisher import event_value
from tests.harness import Worker, dump_state, publish_events, read_topic, wait_progress, wait_quiet, wait_reviewed

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAYS = 42
USERS = ("bi-ana", "bi-ben", "bi-cleo", "bi-dev", "bi-eva", "bi-finn")
MAX_EVENT_BYTES = 512
PARTITIONS = 8
WORKER_ENV = {
    "CHURNWATCH_MAX_EVENT_BYTES": str(MAX_EVENT_BYTES),
    "CHURNWATCH_MAX_CLOCK_SKEW_MS": "5m",
    "CHURNWATCH_ALLOWED_LATENESS_MS": "6h",
    "CHURNWATCH_IDLE_PARTITION_MS": "1000",  # caught-up partitions borrow the topic's clock after 1 s
}
LATENESS_MS = parse_duration_ms(WORKER_ENV["CHURNWATCH_ALLOWED_LATENESS_MS"], name="allowed lateness")

Record = tuple[bytes | None, bytes | None]


@dataclass(frozen=True)
class Bad:
    """One bad record and the DLQ reason it must get."""

    label: str
    key: bytes | None
    value: bytes | None
    reason: str


def _body(user: str, eid: str, ts: object = START_MS + 10 * DAY_MS, **extra: object) -> dict[str, object]:
    return {"event_id": eid, "user_id": user, "type": "view", "ts": ts, **extra}


def good_records() -> list[Record]:
    """The accepted records in publishing order (event time): steady users, two quitters, edge cases."""
    rng = random.Random(11)
    timed: list[tuple[int, str, bytes, bytes]] = []
    for i, user in enumerate(USERS):
        stop_day = (14, 20)[i] if i < 2 else DAYS  # ana and ben go quiet: alerts to compare
        t = START_MS + rng.randrange(0, DAY_MS)
        n = 0
        while t < START_MS + stop_day * DAY_MS:
            n += 1
            kind = rng.choice(("view", "view", "click", "message", "purchase"))
            amount = round(rng.uniform(5, 60), 2) if kind == "purchase" else 0.0
            ev = Event(user, t, kind, f"{user}-{n}", amount)  # type: ignore[arg-type]
            timed.append((t, ev.event_id, user.encode(), event_value(ev)))
            t += int(rng.uniform(0.5, 2.5) * DAY_MS)
    edge = [  # accepted on purpose
        orjson.dumps(_body("bi-cleo", "teleport-1", START_MS + 5 * DAY_MS + HOUR_MS, type="teleport")),
        orjson.dumps(_body("bi-dev", "shared-id", START_MS + 6 * DAY_MS + HOUR_MS)),
        orjson.dumps(_body("bi-eva", "shared-id", START_MS + 6 * DAY_MS + 2 * HOUR_MS)),
        orjson.dumps(_body("bi-finn", "free-purchase", START_MS + 7 * DAY_MS, type="purchase", amount=0,
                           properties={"coupon": "100%"}, client="ios")),
        orjson.dumps(_body("bi-cleo", "max-purchase", START_MS + 8 * DAY_MS, type="purchase", amount=MAX_AMOUNT)),
    ]
    for value in edge:
        obj = orjson.loads(value)
        timed.append((int(obj["ts"]), str(obj["event_id"]), str(obj["user_id"]).encode(), value))
    timed.sort()
    return [(key, value) for _, _, key, value in timed]


def bad_records(wall_ms: int) -> list[Bad]:
    """Every bad record except the positional ones (late, duplicates), keyed by good users."""
    raw: list[tuple[str, bytes | None, str]] = [
        ("truncated JSON", b'{"event_id": "bad-trunc", "user_id": "bi-ana", "type": "view", "ts": ', "malformed_json"),
        ("tombstone", None, "malformed_json"),
        ("empty value", b"", "malformed_json"),
        ("JSON array", b"[1, 2, 3]", "not_an_object"),
        ("JSON string", b'"text"', "not_an_object"),
        ("raw binary", b"\xff\xfe\x00\x01garbage\x80", "not_utf8"),
        ("Latin-1 byte in a string", b'{"event_id":"bad-latin1","user_id":"caf\xe9","type":"view","ts":1767225600000}', "not_utf8"),
        ("no user_id", orjson.dumps({"event_id": "bad-nouser", "type": "view", "ts": START_MS}), "missing_field"),
        ("no ts", orjson.dumps({"event_id": "bad-nots", "user_id": "bi-ben", "type": "view"}), "missing_field"),
        ("type null", orjson.dumps(_body("bi-cleo", "bad-typenull", type=None)), "missing_field"),
        ("event_id empty", orjson.dumps(_body("bi-dev", "")), "missing_field"),
        ("event_id a number", orjson.dumps(_body("bi-eva", 17)), "bad_type"),  # type: ignore[arg-type]
        ("user_id a number", orjson.dumps({**_body("x", "bad-uidnum"), "user_id": 42}), "bad_type"),
        ("user_id 300 chars", orjson.dumps(_body("u" * 300, "bad-longuid")), "bad_type"),
        ("type a list", orjson.dumps(_body("bi-finn", "bad-typelist", type=["view"])), "bad_type"),
        ("ts true", orjson.dumps(_body("bi-ana", "bad-tsbool", ts=True)), "bad_type"),
        ("ts an object", orjson.dumps(_body("bi-ben", "bad-tsobj", ts={"ms": START_MS})), "bad_type"),
        ("user_id empty", orjson.dumps(_body("", "bad-emptyuid")), "empty_user_id"),
        ("type empty", orjson.dumps(_body("bi-eva", "bad-typeempty", type="")), "empty_type"),
        ("type blank", orjson.dumps(_body("bi-finn", "bad-typeblank", type="   ")), "empty_type"),
        ("ts yesterday", orjson.dumps(_body("bi-cleo", "bad-tsword", ts="yesterday")), "bad_timestamp"),
        ("ts month 13", orjson.dumps(_body("bi-dev", "bad-tsmonth", ts="2026-13-45T99:00:00Z")), "bad_timestamp"),
        ("ts wall+1h (skew 5m)", orjson.dumps(_body("bi-eva", "bad-future1h", ts=wall_ms + HOUR_MS)), "future"),
        ("ts year 9999", orjson.dumps(_body("bi-finn", "bad-y9999", ts="9999-12-31T23:59:59Z")), "future"),
        ("ts 1e16 ms", orjson.dumps(_body("bi-ana", "bad-1e16", ts=10**16)), "future"),
        ("ts 1999", orjson.dumps(_body("bi-ben", "bad-1999", ts="1999-12-31T23:59:59Z")), "too_old"),
        ("ts epoch seconds", orjson.dumps(_body("bi-cleo", "bad-secs", ts=START_MS // 1000)), "too_old"),
        ("ts -1", orjson.dumps(_body("bi-dev", "bad-neg", ts=-1)), "too_old"),
        ("amount bare NaN", b'{"event_id":"bad-nan","user_id":"bi-eva","type":"purchase","ts":1768089600000,"amount":NaN}', "malformed_json"),
        ("amount bare Infinity", b'{"event_id":"bad-inf","user_id":"bi-finn","type":"purchase","ts":1768089600000,"amount":Infinity}', "malformed_json"),
        ("amount 1e999", b'{"event_id":"bad-1e999","user_id":"bi-ana","type":"purchase","ts":1768089600000,"amount":1e999}', "malformed_json"),
        ("amount 'NaN'", orjson.dumps(_body("bi-ben", "bad-nanstr", type="purchase", amount="NaN")), "bad_amount"),
        ("amount 'Infinity'", orjson.dumps(_body("bi-cleo", "bad-infstr", type="purchase", amount="Infinity")), "bad_amount"),
        ("amount '19.90'", orjson.dumps(_body("bi-dev", "bad-amtstr", type="purchase", amount="19.90")), "bad_amount"),
        ("amount -5", orjson.dumps(_body("bi-eva", "bad-negamt", type="purchase", amount=-5.0)), "bad_amount"),
        ("amount true", orjson.dumps(_body("bi-finn", "bad-boolamt", type="purchase", amount=True)), "bad_amount"),
        ("amount 1e308", orjson.dumps(_body("bi-ana", "bad-hugeamt", type="purchase", amount=1e308)), "bad_amount"),
        ("700 bytes", orjson.dumps(_body("bi-ana", "bad-big", properties={"pad": "x" * 600})), "oversized"),
        # QA pass 9 L3: a plan in force without its mrr was applied as a free plan, silently
        ("active without mrr", orjson.dumps(_body("bi-ben", "bad-nomrr", type="subscription", account_id="acme", status="active",
                                                  plan="Pro")), "bad_subscription"),
        ("past_due mrr null", orjson.dumps(_body("bi-cleo", "bad-nullmrr", type="subscription", account_id="acme",
                                                 status="past_due", plan="Pro", mrr=None)), "bad_subscription"),
    ]
    out = []
    for i, (label, value, reason) in enumerate(raw):
        key = USERS[i % len(USERS)].encode()
        out.append(Bad(label, key, value, reason))
    big = next(b for b in out if b.reason == "oversized")
    assert big.value is not None and MAX_EVENT_BYTES < len(big.value) < 2 * MAX_EVENT_BYTES
    return out


def interleave(good: list[Record], wall_ms: int) -> tuple[list[Record], list[Bad | None]]:
    """Good and bad records in publishing order, and for each position the Bad it is (None: good)."""
    rng = random.Random(3)
    seq: list[Record] = list(good)
    tags: list[Bad | None] = [None] * len(good)

    def insert(at: int, bad: Bad) -> None:
        seq.insert(at, (bad.key, bad.value))
        tags.insert(at, bad)

    for bad in bad_records(wall_ms):
        insert(rng.randrange(len(seq) // 20, len(seq) - len(seq) // 20), bad)
    # duplicates: right behind their original, same key, so in the same partition and fetch
    spots = sorted(rng.sample(range(len(seq) // 4, 3 * len(seq) // 4), 2), reverse=True)
    for exact, at in zip((True, False), spots):
        while tags[at] is not None or b"teleport" in (seq[at][1] or b""):  # a copy would count twice as unknown
            at += 1
        key, value = seq[at]
        assert value is not None
        if exact:
            insert(at + 1, Bad("exact copy", key, value, "duplicate_event_id"))
        else:
            obj = orjson.loads(value)
            obj.update(ts=obj["ts"] - 60_000, type="click", amount=None)
            insert(at + 1, Bad("same id, other content", key, orjson.dumps(obj), "duplicate_event_id"))
    # late: a user's event a day before the start, once that user's partition is weeks further
    at = 3 * len(seq) // 4
    user = seq[at][0]
    assert user is not None
    insert(at + 1, Bad("1 day before the start", user,
                       orjson.dumps(_body(user.decode(), "bad-late", ts=START_MS - DAY_MS)), "late"))
    return seq, tags


# -- reading back -------------------------------------------------------------------------------


def read_raw(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of every record of ``topic``, in partition/offset order."""
    return [(r.partition, r.offset, r.key, r.value) for r in read_topic(bootstrap, topic, PARTITIONS)]


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Metric samples of a worker: sample name -> labels -> value."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def original_bytes(dlq: dict[str, object]) -> bytes | None:
    if dlq["value"] is None:
        return None
    if dlq["value_encoding"] == "base64":
        return base64.b64decode(str(dlq["value"]))
    return str(dlq["value"]).encode("utf-8")


# -- the runs -----------------------------------------------------------------------------------


def dup_moves_clock_records() -> list[Record]:
    """A rejected duplicate with a later ``ts`` must not move its partition's stream time.

    One user, so one partition: A (day 2), A's id again stamped day 5 (a retry that re-stamped
    the time), then B (day 2 + 2 h) and one view a day up to day 10. Only the copy is bad.
    """
    user = "dc-user"
    t0 = START_MS + 2 * DAY_MS
    recs = [orjson.dumps(_body(user, "dc-a", t0)), orjson.dumps(_body(user, "dc-a", t0 + 3 * DAY_MS)),
            orjson.dumps(_body(user, "dc-b", t0 + 2 * HOUR_MS))]
    recs += [orjson.dumps(_body(user, f"dc-{d}", START_MS + d * DAY_MS + 3 * HOUR_MS)) for d in range(3, 11)]
    return [(user.encode(), v) for v in recs]


def huge_amount_records() -> list[Event]:
    """Two purchases of 1e308 (finite, but their sum is inf), then silence until the user would
    churn, while another user keeps the topic's event time moving for 80 days."""
    events = [Event("ha-rich", START_MS + i * DAY_MS, "purchase", f"ha-rich-{i}", 1e308) for i in range(2)]
    events += [Event("ha-clock", START_MS + i * DAY_MS + HOUR_MS, "view", f"ha-clock-{i}") for i in range(80)]
    return sorted(events, key=lambda e: e.ts_ms)


@dataclass
class Run:
    """One worker on its own topics and key prefix, fed before it starts."""

    name: str
    topics: dict[str, str]
    prefix: str
    worker: Worker
    last: dict[int, int]
    error: str = ""  # why the run did not finish (kept for its own test instead of failing all)

    def wait(self, redis_url: str) -> None:
        """Until everything published is applied and the states stopped changing."""
        try:
            wait_progress(redis_url, self.topics["events"], self.last, 120, [self.worker], prefix=self.prefix)
            wait_reviewed(redis_url, self.topics["events"], self.prefix, allowed_lateness_ms=LATENESS_MS)
            wait_quiet(redis_url, self.prefix, quiet_s=2.5)
        except AssertionError as exc:
            self.error = str(exc)[:3000]


@dataclass
class Outcome:
    topics: dict[str, str]
    seq: list[Record]
    tags: list[Bad | None]
    source: list[tuple[int, int, bytes | None, bytes | None]]
    dlq: list[tuple[int, int, bytes | None, bytes | None]]
    metrics: dict[str, dict[tuple[tuple[str, str], ...], float]]
    state: dict[str, bytes]
    clean_state: dict[str, bytes]
    alerts: set[str]
    clean_alerts: set[str]
    worker: Worker
    runs: dict[str, Run]
    redis_url: str
    bootstrap: str


def _topics(bootstrap: str, name: str) -> dict[str, str]:
    names = {"events": f"ev-{name}", "alerts": f"al-{name}", "dlq": f"dlq-{name}", "group": f"g-{name}"}
    created = ensure_topics(Settings(kafka_bootstrap_servers=bootstrap, topic_events=names["events"],
                                     topic_alerts=names["alerts"], topic_dlq=names["dlq"], partitions=PARTITIONS))
    assert set(created.values()) == {"created"}
    return names


def _alert_ids(bootstrap: str, topic: str) -> set[str]:
    return {str(orjson.loads(v or b"{}")["alert_id"]) for _, _, _, v in read_raw(bootstrap, topic)}


@pytest.fixture(scope="module")
def outcome(kafka_service: Service, redis_service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """All runs at once (each worker spends most of its start waiting for its group to form)."""
    bootstrap, redis_url = kafka_service.address, redis_service.address
    tmp: Path = tmp_path_factory.mktemp("bad-input")
    name = f"bad{os.getpid()}-{uuid.uuid4().hex[:6]}"
    good = good_records()
    seq, tags = interleave(good, int(time.time() * 1000))
    inputs: dict[str, tuple[list[Event], list[Record]]] = {
        "bad": ([], seq), "clean": ([], good), "dupclock": ([], dup_moves_clock_records()), "huge": (huge_amount_records(), []),
    }
    runs: dict[str, Run] = {}
    for run_name, (events, raw) in inputs.items():
        topics = _topics(bootstrap, f"{name}-{run_name}")
        prefix = f"cw{run_name}{name[3:].replace('-', '')}"
        last = publish_events(bootstrap, topics["events"], events, extra=raw)  # type: ignore[arg-type]
        worker = Worker(bootstrap, redis_url, topics, tmp / f"{run_name}.log", env={**WORKER_ENV, "CHURNWATCH_KEY_PREFIX": prefix})
        runs[run_name] = Run(run_name, topics, prefix, worker, last)
    try:
        for run in runs.values():
            run.worker.start()
        with ThreadPoolExecutor(len(runs)) as pool:  # at once: each waits 2.5 s without a state change
            list(pool.map(lambda r: r.wait(redis_url), runs.values()))
        bad, clean = runs["bad"], runs["clean"]
        assert not bad.error and not clean.error, bad.error or clean.error
        yield Outcome(
            topics=bad.topics, seq=seq, tags=tags,
            source=read_raw(bootstrap, bad.topics["events"]), dlq=read_raw(bootstrap, bad.topics["dlq"]),
            metrics=scrape(bad.worker.metrics_port),
            state=dump_state(redis_url, bad.prefix), clean_state=dump_state(redis_url, clean.prefix),
            alerts=_alert_ids(bootstrap, bad.topics["alerts"]), clean_alerts=_alert_ids(bootstrap, clean.topics["alerts"]),
            worker=bad.worker, runs=runs, redis_url=redis_url, bootstrap=bootstrap,
        )
    finally:
        with ThreadPoolExecutor(len(runs)) as pool:  # SIGTERM all at once: each takes ~1-2 s to stop
            list(pool.map(lambda r: r.worker.stop(), runs.values()))


def _positions(out: Outcome) -> list[tuple[int, int]]:
    """(partition, offset) of every published record, by matching the topic to the publishing order."""
    partition_of = {key: p for p, _, key, _ in out.source}
    per_partition: dict[int, list[tuple[int, bytes | None]]] = {}
    for p, off, _, value in out.source:
        per_partition.setdefault(p, []).append((off, value))
    cursor = Counter[int]()
    where = []
    for key, value in out.seq:
        p = partition_of[key]
        off, stored = per_partition[p][cursor[p]]
        assert stored == value, f"record {key!r} at {p}@{off} is not what was published"
        cursor[p] += 1
        where.append((p, off))
    assert sum(cursor.values()) == len(out.source), "the events topic holds exactly what was published"
    return where


# -- the checks ---------------------------------------------------------------------------------


def test_each_bad_record_gets_exactly_one_dlq_record_with_its_reason_and_origin(outcome: Outcome) -> None:
    where = _positions(outcome)
    expected = {where[i]: bad for i, bad in enumerate(outcome.tags) if bad is not None}
    assert len(expected) == sum(1 for bad in outcome.tags if bad is not None)
    seen: Counter[tuple[int, int]] = Counter()
    for _, _, dlq_key, raw in outcome.dlq:
        assert raw is not None
        rec = orjson.loads(raw)
        origin = (int(rec["partition"]), int(rec["offset"]))
        assert rec["topic"] == outcome.topics["events"]
        assert origin in expected, f"a good record was dead-lettered: {rec}"
        bad = expected[origin]
        seen[origin] += 1
        assert rec["reason"] == bad.reason, f"{bad.label}: expected {bad.reason}, got {rec['reason']} ({rec['detail']})"
        assert rec["detail"], f"{bad.label}: a DLQ record explains itself"
        assert dlq_key == bad.key, f"{bad.label}: the DLQ record keeps the original key"
        kept = original_bytes(rec)
        if bad.reason == "oversized":
            assert bad.value is not None and rec["value_truncated"] is True and rec["value_bytes"] == len(bad.value)
            assert kept == bad.value[:MAX_EVENT_BYTES]
        else:
            assert kept == bad.value, f"{bad.label}: the DLQ record keeps the original bytes"
    missing = [expected[o].label for o in expected if seen[o] == 0]
    repeated = [expected[o].label for o, n in seen.items() if n > 1]
    assert not missing and not repeated, f"no DLQ record for {missing}; more than one for {repeated}"
    assert {r["value_encoding"] for r in (orjson.loads(v or b"") for *_, v in outcome.dlq)} == {"utf-8", "base64", None}


def test_rejected_and_consumed_counters_match_what_was_sent(outcome: Outcome) -> None:
    bads = [b for b in outcome.tags if b is not None]
    rejected = {dict(labels)["reason"]: int(v) for labels, v in outcome.metrics["churnwatch_events_rejected_total"].items()}
    assert {r: n for r, n in rejected.items() if n} == dict(Counter(b.reason for b in bads))
    (consumed,) = outcome.metrics["churnwatch_events_consumed_total"].values()
    (processed,) = outcome.metrics["churnwatch_events_processed_total"].values()
    (unknown,) = outcome.metrics["churnwatch_events_unknown_type_total"].values()
    assert int(consumed) == len(outcome.seq)
    assert int(processed) == len(outcome.seq) - len(bads), "every good event applied once"
    assert int(unknown) == 0, "the 'teleport' event is accepted under its own name: no name is unknown"


def test_good_users_end_exactly_as_in_a_run_without_bad_records(outcome: Outcome) -> None:
    assert set(outcome.clean_state) == set(USERS)
    assert set(outcome.state) == set(USERS), "no state for any id taken from a bad record"
    differing = sorted(u for u in USERS if outcome.state[u] != outcome.clean_state[u])
    assert not differing, f"state differs from the clean run for {differing}"
    assert outcome.clean_alerts, "the quitters raise alerts, or the comparison proves nothing"
    assert outcome.alerts == outcome.clean_alerts, "bad records change no alert"


def test_the_worker_is_still_alive_and_healthy(outcome: Outcome) -> None:
    w = outcome.worker
    assert w.proc is not None and w.proc.poll() is None, w.output()[-3000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{w.metrics_port}/healthz", timeout=5) as reply:
        assert reply.status == 200
    assert "Traceback" not in w.output(), w.output()[-3000:]
    assert w.stop() == 0, w.output()[-3000:]


def test_a_rejected_duplicate_does_not_move_the_partition_clock(outcome: Outcome) -> None:
    run = outcome.runs["dupclock"]
    assert not run.error, run.error
    dlq = [orjson.loads(v or b"") for *_, v in read_raw(outcome.bootstrap, run.topics["dlq"])]
    state = UserState.from_bytes(dump_state(outcome.redis_url, run.prefix)["dc-user"])
    assert [d["reason"] for d in dlq] == ["duplicate_event_id"], [(d["reason"], d["detail"]) for d in dlq]
    assert state.n_events == len(dup_moves_clock_records()) - 1


def test_amounts_that_would_overflow_revenue_are_rejected_and_fail_no_cycle(outcome: Outcome) -> None:
    run = outcome.runs["huge"]
    assert not run.error, run.error
    log = run.worker.output()
    dlq = [orjson.loads(v or b"") for *_, v in read_raw(outcome.bootstrap, run.topics["dlq"])]
    states = {u: UserState.from_bytes(b) for u, b in dump_state(outcome.redis_url, run.prefix).items()}
    assert sorted(d["reason"] for d in dlq) == ["bad_amount", "bad_amount"], dlq
    assert states["ha-clock"].n_events == 80
    assert "worker cycle failed" not in log, log[log.find("worker cycle failed"):][:1500]
    client = redis_lib.Redis.from_url(outcome.redis_url)
    try:
        stats = [float(v) for key in client.scan_iter(match=f"{run.prefix}:{{*}}:stats") for v in client.hvals(key)]
    finally:
        client.close()
    assert stats and all(math.isfinite(v) for v in stats)
    assert all(math.isfinite(st.revenue) for st in states.values()), "revenue stays a number"


def test_churnwatch_dlq_reads_each_refused_record_once_with_its_reason(outcome: Outcome, monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``churnwatch dlq`` (QA15 F9: no way to read the DLQ with the local recipe) over a copy of the run's dead
    letters with the first one written twice, as a batch read again after a rebalance writes it (QA15 F5)."""
    from kafka import KafkaProducer

    from streams.cli import main

    topic = f"{outcome.topics['dlq']}-copy"
    assert set(ensure_topics(Settings(kafka_bootstrap_servers=outcome.bootstrap, topic_events=topic + "-ev",
                                      topic_alerts=topic + "-al", topic_dlq=topic, partitions=PARTITIONS)).values()) == {"created"}
    producer = KafkaProducer(bootstrap_servers=outcome.bootstrap, acks="all")
    for _, _, key, value in [*outcome.dlq, outcome.dlq[0]]:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    monkeypatch.setenv("CHURNWATCH_TOPIC_DLQ", topic)
    letters = [orjson.loads(v or b"") for *_, v in outcome.dlq]

    def dlq(*args: str) -> tuple[list[str], str]:
        assert main(["--bootstrap-servers", outcome.bootstrap, "dlq", *args]) == 0
        out, err = capsys.readouterr()
        return out.splitlines(), err

    lines, err = dlq()
    assert len(lines) == len(letters), err
    for d in letters:  # each refused record: its reason, its place in the events topic, its detail
        place = f" {d['reason']} {outcome.topics['events']}[{d['partition']}]@{d['offset']}: {d['detail']}"
        assert sum(place in line for line in lines) == 1, place
    assert f"{len(letters):,} dead letters in {topic}" in err and "1 repeats of a record shown" in err, err
    assert len(dlq("--all")[0]) == len(letters) + 1
    json_lines, _ = dlq("--json", "--reason", "late,future")
    assert sorted(orjson.dumps(orjson.loads(line)) for line in json_lines) == sorted(
        orjson.dumps(d) for d in letters if d["reason"] in ("late", "future")) != []
    assert len(dlq("--max", "2")[0]) == 2
