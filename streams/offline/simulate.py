"""A seeded population of product users with known behaviour, and its ground truth.

Why a simulator: churn labels only exist in hindsight, so the pipeline, the backtest and the demo
need users whose fate is known by construction. Each user follows one *persona*:

==============  ===========================================================================
``steady``      regular sessions at an individual cadence (daily, every few days, weekly)
                with views, clicks and messages; never churns.
``decliner``    steady, then gaps grow and sessions shrink over 3-8 weeks, then stops.
``quitter``     steady, then stops abruptly; about 40% send an explicit ``cancel`` event.
``one_time``    a single session at signup, never seen again.
``buyer``       browses and re-orders at a regular interval with a purchase amount; about a
                third stop re-ordering (and visiting) after a few orders = churn.
``returner``    steady, then silent for 3-8 weeks, then steady again until the end.
==============  ===========================================================================

Ground truth (:class:`Truth`): ``churned_at_ms`` is the time of the user's last event for a user
who stops for good inside the simulated window (the ``cancel`` event when there is one), and
``None`` for everybody else. A *returner* is **not churned**: the lapse is a pause, not an exit,
even when it is long enough for the detector to call the user dormant or churned for a while
(the detector is then expected to report ``reactivated`` on return). Returners are placed so that
they come back inside the window; in simulations shorter than five weeks there is no room for
a lapse and they behave as steady users. A decliner or quitter whose planned stop falls after
the end of the window is still active at the end, hence ``None``.

Users sign up over the first 70% of the window (one-time visitors over all of it). Counts per
session are Poisson, gaps are Gamma-distributed around the user's cadence, and sessions start at
the user's preferred hour of the day with a jitter of about 1.5 h. Everything derives from the
seed: the same ``(seed, n_users, start_ms, days)`` gives the same events and event ids.

>>> events, truth = generate(seed=1, n_users=20, start_ms=1_767_225_600_000, days=30)
>>> events == generate(seed=1, n_users=20, start_ms=1_767_225_600_000, days=30)[0]
True
>>> all(a.ts_ms <= b.ts_ms for a, b in zip(events, events[1:]))
True
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, Iterable, Literal, Mapping, Sequence, cast

from models.events import Event, EventType
from models.revenue_ledger import money_text
from streams.timefmt import format_ts

if TYPE_CHECKING:
    pass

__all__ = [
    "PERSONAS",
    "PERSONA_SHARES",
    "Persona",
    "Truth",
    "generate",
    "parse_mix",
    "persona_counts",
    "write_events_csv",
    "write_truth_csv",
]

logger = logging.getLogger(__name__)

Persona = Literal["steady", "decliner", "quitter", "one_time", "buyer", "returner"]
PERSONAS: Final[tuple[Persona, ...]] = ("steady", "decliner", "quitter", "one_time", "buyer", "returner")
#: Share of each persona in the population (sums to 1): mostly healthy users, about a third who
#: leave one way or another, a few who only pause.
PERSONA_SHARES: Final[dict[Persona, float]] = {
    "steady": 0.38,
    "decliner": 0.14,
    "quitter": 0.12,
    "one_time": 0.10,
    "buyer": 0.16,
    "returner": 0.10,
}

DAY_MS: Final[int] = 86_400_000
_HOUR_MS: Final[int] = 3_600_000
#: Cadences of regular users in days between sessions, and how often each occurs.
_CADENCES: Final[tuple[tuple[float, float], ...]] = ((1.0, 0.35), (2.5, 0.30), (4.0, 0.15), (7.0, 0.20))
#: Type mix inside a browsing session.
_SESSION_TYPES: Final[tuple[EventType, ...]] = ("view", "click", "message")
_SESSION_WEIGHTS: Final[tuple[float, ...]] = (0.6, 0.3, 0.1)
_GAP_SHAPE: Final[float] = 4.0  # Gamma shape of gaps between sessions: coefficient of variation 0.5
_SIGNUP_SPAN: Final[float] = 0.7  # users sign up over this fraction of the window
_MIN_LAPSE_DAYS: Final[int] = 21
_MAX_LAPSE_DAYS: Final[int] = 56
_ACCOUNT_COLUMNS: Final[tuple[str, ...]] = ("account_id", "status", "plan", "mrr", "trial_ends", "period_end")


@dataclass(frozen=True, slots=True)
class Truth:
    """What the simulator knows about a user. ``churned_at_ms`` is None unless the user stopped for good."""

    user_id: str
    persona: Persona
    signup_ms: int
    churned_at_ms: int | None


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; lambdas here are small (< 30)."""
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class _User:
    """Builds one user's events; the window end cuts everything after it."""

    def __init__(self, rng: random.Random, user_id: str, end_ms: int) -> None:
        self.rng = rng
        self.user_id = user_id
        self.end_ms = end_ms
        self.events: list[Event] = []
        self.hour_ms = int(min(max(rng.gauss(15.0, 3.5), 6.0), 23.5) * _HOUR_MS)  # preferred time of day
        self.session_mean = rng.uniform(2.0, 7.0)  # events per session
        cadence = rng.random()
        acc = 0.0
        self.cadence_days = _CADENCES[-1][0]
        for days, share in _CADENCES:
            acc += share
            if cadence < acc:
                self.cadence_days = days * rng.uniform(0.8, 1.25)
                break

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, ts_ms: int, type_: EventType, amount: float = 0.0) -> None:
        if ts_ms < self.end_ms:
            self.events.append(Event(self.user_id, ts_ms, type_, self._event_id(), amount))

    def session_start(self, day_ms: int) -> int:
        """A time on the UTC day containing ``day_ms``, around the preferred hour."""
        midnight = day_ms - day_ms % DAY_MS
        jitter = int(self.rng.gauss(0.0, 1.5 * _HOUR_MS))
        return midnight + min(max(self.hour_ms + jitter, 0), DAY_MS - 1)

    def session_after(self, ts_ms: int) -> int:
        """The first session time at or after ``ts_ms`` (today's if still ahead, else tomorrow's)."""
        t = self.session_start(ts_ms)
        return t if t >= ts_ms else self.session_start(ts_ms + DAY_MS)

    def session(self, ts_ms: int, mean_events: float, *, at_least: int = 1) -> int:
        """Browse from ``ts_ms``; returns the time of the last event."""
        n = max(at_least, _poisson(self.rng, mean_events))
        t = ts_ms
        for i in range(n):
            if i:
                t += 1_000 + int(self.rng.expovariate(1 / 45_000))  # ~45 s between clicks
            self.add(t, self.rng.choices(_SESSION_TYPES, _SESSION_WEIGHTS)[0])
        return t

    def gap_ms(self, mean_days: float) -> int:
        days = self.rng.gammavariate(_GAP_SHAPE, mean_days / _GAP_SHAPE)
        return max(int(days * DAY_MS), 2 * _HOUR_MS)

    def regular(self, from_ms: int, until_ms: int) -> int | None:
        """Sessions at the user's cadence in ``[from_ms, until_ms)``; the last event time (None if none)."""
        last: int | None = None
        t = from_ms
        while t < min(until_ms, self.end_ms):
            last = self.session(t, self.session_mean)
            t = self.session_after(last + self.gap_ms(self.cadence_days))
        return last

    def last_ts(self) -> int | None:
        return self.events[-1].ts_ms if self.events else None


