"""Populations nobody here designed, written as the backtest's inputs (the quality table, issue 11).

Why these: a score tuned on ``churnwatch simulate`` can only be trusted on products that behave
like the simulator. The quality table therefore replays populations whose behaviour and labels
come from elsewhere:

- **CDNOW** (real purchases of a 1997 cohort of a CD retailer, shipped in the ``lifetimes``
  wheel; its 1/10 sample ``lifetimes/datasets/CDNOW_sample.txt``, 2,357 customers, the one of
  Fader, Hardie & Lee 2005, because replay cost follows users x as-of dates): one ``purchase`` event per transaction
  line, amount = dollars, at midnight UTC of its day. Churned = no purchase in the last 39 weeks
  of the data (1997-10-01 .. 1998-06-30, the holdout of Fader, Hardie & Lee 2005);
  ``churned_at`` = the last purchase. Buyers in those weeks count as retained (right-censored).
- **fightchurn** (the churn simulator of the book *Fighting Churn with Data*, ``fightchurn`` on
  PyPI): its own classes (``ChurnSimulation``, ``LogNormalBehaviorModel``, ``UtilityModel``,
  ``Customer``) with its own ``socialnet7`` config files, driven in memory: its
  ``run_simulation`` only adds the PostgreSQL writes, which we replace by collecting each
  ``Customer``'s events and subscriptions. Eight event types of its own; monthly subscriptions;
  churn decided each month from the utility of the month's activity. Churned = the last
  subscription ends inside the window; ``churned_at`` = that end. A second configuration adds
  plan tiers with usage limits, upgrades, downgrades, annual billing, discounts, a price cost in
  the utility and churn unrelated to behaviour (``FIGHTCHURN_CONFIGS``).
- **simulate-mix**: ``churnwatch simulate`` with a persona mix unlike the one the shipped model
  was fitted on (``SIMULATE_MIX``); labels = its ground truth.

Each population is split by user (a hash of the id, so neither signup order nor file order
matters): one half for training, the other half is what every scorer is judged on. Everything
derives from fixed seeds; files are cached under a folder keyed by the population's spec.

The fightchurn populations also carry their billing system's statements (docs/REVENUE.md): one
``subscription`` event per subscription period the simulator records (:func:`fc_statements`), at
the period's start, status ``active``, the plan, its MRR and ``period_end`` = the end of the
period paid for, as the billing system states it when the period begins (no look-ahead: a
churner's last statement is the ordinary one of its last period; no ``cancelled`` statement is
written, because fightchurn only ends a subscription at a month end where the label already
puts ``churned_at``, so it would carry nothing an as-of date before the churn may see). The MRR
is what fightchurn stores and charges: ``np.round(list price x (1 - discount))``, whole units
(the 9.99 plan is stated as 10.00, 13.49 with a 15% discount as 11.00), written to the cent.

The fightchurn populations also keep the simulator's own truth (``truth.json``, the quality
table's oracle, ``benchmarks.oracle``): per customer, every month end the simulator decided, with
the churn probability it used, and per as-of date the probability its utility function gives
from what exists at that date.
"""

from __future__ import annotations

import calendar
import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import math
import multiprocessing
import os
import random
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from benchmarks.oracle import churn_hazard, window_probability
from streams.timefmt import format_ts

__all__ = [
    "CDNOW_HOLDOUT_START",
    "FIGHTCHURN_CONFIGS",
    "Population",
    "Row",
    "STATEMENT_COLUMNS",
    "Statement",
    "SIMULATE_MIX",
    "SEEDED",
    "build",
    "cdnow_labels",
    "cdnow_rows",
    "fightchurn_event_oracle",
    "fc_statements",
    "fightchurn_rows",
    "fightchurn_spec",
    "is_held_out",
    "parse_cdnow",
    "read_rows",
    "seeded_folder",
    "simulate_rows",
    "write_split",
]

DAY_MS = 86_400_000
#: One event: (user_id, ts_ms, event type as the product names it, amount or None).
Row = tuple[str, int, str, "float | None"]
#: One billing statement: (user_id, ts_ms, plan, mrr in cents, period_end_ms), status ``active``,
#: written as a ``subscription`` event (docs/REVENUE.md).
Statement = tuple[str, int, str, int, int]
#: The columns a statement adds to the events file, read by their header names
#: (streams/offline/history.py; ``period_end`` is Stripe's ``current_period_end``).
STATEMENT_COLUMNS = ("status", "plan", "mrr", "period_end")

CDNOW_HOLDOUT_START = "1997-10-01"  # Fader, Hardie & Lee (2005): calibration 1997-01-01..09-30
CDNOW_END = "1998-07-01"  # the data's last day is 1998-06-30

#: Persona weights of the simulate-mix population (the shipped model's are PERSONA_SHARES: 38%
#: steady, 14% decliner, 12% quitter, 10% one-time, 16% buyer, 10% returner).
SIMULATE_MIX = "steady=0.22,decliner=0.08,quitter=0.25,one_time=0.05,buyer=0.28,returner=0.12"

