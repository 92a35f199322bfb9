"""Simulated customer companies with several users, plans and a billing history, and its own MRR truth.

Why: churn in money (docs/REVENUE.md) needs histories where the right answer is known by
construction. Each account follows a plan timeline that this module writes itself, and labels every
change of the account's MRR *as it makes it* (a trial converting is new business, an upgrade
expansion, a downgrade or a dropped add-on contraction, cancelling everything churn, coming back
reactivation), so :func:`monthly_truth` is computed from the generator's own intentions, never by
models/revenue*.py, and a report that reproduces it is checked against something independent.

An account has 1-6 users (activity from :mod:`streams.offline.simulate`'s personas: decliners and
quitters in accounts that are more likely to leave). Its main subscription is keyed by its first
user, an optional add-on by its second (a subscription is identified by account and user).
Timeline: 60% start with a 14-day trial (65% of those convert at ``trial_ends``, the rest are
cancelled without ever paying), the others pay from signup. A trial's users are engaged (all
start in its first week and go on as their personas; 75% of the trials that convert, 20% of
the others), tried it once (15%, 35%) or never came (10%, 45%), so a trial-ending alert has
usage to judge; an unconverted trial's users stop at its end (:func:`_trial_activity`). Then
at each 30-day renewal the account may restate its subscription (a renewal notice: no
movement), upgrade, downgrade, add or drop the add-on, fail a payment (``past_due``, then
recover or be cancelled 3-10 days later) or cancel (add-on and main plan at the same instant).
A cancelled account comes back with a 30% chance 20-60 days later. An account whose users have
all sent ``cancel`` (the quitter persona's explicit cancellation; most often its only user)
cancels what is in force at the last of them, paid plan or trial, and its timeline ends there. About 3% of subscription events are sent twice (duplicates).
Everything derives from the seed.

>>> s = generate_accounts(seed=1, n_accounts=5, start_ms=1_767_225_600_000, days=60)
>>> s == generate_accounts(seed=1, n_accounts=5, start_ms=1_767_225_600_000, days=60)
True
"""

from __future__ import annotations

import csv
import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Final, Iterable

from models.events import Event
from models.subscription import Subscription
from models.revenue_ledger import money_text, percent_text
from streams.offline.simulate import DAY_MS, Persona, Truth, _simulate_user

__all__ = ["PLANS", "ADDON", "AccountSim", "MonthTruth", "TruthMovement", "generate_accounts", "monthly_truth",
           "write_mrr_truth_csv"]

#: (plan, price per seat in cents), cheapest first; an account pays price x seats.
PLANS: Final[tuple[tuple[str, int], ...]] = (("Basic", 1999), ("Pro", 4999), ("Business", 14999))
ADDON: Final[tuple[str, int]] = ("Analytics add-on", 999)
_TRIAL_DAYS: Final[int] = 14
#: A trial's usage by its outcome (converts -> shares of engaged and tried, the rest dead): chosen, not
#: measured, so that usage during the trial says much about conversion but not all (an engaged
#: team may still not buy, a company may buy what nobody tried).
_TRIAL_ENGAGEMENT: Final[dict[bool, tuple[float, float]]] = {True: (0.75, 0.15), False: (0.2, 0.35)}
_TRIAL_JOIN_DAYS: Final[int] = 7  # an engaged trial's other users sign up within its first week
_RENEWAL_MS: Final[int] = 30 * DAY_MS


@dataclass(frozen=True, slots=True)
class TruthMovement:
    """A change of one account's MRR as the generator meant it (``delta_cents`` signed)."""

    account_id: str
    ts_ms: int
    kind: str
    delta_cents: int
    spell_start_ms: int  # when the paying spell it belongs to began


@dataclass(frozen=True, slots=True)
class AccountSim:
    """A simulated population of accounts: events in ``(ts_ms, event_id)`` order and the truth."""

    events: tuple[Event, ...]
    movements: tuple[TruthMovement, ...]
    accounts: tuple[str, ...]
    users: tuple[Truth, ...]  # the persona truth of each user with events, as ``simulate --truth-out`` writes it


