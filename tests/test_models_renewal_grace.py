"""The renewal's grace (QA23b F6, models.signals.RENEWAL_GRACE_S): a paid period's end counts as
passed unrenewed only a day after it, because billing systems state a renewal at or after the
end (Stripe finalizes and charges the renewal invoice about an hour into the new period).

QA23b's developer platform stated each monthly renewal at about 01:06 on the 1st for a period
that ended at 00:00: its silent paying users went ``declining -> dormant`` (or ``churned``) at
00:00, "paid period ended today (2026-02-28), no renewal stated", and back to ``declining`` at
01:06. A subscriber silent since day 38 of 2026, renewed like that every 30 days to day 150: no
such flip at any renewal; the period that is not renewed churns the user a day after its end.
"""

from __future__ import annotations

from models.engine import advance
from models.events import Event
from models.lifecycle import LAPSED
from models.model import ChurnModel
from models.scoring import score
from models.signals import RENEWAL_GRACE_S
from models.subscription import Subscription
from tests.test_models_properties import DAY_MS, T0_MS, _state_of

M = ChurnModel()
DAY_S = DAY_MS // 1000
LATE_MS = 66 * 60_000  # the renewal statement 1 h 06 min after the period's end, as QA23b's


def _renewal(day: int, status: str = "active") -> Event:
    """The statement of the period from ``day`` 00:00 to ``day + 30`` 00:00, sent ``LATE_MS`` after
    its start (the billing run)."""
    sub = Subscription(status, "pro", 49_900 if status == "active" else 0, 0, T0_MS + (day + 30) * DAY_MS)  # type: ignore[arg-type]
    return Event("u", T0_MS + day * DAY_MS + LATE_MS, "subscription", f"s{day:04d}{status}", 0.0, "", sub)


def _history(renewal_days: range, *extra: Event) -> list[Event]:
    visits = [Event("u", T0_MS + d * DAY_MS + 12 * 3_600_000, "api_call", f"v{d:04d}") for d in range(0, 40, 2)]
    return sorted([*visits, *(_renewal(d) for d in renewal_days), *extra], key=lambda e: e.ts_ms)


def _lapses(events: list[Event], to_day: int) -> list[tuple[int, str, str]]:
    """The ``stage_changed`` alerts to dormant or churned: (time, stage, first reason)."""
    out = advance("u", None, events, T0_MS + to_day * DAY_MS, M)
    return [(a.event_time_ms, a.scores.stage, a.scores.reasons[0]) for a in out.alerts
            if a.kind == "stage_changed" and a.scores.stage in LAPSED]


def test_a_renewal_stated_an_hour_after_the_period_end_is_no_lapse() -> None:
    """Renewed on days 30, 60, 90, 120 at 01:06, each an hour after the period before ended (the
    silence passes the dormant line on day 59, the churned one on day 83): no change to dormant or
    churned, no "no renewal stated", while the last period (to day 150) runs."""
    events = _history(range(0, 121, 30))
    assert _lapses(events, 149) == []
    out = advance("u", None, events, T0_MS + 149 * DAY_MS, M)
    assert not [a for a in out.alerts if any("no renewal stated" in r for r in a.scores.reasons)]
    assert out.state.stage_name == "declining"


def test_in_the_grace_the_renewal_is_due_today() -> None:
    """At 00:30 on day 60, half an hour after the paid period ended and before its renewal comes:
    still a paying customer (declining, not dormant), the renewal due today, not ended."""
    st_ = _state_of(_history(range(0, 31, 30)))
    s = score(st_, T0_MS // 1000 + 60 * DAY_S + 1800, M)
    assert s.stage == "declining" and s.action != "win_back", (s.stage, s.action)
    assert "renewal due today (paid through 2026-03-01)" in s.reasons, s.reasons


def test_a_period_not_renewed_churns_a_day_after_its_end() -> None:
    """The last renewal pays to day 150 00:00 (paid through 2026-05-30), none follows: churned at
    day 151 00:00, the end plus the grace, said first."""
    lapses = _lapses(_history(range(0, 121, 30)), 200)
    assert lapses == [(T0_MS + 150 * DAY_MS + RENEWAL_GRACE_S * 1000, "churned",
                       "paid period ended 1 day ago (2026-05-30), no renewal stated")], lapses


def test_a_failed_renewal_lapses_at_once() -> None:
    """A failed payment is stated (``past_due``): the paid period ends at that statement, no grace
    is awaited; the user silent past the churned line is churned at the statement."""
    events = _history(range(0, 91, 30), _renewal(120, "past_due"))
    lapses = _lapses(events, 200)
    assert lapses and lapses[0][:2] == (T0_MS + 120 * DAY_MS + LATE_MS, "churned"), lapses