#: Plan tiers of the second fightchurn configuration: limits on posts per month (the column after
#: bill_period), monthly and annual billing. Format of fightchurn's ``conf/<model>_plans.csv``.
#: fightchurn lets a customer pick a plan whose limit is within [1/3, 3] x its own rate (any rate up to
#: 3 x the first limit for the first plan). The ranges leave rates of 900-990 and above 9,000 posts a
#: month without a plan: fightchurn then fails an assertion, and :func:`_fc_customer` leaves such a
#: customer out (a product with no plan for them does not sign them up; counted in the facts).
_TIERS_PLANS = """plan,mrr,bill_period,post
basic,9.99,1,30
plus,14.99,1,90
pro,24.99,1,300
team,49.99,1,3000
basic_annual,8.99,12,30
plus_annual,13.49,12,90
pro_annual,22.49,12,300
team_annual,44.99,12,3000
"""

#: Customers at the start of each fightchurn population. Why 2,000 (500 until December 2026):
#: with 500 (813 and 645 customers in all, 44-61 churners per half) the bootstrap error of an
#: AUC difference between two scorers was 0.018-0.026, so the issue's "0.02 better" could not be
#: measured; errors shrink as one over the root of the users, and four times the customers
#: bring them to about 0.01. Sized by those errors alone, not by which scorer it favours. Measured
#: with 2,000 (3,230 and 2,555 customers, 163-273 churners per half): AUC errors 0.020-0.025 (were
#: 0.038-0.042), errors of the checks' differences 0.005-0.013.
FIGHTCHURN_CUSTOMERS = 2000

#: Label window of the fightchurn populations: a monthly product, "leaves within 30 days".
FIGHTCHURN_HORIZON_DAYS = 30

#: name -> (fightchurn config file, overrides of it, plan table or None, customers at the start).
FIGHTCHURN_CONFIGS: dict[str, dict[str, Any]] = {
    "fightchurn-socialnet7": {
        "config": "socialnet7",
        "overrides": {"start_date": "2020-01-01", "end_date": "2020-07-01"},
        "plans": None,
        "init_customers": FIGHTCHURN_CUSTOMERS,
        "seed": 71,
        "about": "fightchurn's own socialnet7 configuration (one plan at 9.99/month, 3 channels, growth 10%/month)",
    },
    "fightchurn-tiers": {
        "config": "socialnet7",
        "overrides": {
            "start_date": "2020-01-01", "end_date": "2020-07-01", "growth_rate": 0.05,
            "acausal_churn": 0.01, "discount_prob": 0.25, "weekday_scale": 0.1, "weekend_scale": -0.3,
            "population": {"web": 0.5, "appstore1": 0.3, "appstore2": 0.2},
            "utility": {"mrr": -0.2},
            "transition": {"upsell": {"scale": 0.05, "offset": 3.0}, "downsell": {"scale": 0.05, "offset": -1.0}},
        },
        "plans": _TIERS_PLANS,
        "init_customers": FIGHTCHURN_CUSTOMERS,
        "seed": 72,
        "about": "socialnet7 behaviour with post limits per plan tier, upgrades/downgrades, annual billing, "
                 "discounts, a price cost in the utility and 1%/month churn unrelated to behaviour",
    },
}


@dataclass(frozen=True, slots=True)
class Population:
    """A population written as the backtest's inputs, with how to judge it."""

    name: str
    about: str
    label: str  # what "churned" means here, in words
    horizon_days: int
    as_of: str  # START/END/STEP of the judged dates (``churnwatch backtest --as-of``)
    churn_after: str  # ``churnwatch train --churn-after`` for the model trained without labels
    end_ms: int  # the data's end (labels are observable up to here)
    #: Which (user, as-of) rows rank: "open" = what the backtest judges (users the default model
    #: does not report churned), "subscribed" = users whose subscription still runs at the as-of
    #: time (a billing system knows it; the gone are not at risk, they are gone).
    panel: str = "open"
    files: dict[str, str] = field(default_factory=dict)  # train/test events/labels paths
    counts: dict[str, int] = field(default_factory=dict)
    #: The generator's seed (None: real data, or a manifest written before the field existed).
    seed: int | None = None


def is_held_out(user_id: str) -> bool:
    """The judged half of the users (the other half trains): a hash of the id, not its order.

    >>> [is_held_out(u) for u in ("u1", "u2", "u3", "u4")]
    [False, False, False, True]
    """
    return zlib.crc32(user_id.encode("utf-8")) % 2 == 1


def _day_ms(text: str) -> int:
    return calendar.timegm(dt.date.fromisoformat(text).timetuple()) * 1000


# ---------------------------------------------------------------------------------------------
# CDNOW
# ---------------------------------------------------------------------------------------------


def parse_cdnow(lines: Iterable[str]) -> list[Row]:
    """CDNOW transaction lines -> events: ``id date cds dollars`` (the master file) or ``id
    sample_id date cds dollars`` (the 1/10 sample); one purchase at midnight UTC of its day.

    >>> parse_cdnow([" customer_id  date number_of_cds  dollar_value", " 00001 19970101  1   11.77", " 00004 0001 19970118  2   29.73", ""])
    [('00001', 852076800000, 'purchase', 11.77), ('00004', 853545600000, 'purchase', 29.73)]
    """
    out: list[Row] = []
    for lineno, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts or parts[0] == "customer_id":  # blank, or the master file's header
            continue
        if len(parts) not in (4, 5):
            raise ValueError(f"CDNOW line {lineno}: expected 4 or 5 fields, got {len(parts)}: {line.strip()!r}")
        user, day, dollars = parts[0], parts[-3], parts[-1]
        ts = calendar.timegm(dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])).timetuple()) * 1000
        out.append((user, ts, "purchase", float(dollars)))
    return out


