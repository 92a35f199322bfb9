"""The publisher API, the bulk path and ``churnwatch publish`` against a real broker (Tansu)."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import orjson
import pytest

from models.events import Event
from streams.cli import main
from streams.worker.topics import ensure_topics
from streams.worker.codec import Decoder
from streams.publisher import EventPublisher, event_value, publish_bulk, read_records
from streams.settings import Settings
from streams.cli.argtypes import parse_start_ms
from streams.offline.history import iter_events_csv, read_events_csv
from streams.offline.simulate import generate, write_events_csv
from tests.harness import read_topic

pytestmark = pytest.mark.integration

NOW_MS = 1_800_000_000_000  # wall time for the decoder: later than every event used here


def _topic(bootstrap: str, name: str, partitions: int = 4) -> str:
    ensure_topics(Settings(kafka_bootstrap_servers=bootstrap, topic_events=name, topic_alerts=f"{name}-a",
                           topic_dlq=f"{name}-d", partitions=partitions))
    return name


def _read_all(bootstrap: str, topic: str, partitions: int = 4) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every record, in partition-offset order."""
    return [(rec.partition, rec.key, rec.value) for rec in read_topic(bootstrap, topic, partitions)]


def test_publish_api_writes_what_the_worker_decodes(kafka_bootstrap: str, unique_name: str) -> None:
    topic = _topic(kafka_bootstrap, unique_name)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topic)
    with EventPublisher(settings) as pub:
        meta = pub.publish("u1", "page_view", ts="2026-02-03T12:00:00Z").get(timeout=30)
        pub.publish("u1", "purchase", ts=1_770_120_000_000, event_id="order-7", amount=19.9, properties={"sku": "A1"})
        pub.publish("u2", "click", ts=1_770_120_000_001)
        pub.flush()
    assert meta.topic == topic
    records = _read_all(kafka_bootstrap, topic)
    assert len(records) == 3
    decoder = Decoder()
    events = {}
    for partition, key, value in records:
        ev = decoder.decode(value, NOW_MS)
        assert isinstance(ev, Event)
        assert key == ev.user_id.encode()
        events[ev.event_id] = (partition, ev, orjson.loads(value))
    by_user = {}
    for partition, ev, _ in events.values():
        by_user.setdefault(ev.user_id, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_user.values())  # one user, one partition
    order = events["order-7"]
    assert (order[1].type, order[1].amount, order[1].ts_ms) == ("purchase", 19.9, 1_770_120_000_000)
    assert order[2]["properties"] == {"sku": "A1"}
    generated = [eid for eid in events if eid != "order-7"]
    assert all(uuid.UUID(eid).version == 4 for eid in generated)
    view = next(e for _, e, _ in events.values() if e.type == "page_view")  # the product's name is kept
    assert view.ts_ms == parse_start_ms("2026-02-03T12:00:00Z")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"user_id": "", "type": "view", "ts": 1_770_000_000_000}, "empty_user_id"),
        ({"user_id": "u1", "type": "purchase", "ts": 1_770_000_000_000, "amount": float("nan")}, "amount"),
        ({"user_id": "u1", "type": "view", "ts": 5}, "too_old"),
        ({"user_id": "u1", "type": "view", "ts": "yesterday"}, "yesterday"),
    ],
)
def test_publish_refuses_what_the_worker_would_reject(kafka_bootstrap: str, kwargs: dict, message: str) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events="never-created")
    with EventPublisher(settings) as pub, pytest.raises(ValueError, match=message):
        pub.publish(**kwargs)


def test_bulk_path_keeps_order_per_user_and_partitions_like_the_api(kafka_bootstrap: str, unique_name: str) -> None:
    events, _ = generate(seed=5, n_users=40, start_ms=parse_start_ms("2026-01-01"), days=20)
    bulk = _topic(kafka_bootstrap, unique_name + "-bulk")
    api = _topic(kafka_bootstrap, unique_name + "-api")
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    stats = publish_bulk(settings.with_(topic_events=bulk), events)
    assert stats.events == len(events)
    with EventPublisher(settings.with_(topic_events=api)) as pub:
        assert pub.publish_many(events) == len(events)
    bulk_records = _read_all(kafka_bootstrap, bulk)
    api_records = _read_all(kafka_bootstrap, api)
    assert sorted(v for _, _, v in bulk_records) == sorted(event_value(e) for e in events)
    partition_of = {k: p for p, k, _ in api_records}
    assert all(partition_of[k] == p for p, k, _ in bulk_records)  # same murmur2 partitioner
    # inside a partition, records are in the order published (event time)
    decoder = Decoder()
    for part in {p for p, _, _ in bulk_records}:
        times = [decoder.decode(v, NOW_MS).ts_ms for p, _, v in bulk_records if p == part]  # type: ignore[union-attr]
        assert times == sorted(times)