def _pick_persona(rng: random.Random, shares: Mapping[Persona, float]) -> Persona:
    return rng.choices(PERSONAS, [shares.get(p, 0.0) for p in PERSONAS])[0]


def _simulate_user(rng: random.Random, user_id: str, persona: Persona, start_ms: int, end_ms: int,
                   signup_ms: int | None = None) -> tuple[list[Event], Truth]:
    """One user of ``persona`` in ``[start_ms, end_ms)``. ``signup_ms``: the user signs up at the
    first session from then on instead of at a time drawn in the window (a trial's users start
    with the trial, streams.offline.simulate_accounts); None draws exactly what it always drew."""
    window_ms = end_ms - start_ms
    u = _User(rng, user_id, end_ms)
    if persona == "returner" and window_ms < 5 * 7 * DAY_MS:
        persona = "steady"  # no room for a lapse and a return (see the module docstring)
    if persona == "returner":
        lapse_ms = rng.randint(_MIN_LAPSE_DAYS, _MAX_LAPSE_DAYS) * DAY_MS
        lapse_ms = min(lapse_ms, window_ms - 14 * DAY_MS)
    if signup_ms is not None:
        signup = u.session_after(signup_ms)
    elif persona == "one_time":
        signup = u.session_start(start_ms + int(rng.random() * window_ms))
    elif persona == "returner":
        latest = start_ms + max(0, window_ms - lapse_ms - 14 * DAY_MS)
        signup = u.session_start(start_ms + int(rng.random() * min(_SIGNUP_SPAN * window_ms, latest - start_ms)))
    else:
        signup = u.session_start(start_ms + int(rng.random() * _SIGNUP_SPAN * window_ms))
    churned: int | None = None

    if persona == "steady":
        u.regular(signup, end_ms)
    elif persona == "one_time":
        u.session(signup, 3.0)
        churned = u.last_ts()
    elif persona == "quitter":
        stop = signup + int(rng.uniform(10, 100) * DAY_MS)
        u.regular(signup, stop)
        if stop < end_ms:
            if rng.random() < 0.4 and u.events:
                u.add(u.events[-1].ts_ms + 60_000 + int(rng.expovariate(1 / 600_000)), "cancel")
            churned = u.last_ts()
    elif persona == "decliner":
        steady_until = signup + int(rng.uniform(14, 60) * DAY_MS)
        last = u.regular(signup, steady_until)
        decline_ms = int(rng.uniform(21, 56) * DAY_MS)
        stop = steady_until + decline_ms
        gap_days, size = u.cadence_days, u.session_mean
        growth = rng.uniform(1.15, 1.35)
        t = u.session_after((last or signup) + u.gap_ms(gap_days))
        while t < min(stop, end_ms):
            end = u.session(t, size)
            gap_days *= growth
            size = max(1.0, size * 0.88)
            t = u.session_after(end + u.gap_ms(gap_days))
        if stop < end_ms:
            churned = u.last_ts()
    elif persona == "buyer":
        interval_days = math.exp(rng.uniform(math.log(7), math.log(45)))
        basket = math.exp(rng.uniform(math.log(15), math.log(150)))
        stops = rng.random() < 0.35
        max_orders = 1 + int(rng.expovariate(1 / 3.0)) if stops else 10**9
        orders = 0
        t = signup
        while t < end_ms and orders < max_orders:
            last = u.session(t, max(1.0, u.session_mean - 1.0))
            amount = round(basket * rng.lognormvariate(0.0, 0.3), 2)
            u.add(last + 30_000 + int(rng.expovariate(1 / 120_000)), "purchase", amount)
            orders += 1
            # a browsing visit or two between orders, then the next order
            gap = max(int(rng.gauss(interval_days, 0.2 * interval_days) * DAY_MS), DAY_MS)
            for _ in range(_poisson(rng, 0.4 * interval_days / max(u.cadence_days, 1.0))):
                u.session(u.session_after(t + int(rng.random() * gap)), 2.0)
            t = u.session_after(t + gap)
        if stops and orders >= max_orders:
            churned = u.last_ts()
    elif persona == "returner":
        lapse_at = signup + int(rng.uniform(14, 42) * DAY_MS)
        lapse_at = min(lapse_at, start_ms + max(window_ms - lapse_ms - 7 * DAY_MS, 0))
        last = u.regular(signup, max(lapse_at, signup + 1))
        back = (last or signup) + lapse_ms
        u.regular(u.session_after(back), end_ms)
    u.events.sort(key=lambda e: e.ts_ms)
    if churned is not None and u.events:
        churned = u.events[-1].ts_ms
    return u.events, Truth(user_id, persona, signup, churned)