def cdnow_labels(rows: Sequence[Row], quiet_from_ms: int) -> dict[str, int]:
    """user -> churn time: the last purchase of every customer who bought nothing from
    ``quiet_from_ms`` on (the holdout weeks).

    >>> cdnow_labels([("a", 5, "purchase", 1.0), ("a", 9, "purchase", 1.0), ("b", 3, "purchase", 1.0), ("b", 12, "purchase", 1.0)], 10)
    {'a': 9}
    """
    last: dict[str, int] = {}
    for user, ts, _, _ in rows:
        last[user] = max(ts, last.get(user, ts))
    return {user: ts for user, ts in sorted(last.items()) if ts < quiet_from_ms}


def _cdnow_file(name: str) -> Path:
    """A data file of the installed ``lifetimes`` wheel, found without importing lifetimes
    (its fitters import old pandas/numpy API we do not need)."""
    from importlib import metadata

    try:
        files = metadata.files("lifetimes") or []
    except metadata.PackageNotFoundError:
        raise RuntimeError("the quality table needs the 'quality' extra: pip install -e '.[quality]' (lifetimes)") from None
    for f in files:
        if str(f).endswith(f"datasets/{name}"):
            return Path(str(f.locate()))
    raise RuntimeError(f"lifetimes is installed but has no datasets/{name}")


def cdnow_rows(name: str = "CDNOW_sample.txt") -> list[Row]:
    return parse_cdnow(_cdnow_file(name).read_text(encoding="ascii").splitlines())


# ---------------------------------------------------------------------------------------------
# fightchurn, in memory
# ---------------------------------------------------------------------------------------------

#: The running simulation of the parent process, read by forked workers (never pickled).
_SIM: Any = None
#: (as-of dates in ms, horizon in ms) of the running simulation's population, for its oracle.
_AS_OF: tuple[list[int], int] = ([], FIGHTCHURN_HORIZON_DAYS * DAY_MS)


def _fc_as_of(spec: dict[str, Any]) -> str:
    """The judged as-of dates of a fightchurn population: weekly from its second month to the
    last date whose label window lies inside the data."""
    end = dt.date.fromisoformat(spec["overrides"]["end_date"])
    return f"2020-02-01/{(end - dt.timedelta(days=FIGHTCHURN_HORIZON_DAYS)).isoformat()}/7d"


def _fc_config(spec: dict[str, Any], out_dir: Path) -> Any:
    """fightchurn's own config files (``default.yaml`` + ``<model>.yaml``, merged as its hydra
    entry point merges them) with the spec's overrides and seed."""
    from importlib import resources

    from omegaconf import OmegaConf

    conf = resources.files("fightchurn.churnsim") / "conf"
    base = OmegaConf.merge(OmegaConf.load(str(conf / "default.yaml")), OmegaConf.load(str(conf / f"{spec['config']}.yaml")))
    cfg = OmegaConf.merge(base, OmegaConf.create(spec["overrides"]))
    for key in ("defaults", "hydra"):
        cfg.pop(key, None)
    cfg.random_seed = spec["seed"]
    cfg.init_customers = spec["init_customers"]
    os.environ["CHURN_OUT_DIR"] = str(out_dir)  # where its classes copy their inputs
    return cfg


def _fc_seed(seed: int, index: int) -> None:
    """Both generators fightchurn draws from (``random`` and ``numpy.random``), per customer, so
    a customer's history depends on neither the process that simulates it nor its neighbours."""
    import numpy as np

    random.seed(f"fightchurn:{seed}:{index}")
    np.random.seed(zlib.crc32(f"fightchurn:{seed}:{index}".encode()))


def _fc_intent(sim: Any, utility: float) -> float:
    """P(a churn intent at a month end) as ``customer_month_end`` draws it: acausal churn first,
    else fightchurn's ``UtilityModel.churn_probability`` of the utility."""
    acausal = float(sim.args.acausal_churn)
    return acausal + (1.0 - acausal) * float(sim.util_mod.churn_probability(utility))


def _fc_utility(sim: Any, propensity: float, counts: Any, mrr: float, discount: float) -> float:
    """fightchurn's own ``UtilityModel.utility_function`` applied to ``counts`` (cumulative, as
    the simulator keeps them) with a satisfaction propensity and a price, on a stand-in, so no
    simulated customer is touched."""
    from types import SimpleNamespace

    probe = SimpleNamespace(event_counts=counts, mrr=mrr, discount=discount, current_utility=None, utility_contribs=None,
                            satisfaction_propensity=propensity)
    return float(sim.util_mod.utility_function(probe))


