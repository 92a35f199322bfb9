"""The simulator: deterministic per seed, every persona present, ground truth consistent with the events."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from models.events import Event
from streams.cli.argtypes import parse_start_ms
from streams.timefmt import format_ts
from streams.offline.simulate import (
    DAY_MS,
    PERSONA_SHARES,
    PERSONAS,
    Truth,
    generate,
    parse_mix,
    persona_counts,
    write_events_csv,
    write_truth_csv,
)

START = parse_start_ms("2026-01-01")


@pytest.fixture(scope="module")
def population() -> tuple[list[Event], list[Truth]]:
    return generate(seed=11, n_users=600, start_ms=START, days=120)


def _by_user(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        out[ev.user_id].append(ev)
    return out


def test_same_seed_same_population_other_seed_differs() -> None:
    a = generate(3, 80, START, 60)
    b = generate(3, 80, START, 60)
    c = generate(4, 80, START, 60)
    assert a == b
    assert a[0] != c[0]


def test_a_user_does_not_depend_on_the_population_size() -> None:
    small_events, small_truth = generate(5, 30, START, 60)
    big_events, big_truth = generate(5, 60, START, 60)
    # ids are zero-padded to the same width for both sizes (at least 6 digits)
    assert big_truth[:30] == small_truth
    first30 = {t.user_id for t in small_truth}
    assert [e for e in big_events if e.user_id in first30] == small_events


def test_events_sorted_inside_window_with_unique_ids(population: tuple[list[Event], list[Truth]]) -> None:
    events, _ = population
    assert events == sorted(events, key=lambda e: (e.ts_ms, e.event_id))
    assert all(START <= e.ts_ms < START + 120 * DAY_MS for e in events)
    assert len({e.event_id for e in events}) == len(events)


def test_every_persona_present_in_sensible_proportions(population: tuple[list[Event], list[Truth]]) -> None:
    _, truth = population
    counts = persona_counts(truth)
    assert set(counts) == set(PERSONAS)
    assert counts["steady"] == max(counts.values())
    assert all(n >= 0.04 * len(truth) for n in counts.values())


def test_signups_spread_over_time(population: tuple[list[Event], list[Truth]]) -> None:
    _, truth = population
    first_month = sum(t.signup_ms < START + 30 * DAY_MS for t in truth)
    assert 0.2 * len(truth) < first_month < 0.7 * len(truth)


def test_truth_consistent_with_events(population: tuple[list[Event], list[Truth]]) -> None:
    events, truth = population
    by_user = _by_user(events)
    for t in truth:
        mine = by_user[t.user_id]
        assert mine, f"{t.user_id} ({t.persona}) has no events"
        assert mine[0].ts_ms >= t.signup_ms
        if t.churned_at_ms is not None:
            # churned_at is the last activity (or the cancel), nothing after it
            assert t.churned_at_ms == mine[-1].ts_ms
        if any(e.type == "cancel" for e in mine):
            assert t.churned_at_ms == mine[-1].ts_ms and mine[-1].type == "cancel"


def test_persona_behaviour(population: tuple[list[Event], list[Truth]]) -> None:
    events, truth = population
    by_user = _by_user(events)
    end = START + 120 * DAY_MS
    for t in truth:
        mine = by_user[t.user_id]
        gaps = [b.ts_ms - a.ts_ms for a, b in zip(mine, mine[1:])]
        if t.persona == "steady":
            assert t.churned_at_ms is None
            assert max(gaps, default=0) < 30 * DAY_MS  # never a lapse
        elif t.persona == "one_time":
            assert t.churned_at_ms is not None
            assert mine[-1].ts_ms - mine[0].ts_ms < DAY_MS / 2  # one session
        elif t.persona == "returner":
            assert t.churned_at_ms is None  # a pause is not churn (module docstring)
            assert max(gaps) >= 21 * DAY_MS
            assert mine[-1].ts_ms > end - 30 * DAY_MS  # came back inside the window
        elif t.persona == "buyer":
            purchases = [e for e in mine if e.type == "purchase"]
            assert purchases and all(e.amount > 0 for e in purchases)
        if t.persona != "buyer":
            assert all(e.type != "purchase" for e in mine)
    cancels = [t for t in truth if t.persona == "quitter" and by_user[t.user_id][-1].type == "cancel"]
    assert cancels, "some quitters send an explicit cancel"
    churners = {p: sum(t.churned_at_ms is not None for t in truth if t.persona == p) for p in PERSONAS}
    assert churners["decliner"] and churners["quitter"] and churners["buyer"]
    assert churners["buyer"] < persona_counts(truth)["buyer"]  # some buyers keep re-ordering


def test_decliners_gaps_grow_and_sessions_shrink(population: tuple[list[Event], list[Truth]]) -> None:
    events, truth = population
    by_user = _by_user(events)
    grew = 0
    decliners = [t for t in truth if t.persona == "decliner" and t.churned_at_ms is not None]
    for t in decliners:
        days = sorted({e.ts_ms // DAY_MS for e in by_user[t.user_id]})
        gaps = [b - a for a, b in zip(days, days[1:])]
        if len(gaps) >= 4:
            half = len(gaps) // 2
            grew += sum(gaps[half:]) / len(gaps[half:]) > sum(gaps[:half]) / half
    assert grew >= 0.8 * len(decliners)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n_users=st.integers(0, 25), days=st.integers(1, 150))
def test_truth_property_for_any_seed(seed: int, n_users: int, days: int) -> None:
    events, truth = generate(seed, n_users, START, days)
    assert len(truth) == n_users
    last: dict[str, int] = {}
    for e in events:
        assert START <= e.ts_ms < START + days * DAY_MS
        last[e.user_id] = e.ts_ms
    for t in truth:
        if t.churned_at_ms is not None:
            assert last[t.user_id] == t.churned_at_ms


def test_csv_writers_round_trip(tmp_path: Path) -> None:
    events, truth = generate(2, 15, START, 40)
    n = write_events_csv(tmp_path / "events.csv.gz", events)
    write_truth_csv(tmp_path / "truth.csv", truth)
    with gzip.open(tmp_path / "events.csv.gz", "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert n == len(rows) == len(events)
    assert list(rows[0]) == ["user_id", "ts", "event_type", "amount"]
    for row, ev in zip(rows, events):
        assert (row["user_id"], row["ts"], row["event_type"]) == (ev.user_id, format_ts(ev.ts_ms), ev.type)
        assert parse_start_ms(row["ts"]) == ev.ts_ms
        assert (row["amount"] != "") == (ev.type == "purchase")
    # the history reader of train/backtest reads the file back to the same events (ids aside)
    from streams.offline.history import read_events_csv

    again = read_events_csv(tmp_path / "events.csv.gz")
    key = lambda e: (e.ts_ms, e.user_id, e.type, e.amount)  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, events))
    with open(tmp_path / "truth.csv", newline="") as fh:
        truth_rows = list(csv.DictReader(fh))
    assert [r["user_id"] for r in truth_rows] == [t.user_id for t in truth]
    for r, t in zip(truth_rows, truth):
        assert r["persona"] == t.persona
        assert parse_start_ms(r["signup"]) == t.signup_ms
        assert (parse_start_ms(r["churned_at"]) if r["churned_at"] else None) == t.churned_at_ms


def test_mix_sets_the_personas_and_default_mix_is_unchanged() -> None:
    events, truth = generate(3, 400, START, 60, parse_mix("quitter=1, buyer=1"))
    assert {t.persona for t in truth} == {"quitter", "buyer"}
    assert 120 < sum(t.persona == "buyer" for t in truth) < 280
    # the default mix spelled out is the default: same users, same events
    spelled = ",".join(f"{p}={w}" for p, w in PERSONA_SHARES.items())
    assert generate(3, 50, START, 30, parse_mix(spelled)) == generate(3, 50, START, 30)


@pytest.mark.parametrize("text, message", [("steady", "persona=weight"), ("steady=-1", ">= 0"), ("steady=nan", ">= 0"),
                                           ("", "at least one persona"), ("bogus=1", "persona=weight")])
def test_bad_mix_is_refused_with_the_part_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mix(text)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="days"):
        generate(1, 10, START, 0)
    with pytest.raises(ValueError, match="n_users"):
        generate(1, -1, START, 10)


@pytest.mark.integration
def test_simulate_command_writes_files_and_publishes(kafka_bootstrap: str, unique_name: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli import main
    from tests.harness import read_topic

    topic = f"sim-{unique_name}"
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    monkeypatch.setenv("CHURNWATCH_PARTITIONS", "3")
    events_out, truth_out = tmp_path / "events.csv.gz", tmp_path / "truth.csv"
    argv = ["--bootstrap-servers", kafka_bootstrap, "simulate", "--users", "12", "--days", "20", "--seed", "9",
            "--start", "2026-03-01", "--events-out", str(events_out), "--truth-out", str(truth_out), "--rate", "20000"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    events, truth = generate(9, 12, parse_start_ms("2026-03-01"), 20)
    assert f"published {len(events)} events to {topic}" in out
    with gzip.open(events_out, "rt", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(events)
    with open(truth_out, newline="") as fh:
        assert [r["user_id"] for r in csv.DictReader(fh)] == [t.user_id for t in truth]
    ts = {}
    for rec in read_topic(kafka_bootstrap, topic, 3):  # the command created the topic with the configured 3 partitions
        ts.setdefault(rec.partition, []).append(orjson.loads(rec.value)["ts"])
    assert sum(len(v) for v in ts.values()) == len(events)
    assert all(v == sorted(v) for v in ts.values())  # event-time order inside each partition
