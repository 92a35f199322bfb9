"""An event dated ahead of its own Kafka record is ``future``, live or replayed (QA pass 22b F4).

A device clock 25 days ahead, read in a history replay: the wall-clock bound
(``CHURNWATCH_MAX_CLOCK_SKEW_MS``) let it through, since its time had passed by the time the
worker read it, and it moved its partition's stream time 25 days ahead, then every idle
partition's: 383 at-risk and 3,075 stage_changed alerts dated in the future, the partition's next
real events ``late``. The record's own timestamp (the producer's create time or the broker's
log-append time) says when it was written: an event more than the skew after it is the fault the
wall clock catches live, and is dead-lettered as ``future`` whenever the record is read
(``models.intake.ahead_of_record``). A record written after its event's time (a backfill
published today) is never ahead of itself: well-formed data is read as before.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from models.events import Event
from models.model import load_model
from streams.cli import main
from streams.offline.replay import SCORE_COLUMNS
from streams.offline.simulate import generate
from streams.publisher import event_value
from streams.settings import Settings
from streams.timefmt import format_day_or_time
from streams.worker.clock import PartitionClock
from streams.worker.codec import Decoder
from streams.worker.phases import Decoding, decode_batch
from streams.worker.retained import Collector
from streams.worker.topics import ensure_topics
from tests.harness import Rec, Worker, publish_events, read_topic, stream_side, wait_progress

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01
WALL_MS = START_MS + 330 * DAY_MS  # the replay runs long after: the wall-clock bound passes everything
LATENESS_MS = 6 * HOUR_MS
WRITTEN_LAG_MS = 2_000  # a live producer stamps its record a moment after the event


def _live(evs: list[Event], ahead: Event, at: int) -> list[Rec]:
    """``evs`` as a live producer wrote them (each record stamped just after its event), with
    ``ahead`` written at the ``at``-th place, stamped like its neighbour before it."""
    recs = [Rec(i, ev.user_id.encode(), event_value(ev), ev.ts_ms + WRITTEN_LAG_MS) for i, ev in enumerate(evs)]
    recs.insert(at, Rec(at, ahead.user_id.encode(), event_value(ahead), recs[at - 1].timestamp))
    for i, rec in enumerate(recs):
        rec.offset = i
    return recs


def _hourly() -> tuple[list[Event], Event]:
    """48 hourly events of u and v, and one of w written at hour 24 but dated 25 days later."""
    evs = [Event("uv"[i % 2], START_MS + i * HOUR_MS, "view", f"e{i}") for i in range(48)]
    return evs, Event("w", START_MS + 23 * HOUR_MS + 25 * DAY_MS, "view", "ahead")


def test_an_event_ahead_of_its_record_is_future_whichever_path_and_slicing_reads_it() -> None:
    """Plain events (the compiled grouping) and an event for an account (read the general way),
    fed whole or one record a slice: the one record is ``future`` with both times, the clock
    never sees it, and nothing after it is late."""
    evs, ahead = _hourly()
    for event in (ahead, Event("w", ahead.ts_ms, "view", "ahead", account_id="acme")):
        recs = _live(evs, event, 24)
        whole_clock, sliced_clock = PartitionClock(LATENESS_MS), PartitionClock(LATENESS_MS)
        whole = decode_batch({3: recs}, {3: whole_clock}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
        sliced = Decoding({3: sliced_clock}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
        for rec in recs:
            sliced.feed(3, [rec])
        for out, clock in ((whole, whole_clock), (sliced.result(), sliced_clock)):
            assert out.rejected == {"future": 1} and out.jumps == []
            assert clock.stream_ms == evs[-1].ts_ms, "the partition's clock follows the well-formed events only"
            assert sorted(out.users) == ["u", "v"] and sum(len(b.events) for b in out.users.values()) == 48
            dlq = orjson.loads(out.dlq[0][1])
            assert (dlq["reason"], dlq["offset"], dlq["timestamp_ms"]) == ("future", 24, recs[24].timestamp)
            assert dlq["detail"] == ("ts 2026-01-26T23:00:00.000Z is 25.0 days ahead of its Kafka record's timestamp "
                                     "2026-01-01T23:00:02.000Z, the time it was written (epoch ms 1769468400000 > 1767308402000)")


def test_a_record_written_after_its_event_or_without_a_timestamp_is_read_as_before() -> None:
    """A backfill published today (records stamped long after their events), records without a
    timestamp (-1: written without one; 0), and an event within the skew of its record: accepted,
    and the event 25 days ahead moves the clock as it always did (counted as a jump)."""
    evs, ahead = _hourly()
    skew = Decoder().max_clock_skew_ms
    for stamp in (WALL_MS, -1, 0, ahead.ts_ms - skew):
        recs = _live(evs, ahead, 24)
        recs[24].timestamp = stamp
        clock = PartitionClock(LATENESS_MS)
        out = decode_batch({3: recs}, {3: clock}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
        assert out.rejected == {"late": 24} and len(out.jumps) == 1 and clock.stream_ms == ahead.ts_ms, stamp


def test_training_from_the_topic_skips_it_as_the_worker_does() -> None:
    evs, ahead = _hourly()
    collector = Collector(Decoder(), wall_now_ms=WALL_MS)
    for rec in _live(evs, ahead, 24):
        rec.partition = 0  # type: ignore[attr-defined]
        collector.add(rec)  # type: ignore[arg-type]
    out = collector.result()
    assert out.rejected == {"future": 1} and len(out.events) == 48 and "w" not in {ev.user_id for ev in out.events}


def test_publish_warns_of_a_files_latest_event_far_after_every_other_users(tmp_path: Path) -> None:
    """The file flow's equivalent (QA22b F4's record came in a history published that day: written
    after its date, so no worker can tell it from a real last event): ``publish`` sees the whole
    file, in any row order, and names the user and time; a file ending with several users, or with
    one user a week after the others, says nothing."""
    from streams.publisher import check_file

    rows = [f"p{i % 3},{START_MS + i * HOUR_MS},session_start" for i in range(48)]
    for body, lone in (([*rows[:20], f"p5,{START_MS + 47 * HOUR_MS + 25 * DAY_MS},session_start", *rows[20:]], True),
                       ([*rows, f"p5,{START_MS + 47 * HOUR_MS + 25 * DAY_MS},x", f"p1,{START_MS + 47 * HOUR_MS + 25 * DAY_MS},x"], False),
                       ([*rows, f"p5,{START_MS + 47 * HOUR_MS + 7 * DAY_MS + LATENESS_MS},x"], False),
                       ([*rows, f"p2,{START_MS + 47 * HOUR_MS + 25 * DAY_MS},x"], True)):
        path = tmp_path / "h.csv"
        path.write_text("user_id,ts,event_type\n" + "\n".join(body) + "\n")
        line = check_file(path, Settings(allowed_lateness_ms=LATENESS_MS)).ahead_line()
        if not lone:
            assert line is None, body[-2:]
            continue
        user = "p5" if "p5" in body[20] else "p2"
        assert line is not None and line.startswith(f"the file's latest event, user '{user}' at 2026-01-27T23:00:00.000Z, is "), line
        assert "after every other user's latest (2026-01-02T" in line and line.endswith("go to the DLQ as late")


def test_publish_refuses_such_a_file_before_sending_anything_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal comes before the broker is asked anything; ``--far-last-event`` sends all 49."""
    import streams.cli.publish as publish_cli

    path = tmp_path / "h.csv"
    path.write_text("user_id,ts,event_type\n" + "".join(f"p{i % 3},{START_MS + i * HOUR_MS},x\n" for i in range(48))
                    + f"p5,{START_MS + 47 * HOUR_MS + 25 * DAY_MS},x\n")
    sent: list[str] = []
    monkeypatch.setattr(publish_cli, "ensure_events_topic", lambda settings: sent.append("topic"))
    monkeypatch.setattr(publish_cli, "publish_bulk", lambda settings, records, **kw: sent.append(f"{len(list(records))} sent")
                        or SimpleNamespace(events=49, seconds=1.0, events_per_s=49.0))
    assert main(["publish", "--file", str(path)]) == 2 and sent == []
    err = capsys.readouterr().err
    assert "the file's latest event, user 'p5' at 2026-01-27T23:00:00.000Z, is 25.0 days after" in err
    assert err.rstrip().endswith("Nothing was sent: drop or fix that row, or pass --far-last-event if its date is right")
    assert main(["publish", "--file", str(path), "--far-last-event"]) == 0
    assert sent == ["topic", "49 sent"]