def _fc_decision(sim: Any, customer: Any, next_month: dt.date) -> list[Any]:
    """The month end the simulator is about to decide, as it stands before the decision:
    [time ms, utility, P(intent), P(leaves here) (``oracle.churn_hazard``), renewal, intents so
    far, bill period, mrr, discount]. The utility is the simulator's own (its function on the
    customer's counts); the attributes that function writes are restored, and it draws no random
    number, so the simulation is the same with or without this record."""
    saved = customer.current_utility, customer.utility_contribs
    utility = float(sim.util_mod.utility_function(customer))
    customer.current_utility, customer.utility_contribs = saved
    p_intent = _fc_intent(sim, utility)
    renewal = bool(next_month >= customer.next_renewal)
    intents, period = int(customer.churn_intent_count), int(customer.bill_period)
    return [_day_ms(next_month.isoformat()), utility, p_intent, churn_hazard(p_intent, renewal, intents, period), renewal, intents,
            period, float(customer.mrr), float(customer.discount)]


def _fc_truth(sim: Any, customer: Any, decisions: list[list[Any]]) -> dict[str, Any]:
    """The oracle's inputs for one simulated customer (``benchmarks.oracle``): its decisions, and
    per as-of date ``d`` of ``_AS_OF`` the churn probability within the label window computed
    from what exists at ``d``: ``at_d`` with the counts before ``d`` plus the counts the
    customer's true monthly rates make expected until each month end (a plug-in, day-of-week
    swings and plan limits left out), ``last_30d`` with the counts of the 30 days before ``d``
    only; both with the true propensity, price and each month end's state. ``recount_error``:
    the largest difference between a decision's utility and the same function on the events
    before it, counted here (0 when the counting matches the simulator's)."""
    import numpy as np

    as_of_ms, horizon_ms = _AS_OF
    out: dict[str, Any] = {"propensity": float(customer.satisfaction_propensity), "decisions": decisions, "at_d": []}
    if customer.users is not None or customer.event_counts is None:  # multi-user accounts: not in these configurations
        return out
    n = len(customer.event_counts)
    ts = np.array([calendar.timegm(e[0].timetuple()) * 1000 for e in customer.events], dtype=np.int64)
    kind = np.array([e[1] for e in customer.events], dtype=np.int64)
    weight = np.array([1.0 if e[3] is None else float(e[3]) for e in customer.events])
    rates = np.zeros(n)
    rates[np.asarray(customer.behavior_rates.index, dtype=np.int64)] = customer.behavior_rates["monthly_rate"].to_numpy(dtype=np.float64)

    def counts(lo: int, hi: int) -> Any:
        mask = (ts >= lo) & (ts < hi)
        return np.bincount(kind[mask], weights=weight[mask], minlength=n)

    lo = np.iinfo(np.int64).min
    out["recount_error"] = max((abs(_fc_utility(sim, customer.satisfaction_propensity, counts(lo, d[0]), d[7], d[8]) - d[1]) for d in decisions), default=0.0)
    start_ms = _day_ms(customer.start_date.isoformat())
    for day in as_of_ms:
        inside = [d for d in decisions if day < d[0] <= day + horizon_ms]
        if day <= start_ms or not inside:
            continue
        before, recent = counts(lo, day), counts(day - 30 * DAY_MS, day)
        probs = []
        for base, plug in ((before, True), (recent, False)):
            hazards = []
            for d in inside:
                seen = base + rates * ((d[0] - day) / (30 * DAY_MS)) if plug else base
                hazards.append(churn_hazard(_fc_intent(sim, _fc_utility(sim, customer.satisfaction_propensity, seen, d[7], d[8])), d[4], d[5], d[6]))
            probs.append(window_probability([d[0] for d in inside], hazards, day, horizon_ms))
        out["at_d"].append([day, *probs])
    return out


def fc_statements(subscriptions: Sequence[tuple[Any, ...]], stated_ends: Sequence[dt.date], end_ms: int) -> list[tuple[int, str, int, int]]:
    """The billing statements of one customer: (ts_ms, plan, mrr cents, period_end_ms), one per
    subscription period fightchurn records, at the period's start, those before the data's end.

    ``subscriptions`` are fightchurn's tuples (plan, start, end, mrr, quantity, units, bill
    period, discount), ``mrr`` already discounted and rounded by fightchurn (``Customer.set_plan``);
    ``stated_ends[i]`` is the end period ``i`` had when it began (its renewal date). Why not the
    tuple's end: fightchurn moves it to the churn month end when a customer on a longer plan
    leaves mid-term, which the billing system could not state at the period's start.

    >>> d = dt.date
    >>> subs = [("plus", d(2020, 1, 5), d(2020, 2, 5), 15.0, 90, "post", 1, 0.0),
    ...         ("plus_annual", d(2020, 2, 5), d(2020, 5, 5), 11.0, 90, "post", 12, 0.15)]
    >>> [(format_ts(t), p, c, format_ts(e)) for t, p, c, e in fc_statements(subs, [d(2020, 2, 5), d(2021, 2, 5)], _day_ms("2020-07-01"))]
    [('2020-01-05T00:00:00.000Z', 'plus', 1500, '2020-02-05T00:00:00.000Z'), ('2020-02-05T00:00:00.000Z', 'plus_annual', 1100, '2021-02-05T00:00:00.000Z')]
    """
    from models.subscription import mrr_cents

    if len(stated_ends) != len(subscriptions):
        raise ValueError(f"{len(stated_ends)} stated ends for {len(subscriptions)} subscriptions")
    out = []
    for sub, stated_end in zip(subscriptions, stated_ends):
        ts = _day_ms(sub[1].isoformat())
        if ts < end_ms:
            out.append((ts, str(sub[0]), mrr_cents(round(float(sub[3]), 2)), _day_ms(stated_end.isoformat())))
    return out