class _Account:
    """One account's billing timeline; ``state`` and ``record`` are the generator's own book."""

    def __init__(self, rng: random.Random, account_id: str, users: list[str], end_ms: int) -> None:
        self.rng, self.account_id, self.users, self.end_ms = rng, account_id, users, end_ms
        self.seats = len(users)
        self.events: list[Event] = []
        self.movements: list[TruthMovement] = []
        self.mrr = 0
        self.ever_paid = False
        self.spell_start = 0
        self.plan = 0
        self.addon = False
        self.trial: tuple[int, int, int] | None = None  # a trial's (start, end, plan) while the timeline has one

    def stmt(self, user: str, ts: int, status: str, plan: str, mrr: int, ends: int = 0) -> None:
        if ts >= self.end_ms:
            return
        sub = Subscription(status, plan, mrr, ends)  # type: ignore[arg-type]
        for _ in range(2 if self.rng.random() < 0.03 else 1):  # a duplicate now and then
            eid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self.events.append(Event(user, ts, "subscription", eid, 0.0, self.account_id, sub))

    def move(self, ts: int, mrr_after: int, kind: str) -> None:
        """Record the movement the generator intends; it knows which kind it is making."""
        if ts >= self.end_ms:
            return
        if kind in ("new", "reactivation"):
            self.spell_start = ts
            self.ever_paid = True
        self.movements.append(TruthMovement(self.account_id, ts, kind, mrr_after - self.mrr, self.spell_start))
        self.mrr = mrr_after

    def main_mrr(self) -> int:
        return PLANS[self.plan][1] * self.seats

    def subscribe(self, ts: int, plan: int | None = None) -> None:
        self.plan, self.addon = self.rng.choice((0, 0, 1, 1, 2)) if plan is None else plan, False
        self.stmt(self.users[0], ts, "active", PLANS[self.plan][0], self.main_mrr())
        self.move(ts, self.main_mrr(), "reactivation" if self.ever_paid else "new")

    def cancel_all(self, ts: int) -> None:
        if self.addon:
            self.stmt(self.users[1], ts, "cancelled", ADDON[0], 0)
        self.stmt(self.users[0], ts, "cancelled", PLANS[self.plan][0], 0)
        self.move(ts, 0, "churn")

    def change_plan(self, ts: int, to: int) -> None:
        kind = "expansion" if to > self.plan else "contraction"
        self.plan = to
        self.stmt(self.users[0], ts, "active", PLANS[to][0], self.main_mrr())
        self.move(ts, self.main_mrr() + (ADDON[1] if self.addon else 0), kind)


@dataclass(frozen=True, slots=True)
class _Trial:
    """An account's trial as its billing timeline decided it: when it ends, whether it converts."""

    ends_ms: int
    converts: bool


def _run_account(a: _Account, signup: int, churny: bool) -> _Trial | None:
    """The account's billing timeline; its trial, if it started with one."""
    rng = a.rng
    trial: _Trial | None = None
    if rng.random() < 0.6:
        plan = rng.randrange(len(PLANS))
        ends = signup + _TRIAL_DAYS * DAY_MS
        a.stmt(a.users[0], signup, "trial", PLANS[plan][0], PLANS[plan][1] * a.seats, ends)
        a.trial = (signup, ends, plan)
        if rng.random() >= 0.65:
            a.stmt(a.users[0], ends, "cancelled", PLANS[plan][0], 0)
            return _Trial(ends, False)
        trial = _Trial(ends, True)
        a.subscribe(ends, plan)
        start = ends
    else:
        start = signup
        a.subscribe(start)
    renewal = start + _RENEWAL_MS
    p_cancel, p_down = (0.12, 0.10) if churny else (0.02, 0.04)
    while renewal < a.end_ms:
        u = rng.random()
        back: int | None = None
        if u < p_cancel:
            a.cancel_all(renewal)
            back = renewal
        elif u < p_cancel + 0.06:  # failed payment
            a.stmt(a.users[0], renewal, "past_due", PLANS[a.plan][0], a.main_mrr())
            settle = renewal + rng.randint(3, 10) * DAY_MS + rng.randrange(DAY_MS)
            if rng.random() < 0.6:
                a.stmt(a.users[0], settle, "active", PLANS[a.plan][0], a.main_mrr())
            else:
                a.cancel_all(settle)
                back = settle
        elif u < p_cancel + 0.14 and a.plan < len(PLANS) - 1:
            a.change_plan(renewal, a.plan + 1)
        elif u < p_cancel + 0.14 + p_down and a.plan > 0:
            a.change_plan(renewal, a.plan - 1)
        elif u < 0.45 and len(a.users) > 1 and not a.addon and rng.random() < 0.3:
            t = renewal + rng.randrange(DAY_MS)
            a.addon = True
            a.stmt(a.users[1], t, "active", ADDON[0], ADDON[1])
            a.move(t, a.mrr + ADDON[1], "expansion")
        elif a.addon and rng.random() < 0.25:
            t = renewal + rng.randrange(DAY_MS)
            a.addon = False
            a.stmt(a.users[1], t, "cancelled", ADDON[0], 0)
            a.move(t, a.mrr - ADDON[1], "contraction")
        elif rng.random() < 0.5:  # a renewal notice restating the plan: nothing moves
            a.stmt(a.users[0], renewal, "active", PLANS[a.plan][0], a.main_mrr())
        if back is not None:
            if rng.random() >= 0.3:
                return trial
            renewal = back + rng.randint(20, 60) * DAY_MS + rng.randrange(DAY_MS)
            if renewal >= a.end_ms:
                return trial
            a.subscribe(renewal)
        renewal += _RENEWAL_MS
    return trial


