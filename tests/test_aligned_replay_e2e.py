"""A history replayed as a backlog gives the account alerts it gives live (QA pass 15 F2).

Two accounts whose users are spread over the 4 partitions, 60 days of daily use (globex's users on
three partitions stop on day 25). Run A keeps up with the stream (the history published 6 days at a
time, the worker catching up between: live). Run B gets the whole history published before its
worker starts: a backlog, which aiokafka hands out one partition's fetch reply after the other.
With aligned reading (streams/worker/align.py) the partitions are read side by side in event time
and B's account alerts are A's, none judged late, no copy behind its account's time or released by
the 500-copy bound. Checked the other way on 4 December 2026: with ``CHURNWATCH_ALIGN_AHEAD_MS=0``
run B had 916 copies behind and 588 released by the bound (this test fails); before marks moved
while cycles overlapped (``watermark.in_flight_bounds``), 1,188-1,462 by the bound with alignment on.

No timing: both runs wait for Redis progress, an account barrier and the accounts' alert side to have
judged up to the last use, whatever the machine's speed.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from models.events import EVENT_ORDER, Event
from models.subscription import Subscription
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from streams.worker.keys import bucket_of
from tests.harness import (Worker, account_barrier, metric, partition_of, publish_events, read_topic, redis_client,
                           wait_for, wait_progress)

pytestmark = pytest.mark.integration

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000
DAYS = 60
PARTITIONS = 4
EXTRA_ENV: dict[str, str] = {}


def _users(account: str, per_partition: int) -> list[str]:
    """``per_partition`` user ids of ``account`` on each partition."""
    out: list[str] = []
    for q in range(PARTITIONS):
        i = n = 0
        while n < per_partition:
            uid = f"{account}-u{i}"
            if partition_of(uid, PARTITIONS) == q:
                out.append(uid)
                n += 1
            i += 1
    return out


def history() -> list[Event]:
    """acme: 8 users (2 a partition) using it 4 times a day for 60 days; globex: 4 users (1 a
    partition), those on partitions 1 to 3 stop on day 25 (the account's real signal). Each pays
    a monthly plan, stated by its first user."""
    events: list[Event] = []
    for account, per in (("acme", 2), ("globex", 1)):
        users = _users(account, per)
        events.append(Event(users[0], START_MS + 3_600_000, "subscription", f"s-{account}", 0.0, account,
                            Subscription("active", "Pro", 9_900, 0, START_MS + 31 * DAY_MS)))  # type: ignore[arg-type]
        for k, uid in enumerate(users):
            last = 25 if account == "globex" and partition_of(uid, PARTITIONS) >= 1 else DAYS
            for d in range(last):
                for h in range(4):
                    ts = START_MS + d * DAY_MS + (9 + 2 * h) * 3_600_000 + k * 60_000
                    events.append(Event(uid, ts, "view", f"v-{uid}-{d}-{h}", 0.0, account))
    return sorted(events, key=EVENT_ORDER)


LAST_USE_MS = START_MS + (DAYS - 1) * DAY_MS + 15 * 3_600_000  # the last day's last use (15:00 + k min)


def _judged_up_to(redis_url: str, prefix: str) -> int:
    """The least time up to which the accounts' alert side has applied copies and reviewed its
    deadlines (``seen_ms`` in their extras): the barrier only tells the revenue state's."""
    client = redis_client(redis_url)
    try:
        seen = []
        for account in ("acme", "globex"):
            raw = client.hget(f"{prefix}:{{{bucket_of(account, 64)}}}:ax", account)
            seen.append(int(orjson.loads(raw).get("seen_ms", 0)) if raw else 0)
        return min(seen)
    finally:
        client.close()


def _names(unique_name: str, run: str) -> dict[str, str]:
    n = {k: f"{k[:3]}-{run}-{unique_name}" for k in ("events", "alerts", "dlq", "group")}
    return n


def _account_alerts(bootstrap: str, topic: str) -> list[dict[str, object]]:
    return [a for a in (orjson.loads(r.value) for r in read_topic(bootstrap, topic, PARTITIONS)) if "account_id" in a]


def _run(kafka_bootstrap: str, redis_url: str, names: dict[str, str], prefix: str, log: Path,
         backlog: bool, workers: int = 1) -> tuple[list[dict[str, object]], dict[str, float]]:
    """The account alerts of a run and its workers' counts (summed). ``backlog``: the whole
    history published before one worker starts, or (``workers`` 2) after two workers share the
    partitions (the README's recipe: ``publish --file`` with the workers running), so each holds
    the other's partitions through Redis (streams/worker/aligned.py)."""
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=names["events"],
                           topic_alerts=names["alerts"], topic_dlq=names["dlq"], partitions=PARTITIONS))
    events, topic = history(), names["events"]
    env = {"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_BATCH_MAX_RECORDS": "200",
           "CHURNWATCH_PARTITIONS": str(PARTITIONS), "CHURNWATCH_KEY_PREFIX": prefix, **EXTRA_ENV}
    ws = [Worker(kafka_bootstrap, redis_url, names, log.with_suffix(f".{i}.log"), env=env, shared_group=workers > 1)
          for i in range(workers)]
    try:
        if backlog and workers > 1:  # the partitions shared, then the whole history at once
            for w in ws:
                w.start()
            wait_for("the workers sharing the partitions", lambda: [metric(w, "churnwatch_partitions_assigned") for w in ws]
                     == [PARTITIONS / workers] * workers, 60, ws)
            wait_progress(redis_url, topic, publish_events(kafka_bootstrap, topic, events), timeout_s=240, workers=ws,
                          prefix=prefix)
        elif backlog:  # everything in the topic before the worker starts
            last = publish_events(kafka_bootstrap, topic, events)
            ws[0].start()
            wait_progress(redis_url, topic, last, timeout_s=240, workers=ws, prefix=prefix)
        else:
            ws[0].start()
            for lo in range(0, DAYS, 6):
                phase = [e for e in events if START_MS + lo * DAY_MS <= e.ts_ms < START_MS + (lo + 6) * DAY_MS]
                wait_progress(redis_url, topic, publish_events(kafka_bootstrap, topic, phase), timeout_s=120,
                              workers=ws, prefix=prefix)
        account_barrier(kafka_bootstrap, redis_url, topic, PARTITIONS, 1, START_MS + DAYS * DAY_MS, workers=ws,
                        prefix=prefix)
        wait_for("both accounts judged up to their last use", lambda: _judged_up_to(redis_url, prefix) >= LAST_USE_MS,
                 timeout_s=120, workers=ws)
        counts = {name + labels: sum(metric(w, name, labels) for w in ws) for name, labels in (
            ("churnwatch_account_copies_behind_total", ""),
            ("churnwatch_account_copies_released_total", 'how="bound"'),
            ("churnwatch_account_copies_released_total", 'how="watermark"'),
            ("churnwatch_account_alerts_judged_late_total", ""),
            ("churnwatch_align_cuts_total", ""),
            ("churnwatch_rebalances_total", ""))}
    finally:
        for w in ws:
            assert w.stop() == 0, w.output()[-3000:]
    return _account_alerts(kafka_bootstrap, names["alerts"]), counts