def _fc_customer(task: tuple[int, int, str]) -> tuple[list[tuple[int, str, float | None]], int | None, str, int, dict[str, Any] | None,
                                                      list[tuple[int, str, int, int]], int]:
    """Simulate customer ``index`` starting in the month ``start`` with the forked ``_SIM``:
    (events as (ts_ms, type, value), subscription end if it churned, channel, plan changes, the
    simulator's truth for the oracle (:func:`_fc_truth`), billing statements
    (:func:`fc_statements`), billing periods used)."""
    seed, index, start = task
    sim = _SIM
    _fc_seed(seed, index)
    decisions: list[list[Any]] = []
    stated_ends: list[dt.date] = []  # each subscription's end as it began (fightchurn may move it later)
    decide = sim.customer_month_end

    def recorded(customer: Any, next_month: dt.date) -> bool:
        decisions.append(_fc_decision(sim, customer, next_month))
        stated_ends.extend(s[2] for s in customer.subscriptions[len(stated_ends):])  # before the decision can move one
        return decide(customer, next_month)

    sim.customer_month_end = recorded  # an instance attribute: simulate_customer looks it up on self
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line every 100 customers
        try:
            customer = sim.simulate_customer(dt.date.fromisoformat(start))
        except AssertionError:  # no plan for its usage (_TIERS_PLANS): never a customer
            return [], None, "", 0, None, [], 0
        finally:
            del sim.customer_month_end
    names = dict(zip(customer.behavior_rates.index, customer.behavior_rates["behavior"]))
    end_ms = _day_ms(sim.end_date.isoformat())
    events = []
    for when, kind, _user, value in customer.events:
        ts = calendar.timegm(when.timetuple()) * 1000
        if ts < end_ms:
            events.append((ts, str(names[kind]), None if value is None else float(value)))
    last_end = customer.subscriptions[-1][2]
    churned = _day_ms(last_end.isoformat()) if last_end <= sim.end_date else None
    plans = len({s[0] for s in customer.subscriptions})
    stated_ends.extend(s[2] for s in customer.subscriptions[len(stated_ends):])  # added by the last decision: never moved
    statements = fc_statements(customer.subscriptions, stated_ends, end_ms)
    periods = len({int(s[6]) for s in customer.subscriptions})
    return events, churned, str(customer.channel), plans, _fc_truth(sim, customer, decisions), statements, periods


def _fc_month_plan(cfg: Any) -> list[str]:
    """Start month of every customer, as ``ChurnSimulation.run_simulation`` creates them:
    ``init_customers`` in the first month, then growth compounding monthly."""
    from dateutil.relativedelta import relativedelta

    start, end = dt.date.fromisoformat(cfg.start_date), dt.date.fromisoformat(cfg.end_date)
    months = [start.isoformat()] * int(cfg.init_customers)
    month, n = start + relativedelta(months=1), math.ceil(cfg.init_customers * cfg.growth_rate)
    while month < end:
        months += [month.isoformat()] * n
        month, n = month + relativedelta(months=1), math.ceil(n * (1.0 + cfg.growth_rate))
    return months


def fightchurn_rows(spec: dict[str, Any], work: Path, jobs: int = 1) -> tuple[list[Row], dict[str, int], dict[str, str], dict[str, Any],
                                                                          dict[str, Any], list[Statement]]:
    """(events, churn times, channel per customer, facts, the simulator's truth per customer
    (:func:`_fc_truth`), billing statements (:func:`fc_statements`)) of one ``FIGHTCHURN_CONFIGS`` entry."""
    global _SIM, _AS_OF
    from streams.cli.argtypes import parse_as_of
    import numpy as np
    import pandas as pd

    from fightchurn.churnsim.churnsim import ChurnSimulation
    from fightchurn.churnsim.customer import Customer

    work.mkdir(parents=True, exist_ok=True)
    cfg = _fc_config(spec, work)
    Customer.ID_FILE = str(work / "customer_id.txt")  # ids of its own; ours are the task index
    Customer.ID_LOCK_FILE = str(work / "customer_id.lock")
    random.seed(spec["seed"])
    with contextlib.redirect_stdout(io.StringIO()):
        sim = ChurnSimulation(cfg)  # seeds numpy with cfg.random_seed while building its models
    if spec["plans"]:
        sim.plans = pd.read_csv(io.StringIO(spec["plans"]), index_col=0)
    # The day-of-week multipliers are drawn on first use and shared by every customer: draw them
    # all now, in date order, so they do not depend on which customer meets a date first.
    # (The cache is a class attribute: empty it, or a previous configuration's days would be reused.)
    Customer.date_multipliers = {}
    np.random.seed(spec["seed"])
    day = sim.start_date
    while day <= sim.end_date + dt.timedelta(days=400):
        Customer.get_day_multiplier(day, cfg)
        day += dt.timedelta(days=1)
    tasks = [(spec["seed"], i, month) for i, month in enumerate(_fc_month_plan(cfg))]
    _SIM, _AS_OF = sim, (parse_as_of(_fc_as_of(spec)), FIGHTCHURN_HORIZON_DAYS * DAY_MS)
    try:
        if jobs > 1:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                results = pool.map(_fc_customer, tasks, chunksize=16)
        else:
            results = [_fc_customer(t) for t in tasks]
    finally:
        _SIM = None
    width = len(str(len(tasks)))
    rows: list[Row] = []
    labels: dict[str, int] = {}
    channels: dict[str, str] = {}
    truth: dict[str, Any] = {}
    statements: list[Statement] = []
    changed = period_changed = before_stated_end = 0
    no_plan = 0
    for i, (events, churned, channel, plans, known, billed, periods) in enumerate(results):
        if not channel:
            no_plan += 1
            continue
        user = f"c{i:0{width}d}"
        rows.extend((user, ts, kind, value) for ts, kind, value in events)
        statements.extend((user, *b) for b in billed)
        channels[user] = channel
        truth[user] = known
        changed += plans > 1
        period_changed += periods > 1
        if churned is not None:
            labels[user] = churned
            before_stated_end += bool(billed) and churned < billed[-1][3]  # left mid-term (fightchurn's longer plans)
    # every churn is a decision the truth holds, taken with a probability above 0
    unexplained = sum(1 for u, t in labels.items() if not any(d[0] == t and d[3] > 0 for d in truth[u]["decisions"]))
    facts = {"customers": len(tasks) - no_plan, "customers_without_a_plan": no_plan, "customers_with_plan_changes": changed,
             "event_types": sorted({r[2] for r in rows}), "churns_not_at_a_recorded_decision": unexplained,
             "oracle_recount_error_max": max((t.get("recount_error", 0.0) for t in truth.values()), default=0.0),
             "billing_statements": len(statements), "customers_who_changed_billing_period": period_changed,
             "churns_before_the_stated_period_end": before_stated_end}
    return rows, labels, channels, facts, truth, statements


