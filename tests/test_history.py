"""``streams.offline.history``: reading history files (the time parsing itself: tests/test_timefmt.py)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from models.events import Event, TypeMap
from streams.offline.history import RowError, iter_events_csv, read_events_csv, text_events
from streams.publisher import event_value
from streams.records import content_event_id
from streams.worker.codec import Decoder

def test_rows_read_the_same_with_or_without_header_and_in_any_column_order(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("u1,2026-01-02T00:00:00.250Z,order,12.5\nu2,1767225600000,page_view,\nu1,2026-01-01T10:00:00+02:00,view\n")
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("amount,event_type,ts,user_id\n12.5,order,2026-01-02T00:00:00.250Z,u1\n,page_view,1767225600000,u2\n"
                        ",view,2026-01-01T10:00:00+02:00,u1\n")
    a = [(e.user_id, e.ts_ms, e.type, e.amount) for e in read_events_csv(plain)]
    b = [(e.user_id, e.ts_ms, e.type, e.amount) for e in read_events_csv(shuffled)]
    assert a == b == [("u2", 1767225600000, "page_view", 0.0), ("u1", 1767254400000, "view", 0.0),
                      ("u1", 1767312000250, "order", 12.5)]


def test_a_header_may_name_the_event_type_column_type_as_the_event_contract_does(tmp_path: Path) -> None:
    """QA10 F12: ``user_id,type,ts,amount`` failed with "line 2: empty event_type"."""
    named = tmp_path / "named.csv"
    named.write_text("user_id,event_type,ts,amount\nu1,login,2026-11-01T10:00:00Z,\nu1,Order,2026-11-02T10:00:00Z,7.99\n")
    typed = tmp_path / "typed.csv"
    typed.write_text(named.read_text().replace("event_type", "type", 1))
    want = [(e.user_id, e.ts_ms, e.type, e.amount) for e in read_events_csv(named)]
    assert want[1][2:] == ("order", 7.99)
    assert [(e.user_id, e.ts_ms, e.type, e.amount) for e in read_events_csv(typed)] == want
    assert [(e.user_id, e.ts_ms, e.type, e.amount) for e in iter_events_csv(typed)] == want  # publish's reader
    assert text_events(typed.read_text(), "typed.csv") == text_events(named.read_text(), "typed.csv")


def test_a_header_without_an_event_type_column_says_so_and_lists_what_it_found(tmp_path: Path) -> None:
    bad = tmp_path / "kind.csv"
    bad.write_text("user_id,ts,kind\nu1,2026-11-01T10:00:00Z,login\n")
    for read in (read_events_csv, lambda p: list(iter_events_csv(p)), lambda p: text_events(p.read_text(), p.name)):
        with pytest.raises(ValueError, match=re.escape("kind.csv: header has no event_type column (found: user_id, ts, kind)")):
            read(bad)


def test_a_bad_amount_is_an_error_on_any_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,event_type,amount\nu1,2026-01-02T00:00:00Z,view,lots\n")
    with pytest.raises(ValueError, match="bad.csv line 2"):
        read_events_csv(bad)


def test_account_and_subscription_columns_are_read_by_name(tmp_path: Path) -> None:
    from models.subscription import Subscription

    f = tmp_path / "subs.csv"
    f.write_text("user_id,ts,event_type,amount,account_id,status,plan,mrr,trial_ends\n"
                 "u1,2026-01-02T00:00:00Z,subscription,,acme,trial,Pro,49.99,2026-01-16T00:00:00Z\n"
                 "u1,2026-01-16T00:00:00Z,subscription,,acme,active,Pro,49.99,\n"
                 "u2,2026-01-17T00:00:00Z,view,,acme,active,Pro,junk,\n"  # ignored off subscription rows
                 "u3,2026-01-18T00:00:00Z,click,,,,,,\n")
    evs = read_events_csv(f)
    assert [(e.user_id, e.account, e.subscription) for e in evs] == [
        ("u1", "acme", Subscription("trial", "Pro", 4999, 1_768_521_600_000)),
        ("u1", "acme", Subscription("active", "Pro", 4999)),
        ("u2", "acme", None),
        ("u3", "u3", None),
    ]


def test_a_period_end_column_is_read_by_name_in_either_ts_form(tmp_path: Path) -> None:
    from models.subscription import Subscription

    f = tmp_path / "periods.csv"
    f.write_text("user_id,ts,event_type,period_end,account_id,status,plan,mrr\n"  # any column order
                 "u1,2026-01-02T00:00:00Z,subscription,2026-02-02T00:00:00Z,acme,active,Pro,49.99\n"
                 "u1,2026-02-02T00:00:00Z,subscription,1772409600000,acme,active,Pro,49.99\n"  # epoch ms
                 "u2,2026-02-03T00:00:00Z,subscription,,acme,cancelled,Pro,0\n"  # not given
                 "u3,2026-02-04T00:00:00Z,view,junk,acme,,,\n")  # ignored off subscription rows
    evs = read_events_csv(f)
    assert [e.subscription for e in evs] == [Subscription("active", "Pro", 4999, 0, 1_769_990_400_000),
                                             Subscription("active", "Pro", 4999, 0, 1_772_409_600_000),
                                             Subscription("cancelled", "Pro", 0), None]
    no_column = tmp_path / "none.csv"  # a file without the column: 0, as before
    no_column.write_text("user_id,ts,event_type,account_id,status,plan,mrr\nu1,2026-01-02T00:00:00Z,subscription,acme,active,Pro,5\n")
    assert read_events_csv(no_column)[0].subscription == Subscription("active", "Pro", 500)


def test_a_seats_column_is_read_by_name_and_a_bad_one_names_its_line(tmp_path: Path) -> None:
    """QA20a F6: the seats a statement's mrr pays for, as the stream reads the field; a file
    without the column as before."""
    from models.subscription import Subscription

    f = tmp_path / "seats.csv"
    f.write_text("user_id,ts,event_type,account_id,status,plan,mrr,seats\n"
                 "u1,2026-01-02T00:00:00Z,subscription,acme,active,Team,520.00,26\n"
                 "u1,2026-02-02T00:00:00Z,subscription,acme,cancelled,Team,0,\n")
    assert [e.subscription for e in read_events_csv(f)] == [Subscription("active", "Team", 52_000, 0, 0, 26), Subscription("cancelled", "Team", 0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,event_type,account_id,status,plan,mrr,seats\nu1,2026-01-02T00:00:00Z,subscription,acme,active,Team,5,2.5\n")
    with pytest.raises(ValueError, match="bad.csv line 2: seats '2.5' is not a whole number of seats"):
        read_events_csv(bad)


@pytest.mark.parametrize("cell, message", [
    ("next month", "period_end: timestamp 'next month' is neither ISO-8601 nor epoch milliseconds"),
    ("1769990400", "period_end '1769990400' is not epoch milliseconds after 2000-01-01"),  # epoch seconds
    ("-5", "period_end: timestamp '-5'"),
    ("1999-06-01T00:00:00Z", "period_end '1999-06-01T00:00:00Z' is before 2000-01-01"),  # as the stream's codec
])
def test_a_bad_period_end_names_file_line_and_column(tmp_path: Path, cell: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(f"user_id,ts,event_type,account_id,status,plan,mrr,period_end\nu1,2026-01-02T00:00:00Z,subscription,acme,active,Pro,5,{cell}\n")
    with pytest.raises(ValueError, match=f"bad.csv line 2: {re.escape(message)}"):
        read_events_csv(f)


@pytest.mark.parametrize("row, message", [
    ("u1,2026-01-02T00:00:00Z,subscription,,acme,frozen,Pro,10", "status 'frozen'"),
    ("u1,2026-01-02T00:00:00Z,subscription,,acme,active,Pro,9.999", "fractions of a cent: send it rounded to the cent"),
    ("u1,2026-01-02T00:00:00Z,subscription,,acme,cancelled,Pro,10", "mrr 0"),
    # QA pass 9 L3: an active plan without its mrr was taken as a free plan (0), silently
    ("u1,2026-01-02T00:00:00Z,subscription,,acme,active,Pro,", "mrr is missing: an active subscription states its mrr"),
    ("u1,2026-01-02T00:00:00Z,subscription,,acme,past_due,Pro", "mrr is missing: a past_due subscription"),
])
def test_a_bad_subscription_row_names_file_line_and_value(tmp_path: Path, row: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("user_id,ts,event_type,amount,account_id,status,plan,mrr\n" + row + "\n")
    with pytest.raises(ValueError, match=f"bad.csv line 2: .*{message}"):
        read_events_csv(f)


def test_stripes_canceled_is_cancelled_and_a_cancelled_row_needs_no_mrr(tmp_path: Path) -> None:
    """QA pass 9 L5/L3: Stripe's status ``canceled`` was refused; a cancelled row without mrr stays accepted."""
    from models.subscription import Subscription

    f = tmp_path / "stripe.csv"
    f.write_text("user_id,ts,event_type,amount,account_id,status,plan,mrr\n"
                 "u1,2026-01-02T00:00:00Z,subscription,,acme,canceled,Pro,\n"
                 "u2,2026-01-03T00:00:00Z,subscription,,acme,Cancelled,Pro,0\n")
    assert [e.subscription for e in read_events_csv(f)] == [Subscription("cancelled", "Pro", 0)] * 2