def _personas(churny: bool) -> tuple[Persona, ...]:
    """The personas an account's users are drawn from: decliners and quitters where it is likely to leave."""
    return ("decliner", "quitter", "steady") if churny else ("steady", "steady", "returner", "buyer")


def _activity(rng: random.Random, users: list[str], account_id: str, churny: bool, signup: int, end_ms: int,
              truth: list[Truth]) -> list[Event]:
    personas = _personas(churny)
    out: list[Event] = []
    for user in users:
        evs, t = _simulate_user(rng, user, rng.choice(personas), signup, end_ms)
        out.extend(replace(e, account_id=account_id) for e in evs)
        truth.append(t)
    return out


def _trial_engagement(rng: random.Random, converts: bool) -> str:
    """How a trial's users take to the product: ``engaged`` (every user from the trial's first
    week on), ``tried`` (the user who started it, one session at the start) or ``dead`` (nobody
    comes). Shares by outcome in :data:`_TRIAL_ENGAGEMENT`."""
    engaged, tried = _TRIAL_ENGAGEMENT[converts]
    u = rng.random()
    return "engaged" if u < engaged else "tried" if u < engaged + tried else "dead"


def _trial_activity(rng: random.Random, users: list[str], account_id: str, churny: bool, signup: int, trial: _Trial,
                    end_ms: int, truth: list[Truth]) -> list[Event]:
    """The users of an account that starts with a trial, drawn from the trial's own generator.

    Engaged: each user signs up in the trial's first week (the one who started it at once) and
    lives as a persona of the account from then on; if the trial is not converted, access ends
    with it: their events stop at its end (truth: a quitter, churned at the last event). Tried:
    the first user's one session at the start (a one-time visitor). Dead: nobody uses it. A
    converted trial that was not engaged is adopted after the purchase: its users sign up over
    the rest of the window as in an account that paid from the start (the first user's trial
    session before that). A user with no event in the window has no truth row: the detector never
    sees them."""
    personas = _personas(churny)
    engagement = _trial_engagement(rng, trial.converts)
    out: list[Event] = []
    for j, user in enumerate(users):
        evs: list[Event] = []
        t: Truth | None = None
        if engagement == "engaged":
            join = signup + (0 if j == 0 else int(rng.random() * _TRIAL_JOIN_DAYS * DAY_MS))
            evs, t = _simulate_user(rng, user, rng.choice(personas), signup, end_ms, signup_ms=join)
            if not trial.converts and trial.ends_ms < end_ms:  # (a trial ending after the window is undecided)
                evs = [e for e in evs if e.ts_ms < trial.ends_ms]
                t = Truth(user, "quitter", t.signup_ms, evs[-1].ts_ms if evs else None)
        else:
            if engagement == "tried" and j == 0:
                evs, t = _simulate_user(rng, user, "one_time", signup, end_ms, signup_ms=signup)
            if trial.converts:
                later, after = _simulate_user(rng, user, rng.choice(personas), trial.ends_ms, end_ms)
                t = after if t is None else Truth(user, after.persona, t.signup_ms, after.churned_at_ms)
                evs = evs + later
        if evs and t is not None:
            out.extend(replace(e, account_id=account_id) for e in evs)
            truth.append(t)
    return out