def fightchurn_event_oracle(spec: dict[str, Any], work: Path, truth: dict[str, Any], rows: Sequence[Row],
                            keys: Sequence[tuple[str, int]], horizon_ms: int, quantiles: int = 15) -> list[float]:
    """The oracle a model of the events could reach: for each row (user, as-of ``d``), P(churn
    within ``(d, d + horizon]``) by the simulator's own utility and churn functions from what
    the events show at ``d`` (counts before ``d``, plus the counts the user's own rate so far
    makes expected until each month end), the price and the renewal dates (a billing system
    knows both), with the hidden satisfaction propensity inferred as a Bayesian would: over
    ``quantiles`` quantiles of the training half's propensities (equal prior weight), each
    weighted by the likelihood that the user survived its month ends before ``d``, with the
    utilities the events gave at each. ``rows``: the judged users' events."""
    import numpy as np

    from fightchurn.churnsim.churnsim import ChurnSimulation

    saved = random.getstate(), np.random.get_state()  # ChurnSimulation seeds both: leave them as they were
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            sim = ChurnSimulation(_fc_config(spec, work))
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    names = [str(n) for n in sim.util_mod.behave_names]
    props = [t["propensity"] for u, t in truth.items() if not is_held_out(u)]
    prior = np.quantile(props, (np.arange(quantiles) + 0.5) / quantiles)

    def hazard(counts: Any, d: list[Any], p: float) -> float:
        return churn_hazard(_fc_intent(sim, _fc_utility(sim, p, counts, d[7], d[8])), d[4], d[5], d[6])

    by_user: dict[str, tuple[list[int], list[int]]] = {}
    for user, ts, kind, _ in rows:
        if kind not in names:  # a billing statement: not one of the behaviours the utility counts
            continue
        times, kinds = by_user.setdefault(user, ([], []))
        times.append(ts)
        kinds.append(names.index(kind))
    events = {u: (np.array(t, dtype=np.int64), np.array(k, dtype=np.int64)) for u, (t, k) in by_user.items()}
    survived: dict[str, Any] = {}  # user -> P(stays at each month end | propensity), decisions x quantiles
    out = []
    for user, day in keys:
        decisions = truth[user]["decisions"]
        inside = [d for d in decisions if day < d[0] <= day + horizon_ms]
        ts, kind = events.get(user, (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)))
        if not inside or not len(ts) or ts[0] >= day:
            out.append(0.0)
            continue
        if user not in survived:
            survived[user] = np.array([[1.0 - hazard(np.bincount(kind[ts < d[0]], minlength=len(names)), d, p) for p in prior]
                                       for d in decisions]).reshape(len(decisions), len(prior))
        past = [i for i, d in enumerate(decisions) if d[0] <= day]
        weight = np.prod(survived[user][past], axis=0)
        weight = weight / weight.sum() if weight.sum() > 0 else np.full(len(prior), 1.0 / len(prior))
        before = np.bincount(kind[ts < day], minlength=len(names)).astype(np.float64)
        rate = before / max(day - int(ts[0]), DAY_MS)  # per ms, the user's own so far
        seen = [before + rate * (d[0] - day) for d in inside]
        probs = [window_probability([d[0] for d in inside], [hazard(c, d, p) for c, d in zip(seen, inside)], day, horizon_ms) for p in prior]
        out.append(float(np.dot(weight, probs)))
    return out