def test_a_subscription_row_without_a_header_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "noheader.csv"
    f.write_text("u1,2026-01-02T00:00:00Z,subscription,,e1\n")
    with pytest.raises(ValueError, match="header with a status column"):
        read_events_csv(f)


def _plain_history() -> str:
    return ("# exported 2026-01-03\nuser_id,ts,event_type,amount,event_id\n"
            "u2,2026-01-02T00:00:00.250Z,order,12.5,\n\nu10,1767225600000,page_view,,e7\n"
            "u1,2026-01-01T10:00:00+02:00,View,,\nu2,2026-01-02T00:00:00.250Z,click,,\n")


def test_a_text_reads_as_the_csv_module_reads_it() -> None:
    """Split at newlines and commas (the fast way) or through csv (quotes, CRLF): the same events."""
    plain = _plain_history()
    quoted = plain.replace("u10,", '"u10",')
    crlf = plain.replace("\n", "\r\n")
    events = text_events(plain, "h.csv")
    assert [(e.user_id, e.ts_ms, e.type, e.event_id) for e in events] == [
        ("u2", 1767312000250, "order", content_event_id(Event("u2", 1767312000250, "order", "", 12.5))),
        ("u10", 1767225600000, "page_view", "e7"),
        ("u1", 1767254400000, "view", content_event_id(Event("u1", 1767254400000, "view"))),
        ("u2", 1767312000250, "click", content_event_id(Event("u2", 1767312000250, "click")))]
    assert text_events(quoted, "h.csv") == text_events(crlf, "h.csv") == events


