"""Churn in money and count per period, and cohorts, from the movements of models.revenue.

Counters only (integers in cents and counts), updated and reverted movement by movement, so a
worker can keep them with ``HINCRBY`` and the figures never depend on arrival order; rates are
exact :class:`fractions.Fraction` (docs/REVENUE.md has every formula and its source).

>>> from models.events import Event
>>> from models.subscription import Subscription
>>> def sub(user, day, status, mrr, acct="acme"):
...     return Event(user, 1_767_225_600_000 + day * 86_400_000, "subscription", f"e{day}{user}", 0.0, acct,
...                  Subscription(status, "Pro", mrr))
>>> book = RevenueBook("month")
>>> for ev in (sub("u1", 0, "active", 5000), sub("u2", 3, "active", 1000), sub("u2", 40, "cancelled", 0),
...            sub("u1", 45, "cancelled", 0)):
...     _ = book.update(ev)
>>> [(m.kind, m.delta_cents) for m in book.movements]
[('new', 5000), ('expansion', 1000), ('contraction', -1000), ('churn', -5000)]
>>> jan, feb = book.get(1_767_225_600_000, 1_772_323_200_000)
>>> (feb.start_mrr_cents, feb.churned_cents, feb.contraction_cents, feb.gross_mrr_churn_rate)
(6000, 5000, 1000, Fraction(1, 1))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, Literal, Mapping

from models.events import Event
from models.revenue import AccountState, Change, Movement

__all__ = [
    "PERIODS",
    "CohortRow",
    "Cohorts",
    "Ledger",
    "Period",
    "PeriodFigures",
    "RevenueBook",
    "cohort_dict",
    "figures_dict",
    "money_text",
    "next_period_ms",
    "percent_text",
    "period_start_ms",
]

Period = Literal["day", "week", "month"]
PERIODS: Final[tuple[Period, ...]] = ("day", "week", "month")
DAY_MS: Final[int] = 86_400_000


def period_start_ms(ts_ms: int, period: Period) -> int:
    """Start of the UTC day, ISO week (Monday) or calendar month containing ``ts_ms``.

    >>> period_start_ms(1_767_571_200_000, "week")  # Mon 2026-01-05 00:00 -> itself
    1767571200000
    >>> period_start_ms(1_768_000_000_000, "month")  # 2026-01-09 -> 2026-01-01
    1767225600000
    """
    day = ts_ms - ts_ms % DAY_MS
    if period == "day":
        return day
    if period == "week":
        return day - ((day // DAY_MS + 3) % 7) * DAY_MS  # 1970-01-01 was a Thursday
    if period == "month":
        d = datetime.fromtimestamp(day // 1000, tz=timezone.utc)
        return int(datetime(d.year, d.month, 1, tzinfo=timezone.utc).timestamp()) * 1000
    raise ValueError(f"period {period!r} is not one of {PERIODS}")


def next_period_ms(start_ms: int, period: Period) -> int:
    """Start of the period after the one starting at ``start_ms``."""
    if period == "day":
        return start_ms + DAY_MS
    if period == "week":
        return start_ms + 7 * DAY_MS
    return period_start_ms(period_start_ms(start_ms, "month") + 32 * DAY_MS, "month")


def money_text(cents: int) -> str:
    """Cents as an exact decimal amount.

    >>> money_text(123456), money_text(-5), money_text(0)
    ('1234.56', '-0.05', '0.00')
    """
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def percent_text(rate: Fraction | None, places: int = 4) -> str:
    """A rate as a percentage rounded half-even to ``places`` decimals ("" for no rate).

    >>> percent_text(Fraction(1, 3)), percent_text(Fraction(-1, 8)), percent_text(None)
    ('33.3333', '-12.5000', '')
    """
    if rate is None:
        return ""
    q = round(rate * 100, places)
    return str((Decimal(q.numerator) / Decimal(q.denominator)).quantize(Decimal(1).scaleb(-places)))



# ---------------------------------------------------------------------------------------------
# Per period
# ---------------------------------------------------------------------------------------------


def _rate(num: int, den: int) -> Fraction | None:
    return Fraction(num, den) if den else None


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """Churn in money and count over ``[start_ms, end_ms)`` (docs/REVENUE.md has the formulas).

    Money in cents; rates as exact fractions of 1 (None when the denominator is 0).
    ``churned_customers`` counts every account lost in the period; ``logo_churn`` only those that
    were customers at its start (ChartMogul's B2B formula), and ``logo_churn_rate`` divides that
    by ``customers_start``. NRR and GRR count the expansion, contraction and churn of the
    accounts that were customers at the start only.

    ``paused_cents`` / ``resumed_cents`` (QA22a F1, 2026-12-05): MRR that left with a pause and
    came back with a resume, ``paused_customers`` / ``resumed_customers`` how many accounts. A
    paused account stays a customer: no churned MRR, no logo lost, no reactivation. The MRR bridge
    (start -> end) carries them; NRR and GRR count an existing customer's pause as MRR not kept (as
    a contraction) and NRR its resume as MRR regained (as an expansion); the churn rates and the
    quick ratio leave both out (docs/REVENUE.md "Pauses").
    """

    start_ms: int
    end_ms: int
    start_mrr_cents: int
    new_cents: int
    expansion_cents: int
    contraction_cents: int
    churned_cents: int
    reactivation_cents: int
    end_mrr_cents: int
    customers_start: int
    new_customers: int
    reactivated_customers: int
    churned_customers: int
    customers_end: int
    logo_churn: int
    logo_churn_rate: Fraction | None
    gross_mrr_churn_rate: Fraction | None
    net_mrr_churn_rate: Fraction | None
    nrr: Fraction | None
    grr: Fraction | None
    quick_ratio: Fraction | None
    # of the churn, that of subscriptions cancelled while past due (failed payments never fixed:
    # involuntary, ``Movement.involuntary``; QA22a F5): MRR and accounts. The rest is voluntary
    churned_involuntary_cents: int = 0
    churned_involuntary_customers: int = 0
    paused_cents: int = 0
    resumed_cents: int = 0
    paused_customers: int = 0
    resumed_customers: int = 0
    # of the expansion, that of introductory prices ended at their first full-price renewal
    # (``Movement.intro_ended``; QA24a F2): MRR and accounts, and of the accounts that were customers
    # at the start (``intro_existing_cents``: what NRR counts of it). ``nrr_full_price``: NRR with
    # those customers' intro prices counted at the full price from the period's start (the start MRR
    # plus their step up): what is kept of the base at the prices it pays from then on, where NRR
    # counts a 1.00 -> 9.99 step as a customer's MRR growing ninefold (NRR itself without such a step)
    intro_cents: int = 0
    intro_customers: int = 0
    intro_existing_cents: int = 0
    nrr_full_price: Fraction | None = None

    @property
    def won(self) -> int:
        return self.new_customers + self.reactivated_customers

    @property
    def net_new_mrr_cents(self) -> int:
        return self.end_mrr_cents - self.start_mrr_cents


_TOTALS: Final[tuple[str, ...]] = (
    "new", "expansion", "contraction", "churned", "reactivation",  # cents
    "n_new", "n_reactivated", "n_churned", "n_churned_existing",  # customers
    "expansion_existing", "contraction_existing", "churned_existing",  # cents, customers at start
    "churned_involuntary", "n_churned_involuntary",  # of the churn, after failed payments (QA22a F5)
    "paused", "resumed", "n_paused", "n_resumed", "paused_existing", "resumed_existing",  # pauses (QA22a F1)
    "intro", "n_intro", "intro_existing",  # of the expansion, introductory prices ended (QA24a F2)
)
#: A movement kind's counter in :data:`_TOTALS`, where it is not the kind itself
_COUNTER: Final[dict[str, str]] = {"pause": "paused", "resume": "resumed"}


class Ledger:
    """Movements summed per calendar period (plain integer counters: what a worker would HINCRBY).

    ``update`` adds a movement, ``revert`` takes it back (a retraction), ``apply`` does both for a
    :class:`Change`; ``get`` turns counters into :class:`PeriodFigures`. The start MRR of a period
    is the sum of every earlier movement, so the figures do not depend on arrival order.
    """

    __slots__ = ("period", "totals")

    def __init__(self, period: Period) -> None:
        if period not in PERIODS:
            raise ValueError(f"period {period!r} is not one of {PERIODS}")
        self.period: Period = period
        self.totals: dict[int, dict[str, int]] = {}

    @classmethod
    def from_totals(cls, period: Period, totals: dict[int, dict[str, int]]) -> Ledger:
        """A ledger from stored counters (a worker's Redis hashes; a missing counter is 0)."""
        ledger = cls(period)
        for start, t in totals.items():
            ledger.totals[start] = {name: t.get(name, 0) for name in _TOTALS}
        return ledger

    def update(self, mv: Movement, sign: int = 1) -> Ledger:
        start = period_start_ms(mv.ts_ms, self.period)
        t = self.totals.get(start)
        if t is None:
            t = self.totals[start] = dict.fromkeys(_TOTALS, 0)
        existing = mv.spell_start_ms < start  # a customer when the period began
        amount = abs(mv.delta_cents) * sign
        if mv.kind == "new":
            t["new"] += amount
            t["n_new"] += sign
        elif mv.kind == "reactivation":
            t["reactivation"] += amount
            t["n_reactivated"] += sign
        elif mv.kind == "churn":
            t["churned"] += amount
            t["n_churned"] += sign
            if existing:
                t["churned_existing"] += amount
                t["n_churned_existing"] += sign
            if mv.involuntary:
                t["churned_involuntary"] += amount
                t["n_churned_involuntary"] += sign
        else:
            name = _COUNTER.get(mv.kind, mv.kind)
            t[name] += amount
            if existing:
                t[name + "_existing"] += amount
            if name != mv.kind:  # a pause or a resume: the accounts too
                t["n_" + name] += sign
            if mv.intro_ended:  # an expansion: an introductory price ended (QA24a F2)
                t["intro"] += amount
                t["n_intro"] += sign
                if existing:
                    t["intro_existing"] += amount
        return self

    def revert(self, mv: Movement) -> Ledger:
        return self.update(mv, -1)

    def apply(self, change: Change) -> Ledger:
        if change.retract is not None:
            self.revert(change.retract)
        if change.add is not None:
            self.update(change.add)
        return self

    def get(self, from_ms: int, to_ms: int) -> list[PeriodFigures]:
        """Figures of every period overlapping ``[from_ms, to_ms)``, oldest first."""
        first = period_start_ms(from_ms, self.period)
        mrr = customers = 0
        for start in sorted(self.totals):  # everything before the first period: the opening balance
            if start < first:
                t = self.totals[start]
                mrr += t["new"] + t["expansion"] + t["reactivation"] - t["contraction"] - t["churned"] + t["resumed"] - t["paused"]
                customers += t["n_new"] + t["n_reactivated"] - t["n_churned"]
        out: list[PeriodFigures] = []
        start = first
        while start < to_ms:
            end = next_period_ms(start, self.period)
            fig = _figures(start, end, mrr, customers, self.totals.get(start) or dict.fromkeys(_TOTALS, 0))
            out.append(fig)
            mrr, customers, start = fig.end_mrr_cents, fig.customers_end, end
        return out


def _figures(start: int, end: int, mrr: int, customers: int, t: dict[str, int]) -> PeriodFigures:
    gains = t["new"] + t["expansion"] + t["reactivation"]
    losses = t["contraction"] + t["churned"]
    kept = mrr - t["contraction_existing"] - t["churned_existing"] - t["paused_existing"]
    return PeriodFigures(
        start, end, mrr, t["new"], t["expansion"], t["contraction"], t["churned"], t["reactivation"],
        mrr + gains - losses + t["resumed"] - t["paused"], customers, t["n_new"], t["n_reactivated"], t["n_churned"],
        customers + t["n_new"] + t["n_reactivated"] - t["n_churned"], t["n_churned_existing"],
        logo_churn_rate=_rate(t["n_churned_existing"], customers),
        gross_mrr_churn_rate=_rate(losses, mrr),
        net_mrr_churn_rate=_rate(losses - t["expansion"] - t["reactivation"], mrr),
        nrr=_rate(kept + t["expansion_existing"] + t["resumed_existing"], mrr),
        grr=_rate(kept, mrr),
        quick_ratio=_rate(gains, losses),
        churned_involuntary_cents=t["churned_involuntary"], churned_involuntary_customers=t["n_churned_involuntary"],
        paused_cents=t["paused"], resumed_cents=t["resumed"], paused_customers=t["n_paused"], resumed_customers=t["n_resumed"],
        intro_cents=t["intro"], intro_customers=t["n_intro"], intro_existing_cents=t["intro_existing"],
        nrr_full_price=_rate(kept + t["expansion_existing"] + t["resumed_existing"], mrr + t["intro_existing"]),
    )


# ---------------------------------------------------------------------------------------------
# Cohorts by the month an account first paid
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CohortRow:
    """One signup-month cohort: its size and new-business MRR, then per month from the signup
    month on ``(month_start_ms, customers, mrr_cents, customer_retention, mrr_retention)`` as at
    the end of that month (retention relative to size and new-business MRR)."""

    cohort_ms: int
    customers: int
    value_cents: int
    months: tuple[tuple[int, int, int, Fraction | None, Fraction | None], ...]


class Cohorts:
    """Customers and MRR of each signup-month cohort, month by month (counters, like :class:`Ledger`)."""

    __slots__ = ("size", "value", "deltas")

    def __init__(self) -> None:
        self.size: dict[int, int] = {}
        self.value: dict[int, int] = {}
        self.deltas: dict[tuple[int, int], list[int]] = {}  # (cohort, month) -> [customers, mrr cents]

    def update(self, mv: Movement, sign: int = 1) -> Cohorts:
        cohort = period_start_ms(mv.first_paid_ms, "month")
        if mv.kind == "new":
            self.size[cohort] = self.size.get(cohort, 0) + sign
            self.value[cohort] = self.value.get(cohort, 0) + sign * mv.mrr_after_cents
        d = self.deltas.setdefault((cohort, period_start_ms(mv.ts_ms, "month")), [0, 0])
        d[0] += sign * mv.customers_delta
        d[1] += sign * mv.delta_cents
        return self

    def apply(self, change: Change) -> Cohorts:
        if change.retract is not None:
            self.update(change.retract, -1)
        if change.add is not None:
            self.update(change.add)
        return self

    def counters(self) -> dict[str, int]:
        """The counters as flat fields, what a worker HINCRBYs (zeros left out):
        ``<cohort ms>:size``, ``<cohort ms>:value`` and ``<cohort ms>:<month ms>:customers|mrr``.

        >>> c = Cohorts()
        >>> c.size, c.value, c.deltas = {0: 2}, {0: 900}, {(0, 0): [2, 900]}
        >>> Cohorts.from_counters(c.counters()).get(1) == c.get(1), sorted(c.counters())
        (True, ['0:0:customers', '0:0:mrr', '0:size', '0:value'])
        """
        out = {f"{c}:size": n for c, n in self.size.items() if n}
        out.update({f"{c}:value": v for c, v in self.value.items() if v})
        for (c, m), (n, mrr) in self.deltas.items():
            if n:
                out[f"{c}:{m}:customers"] = n
            if mrr:
                out[f"{c}:{m}:mrr"] = mrr
        return out

    @classmethod
    def from_counters(cls, counters: Mapping[str, int]) -> Cohorts:
        """Cohorts from :meth:`counters` fields (summed over a worker's buckets)."""
        out = cls()
        for name, v in counters.items():
            parts = name.split(":")
            if len(parts) == 2:
                target = out.size if parts[1] == "size" else out.value
                target[int(parts[0])] = target.get(int(parts[0]), 0) + v
            else:
                d = out.deltas.setdefault((int(parts[0]), int(parts[1])), [0, 0])
                d[0 if parts[2] == "customers" else 1] += v
        return out

    def get(self, to_ms: int) -> list[CohortRow]:
        """Every cohort that started before ``to_ms``, with its months up to the one containing ``to_ms - 1``."""
        last = period_start_ms(to_ms - 1, "month")
        rows = []
        for cohort in sorted(c for c in self.size if c <= last and self.size[c]):
            customers = mrr = 0
            months = []
            month = cohort
            while month <= last:
                d = self.deltas.get((cohort, month), (0, 0))
                customers, mrr = customers + d[0], mrr + d[1]
                months.append((month, customers, mrr, _rate(customers, self.size[cohort]), _rate(mrr, self.value.get(cohort, 0))))
                month = next_period_ms(month, "month")
            rows.append(CohortRow(cohort, self.size[cohort], self.value.get(cohort, 0), tuple(months)))
        return rows


# ---------------------------------------------------------------------------------------------
# All accounts (what the report runs)
# ---------------------------------------------------------------------------------------------


class RevenueBook:
    """Accounts, their movements, a :class:`Ledger` and :class:`Cohorts`, fed event by event.

    :attr:`movements` lists the movements in force (a retracted one is gone), for the report's
    detail and for tests; a worker keeps only the counters.
    """

    __slots__ = ("accounts", "ledger", "cohorts", "late", "_moves")

    def __init__(self, period: Period = "month") -> None:
        self.accounts: dict[str, AccountState] = {}
        self.ledger = Ledger(period)
        self.cohorts = Cohorts()
        self.late = 0
        self._moves: dict[tuple[int, str], Movement] = {}  # (ts, account) -> its movement then

    def update(self, event: Event) -> RevenueBook:
        if event.subscription is None:
            return self
        account = event.account
        st = self.accounts.get(account)
        if st is None:
            st = self.accounts[account] = AccountState()
        change = st.apply(event)
        self.late += change.late
        self.ledger.apply(change)
        self.cohorts.apply(change)
        if change.retract is not None:
            del self._moves[(event.ts_ms, account)]
        if change.add is not None:
            self._moves[(event.ts_ms, account)] = change.add
        return self

    @property
    def movements(self) -> list[Movement]:
        """Movements in force, by time then account."""
        return [self._moves[k] for k in sorted(self._moves)]

    def movements_by_account(self) -> dict[str, list[Movement]]:
        out: dict[str, list[Movement]] = {}
        for (_, account), mv in sorted(self._moves.items()):
            out.setdefault(account, []).append(mv)
        return out

    def get(self, from_ms: int, to_ms: int) -> list[PeriodFigures]:
        return self.ledger.get(from_ms, to_ms)


# ---------------------------------------------------------------------------------------------
# For people and programs: what `report`, `churn-rate --json` and the console print
# ---------------------------------------------------------------------------------------------

_RATES: Final[tuple[str, ...]] = ("logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "nrr", "grr")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def figures_dict(f: PeriodFigures) -> dict[str, Any]:
    """One period for people and programs: money as exact decimal text and in cents, rates in
    percent rounded half-even to 4 decimals (null when undefined), the quick ratio to 4 decimals."""
    cents = {
        "start_mrr": f.start_mrr_cents, "new": f.new_cents, "expansion": f.expansion_cents,
        "contraction": f.contraction_cents, "churned": f.churned_cents, "reactivation": f.reactivation_cents,
        "end_mrr": f.end_mrr_cents, "net_new_mrr": f.net_new_mrr_cents,
    }
    out: dict[str, Any] = {"period_start": _day(f.start_ms), "period_end": _day(f.end_ms)}
    out.update({k: money_text(v) for k, v in cents.items()})
    out.update({f"{k}_cents": v for k, v in cents.items()})
    out.update({
        "customers_start": f.customers_start, "new_customers": f.new_customers,
        "reactivated_customers": f.reactivated_customers, "churned_customers": f.churned_customers,
        "customers_end": f.customers_end, "won": f.won, "lost": f.churned_customers, "logo_churn": f.logo_churn,
    })
    if f.paused_cents or f.resumed_cents or f.paused_customers or f.resumed_customers:
        # only in a period with a pause or a resume: every other period's figures stay as they were
        out.update({"paused": money_text(f.paused_cents), "resumed": money_text(f.resumed_cents), "paused_cents": f.paused_cents,
                    "resumed_cents": f.resumed_cents, "paused_customers": f.paused_customers, "resumed_customers": f.resumed_customers})
    for name in _RATES:
        text = percent_text(getattr(f, name))
        out[name.replace("_rate", "") + "_pct"] = text or None
    q = f.quick_ratio
    out["quick_ratio"] = percent_text(q / 100) if q is not None else None
    # the churn split (QA22a F5): after failed payments (involuntary) and the rest (voluntary)
    split = {"churned_voluntary": f.churned_cents - f.churned_involuntary_cents, "churned_involuntary": f.churned_involuntary_cents}
    out.update({k: money_text(v) for k, v in split.items()})
    out.update({f"{k}_cents": v for k, v in split.items()})
    out["lost_involuntary"] = f.churned_involuntary_customers
    if f.intro_cents or f.intro_customers:
        # only in a period with an introductory price ended (QA24a F2): every other period's figures stay as they were
        out.update({"expansion_intro": money_text(f.intro_cents), "expansion_intro_cents": f.intro_cents,
                    "intro_customers": f.intro_customers, "nrr_full_price_pct": percent_text(f.nrr_full_price) or None})
    return out


def cohort_dict(c: CohortRow) -> dict[str, Any]:
    """One signup-month cohort with its months (money as exact text, retention in percent or null)."""
    return {
        "cohort": _day(c.cohort_ms)[:7], "customers": c.customers, "new_mrr": money_text(c.value_cents),
        "months": [{"month": _day(m)[:7], "customers": n, "mrr": money_text(mrr), "customer_retention_pct": percent_text(cr) or None,
                    "mrr_retention_pct": percent_text(rr) or None} for m, n, mrr, cr, rr in c.months],
    }