def generate(seed: int, n_users: int, start_ms: int, days: int,
             mix: Mapping[Persona, float] | None = None) -> tuple[list[Event], list[Truth]]:
    """Events of ``n_users`` simulated users over ``days`` from ``start_ms``, sorted by
    ``(ts_ms, event_id)``, and one :class:`Truth` per user (in user order).

    Each user draws from its own generator seeded by ``(seed, index)``, so a user's history
    does not depend on how many users come after it. ``mix``: persona -> relative weight
    (:func:`parse_mix`; default :data:`PERSONA_SHARES`), so a population unlike the one the
    shipped model was fitted on is one option away.
    """
    if n_users < 0:
        raise ValueError(f"n_users must not be negative, got {n_users}")
    if days < 1:
        raise ValueError(f"days must be at least 1 day, got {days}")
    end_ms = start_ms + days * DAY_MS
    shares = PERSONA_SHARES if mix is None else mix
    if not any(shares.get(p, 0.0) > 0 for p in PERSONAS):
        raise ValueError(f"persona mix {dict(shares)} gives no persona a positive weight")
    width = max(6, len(str(n_users)))
    events: list[Event] = []
    truth: list[Truth] = []
    for i in range(n_users):
        rng = random.Random(f"churnwatch-sim:{seed}:{i}")
        persona = _pick_persona(rng, shares)
        evs, t = _simulate_user(rng, f"u{i:0{width}d}", persona, start_ms, end_ms)
        events.extend(evs)
        truth.append(t)
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    return events, truth


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _open_write(path: str | Path) -> IO[str]:
    if str(path).endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, "w", encoding="utf-8", newline="")