@pytest.mark.parametrize("bounds", [["u10"], ["u1", "u2"], ["u0", "u9"], ["u2", "u2"]])
def test_ranges_of_users_split_the_events_without_loss(bounds: list[str]) -> None:
    text = _plain_history()
    everything = text_events(text, "h.csv")
    ranges = list(zip([""] + bounds, bounds + [None]))
    parts = [text_events(text, "h.csv", users=r) for r in ranges]
    assert sorted((e for part in parts for e in part), key=everything.index) == everything
    for (low, end), part in zip(ranges, parts):
        assert all(low <= e.user_id and (end is None or e.user_id < end) for e in part)


def test_a_bad_row_outside_the_range_is_not_read_but_an_empty_user_is_by_the_first_range() -> None:
    """Each row is read by one range, so the backtest's shards say each bad line once (QA23a F9:
    an empty user id was read, and would be said, by every shard)."""
    text = "user_id,ts,event_type\nu1,2026-01-02T00:00:00Z,view\nu9,soon,view\n"
    assert [e.user_id for e in text_events(text, "h.csv", users=("", "u5"))] == ["u1"]
    with pytest.raises(RowError, match="h.csv line 3: timestamp 'soon'") as caught:
        text_events(text, "h.csv", users=("u5", None))
    assert caught.value.lineno == 3
    empty = "user_id,ts,event_type\n ,2026-01-02T00:00:00Z,view\n"
    with pytest.raises(RowError, match="line 2: empty user_id"):
        text_events(empty, "h.csv", users=("", "u5"))
    assert text_events(empty, "h.csv", users=("u5", None)) == []