def test_publish_command_jsonl_and_csv(kafka_bootstrap: str, unique_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    topic = _topic(kafka_bootstrap, unique_name)
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text(
        '{"user_id": "a", "type": "page_view", "ts": "2026-01-01T10:00:00Z"}\n'
        "\n"
        '{"user_id": "b", "event_type": "order", "ts": 1767261600000, "amount": 12.5, "event_id": "x1"}\n'
    )
    events, _ = generate(seed=1, n_users=5, start_ms=parse_start_ms("2026-01-01"), days=10)
    csv_path = tmp_path / "events.csv.gz"
    write_events_csv(csv_path, events)
    env = ["--bootstrap-servers", kafka_bootstrap]
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    assert main([*env, "publish", "--file", str(jsonl)]) == 0
    assert main([*env, "publish", "--file", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "published 2 events" in out and f"published {len(events)} events" in out
    records = _read_all(kafka_bootstrap, topic)
    decoded = [Decoder().decode(v, NOW_MS) for _, _, v in records]
    ids = {e.event_id for e in decoded}  # type: ignore[union-attr]
    derived = Decoder().decode(b'{"user_id": "a", "type": "page_view", "ts": "2026-01-01T10:00:00Z"}', NOW_MS).event_id  # type: ignore[union-attr]
    assert {derived, "x1"} <= ids
    assert len(decoded) == 2 + len(events)


def test_files_of_one_name_get_distinct_ids_and_a_repeated_line_the_same(tmp_path: Path) -> None:
    """QA4 #2: an event without ``event_id`` is sent with the id the worker derives from its content
    (README's contract), not ``<file name>:<line>``: two daily ``ev.jsonl``/``ev.csv`` in different folders
    no longer share ids (the stream dropped the second file's events as duplicates), a line repeated in
    a file has its own id again (the worker drops it within a batch), and a CSV row is sent with the id
    the offline commands read it with (``read_events_csv``)."""
    settings = Settings()
    decoder = Decoder()
    for d, lines in (("d1", ('{"user_id":"fdup","type":"view","ts":"2026-04-30T23:10:00Z"}',)),
                     ("d2", ('{"user_id":"fdup","type":"message","ts":"2026-04-30T23:20:00Z"}',
                             '{"user_id":"fdup","type":"purchase","ts":"2026-04-30T23:21:00Z","amount":25,"event_id":""}'))):
        (tmp_path / d).mkdir()
        (tmp_path / d / "ev.jsonl").write_text("\n".join(lines) + "\n")
        (tmp_path / d / "ev.csv").write_text("user_id,ts,event_type,amount\n" + "".join(
            f"fdupc,{o['ts']},{o['type']},{o.get('amount', '')}\n" for o in map(orjson.loads, lines)))
    for name in ("ev.jsonl", "ev.csv"):
        sent = [orjson.loads(v) for d in ("d1", "d2") for _, v in read_records(tmp_path / d / name, settings)]
        ids = [obj["event_id"] for obj in sent]
        assert len(set(ids)) == 3 and all(i.startswith("d-") for i in ids), ids
        for obj in sent:  # the id the worker derives for the same record sent without one
            bare = {k: v for k, v in obj.items() if k != "event_id"}
            assert decoder.decode(orjson.dumps(bare), NOW_MS).event_id == obj["event_id"]  # type: ignore[union-attr]
        if name == "ev.csv":
            offline = [e.event_id for d in ("d1", "d2") for e in read_events_csv(tmp_path / d / name)]
            assert sorted(offline) == sorted(ids)
    rep = tmp_path / "rep.jsonl"
    rep.write_text('{"user_id":"frep","type":"purchase","ts":"2026-04-30T23:15:00Z","amount":40}\n' * 2)
    first, second = (orjson.loads(v)["event_id"] for _, v in read_records(rep, settings))
    assert first == second
    assert [orjson.loads(v)["event_id"] for _, v in read_records(rep, settings)] == [first, second]  # again: idempotent


def test_a_jsonl_file_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    """QA4 #6: a BOM (Notepad, Excel) before the first line made it "not JSON"."""
    line = b'{"user_id":"a","type":"view","ts":"2026-01-01T10:00:00Z"}\n'
    plain, bom = tmp_path / "plain.jsonl", tmp_path / "bom.jsonl"
    plain.write_bytes(line * 2)
    bom.write_bytes(b"\xef\xbb\xbf" + line * 2)
    assert list(read_records(bom, Settings())) == list(read_records(plain, Settings()))


def test_read_records_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write('{"user_id": "a", "type": "view", "ts": 1767261600000}\n')
        fh.write('{"user_id": "a", "type": "view", "ts": 1767261600000, "amount": "lots"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl.gz line 2: bad amount"):
        list(read_records(bad, Settings()))


@pytest.mark.parametrize("name", ["", "   "])
def test_read_records_refuses_an_empty_type_in_jsonl_as_in_csv(tmp_path: Path, name: str) -> None:
    """An empty or blank ``type`` is refused in both formats (JSON lines used to pass it on)."""
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text('{"user_id": "a", "type": "view", "ts": 1767261600000}\n'
                     + orjson.dumps({"user_id": "b14", "type": name, "ts": "2026-04-30T20:00:00Z"}).decode() + "\n")
    with pytest.raises(ValueError, match=r"e.jsonl line 2: empty type: type is empty or blank"):
        list(read_records(jsonl, Settings()))
    csv_path = tmp_path / "e.csv"
    csv_path.write_text(f"user_id,ts,event_type\na,1767261600000,view\nb14,1767261600000,{name}\n")
    with pytest.raises(ValueError, match=r"e.csv line 3: empty event_type"):
        list(read_records(csv_path, Settings()))


def test_a_bulk_publish_the_producer_fails_says_what_was_acknowledged_in_one_line(kafka_bootstrap: str, unique_name: str,
                                                                                 tmp_path: Path) -> None:
    """QA5 M2 (c): a publish the producer failed ended in aiokafka's traceback, although part of
    the events were written, so the user could not tell what to send again. Now it is one
    ``PublishFailed`` line (the CLI prints it, exit 2): what was acknowledged, and the events without
    an acknowledgement (the refused one and those not sent yet) in a file ``churnwatch publish``
    reads. Here the producer refuses a 2 MiB record (over its 1 MiB request size) after 5 small ones.
    A refusal for good is told apart (review 2026-12-03): the record went into the file to
    republish with the rest, where it failed again; it is in its own file now, and the line says so."""
    from streams.errors import UserError

    topic = _topic(kafka_bootstrap, unique_name)
    small = [(f"u{i}", event_value(Event(f"u{i}", NOW_MS - 10_000_000 + i, "view", f"e{i}"))) for i in range(8)]
    huge = ("big", orjson.dumps({"user_id": "big", "type": "view", "ts": NOW_MS - 10_000_000, "pad": "x" * (2 << 20)}))
    unacked = tmp_path / "events.unacked.jsonl"
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topic)
    with pytest.raises(Exception) as failed:
        publish_bulk(settings, [*small[:5], huge, *small[5:]], unacked_to=unacked)
    assert isinstance(failed.value, UserError), f"not one line: {failed.value!r}"  # streams.publisher.PublishFailed
    message = str(failed.value)
    refused = tmp_path / "events.refused.jsonl"
    assert "\n" not in message and "5 events were acknowledged" in message and str(unacked) in message, message
    assert "1 refused for good (MessageSizeTooLargeError" in message and str(refused) in message, message
    assert "the 3 others (the 0 sent without an acknowledgement and the 3 not sent)" in message, message
    assert refused.read_bytes().splitlines() == [huge[1]]
    assert unacked.read_bytes().splitlines() == [v for _, v in small[5:]], "only what may pass on a later attempt"
    assert sorted(v for _, _, v in _read_all(kafka_bootstrap, topic)) == sorted(v for _, v in small[:5])


def test_a_batch_refused_by_the_broker_is_retried_and_the_retry_file_keeps_the_input_order(tmp_path: Path) -> None:
    """Review 8: a produce request's error (the broker's ``RecordListTooLargeError``, a topic's
    smaller ``max.message.bytes``) fails every record of its batch, the good ones with the bad, so
    only a record ``send`` itself refused is "refused for good"; the others go to the file to
    publish again, in the input's order (the record whose send raised came after those in flight)."""
    from aiokafka.errors import KafkaTimeoutError, RecordListTooLargeError

    from streams.publisher import _failed, refused_file

    a, b, c, d = ((f"u{i}", f'{{"n": {i}}}'.encode()) for i in range(4))
    unacked = tmp_path / "left.unacked.jsonl"
    err = _failed("ev", 7, [(a, RecordListTooLargeError()), (b, RecordListTooLargeError())], iter([d]), unacked,
                  [(c, KafkaTimeoutError())])
    assert "refused for good" not in str(err) and not refused_file(unacked).exists()
    assert unacked.read_bytes().splitlines() == [a[1], b[1], c[1], d[1]]


def test_a_record_whose_send_raised_is_counted_as_not_sent(tmp_path: Path) -> None:
    """Leftover of review 8: the record whose ``send`` raised an error that may pass later (a
    timeout waiting for metadata or buffer room) goes to the file to republish, but it never left:
    the line counted it among those "sent without an acknowledgement", and gave that error as
    their cause. Here 2 records failed in flight (a produce request's error), the third's send
    raised a timeout, the fourth was never tried: 2 sent without an acknowledgement, 2 not sent."""
    from aiokafka.errors import KafkaTimeoutError, NotLeaderForPartitionError

    from streams.publisher import _failed

    a, b, c, d = ((f"u{i}", f'{{"n": {i}}}'.encode()) for i in range(4))
    unacked = tmp_path / "left.unacked.jsonl"
    message = str(_failed("ev", 7, [(a, NotLeaderForPartitionError()), (b, NotLeaderForPartitionError())], iter([d]),
                          unacked, [(c, KafkaTimeoutError("no room in 60 s"))]))
    assert "\n" not in message and "7 events were acknowledged" in message, message
    assert ("the 4 others (the 2 sent without an acknowledgement (NotLeaderForPartitionError" in message
            and "and the 2 not sent (sending the first raised KafkaTimeoutError: " in message), message
    assert unacked.read_bytes().splitlines() == [a[1], b[1], c[1], d[1]]
    alone = str(_failed("ev", 0, [], iter([d]), None, [(c, KafkaTimeoutError("no room in 60 s"))]))
    assert "0 sent were not acknowledged" in alone and "the rest was not sent (sending the first raised" in alone, alone


def test_a_csv_purchase_of_any_name_keeps_its_amount_and_the_id_backtest_reads(tmp_path: Path) -> None:
    """QA7 H2: ``publish`` of a CSV sent ``amount`` only on rows whose type is spelled ``purchase``,
    so ``Order``, ``payment``, ``checkout`` and a declared role name (``checkout_completed``) reached
    the topic without their amount (live revenue 0, ``train --from-topic`` monetary edges 0) while
    a JSON line kept it. Now every nonzero amount is sent; the id stays the one ``backtest`` and
    ``train`` read for the row, and the one the worker derives for the record sent without an id."""
    path = tmp_path / "ord.csv"
    path.write_text("user_id,ts,event_type,amount\nordx,2026-10-30T03:30:00Z,Order,12.5\n"
                    "ordx,2026-10-30T03:31:00Z,checkout_completed,7\nordx,2026-10-30T03:32:00Z,Page_View,\n"
                    "ordx,2026-10-30T03:33:00Z,purchase,0\n")
    sent = [orjson.loads(v) for _, v in read_records(path, Settings())]
    assert [(o["type"], o.get("amount")) for o in sent] == [("order", 12.5), ("checkout_completed", 7.0),
                                                            ("page_view", None), ("purchase", 0.0)]
    assert {o["event_id"]: o.get("amount", 0.0) for o in sent} == {e.event_id: e.amount for e in read_events_csv(path)}
    decoder = Decoder()
    for obj in sent:
        bare = orjson.dumps({k: v for k, v in obj.items() if k != "event_id"})
        assert decoder.decode(bare, NOW_MS).event_id == obj["event_id"]  # type: ignore[union-attr]


def _by_user_csv(path: Path) -> list[Event]:
    """A history exported ``ORDER BY user_id, ts``: each user's weeks, one user after the other."""
    events, _ = generate(seed=7, n_users=12, start_ms=parse_start_ms("2026-01-01"), days=21)
    write_events_csv(path, sorted(events, key=lambda e: (e.user_id, e.ts_ms)))
    return events


def test_publish_sends_a_file_sorted_by_user_in_event_time_order(kafka_bootstrap: str, unique_name: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """QA7 H1: ``publish --file`` sent a file in file order; an export sorted by user put every user's
    history after the later users' events of the same partition, and the workers dead-lettered 97.5% of
    it as ``late`` while ``publish`` said "published N events". Now it sends the file in event-time order
    (a stable sort: the same ids as ``backtest`` reads, records of one millisecond in file order) and
    says in one line that it reordered and how many rows were beyond the allowed lateness."""
    path = tmp_path / "byuser.csv"
    _by_user_csv(path)
    offline = read_events_csv(path)
    topic = _topic(kafka_bootstrap, unique_name, partitions=1)
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    assert main(["--bootstrap-servers", kafka_bootstrap, "publish", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    sent = [Decoder().decode(v, NOW_MS) for _, _, v in _read_all(kafka_bootstrap, topic, partitions=1)]
    times = [e.ts_ms for e in sent]  # type: ignore[union-attr]
    assert times == sorted(times), "one partition: the records in event-time order"
    assert sorted((e.ts_ms, e.event_id, e.amount) for e in sent) == [(e.ts_ms, e.event_id, e.amount) for e in offline]  # type: ignore[union-attr]
    top, behind, late = 0, 0, 0  # in file order: rows behind the latest time before them, and by over 6 h
    for ev in iter_events_csv(path):
        behind += ev.ts_ms < top
        late += ev.ts_ms < top - 6 * 3_600_000
        top = max(top, ev.ts_ms)
    assert late > 0.5 * len(offline), (behind, late)
    line = next((x for x in out.splitlines() if x.startswith("reordered")), out)
    assert f"{behind:,} of {len(offline):,} events came after a later one" in line, line
    assert f"{late:,} of them by more than the allowed lateness (6 h)" in line, line


def test_the_file_check_counts_rows_behind_and_beyond_the_lateness(tmp_path: Path) -> None:
    """``check_file``: a row behind the latest time before it is out of order; more than the allowed
    lateness behind, the workers would take it for ``late``; the records come sorted by event time, stable."""
    from streams.publisher import check_file, records_in_time_order

    path = tmp_path / "e.csv"
    path.write_text("user_id,ts,event_type\na,1767225600000,view\nb,1767225660000,view\nc,1767225630000,view\n"
                    "d,1767225660000,view\ne,1767225000000,view\nf,1767225599999,view\ng,1767225600000,view\n")
    order = check_file(path, Settings(allowed_lateness_ms=60_000))
    assert (order.events, order.behind, order.late) == (7, 4, 2), "c 30 s behind b, g exactly 60 s: on time"
    got = [orjson.loads(v)["user_id"] for _, v in records_in_time_order(path, Settings(), order)]
    assert got == ["e", "f", "a", "g", "c", "b", "d"], "by event time, rows of one time in file order"
    jsonl = tmp_path / "e.jsonl"  # the same rows as JSON lines: the same reading and order
    jsonl.write_text("".join(orjson.dumps({"user_id": u, "ts": int(t), "type": k}).decode() + "\n"
                             for u, t, k in (r.split(",") for r in path.read_text().splitlines()[1:])))
    assert check_file(jsonl, Settings(allowed_lateness_ms=60_000)) == order
    assert [orjson.loads(v)["user_id"] for _, v in records_in_time_order(jsonl, Settings(), order)] == got
    ordered = tmp_path / "o.csv"
    ordered.write_text("user_id,ts,event_type\na,1767225600000,view\nb,1767225600000,view\n")
    assert check_file(ordered, Settings()).behind == 0


_AMOUNT_ROWS = [  # review 11 R11-1: amounts the worker refuses (bad_amount) on rows no type rule exempts
    ("user_id,ts,event_type,amount", "r1,2026-10-30T03:30:00Z,Order,-5", "below 0"),
    ("user_id,ts,event_type,amount", "r1,2026-10-30T03:31:00Z,refund,-49", "below 0"),
    ("user_id,ts,event_type,amount,account_id,status,plan,mrr", "s1,2026-10-30T03:30:00Z,subscription,-49,acme,cancelled,Pro,0",
     "below 0"),
    ("user_id,ts,event_type,amount", "r1,2026-10-30T03:32:00Z,view,2e12", r"above 1e\+12"),
]


@pytest.mark.parametrize(("header", "row", "why"), _AMOUNT_ROWS)
def test_an_amount_the_worker_refuses_is_refused_with_its_line_by_publish_backtest_and_train(
        tmp_path: Path, header: str, row: str, why: str) -> None:
    """Review 11 R11-1: since every nonzero amount is sent (QA7 H2), a CSV refund (``Order,-5``,
    ``refund,-49``), a cancelled ``subscription`` statement carrying its refund or a ``2e12`` passed
    ``publish``'s check and the worker dead-lettered the whole event as ``bad_amount`` (a refund
    signal, a cancellation lost live), while ``backtest`` and ``train`` kept it and the same row as a
    JSON line was refused at the check. One rule now (the decoder's: 0 to 1e12): every reader refuses
    the row, naming its line, before anything is sent."""
    from streams.publisher import check_file

    path = tmp_path / "e.csv"
    path.write_text(f"{header}\nr0,2026-10-30T03:00:00Z,view,\n{row}\n")
    with pytest.raises(ValueError, match=rf"e.csv line 3: amount .* {why}"):
        check_file(path, Settings())
    with pytest.raises(ValueError, match=rf"e.csv line 3: amount .* {why}"):
        read_events_csv(path)  # backtest and train read the file so
    obj = dict(zip(header.split(","), row.split(",")))  # the same row as a JSON line: refused at its line too
    obj = {"type" if k == "event_type" else k: (float(v) if k in ("amount", "mrr") else v) for k, v in obj.items()}
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text('{"user_id":"r0","type":"view","ts":"2026-10-30T03:00:00Z"}\n' + orjson.dumps(obj).decode() + "\n")
    with pytest.raises(ValueError, match=r"e.jsonl line 2: bad amount"):
        check_file(jsonl, Settings())


def test_a_csv_row_is_checked_as_the_record_the_worker_reads(tmp_path: Path) -> None:
    """Review 11 R11-2: ``publish`` checked a CSV row with the history reader only, never the record
    it sends, so a row the worker refuses (a user id over 256 characters: ``bad_type``; a time in the
    future: ``future``; a record over ``max_event_bytes``: ``oversized``) passed the check and went to
    the DLQ. Now each record is decoded as the worker will read it, and refused with its line."""
    from streams.publisher import check_file

    rows = {"bad type: user_id has 300 characters": f"{'u' * 300},2026-10-30T03:30:00Z,view,",
            "future: ts": "f1,2099-01-01T00:00:00Z,view,",
            "oversized": f"o1,2026-10-30T03:30:00Z,{'v' * 70_000},"}
    for why, row in rows.items():
        path = tmp_path / "e.csv"
        path.write_text(f"user_id,ts,event_type,amount\nr0,2026-10-30T03:00:00Z,view,\n{row}\n")
        with pytest.raises(ValueError, match=rf"e.csv line 3: {why}"):
            check_file(path, Settings())


def test_a_json_line_is_checked_with_the_id_it_is_sent_with(tmp_path: Path) -> None:
    """Review 11 R11-2: a JSON line without ``event_id`` was decoded before its derived id was
    written in, so a line just under ``max_event_bytes`` passed the check and was sent ~40 bytes
    longer, which the worker refuses as ``oversized``. The same line with an id of its own passes."""
    from streams.publisher import check_file

    limit = Settings().max_event_bytes
    base = {"user_id": "big", "type": "view", "ts": 1767225600000, "properties": {"p": ""}}
    base["properties"]["p"] = "x" * (limit - 2 - len(orjson.dumps(base)))
    assert len(orjson.dumps(base)) == limit - 2
    path = tmp_path / "big.jsonl"
    path.write_bytes(orjson.dumps(base) + b"\n")
    with pytest.raises(ValueError, match=r"big.jsonl line 1: oversized: \d+ bytes > max_event_bytes"):
        check_file(path, Settings())
    base["properties"]["p"] = base["properties"]["p"][:-len('"event_id":"e1",')]
    with_id = {"event_id": "e1", **base}
    assert len(orjson.dumps(with_id)) == limit - 2
    path.write_bytes(orjson.dumps(with_id) + b"\n")
    assert check_file(path, Settings()).events == 1


def test_a_file_out_of_order_is_read_and_sorted_before_the_first_record_is_asked_for(tmp_path: Path) -> None:
    """Review 11 R11-3: the sort ran on the first ``next()``, inside ``publish_bulk`` after its clock
    had started, so ``--rate`` sent about rate x read time events unpaced and the events/s printed
    counted the read and the sort. Now the file is read and sorted when ``records_in_time_order``
    returns: the file can be gone before the first record is taken."""
    from streams.publisher import check_file, records_in_time_order

    path = tmp_path / "e.csv"
    path.write_text("user_id,ts,event_type\nb,1767225660000,view\na,1767225600000,view\n")
    records = records_in_time_order(path, Settings(), check_file(path, Settings()))
    path.unlink()
    assert [orjson.loads(v)["user_id"] for _, v in records] == ["a", "b"]