def _everyone_cancelled_ms(activity: list[Event]) -> int | None:
    """When the last user of an account with activity sent ``cancel``, if every such user did
    (their cancel is their last event: the quitter persona); None otherwise."""
    users = {e.user_id for e in activity}
    cancels = {e.user_id: e.ts_ms for e in activity if e.type == "cancel"}
    return max(cancels.values()) if users and set(cancels) == users else None


def _cancelled_by_users(rng_state: object, account_id: str, users: list[str], end_ms: int, signup: int, churny: bool,
                        cut_ms: int) -> _Account | None:
    """The account's billing timeline when its users cancel everything at ``cut_ms``: the same
    timeline up to then (drawn again from the same state of its generator, so every statement
    before is the same event), then the subscription in force cancelled at that instant, nothing
    after. None when nothing is in force then (already cancelled: the timeline stays as it was).

    Why: a single-user account whose only user sent ``cancel`` kept paying (QA 2026-12-02: 5 of the
    10 cancelling users of 300 accounts, seed 7, e.g. acct0104 "cancelled 14 days ago" with MRR
    49.99 and the MRR truth counting it), which no billing system does; a user's cancel while
    others of the account stay is a seat leaving, and the plan goes on."""
    rng = random.Random()
    rng.setstate(rng_state)  # type: ignore[arg-type]
    a = _Account(rng, account_id, users, cut_ms)
    _run_account(a, signup, churny)
    a.end_ms = end_ms
    if a.mrr > 0:
        a.cancel_all(cut_ms)
    elif a.trial is not None and a.trial[0] <= cut_ms < a.trial[1]:
        a.stmt(a.users[0], cut_ms, "cancelled", PLANS[a.trial[2]][0], 0)
    else:
        return None
    return a


def generate_accounts(seed: int, n_accounts: int, start_ms: int, days: int) -> AccountSim:
    """Events (activity and subscriptions) of ``n_accounts`` accounts over ``days`` from ``start_ms``."""
    if n_accounts < 0:
        raise ValueError(f"n_accounts must not be negative, got {n_accounts}")
    if days < 1:
        raise ValueError(f"days must be at least 1 day, got {days}")
    end_ms = start_ms + days * DAY_MS
    width = max(4, len(str(n_accounts)))
    events: list[Event] = []
    movements: list[TruthMovement] = []
    names = []
    user_truth: list[Truth] = []
    for i in range(n_accounts):
        rng = random.Random(f"churnwatch-acct:{seed}:{i}")
        account_id = f"acct{i:0{width}d}"
        names.append(account_id)
        users = [f"{account_id}-u{j}" for j in range(1 + min(5, int(rng.expovariate(1 / 1.5))))]
        signup = start_ms + int(rng.random() * 0.7 * days * DAY_MS)
        churny = rng.random() < 0.35
        billing_rng = rng.getstate()
        a = _Account(rng, account_id, users, end_ms)
        trial = _run_account(a, signup, churny)
        if trial is None:
            activity = _activity(rng, users, account_id, churny, signup, end_ms, user_truth)
        else:  # from a generator of its own: the account's (billing, other accounts) draws stay as they were
            trial_rng = random.Random(f"churnwatch-trial:{seed}:{i}")
            activity = _trial_activity(trial_rng, users, account_id, churny, signup, trial, end_ms, user_truth)
        cut = _everyone_cancelled_ms(activity)
        if cut is not None:  # its users cancelled: so does its subscription
            a = _cancelled_by_users(billing_rng, account_id, users, end_ms, signup, churny, cut) or a
        events.extend(a.events)
        events.extend(activity)
        movements.extend(a.movements)
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    movements.sort(key=lambda m: (m.ts_ms, m.account_id))
    return AccountSim(tuple(events), tuple(movements), tuple(names), tuple(user_truth))