# ---------------------------------------------------------------------------------------------
# churnwatch simulate with another mix
# ---------------------------------------------------------------------------------------------


def simulate_rows(seed: int, users: int, start: str, days: int, mix: str) -> tuple[list[Row], dict[str, int], dict[str, str]]:
    from streams.offline.simulate import generate, parse_mix

    events, truth = generate(seed, users, _day_ms(start), days, parse_mix(mix))
    rows: list[Row] = [(e.user_id, e.ts_ms, e.type, e.amount if e.type == "purchase" else None) for e in events]
    labels = {t.user_id: t.churned_at_ms for t in truth if t.churned_at_ms is not None}
    return rows, labels, {t.user_id: t.persona for t in truth}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def write_split(rows: Iterable[Row], labels: dict[str, int], persona: dict[str, str], folder: Path,
                statements: Sequence[Statement] | None = None) -> dict[str, Any]:
    """Events and labels of each half (:func:`is_held_out`) as the backtest reads them:
    ``events_{train,test}.csv`` (``user_id,ts,event_type,amount``) and ``labels_{train,test}.csv``
    (``user_id,churned_at,persona``, every user listed, churned_at empty when retained).

    With ``statements`` (a billing system's, even none) the events files get the columns
    ``status,plan,mrr,period_end`` (:data:`STATEMENT_COLUMNS`, read by header name) and one
    ``subscription`` row per statement, after the events (a history's rows may come in any order).
    """
    from models.revenue_ledger import money_text

    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"{kind}_{half}": folder / f"{kind}_{half}.csv" for kind in ("events", "labels") for half in ("train", "test")}
    billed = statements is not None
    counts = {"events_train": 0, "events_test": 0, **({"statements_train": 0, "statements_test": 0} if billed else {})}
    users: set[str] = set()
    blank = ("",) * len(STATEMENT_COLUMNS) if billed else ()
    with open(paths["events_train"], "w", newline="") as f_train, open(paths["events_test"], "w", newline="") as f_test:
        writers = {False: csv.writer(f_train, lineterminator="\n"), True: csv.writer(f_test, lineterminator="\n")}
        for w in writers.values():
            w.writerow(("user_id", "ts", "event_type", "amount") + (STATEMENT_COLUMNS if billed else ()))
        for user, ts, kind, amount in rows:
            held = is_held_out(user)
            writers[held].writerow((user, format_ts(ts), kind, "" if amount is None else f"{amount:.2f}", *blank))
            counts["events_test" if held else "events_train"] += 1
            users.add(user)
        for user, ts, plan, cents, period_end_ms in statements or ():
            held = is_held_out(user)
            writers[held].writerow((user, format_ts(ts), "subscription", "", "active", plan, money_text(cents), format_ts(period_end_ms)))
            counts["statements_test" if held else "statements_train"] += 1
            users.add(user)
    for half, held in (("train", False), ("test", True)):
        mine = sorted(u for u in users | labels.keys() if is_held_out(u) == held)
        with open(paths[f"labels_{half}"], "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(("user_id", "churned_at", "persona"))
            for user in mine:
                w.writerow((user, format_ts(labels[user]) if user in labels else "", persona.get(user, "")))
        counts[f"users_{half}"] = len(mine)
        counts[f"churners_{half}"] = sum(1 for u in mine if u in labels)
    return {"files": {k: str(v) for k, v in paths.items()}, "counts": counts}


#: The generated populations, whose seed :func:`build` can replace (CDNOW is real data: no seed).
SEEDED = (*FIGHTCHURN_CONFIGS, "simulate-mix")
#: The seed of simulate-mix's population in the table.
SIMULATE_SEED = 11


def fightchurn_spec(name: str, seed: int | None = None) -> dict[str, Any]:
    """A ``FIGHTCHURN_CONFIGS`` entry, with ``seed`` in place of its own (every other field the same).

    >>> fightchurn_spec("fightchurn-tiers", 84)["seed"], fightchurn_spec("fightchurn-tiers")["seed"]
    (84, 72)
    """
    spec = FIGHTCHURN_CONFIGS[name]
    return spec if seed is None else {**spec, "seed": seed}


def seeded_folder(work: Path, name: str, seed: int | None) -> Path:
    """Where :func:`build` caches a population: its own folder with its own seed (the table's),
    ``<name>@seed<N>`` with another one, so neither overwrites the other.

    >>> seeded_folder(Path("w"), "simulate-mix", None).as_posix(), seeded_folder(Path("w"), "simulate-mix", 21).as_posix()
    ('w/simulate-mix', 'w/simulate-mix@seed21')
    """
    return work / (name if seed is None else f"{name}@seed{seed}")


def _cached(folder: Path, spec: dict[str, Any], make: Callable[[], tuple[Population, dict[str, Any]]]) -> tuple[Population, dict[str, Any]]:
    """Reuse ``folder`` when it was written from the same ``spec`` (the generators are seeded)."""
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    manifest = folder / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("key") == key and all(Path(p).exists() for p in data["population"]["files"].values()):
            return Population(**data["population"]), data["facts"]
    pop, facts = make()
    folder.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"key": key, "population": asdict(pop), "facts": facts}, indent=2) + "\n")
    return pop, facts