def _key(a: dict[str, object]) -> tuple[object, ...]:
    return a["account_id"], a["kind"], a["event_time_ms"], a["alert_id"], tuple(a.get("reasons") or ())  # type: ignore[arg-type]


def test_a_backlog_replay_gives_the_live_account_alerts(kafka_bootstrap: str, redis_url: str, unique_name: str,
                                                        tmp_path: Path) -> None:
    live, live_counts = _run(kafka_bootstrap, redis_url, _names(unique_name, "a"), "cwa", tmp_path / "a.log", backlog=False)
    replay, counts = _run(kafka_bootstrap, redis_url, _names(unique_name, "b"), "cwb", tmp_path / "b.log", backlog=True)
    assert any(a["account_id"] == "globex" and a["kind"] == "account_at_risk" for a in live), (live, replay)
    assert not [a for a in live if a["account_id"] == "acme"], "acme's users never stop: no account alert live"
    assert sorted(map(_key, replay)) == sorted(map(_key, live)), (replay, live, counts, live_counts)
    assert not [a for a in replay if a.get("judged_late")], replay
    assert counts["churnwatch_account_copies_behind_total"] == 0, (counts, live_counts)
    assert counts['churnwatch_account_copies_released_totalhow="bound"'] == 0, counts
    assert counts['churnwatch_account_copies_released_totalhow="watermark"'] > 0, counts
    assert counts["churnwatch_account_alerts_judged_late_total"] == 0, counts
    assert counts["churnwatch_align_cuts_total"] > 0, "the backlog was read aligned (partitions cut and paused)"


def test_two_workers_replaying_a_backlog_give_the_live_account_alerts(kafka_bootstrap: str, redis_url: str,
                                                                      unique_name: str, tmp_path: Path) -> None:
    """The README's two-worker recipe: the history published at once while two workers share the
    partitions. Each reads its partitions held by the other's published heads (QA pass 21 F7: the
    heads exchanged once a second made two workers 6-20 times slower than one; now read while held
    back), and the account alerts are the live run's, none judged late, none released by the
    bound. Until 5 December 2026 9 of 20 runs had 2 to 456 of ~2,200 copies
    behind: the workers, started before the publish, each read alone until their second full read
    of the other's progress, a second, and drifted past the watermark's 7-day grace
    (docs/REVENUE.md, "Two workers from their first cut"; tests/test_align_cut.py). Since: 0 in 31
    runs, the partitions never more than a day apart (a night) in the 10 traced ones. The count behind
    is not asserted here: a worker descheduled long enough on a loaded box can still read past the
    grace before the other's first head (docs/REVENUE.md, "Two workers from their first cut"), a
    matter of timing; the rule itself is tested deterministically in tests/test_align_cut.py."""
    live, live_counts = _run(kafka_bootstrap, redis_url, _names(unique_name, "a"), "cwa", tmp_path / "a.log", backlog=False)
    replay, counts = _run(kafka_bootstrap, redis_url, _names(unique_name, "c"), "cwc", tmp_path / "c.log", backlog=True,
                          workers=2)
    assert any(a["account_id"] == "globex" and a["kind"] == "account_at_risk" for a in live), (live, replay)
    assert sorted(map(_key, replay)) == sorted(map(_key, live)), (replay, live, counts, live_counts)
    assert not [a for a in replay if a.get("judged_late")], replay
    assert counts['churnwatch_account_copies_released_totalhow="bound"'] == 0, counts
    assert counts["churnwatch_account_alerts_judged_late_total"] == 0, counts
    assert counts["churnwatch_align_cuts_total"] > 0, "the backlog was read aligned (partitions cut and paused)"