# ---------------------------------------------------------------------------------------------
# The generator's own monthly figures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthTruth:
    """One calendar month of the generator's truth: money in cents, rates as exact fractions."""

    month_ms: int
    start_mrr_cents: int
    new_cents: int
    expansion_cents: int
    contraction_cents: int
    churned_cents: int
    reactivation_cents: int
    end_mrr_cents: int
    customers_start: int
    churned_customers: int
    logo_churn: int  # churned customers that were customers at the month's start
    logo_churn_rate: Fraction | None
    gross_mrr_churn_rate: Fraction | None
    net_mrr_churn_rate: Fraction | None


def _month_starts(start_ms: int, end_ms: int) -> list[int]:
    """Starts of the calendar months overlapping ``[start_ms, end_ms)``, plus the one after them."""
    d = datetime.fromtimestamp(start_ms // 1000, tz=timezone.utc)
    y, m = d.year, d.month
    out: list[int] = []
    while not out or out[-1] < end_ms:
        out.append(int(datetime(y, m, 1, tzinfo=timezone.utc).timestamp()) * 1000)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def monthly_truth(movements: Iterable[TruthMovement], start_ms: int, days: int) -> list[MonthTruth]:
    """Per calendar month of the window: its MRR at the start, each movement class, logo churn and
    gross/net MRR churn, straight from the generator's labelled movements."""
    moves = list(movements)
    end_ms = start_ms + days * DAY_MS
    bounds = _month_starts(start_ms, end_ms)
    out = []
    for month, nxt in zip(bounds, bounds[1:]):
        before = [m for m in moves if m.ts_ms < month]
        inside = [m for m in moves if month <= m.ts_ms < nxt]
        per_account: dict[str, int] = {}
        for m in before:
            per_account[m.account_id] = per_account.get(m.account_id, 0) + m.delta_cents
        start_mrr = sum(per_account.values())
        total = {k: sum(abs(m.delta_cents) for m in inside if m.kind == k)
                 for k in ("new", "expansion", "contraction", "churn", "reactivation")}
        churned = [m for m in inside if m.kind == "churn"]
        logo = sum(m.spell_start_ms < month for m in churned)
        customers = sum(v > 0 for v in per_account.values())
        losses = total["churn"] + total["contraction"]
        out.append(MonthTruth(
            month, start_mrr, total["new"], total["expansion"], total["contraction"], total["churn"], total["reactivation"],
            start_mrr + total["new"] + total["expansion"] + total["reactivation"] - losses, customers, len(churned), logo,
            Fraction(logo, customers) if customers else None,
            Fraction(losses, start_mrr) if start_mrr else None,
            Fraction(losses - total["expansion"] - total["reactivation"], start_mrr) if start_mrr else None,
        ))
    return out


def write_mrr_truth_csv(path: str | Path, months: Iterable[MonthTruth]) -> int:
    """``month,start_mrr,new,expansion,contraction,churned,reactivation,end_mrr,customers_start,
    churned_customers,logo_churn,logo_churn_pct,gross_mrr_churn_pct,net_mrr_churn_pct``: money as
    exact decimals, percentages rounded half-even to 4 decimals (empty when MRR at the start was 0)."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("month", "start_mrr", "new", "expansion", "contraction", "churned", "reactivation", "end_mrr",
                    "customers_start", "churned_customers", "logo_churn", "logo_churn_pct", "gross_mrr_churn_pct",
                    "net_mrr_churn_pct"))
        for m in months:
            month = datetime.fromtimestamp(m.month_ms // 1000, tz=timezone.utc).strftime("%Y-%m")
            w.writerow((month, *(money_text(c) for c in (m.start_mrr_cents, m.new_cents, m.expansion_cents, m.contraction_cents,
                                                     m.churned_cents, m.reactivation_cents, m.end_mrr_cents)),
                        m.customers_start, m.churned_customers, m.logo_churn, percent_text(m.logo_churn_rate),
                        percent_text(m.gross_mrr_churn_rate), percent_text(m.net_mrr_churn_rate)))
            n += 1
    return n