def test_the_simulators_account_columns_read_back_with_trial_and_period_ends(tmp_path: Path) -> None:
    """``write_events_csv(accounts=True)`` and this reader agree on every subscription field."""
    from models.events import Event
    from models.subscription import Subscription
    from streams.offline.simulate import write_events_csv

    t = 1_767_225_600_000
    evs = [Event("u1", t, "subscription", "a", 0.0, "acme", Subscription("trial", "Pro", 0, t + 14 * 86_400_000)),
           Event("u1", t + 1, "subscription", "b", 0.0, "acme", Subscription("active", "Pro", 4999, 0, t + 31 * 86_400_000)),
           Event("u2", t + 2, "subscription", "c", 0.0, "", Subscription("cancelled", "Basic", 0)),
           Event("u2", t + 3, "view", "d", 0.0, "acme")]
    write_events_csv(tmp_path / "subs.csv", evs, accounts=True)
    assert [(e.user_id, e.ts_ms, e.account, e.subscription) for e in read_events_csv(tmp_path / "subs.csv")] == [
        (e.user_id, e.ts_ms, e.account, e.subscription) for e in evs]


_ACCOUNT_ROWS = ("user_id,ts,event_type,amount,account_id,status,plan,mrr,period_end\n"
                 "u1,2026-01-02T00:00:00Z,Page_View,,acme,,,,\n"
                 "u1,2026-01-02T00:00:00Z,purchase,12.50,acme,,,,\n"
                 "u1,2026-01-02T00:00:00Z,subscription,,acme,active,Pro,49.99,2026-02-02T00:00:00Z\n"
                 "u2,2026-01-02T00:00:00Z,view,,,,,,\n")


def test_a_row_without_id_has_the_id_the_worker_derives_for_its_record(tmp_path: Path) -> None:
    """QA4 #2: the id of a row without one is its content's, exactly as the worker derives it for
    the record ``publish`` sends without an id, whatever the file is called or where the row is."""
    events = text_events(_ACCOUNT_ROWS, "ev.csv")
    assert len({e.event_id for e in events}) == 4
    for ev in events:
        body = orjson.loads(event_value(ev))
        del body["event_id"]
        assert Decoder().decode(orjson.dumps(body), 1_800_000_000_000).event_id == ev.event_id  # type: ignore[union-attr]
    shuffled = _ACCOUNT_ROWS.splitlines(keepends=True)
    assert sorted(text_events(shuffled[0] + "".join(reversed(shuffled[1:])), "other.csv"), key=lambda e: e.event_id) == \
        sorted(events, key=lambda e: e.event_id)
    # a --config type map renames the type, not the id (the record publish sends keeps the name)
    renamed = text_events(_ACCOUNT_ROWS, "ev.csv", TypeMap({"page_view": "view"}))
    assert renamed[0].type == "view" and [e.event_id for e in renamed] == [e.event_id for e in events]