def build(work: Path, jobs: int = 1, names: Sequence[str] | None = None,
          seed: int | None = None) -> Iterator[tuple[Population, dict[str, Any], list[Row]]]:
    """Every population of the table (or those in ``names``): (population, facts, the judged
    half's events with their own type names, read back from its file for the baselines).

    ``seed``: the generated populations (:data:`SEEDED`) drawn with this seed instead of their
    own, every other field of their spec the same, cached in a folder of their own
    (:func:`seeded_folder`); CDNOW, real data, is then left out (``benchmarks.seed_spread``)."""
    wanted = set(names) if names else None

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    if want("cdnow") and seed is None:
        yield _cdnow(work / "cdnow")
    for name in FIGHTCHURN_CONFIGS:
        if want(name):
            yield _fightchurn(name, fightchurn_spec(name, seed), seeded_folder(work, name, seed), jobs)
    if want("simulate-mix"):
        yield _simulate(seeded_folder(work, "simulate-mix", seed), SIMULATE_SEED if seed is None else seed)


def read_rows(path: str | Path) -> list[Row]:
    """Events of a file written by :func:`write_split`, with the product's own type names (a
    billing statement is a ``subscription`` row without an amount; its other columns are not read)."""
    from streams.timefmt import parse_ts_ms

    out: list[Row] = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for user, ts, kind, amount, *_ in reader:
            out.append((user, parse_ts_ms(ts), kind, float(amount) if amount else None))
    return out


def _cdnow(folder: Path) -> tuple[Population, dict[str, Any], list[Row]]:
    spec = {"v": 1, "file": "CDNOW_sample.txt", "quiet_from": CDNOW_HOLDOUT_START}

    def make() -> tuple[Population, dict[str, Any]]:
        rows = cdnow_rows(spec["file"])
        labels = cdnow_labels(rows, _day_ms(CDNOW_HOLDOUT_START))
        written = write_split(rows, labels, {}, folder)
        pop = Population(
            name="cdnow",
            about="CDNOW 1/10 sample (lifetimes wheel): real purchases of the 1997 Q1 cohort of a CD retailer, to 1998-06-30",
            label=f"no purchase from {CDNOW_HOLDOUT_START} to 1998-06-30 (39 weeks); churned_at = the last purchase",
            horizon_days=273, as_of="1997-04-01/1997-09-30/7d", churn_after="120d", end_ms=_day_ms(CDNOW_END),
            files=written["files"], counts=written["counts"])
        return pop, {"transactions": len(rows), "customers": len({r[0] for r in rows})}

    pop, facts = _cached(folder, spec, make)
    return pop, facts, read_rows(pop.files["events_test"])


def _fightchurn(name: str, spec: dict[str, Any], folder: Path, jobs: int) -> tuple[Population, dict[str, Any], list[Row]]:
    def make() -> tuple[Population, dict[str, Any]]:
        rows, labels, channels, facts, truth, statements = fightchurn_rows(spec, folder / "fightchurn-out", jobs)
        written = write_split(rows, labels, channels, folder, statements)
        (folder / "truth.json").write_text(json.dumps(truth, separators=(",", ":")) + "\n")
        end = spec["overrides"]["end_date"]
        pop = Population(
            name=name, about=spec["about"] + f"; seed {spec['seed']}",
            label="the last subscription ends before the end of the window; churned_at = its end (persona = channel)",
            horizon_days=FIGHTCHURN_HORIZON_DAYS, as_of=_fc_as_of(spec),
            churn_after="30d", end_ms=_day_ms(end), panel="subscribed", files={**written["files"], "truth": str(folder / "truth.json")},
            counts=written["counts"], seed=spec["seed"])
        return pop, {**facts, "events": len(rows)}

    # v3: the simulator's truth (truth.json) is written beside the same events and labels
    # v4: the billing statements (``subscription`` rows with status, plan, mrr, period_end)
    pop, facts = _cached(folder, {"v": 4, **spec}, make)
    return pop, facts, read_rows(pop.files["events_test"])


def _simulate(folder: Path, seed: int) -> tuple[Population, dict[str, Any], list[Row]]:
    spec = {"v": 1, "seed": seed, "users": 3000, "start": "2026-01-01", "days": 180, "mix": SIMULATE_MIX}

    def make() -> tuple[Population, dict[str, Any]]:
        rows, labels, persona = simulate_rows(spec["seed"], spec["users"], spec["start"], spec["days"], spec["mix"])
        written = write_split(rows, labels, persona, folder)
        start = dt.date.fromisoformat(spec["start"])
        pop = Population(
            name="simulate-mix", about=f"churnwatch simulate --seed {seed} --users {spec['users']} --days {spec['days']} --mix {SIMULATE_MIX}",
            label="the simulator's ground truth: last event of a user who stops for good (returners are not churned)",
            horizon_days=30,
            as_of=f"{(start + dt.timedelta(days=35)).isoformat()}/{(start + dt.timedelta(days=150)).isoformat()}/7d",
            churn_after="45d", end_ms=_day_ms((start + dt.timedelta(days=spec["days"])).isoformat()),
            files=written["files"], counts=written["counts"], seed=seed)
        return pop, {"events": len(rows), "users": spec["users"]}

    pop, facts = _cached(folder, spec, make)
    return pop, facts, read_rows(pop.files["events_test"])