USERS, DAYS = 60, 49


@pytest.mark.integration
def test_a_replay_with_one_record_25_days_ahead_gives_the_backtest_of_the_rest(kafka_bootstrap: str, redis_url: str,
                                                                                unique_name: str, tmp_path: Path) -> None:
    """Real broker, Redis and ``churnwatch worker`` replaying a topic written live (each record
    stamped a moment after its event), one record of a user in the middle dated 25 days after it
    was written: every user's scores and alerts are the backtest's of the history without that
    record (stream/backtest identity), and the record is in the DLQ as ``future``, nothing late."""
    events, _ = generate(seed=13, n_users=USERS, start_ms=START_MS, days=DAYS)
    as_of_ms = START_MS + DAYS * DAY_MS
    mid = len(events) // 2
    written = events[mid - 1].ts_ms + WRITTEN_LAG_MS
    ahead = Event(events[mid].user_id, written + 25 * DAY_MS, "view", "device-clock-ahead")
    stamps = {id(ev): ev.ts_ms + WRITTEN_LAG_MS for ev in events} | {id(ahead): written}

    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}", "group": f"g-{unique_name}"}
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topics["events"], topic_alerts=topics["alerts"],
                           topic_dlq=topics["dlq"], partitions=8))
    worker = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "worker.log", env={"CHURNWATCH_BATCH_MAX_RECORDS": "500"}).start()
    try:
        last = publish_events(kafka_bootstrap, topics["events"], events[:mid] + [ahead] + events[mid:], stamp=lambda ev: stamps[id(ev)])
        wait_progress(redis_url, topics["events"], last, timeout_s=120, workers=[worker])
    finally:
        code = worker.stop()
    assert code == 0, worker.output()[-3000:]
    dlq = [orjson.loads(rec.value) for rec in read_topic(kafka_bootstrap, topics["dlq"], 8)]
    assert [(d["reason"], orjson.loads(d["value"])["event_id"], d["timestamp_ms"]) for d in dlq] == \
        [("future", "device-clock-ahead", written)], "the one record, with its reason; nothing late"
    assert "25.0 days ahead of its Kafka record's timestamp" in dlq[0]["detail"]
    assert "moved the partition's stream time" not in worker.output()

    alerts_topic = [orjson.loads(rec.value) for rec in read_topic(kafka_bootstrap, topics["alerts"], 8)]
    stream_rows, stream_alerts = stream_side(redis_url, alerts_topic, as_of_ms, load_model())

    events_csv, scores_csv, alerts_out = tmp_path / "events.csv", tmp_path / "scores.csv", tmp_path / "alerts.jsonl"
    with open(events_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type", "amount", "event_id"))
        w.writerows((ev.user_id, ev.ts_ms, ev.type, ev.amount if ev.type == "purchase" else "", ev.event_id) for ev in events)
    as_of = f"{format_day_or_time(START_MS + 7 * DAY_MS)}/{format_day_or_time(as_of_ms)}/7d"
    assert main(["backtest", "--events", str(events_csv), "--as-of", as_of, "--out", str(scores_csv),
                 "--alerts-out", str(alerts_out), "--no-progress"]) == 0
    with open(scores_csv, newline="", encoding="utf-8") as fh:
        backtest_rows = {r["user_id"]: [r[c] for c in SCORE_COLUMNS] for r in csv.DictReader(fh) if r["as_of"] == format_day_or_time(as_of_ms)}
    backtest_alerts = {a["alert_id"]: a for a in map(json.loads, alerts_out.read_text().splitlines())}
    assert any(a["kind"] == "at_risk" for a in backtest_alerts.values()), "the history must exercise alerts"
    assert stream_rows == backtest_rows, "every user's stage and scores, the user of the record ahead too"
    assert stream_alerts == backtest_alerts
    assert max(a["event_time_ms"] for a in stream_alerts.values()) < as_of_ms, "no alert dated after the history"