def test_two_files_of_the_same_name_keep_their_events_and_a_repeated_row_counts_once(tmp_path: Path) -> None:
    """QA4 #2: two daily ``ev.csv`` in different folders had the same ``ev.csv:<line>`` ids (the stream
    dropped the second file's events as duplicates); a row written twice counted twice."""
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    (tmp_path / "d1" / "ev.csv").write_text("user_id,ts,event_type,amount\nfdup,2026-04-30T23:10:00Z,view,\n")
    (tmp_path / "d2" / "ev.csv").write_text("user_id,ts,event_type,amount\nfdup,2026-04-30T23:20:00Z,purchase,25\n")
    one, two = read_events_csv(tmp_path / "d1" / "ev.csv"), read_events_csv(tmp_path / "d2" / "ev.csv")
    assert one[0].event_id != two[0].event_id
    rep = tmp_path / "rep.csv"
    rep.write_text("user_id,ts,event_type,amount\nfrep,2026-04-30T23:15:00Z,purchase,40\n"
                   "frep,2026-04-30T23:15:00Z,view,\nfrep,2026-04-30T23:15:00Z,purchase,40\n"
                   "other,2026-04-30T23:15:00Z,purchase,40\n")
    events = read_events_csv(rep)
    assert sorted((e.user_id, e.type) for e in events) == [("frep", "purchase"), ("frep", "view"), ("other", "purchase")]


@pytest.mark.parametrize("gz", [False, True])
def test_a_byte_order_mark_is_no_part_of_the_header(tmp_path: Path, gz: bool) -> None:
    """QA4 #6: a CSV saved by Excel starts with a BOM; read as plain UTF-8 the header row was read as
    data ("line 1: timestamp 'ts' is neither ISO-8601 nor epoch milliseconds")."""
    import gzip

    from streams.offline.evaluate import read_labels
    from streams.offline.history import iter_events_csv, read_labels_csv

    text = "user_id,ts,event_type,amount\r\nu1,2026-01-02T00:00:00Z,purchase,5\r\n"
    plain, bom = tmp_path / ("plain.csv" + ".gz" * gz), tmp_path / ("bom.csv" + ".gz" * gz)
    for f, data in ((plain, text.encode()), (bom, b"\xef\xbb\xbf" + text.encode())):
        f.write_bytes(gzip.compress(data) if gz else data)
    assert read_events_csv(bom) == read_events_csv(plain) and len(read_events_csv(plain)) == 1
    assert list(iter_events_csv(bom)) == list(iter_events_csv(plain))
    labels = tmp_path / "labels.csv"
    labels.write_bytes(b"\xef\xbb\xbfuser_id,churned_at,persona\nu1,2026-01-05T00:00:00Z,quitter\n")
    assert read_labels_csv(labels) == {"u1": 1767571200000}
    assert read_labels(labels).persona == {"u1": "quitter"}


def test_drop_repeats_keeps_the_first_of_each_user_time_and_id() -> None:
    """drop_repeats (C-level scans, then a loop over the few equal neighbours) against the plain
    definition: an event whose (user, time, id) an earlier one of the sorted list has is dropped."""
    import random

    from models.events import EVENT_ORDER
    from streams.offline.history import drop_repeats

    def plain(events: list[Event]) -> list[Event]:
        seen: set[tuple[str, int, str]] = set()
        return [e for e in events if not ((e.user_id, e.ts_ms, e.event_id) in seen or seen.add((e.user_id, e.ts_ms, e.event_id)))]

    rng = random.Random(7)
    for _ in range(2000):
        events = sorted((Event(rng.choice("abc"), rng.randint(0, 3), "view", rng.choice("xyz")) for _ in range(rng.randint(0, 12))),
                        key=EVENT_ORDER)
        assert drop_repeats(events) == plain(events), events


def test_a_type_map_config_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    """QA4 #6, the other readers: a ``--config`` JSON saved by Notepad starts with a BOM."""
    from streams.offline.replay import load_type_map

    config = tmp_path / "types.json"
    config.write_bytes(b'\xef\xbb\xbf{"event_types": {"order": "purchase"}}')
    assert load_type_map(config).canonical("order") == "purchase"