def write_events_csv(path: str | Path, events: Iterable[Event], *, accounts: bool = False) -> int:
    """``user_id,ts,event_type,amount`` (ISO-8601 UTC, amount empty unless a purchase); gzipped when
    the name ends in ``.gz``. Returns the number of rows. ``accounts`` adds the columns
    ``account_id,status,plan,mrr,trial_ends,period_end`` (docs/REVENUE.md; ``mrr`` exact from cents;
    the times empty when not given)."""
    n = 0
    with _open_write(path) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("user_id", "ts", "event_type", "amount") + (_ACCOUNT_COLUMNS if accounts else ()))
        for ev in events:
            row = [ev.user_id, format_ts(ev.ts_ms), ev.type, f"{ev.amount:.2f}" if ev.type == "purchase" else ""]
            if accounts:
                sub = ev.subscription
                row.append(ev.account_id)
                if sub is None:
                    row.extend(("", "", "", "", ""))
                else:
                    row.extend((sub.status, sub.plan, money_text(sub.mrr_cents),
                                format_ts(sub.trial_ends_ms) if sub.trial_ends_ms else "",
                                format_ts(sub.period_end_ms) if sub.period_end_ms else ""))
            w.writerow(row)
            n += 1
    return n


def write_truth_csv(path: str | Path, truth: Iterable[Truth]) -> int:
    """``user_id,persona,signup,churned_at`` (ISO-8601 UTC; churned_at empty = not churned)."""
    n = 0
    with _open_write(path) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("user_id", "persona", "signup", "churned_at"))
        for t in truth:
            w.writerow((t.user_id, t.persona, format_ts(t.signup_ms), format_ts(t.churned_at_ms) if t.churned_at_ms is not None else ""))
            n += 1
    return n


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def parse_mix(text: str) -> dict[Persona, float]:
    """``--mix``: ``persona=weight`` pairs separated by commas -> persona -> weight; personas
    left out get 0, weights are relative (they need not sum to 1).

    >>> parse_mix("steady=2, quitter=1")
    {'steady': 2.0, 'quitter': 1.0}
    >>> parse_mix("steady=1,steady=2")
    Traceback (most recent call last):
    ...
    ValueError: --mix 'steady=2': steady is given twice
    """
    out: dict[Persona, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or name not in PERSONAS:
            raise ValueError(f"--mix {part!r}: expected persona=weight with a persona among {', '.join(PERSONAS)}")
        try:
            weight = float(raw)
        except ValueError:
            raise ValueError(f"--mix {part!r}: weight {raw.strip()!r} is not a number") from None
        if not (weight >= 0 and math.isfinite(weight)):
            raise ValueError(f"--mix {part!r}: weight must be a finite number >= 0, got {raw.strip()!r}")
        if name in out:  # the later one silently won
            raise ValueError(f"--mix {part!r}: {name} is given twice")
        out[cast(Persona, name)] = weight
    if not any(w > 0 for w in out.values()):
        raise ValueError(f"--mix {text!r}: give at least one persona a weight > 0, such as steady=0.5,quitter=0.5")
    if not math.isfinite(sum(out.values())):  # random.choices' own "Total of weights must be finite"
        raise ValueError(f"--mix {text!r}: the weights add up to more than a number can hold; they are relative, "
                         f"so smaller ones say the same (steady=1,buyer=1)")
    return out


def persona_counts(truth: Sequence[Truth]) -> dict[str, int]:
    """Users per persona, in the order of :data:`PERSONAS` (absent personas left out)."""
    counts = {p: 0 for p in PERSONAS}
    for t in truth:
        counts[t.persona] += 1
    return {p: n for p, n in counts.items() if n}
