"""Whether a history starts after its users signed up: the WARNING of ``publish``, ``backtest`` and
``train`` (QA10 F16, QA23a F6).

churnwatch has no sign-up date (no event field, no role): a user's first event is their first
day. An export of "the last N months" therefore makes every user who predates it new at its start:
tenure counted from the file's first days, stage new, day-one at-risk alerts with tenure reasons.
A back-dated sign-up event would not help: it is one visit, followed by a silence the lifecycle
reads as a lapse (dormant, churned) and a return (reactivated) at the file's start.

Such users pile up at the start: each first appears on their first visit of the file, within their
usual interval of it, while users who really sign up arrive at the product's usual weekly rate.
:class:`Arrivals` counts both; :func:`late_start_warning` says it in one line when the pile-up is
large (the thresholds and their reasons are with the constants below).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Final, Iterable

from models.events import Event
from streams.timefmt import format_day_or_time

__all__ = ["Arrivals", "LATE_START_SHARE", "LATE_START_WEEK_SHARE", "late_start_warning"]

DAY_MS: Final[int] = 86_400_000
WEEK_MS: Final[int] = 7 * DAY_MS

#: The day rule (QA10 F16): at least this share of a file's users, and at least
#: LATE_START_MIN_USERS of them, have their first event within LATE_START_WINDOW_MS of the file's
#: first event, and the users counted span LATE_START_MIN_SPAN_MS or more. A history exported from
#: each user's first activity holds there only the users who signed up that day: about 1/D of them
#: for a D-day history with steady sign-ups (2% of QA10's complete 119-day notes.csv), and even a
#: launch-day crowd is rarely a third of the users. An export cut after its users signed up puts
#: there every user active that day: 59% (182 of 307) of QA10 F16's export cut at October 1, whose
#: users had been active since August; a third or more for any product whose daily users are a third
#: of its base. The minimum keeps a handful of users in a sample file from speaking; over less than
#: three days (a backtest whose last as-of date is a day or two after the file's start: it counts
#: the users seen before it) a third of any history's users can be first-day ones, and the share
#: tells nothing. (QA10's own repro, backtest --as-of 2026-10-08 on the October export: 6.9 days.)
LATE_START_SHARE: Final[float] = 0.30
LATE_START_MIN_USERS: Final[int] = 20
LATE_START_WINDOW_MS: Final[int] = DAY_MS
LATE_START_MIN_SPAN_MS: Final[int] = 3 * DAY_MS

#: The week rule (QA23a F6): the users first seen in the file's first week, beyond a usual week's
#: new users, are at least this share of the users (and LATE_START_MIN_USERS or more). Why a week:
#: users who come weekly, or a few times a month, do not all show on the cut day (QA23a's fitness
#: app: 2.6% on day one, 500 customers of 2025, 17% of its users, spread over its first days; the
#: simulator cut 60 days in: 20%), but most of them do within a week. Why beyond a usual week: the
#: first week also holds that week's real sign-ups. The usual week is the median of the weekly new
#: users from the fifth week on (LATE_START_USUAL_FROM_MS): the median, so a seasonal spike (QA23a's
#: January, 3x the other months) or a marketing week does not set it; from the fifth week, so the
#: users who come every two to six weeks, still piling up in weeks 2-4 (QA17's re-orders: 458, 437,
#: 381 users then 34-48 a week), are not taken for the usual rate; up to the last week with a new
#: user, so a history whose sign-ups stop (a cohort's; tests/test_train_bounds.py's 150 users, who
#: all start in its first 40 days) is not compared with the empty weeks after. Why 10%: measured on the QA
#: passes' 26 history files, the complete ones (each user's history from their first event: 12
#: files) have an excess of 0.4% to 4.8% of their users, the cut ones 13% (QA17) to 91% (the
#: simulator's 200 days: 1.2%; cut 30, 60 or 90 days in: 18%, 34%, 54%); and at
#: 17% QA23a's predating customers took 397 of January's 974 at-risk alerts (41%). A history under
#: five weeks and one (no usual week to compare with) is judged by the day rule only.
LATE_START_WEEK_SHARE: Final[float] = 0.10
LATE_START_USUAL_FROM_MS: Final[int] = 4 * WEEK_MS


@dataclass(frozen=True, slots=True)
class Arrivals:
    """When a history's users first appear: ``users`` in all, the first of them at ``start_ms``,
    ``first_day`` within LATE_START_WINDOW_MS of it, ``first_week`` within a week, and
    ``usual_week`` the median of the weekly new users of the full weeks from LATE_START_USUAL_FROM_MS
    to the last with a new user (None: the history, to ``end_ms``, has none). ``end_ms``: the last time the users counted were
    looked at (the last event, or the backtest's last as-of date)."""

    users: int
    start_ms: int
    end_ms: int
    first_day: int
    first_week: int
    usual_week: float | None

    @classmethod
    def of(cls, first_ms: Iterable[int], end_ms: int) -> Arrivals:
        """From each user's first event time (the backtest's ``Replay.first_seen_ms``, publish's
        check of the file, train's users).

        >>> a = Arrivals.of([5, 6, DAY_MS + 5] + [WEEK_MS * w + 9 for w in range(4, 8)], 8 * WEEK_MS + 1)
        >>> a.users, a.first_day, a.first_week, a.usual_week
        (7, 2, 3, 1.0)
        """
        firsts = sorted(first_ms)
        if not firsts:
            return cls(0, 0, end_ms, 0, 0, None)
        start = firsts[0]
        weeks = [0] * max(0, (end_ms - start) // WEEK_MS)  # full weeks from the start
        for t in firsts:
            if t - start < len(weeks) * WEEK_MS:
                weeks[(t - start) // WEEK_MS] += 1
        while weeks and not weeks[-1]:  # sign-ups that stop (a cohort's history) leave no usual week of 0
            weeks.pop()
        usual = weeks[LATE_START_USUAL_FROM_MS // WEEK_MS:]
        return cls(len(firsts), start, end_ms, sum(1 for t in firsts if t < start + LATE_START_WINDOW_MS),
                   sum(1 for t in firsts if t < start + WEEK_MS), float(statistics.median(usual)) if usual else None)

    @classmethod
    def of_events(cls, events: Iterable[Event], end_ms: int) -> Arrivals:
        """From events in time order; billing statements left out (a statement is no first
        activity, and a user with statements only is no user, as train counts them)."""
        first: dict[str, int] = {}
        for ev in events:
            if ev.subscription is None:
                first.setdefault(ev.user_id, ev.ts_ms)
        return cls.of(first.values(), end_ms)

    @property
    def excess(self) -> float:
        """The first week's new users beyond a usual week's (0 without a usual week)."""
        return 0.0 if self.usual_week is None else self.first_week - self.usual_week


#: What :func:`late_start_warning` says of a history file and of the topic's retained history:
#: (its first event, why it starts late, what to do).
_LATE_START_WORDS: Final[dict[str, tuple[str, str, str]]] = {
    "file": ("the file's first event", "the export probably starts after they signed up",
             "export each user's history from their first activity (see"),
    # publish: the file may be the next part of a history the topic already holds (QA16 F9: part 2 of
    # a history was told its users "will all look new" and to withhold its alerts)
    "publish": ("the file's first event", "unless the events topic already holds their earlier events (a history "
                "published in parts), the export probably starts after they signed up",
                "export each user's history from their first activity (see"),
    "topic": ("the topic's first retained event", "the retained history probably starts after they signed up (a history "
              "published cut, or its start past the topic's retention)",
              "train on an export of each user's history from their first activity (--events FILE; see"),
}


def late_by_day(a: Arrivals) -> bool:
    """The day rule (the constants above): a third of the users or more in the history's first 24
    hours. ``train`` holds the growing features on it (streams.offline.train.held_growing); the
    week rule only warns (it also catches a population whose first cohort really joined in its
    first weeks).

    >>> late_by_day(Arrivals(60, 0, 30 * DAY_MS, 20, 25, None)), late_by_day(Arrivals(2_899, 0, 300 * DAY_MS, 75, 641, 51))
    (True, False)
    """
    return a.first_day >= LATE_START_MIN_USERS and a.first_day >= LATE_START_SHARE * a.users and a.end_ms - a.start_ms >= LATE_START_MIN_SPAN_MS


def late_start_warning(arrivals: Arrivals, source: str = "file") -> str | None:
    """One line when a history probably starts after its users signed up (QA10 F16: an export of
    "the last N months" made every user new on its first day: at-risk alerts in the first week for
    83% of them, with tenure reasons; QA23a F6: 17% of a fitness app's users predated its export and
    nothing was said, they were spread over its first days); None otherwise. The day rule, then the
    week rule (the constants above say why). ``source`` "topic": the history is what the events
    topic retains (``train --from-topic``), which starts late when a history was published cut or its
    start is past the topic's retention; "publish": a file sent to the topic, which may continue a
    history the topic already holds.

    >>> start = 1_790_812_800_000
    >>> print(late_start_warning(Arrivals(60, start, start + 30 * DAY_MS, 20, 25, None)))
    20 of 60 users (33%) have their first event within 24 hours of the file's first event (2026-10-01): the export probably starts after they signed up; they will all look new (stage new, day-one at-risk alerts, reasons such as "active on a single day so far"): their tenure counts from the file's first event, and churnwatch has no sign-up date to correct it (no field or role; a back-dated sign-up event reads as one visit, a lapse and a return); export each user's history from their first activity (see docs/OPERATE.md, "Onboarding a product's history")
    >>> print(late_start_warning(Arrivals(2_899, start, start + 300 * DAY_MS, 75, 641, 51), "publish"))
    641 of 2,899 users (22%) have their first event within 7 days of the file's first event (2026-10-01), 590 (20%) more than a usual week's new users (51, the median from the fifth week on): unless the events topic already holds their earlier events (a history published in parts), the export probably starts after they signed up; they will all look new (stage new, day-one at-risk alerts, reasons such as "active on a single day so far"): their tenure counts from the file's first event, and churnwatch has no sign-up date to correct it (no field or role; a back-dated sign-up event reads as one visit, a lapse and a return); export each user's history from their first activity (see docs/OPERATE.md, "Onboarding a product's history")
    >>> late_start_warning(Arrivals(24, 0, 30 * DAY_MS, 19, 19, None)), late_start_warning(Arrivals(67, 0, 30 * DAY_MS, 20, 20, None))
    (None, None)
    >>> late_start_warning(Arrivals(20, 0, 2 * DAY_MS, 20, 20, None)), late_start_warning(Arrivals(2_400, 0, 300 * DAY_MS, 9, 300, 60.5))
    (None, None)
    """
    a = arrivals
    first, cut, remedy = _LATE_START_WORDS[source]
    at = format_day_or_time(a.start_ms)
    if late_by_day(a):
        seen = f"{a.first_day:,} of {a.users:,} users ({a.first_day / a.users:.0%}) have their first event within 24 hours of {first} ({at})"
    elif a.excess >= LATE_START_MIN_USERS and a.excess >= LATE_START_WEEK_SHARE * a.users:
        seen = (f"{a.first_week:,} of {a.users:,} users ({a.first_week / a.users:.0%}) have their first event within 7 days of {first}"
                f" ({at}), {a.excess:,.0f} ({a.excess / a.users:.0%}) more than a usual week's new users ({a.usual_week:,.0f}, the "
                f"median from the fifth week on)")
    else:
        return None
    return (f"{seen}: {cut}; they will all look new (stage new, day-one at-risk alerts, reasons such as \"active on a "
            f"single day so far\"): their tenure counts from {first}, and churnwatch has no sign-up date to correct it (no field "
            f"or role; a back-dated sign-up event reads as one visit, a lapse and a return); {remedy} docs/OPERATE.md, "
            f"\"Onboarding a product's history\")")
