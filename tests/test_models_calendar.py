"""The product's declared quiet period (``[calendar] quiet``, ``ChurnModel.quiet_calendar``; QA24b:
a schools platform's users alerted and churned every summer, 2,449 user at-risk alerts in July, 1,561
users churned in July-August of whom 924 came back in September).

Inside a declared period, and for the user's settling window after it (its silence line: 14 days, or
2 of its usual intervals, 30 days at most; models.signals.calendar_hold_s), silence and decline open
no at-risk alert and flip no stage; facts still count (a cancellation churns); a user already silent
past its line when the period began is judged as before; at the window's end every rule applies again.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import Event
from models.lifecycle import LAPSED
from models.model import ChurnModel
from models.quiet_period import parse_quiet
from models.signals import calendar_hold_s
from streams.offline.replay import load_config
from tests.test_models_properties import MODEL, _check_smart_reviews, histories

DAY_MS = 86_400_000
SUMMER = ["07-01..08-31"]
PLAIN = ChurnModel()
QUIET = ChurnModel(quiet_calendar=SUMMER)
CAL_MODEL = MODEL.with_(quiet_calendar=["01-20..02-20"])  # inside tests/test_models_properties' histories (from 2026-01-01)


def _ms(month: int, day: int, year: int = 2026) -> int:
    return int(dt.datetime(year, month, day, tzinfo=dt.timezone.utc).timestamp() * 1000)


JUL1, SEP1 = _ms(7, 1), _ms(9, 1)


def _teacher(last: tuple[int, int] = (6, 28), back: tuple[int, int] | None = None, extra: list[Event] | None = None) -> list[Event]:
    """Weekday visits from 2026-02-01 to ``last``, then (``back``) again from that day for 3 weeks."""
    days = [_ms(2, 1) + d * DAY_MS for d in range((_ms(*last) - _ms(2, 1)) // DAY_MS + 1)]
    if back:
        days += [_ms(*back) + d * DAY_MS for d in range(21)]
    events = [Event("u", t + 9 * 3_600_000, "view", f"v{i:04d}") for i, t in enumerate(days)
              if dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc).weekday() < 5]
    return sorted([*events, *(extra or [])], key=lambda e: e.ts_ms)


def _summer(model: ChurnModel, events: list[Event], until: tuple[int, int] = (9, 30)) -> list[tuple[str, str, int]]:
    out = advance("u", None, events, _ms(*until), model)
    return [(a.kind, a.scores.stage, a.event_time_ms) for a in out.alerts if a.event_time_ms >= JUL1]


def test_summer_silence_opens_no_alert_and_churns_nobody_who_comes_back() -> None:
    back = _teacher(back=(9, 3))
    plain = _summer(PLAIN, back)
    assert [k for k, _, t in plain if k == "at_risk" and t < SEP1] and [s for _, s, t in plain if s == "churned" and t < SEP1], plain
    quiet = _summer(QUIET, back)
    assert not [k for k, _, _ in quiet if k == "at_risk"], quiet
    assert not [s for _, s, _ in quiet if s in LAPSED], quiet


def test_a_user_not_back_after_the_settling_window_is_judged_as_before() -> None:
    """Not back 14 days (a daily user's line) after 08-31: from 09-15 00:00 the silence counts again."""
    alerts = _summer(QUIET, _teacher())
    hold_end = _ms(9, 15)
    assert not [a for a in alerts if a[2] < hold_end and (a[0] == "at_risk" or a[1] in LAPSED)], alerts
    assert [s for _, s, t in alerts if t == hold_end and s in LAPSED], alerts  # the summer's silence counts at once


def test_facts_still_count_in_the_period() -> None:
    cancel = Event("u", _ms(7, 20) + 3_600_000, "cancel", "c")
    alerts = _summer(QUIET, _teacher(extra=[cancel]))
    assert ("churned", _ms(7, 20) + 3_600_000) in [(s, t) for _, s, t in alerts], alerts


def test_a_user_silent_before_the_period_is_not_held() -> None:
    """Last seen 05-15: 47 days before 07-01, past its 14-day line; it lapses in the summer as before."""
    assert _summer(QUIET, _teacher(last=(5, 15)), (8, 31)) == _summer(PLAIN, _teacher(last=(5, 15)), (8, 31))


def test_the_settling_window_follows_the_users_own_rhythm() -> None:
    periods = parse_quiet("07-01..08-31")
    starts, ends = tuple(p.occurrence(2026)[0] // 1000 for p in periods), tuple(p.occurrence(2026)[1] // 1000 for p in periods)
    seen = _ms(6, 20) // 1000
    assert [calendar_hold_s(starts, ends, 0, seen, _ms(8, 1) // 1000, g) * 1000 for g in (1.0, 10.0, 40.0)] == [
        _ms(9, 15), _ms(9, 21), _ms(10, 1)]
    assert calendar_hold_s(starts, ends, 0, seen, _ms(6, 30) // 1000, 1.0) == 0  # before the period: nothing held


def test_the_model_file_carries_the_calendar_and_leaves_it_out_when_empty(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert "quiet_calendar" not in PLAIN.to_json() and ChurnModel.from_json(PLAIN.to_json()).to_json() == PLAIN.to_json()
    assert ChurnModel.from_json(QUIET.to_json()).quiet_calendar == ("07-01..08-31",)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[calendar]\nquiet = ["07-01..08-31", "12-20..01-04"]\n')
    assert load_config(cfg).calendar == ["07-01..08-31", "12-20..01-04"]  # type: ignore[union-attr]
    from streams.cli.train import with_vocabulary
    from streams.offline.replay import with_config
    assert with_vocabulary(PLAIN, load_config(cfg)).quiet_calendar == ("07-01..08-31", "12-20..01-04")  # train writes it
    assert with_vocabulary(QUIET, None).quiet_calendar == ("07-01..08-31",)
    assert with_config(PLAIN, load_config(cfg), "m").quiet_calendar == ("07-01..08-31", "12-20..01-04")  # backtest applies it
    with pytest.raises(ValueError, match="declares calendar.quiet"):
        with_config(QUIET, load_config(cfg), "m")  # ... but never against the model's own
    cfg.write_text('[calendar]\nquiet = ["07-01..09-31"]\n')
    with pytest.raises(ValueError, match=r"calendar.quiet: quiet 07-01..09-31: '09-31' is no day of the year \(MM-DD\)"):
        load_config(cfg)


@st.composite
def _users(draw: st.DrawFn) -> tuple[list[Event], tuple[int, int]]:
    """Plain activity (visits, purchases: no cancellation, no grievance) from 2026-01-01 for up to
    200 days at any rhythm, and a quiet period of 10-120 days starting somewhere in it."""
    t, out = _ms(1, 1) + draw(st.integers(0, DAY_MS)), []
    for i in range(draw(st.integers(1, 60))):
        t += draw(st.one_of(st.integers(0, 3_600_000), st.integers(0, 15 * DAY_MS)))
        kind = draw(st.sampled_from(("view", "click", "message", "purchase")))
        out.append(Event("u", t, kind, f"e{i:04d}", 20.0 if kind == "purchase" else 0.0))
    start = dt.date(2026, 1, 1) + dt.timedelta(days=draw(st.integers(20, 200)))
    end = start + dt.timedelta(days=draw(st.integers(10, 120)))
    return out, (_ms(start.month, start.day), _ms(end.month, end.day) + DAY_MS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_users())
def test_no_at_risk_alert_from_silence_or_decline_inside_a_declared_period(user: tuple[list[Event], tuple[int, int]]) -> None:
    events, (start, end) = user
    period = f"{dt.datetime.fromtimestamp(start / 1000, dt.timezone.utc):%m-%d}..{dt.datetime.fromtimestamp((end - DAY_MS) / 1000, dt.timezone.utc):%m-%d}"
    model = ChurnModel(quiet_calendar=[period])
    out = advance("u", None, events, end + 60 * DAY_MS, model)
    inside = [(a.kind, a.scores.stage, a.event_time_ms) for a in out.alerts if start <= a.event_time_ms < end]
    opened = [x for x in inside if x[0] == "at_risk"]
    before = [e.ts_ms for e in events if e.ts_ms < start]
    if opened and before and start - max(before) > 14 * DAY_MS:
        # silent past the shortest line (14 days) when the period began: judged as without it (the
        # module's docstring), so the plain model's own alerts, at the same seconds (a user last seen
        # 17 days before it opened one at the period's first second, as the plain model did)
        plain = advance("u", None, events, end + 60 * DAY_MS, ChurnModel())
        assert set(opened) <= {(a.kind, a.scores.stage, a.event_time_ms) for a in plain.alerts}, (period, inside)
    else:
        assert not opened, (period, inside)


def test_a_newcomer_after_the_period_is_judged_as_without_it() -> None:
    """First seen 09-02, after the period's end: no season in its counters, nothing held."""
    new = [Event("u", _ms(9, 2) + d * DAY_MS + 9 * 3_600_000, "view", f"n{d}") for d in range(0, 6)]
    assert _summer(QUIET, new, (10, 31)) == _summer(PLAIN, new, (10, 31))


def test_the_reasons_say_the_period() -> None:
    """The reasons of a user the calendar holds say so (as an account's say "in its quiet period")."""
    from tests.test_models_properties import _state_of
    from models.scoring import score
    st_ = _state_of(_teacher())
    assert "in the product's quiet period (07-01..08-31)" in score(st_, _ms(8, 1) // 1000, QUIET).reasons
    assert "the product's quiet period (07-01..08-31) ended 5 days ago" in score(st_, _ms(9, 6) // 1000, QUIET).reasons
    assert not [r for r in score(st_, _ms(8, 1) // 1000, PLAIN).reasons if "quiet period" in r]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(max_events=25, span_days=60), st.randoms(use_true_random=False))
def test_smart_reviews_miss_nothing_with_a_calendar(events: list[Event], rnd: random.Random) -> None:
    """The engine's review schedule (tests/test_models_properties) with a quiet period in the histories' span."""
    _check_smart_reviews(events, CAL_MODEL, rnd)
