"""The daily ranked lists: whom to call today to *save*, and whom to try to *win back*.

Two jobs, two lists (the at-risk alert stream only serves the first):

- **save**: users still reachable (stage new, active or declining: models.lifecycle.JUDGED)
  ranked by the
  *savable* part of their churn risk, highest first (:func:`save_score`: P(alive) x P(leaves
  within the horizon | alive), models.risk.savable). The risk is 1 - P(alive) x (1 - P(leaves |
  alive)): its other part, 1 - P(alive), is the chance the user is gone already, and a call
  cannot save a user who has left. Ranked by the whole risk, the list was headed by users silent
  for 7-12 times their own rhythm (a daily user stays "declining" for three weeks of silence
  before the lifecycle calls them dormant), temperature 0-6, risk 0.98-1.00: in the simulator's
  truth gone for good, or on a long pause they end by themselves (docs/SCORES.md, "The daily
  lists"); by the savable part such a user ranks
  below a reachable one who is slowing down, and their place is the win-back list once the
  lifecycle calls them lapsed. While a paid period runs the savable part is the whole risk (a
  subscriber gone from the product has not left the contract: models.risk.savable), and equals
  as shown (hundredths) come nearest renewal first (:func:`save_rank`, the list's one order;
  QA23a F3). A budget (a number of calls, or a share of the reachable users
  per day) replaces a fixed threshold, so the list has the size a team can work through
  whatever the model's scale. Not a user just back from churned ("reactivated", the lifecycle's
  first ``new_days`` after the return): their risk compares the days since the return with a
  baseline that still holds the activity from before the break (models.lifecycle.JUDGED), so it
  reads as decline on the days that say the user came back; QA16's students back from ten weeks
  of summer headed a trained model's list at risk 0.94-0.99 and temperature 100 (docs/SCORES.md,
  "Just back: neither an alert nor the save list"). No at-risk alert opens for them either
  (models.engine); both judge the user at the review that ends the stage.
- **win back**: users already lapsed (dormant, or churned and not yet expired) ranked by the
  temperature (the chance they are back within the horizon, models.temperature.p_back_within:
  the column shown is the order), then by what they were worth (:func:`win_back_value`: spend,
  then active days, then the latest leave), then by user id: a list to work through, never a
  stream of alerts. A total order, so ``top --win-back -n 20`` is the first 20 rows of ``-n 50``
  (QA19 F10: 646 of 648 lapsed users tied at temperature 0 and came in an order of chance).

Each list has one order wherever it is read: ``churnwatch top`` (``--win-back``), the console's
two tabs and the API rank by :func:`save_score` and :func:`win_back_key`. Two candidate sets,
as before: ``top -n`` and the console's pages list the users with an open at-risk alert (the
at-risk index, scored by :func:`index_score` so its blocks come in nearly that order),
``top --share`` every user of the stage.

Pure: states in, ranked rows out (the CLI reads the states from Redis, the backtest from files).
Ranking uses the cheap assessment; the full scores (health, reasons, action) are built only for
the users who make the list.

Without reading every state (``churnwatch top --share`` at millions of users): the worker keeps
an index of the users on the save list (:func:`on_save_list`, the stage of their last review)
ranked by :func:`save_bound`, a savable risk no higher than theirs can be before their next
review. Nothing a review decides changes before that review (models.engine schedules it so), so
until then the stage is the stored one and the live score at most the bound: reading the index
by descending bound and stopping once the budget's last row outranks every bound not read yet
gives exactly :func:`daily_list`'s rows; users whose review is due are read and assessed live.

Why the bound holds although the savable risk can fall in silence: while a user stays silent
P(alive) only falls (models.temperature) and P(leaves | alive) only rises (models.risk: no
feature silence moves has a negative weight, and the exit gate of a known renewal only opens as
time passes: 0 before, the logistic part after). So between the state's last look (its last review
or last event, ``t0``) and its next review ``t1``, the savable risk is at most P(alive) at ``t0``
times P(leaves | alive) at ``t1``: the product of each factor's largest value, not the score
at either end. It holds for lists read at or after ``t0``, as lists read at the stream time are
(a live-mode review can run ahead of the stream time on a partition idle for longer than the
allowed lateness: a list read then may miss a user whose score was higher before that review).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Iterable, Literal

from models.lifecycle import JUDGED, LAPSED, REACHABLE
from models.compiled import CompiledModel, slot_labels
from models.model import ChurnModel
from models.signals import Signals, compute_signals, paid_period_passes_s, paid_period_runs
from models.risk import combine, leave_probability, savable
from models.scoring import Assessment, Scores, SilentRisk, assess, leave_at, scores_from
from models.state import DAY_S, EVER_PAID, STAGES, UserState, scheduled_cancel_s
from models.temperature import p_back_within, p_stay, stay_after

__all__ = ["JUDGED", "LAPSED", "REACH_SCALE", "REACHABLE", "Ranked", "ListKind", "activity_by_kind", "budget_size", "daily_list", "on_save_list",
           "index_score", "MONTH_DAYS", "monthly_spend", "rank_above", "reach_index_score", "save_bound", "save_bound_after", "save_key",
           "save_rank", "save_score", "value_at_stake", "win_back_key", "win_back_score", "win_back_value"]

ListKind = Literal["save", "win_back"]


@dataclass(frozen=True, slots=True)
class Ranked:
    user_id: str
    scores: Scores
    state: UserState
    savable: float = 0.0  # the savable part of the risk (:func:`save_score`), shown next to it


def budget_size(candidates: int, n: int | None = None, share: float | None = None) -> int:
    """How many users a budget of ``n`` calls or a ``share`` of the candidates allows (share
    rounds up: a non-empty list for a share > 0).

    >>> budget_size(1000, n=20), budget_size(1000, share=0.015), budget_size(5, n=20)
    (20, 15, 5)
    """
    if (n is None) == (share is None):
        raise ValueError("give exactly one budget: n (users) or share (of the candidates)")
    if n is not None:
        if n < 1:
            raise ValueError(f"budget n must be >= 1 user, got {n}")
        return min(n, candidates)
    assert share is not None
    if not 0.0 < share <= 1.0:
        raise ValueError(f"budget share must be in (0, 1] of the candidate users, got {share}")
    return min(candidates, math.ceil(share * candidates))


def daily_list(
    states: Iterable[tuple[str, UserState]],
    now_s: int,
    model: ChurnModel,
    kind: ListKind = "save",
    *,
    n: int | None = None,
    share: float | None = None,
) -> list[Ranked]:
    """The ``kind`` list at event time ``now_s`` within the budget (module docstring)."""
    keep = JUDGED if kind == "save" else LAPSED
    rows = []
    for user_id, st in states:
        a = _listed(st, now_s, model, keep)
        if a is None:
            continue
        key = (-save_rank(a),) if kind == "save" else tuple(-k for k in win_back_key(a, st, model))
        rows.append((key, user_id, st, a))
    if kind == "save":
        rows.sort(key=lambda r: (r[0], r[1]))
    else:  # equal keys: the user id from the last, the index's own order (:func:`win_back_key`)
        rows.sort(key=lambda r: r[1].encode("utf-8", "surrogatepass"), reverse=True)
        rows.sort(key=lambda r: r[0])
    size = budget_size(len(rows), n, share) if rows else 0
    return [Ranked(u, scores_from(st, a, model), st, save_score(a)) for _, u, st, a in rows[:size]]


def save_score(a: Assessment) -> float:
    """What the save list ranks by: the savable part of the assessed risk, P(alive) x P(leaves
    within the horizon | alive) (module docstring), never above the risk.

    A daily user silent for 19 days and a user of every ~6 days silent for 14, both "declining":

    >>> from models.model import ChurnModel
    >>> m, day = ChurnModel(), 86_400
    >>> gone = UserState(first_seen_s=0, last_seen_s=60 * day, n_events=240, active_days=60)
    >>> slowing = UserState(first_seen_s=0, last_seen_s=77 * day, n_events=40, active_days=12)
    >>> a, b = assess(gone, 79 * day, m), assess(slowing, 91 * day, m)
    >>> (a.stage, b.stage), a.risk > b.risk, save_score(a) < save_score(b)
    (('declining', 'declining'), True, True)

    A cancellation scheduled at the period end (models.signals ``cancel_at_s``, QA23a F5) is 1:
    the request is the user's own word that they are there and leave, so no part of the risk is
    "gone already", and the paid days left are the save's whole window.
    """
    if a.signals.cancel_at_s:
        return 1.0
    return savable(a.p_stay, a.leave, paid_period_runs(a.signals))


#: :func:`save_rank`'s scale: a hundredth of the savable part as shown, and the part below it,
#: per 1/101 (the highest rank, 1.00 shown, stays below 1: the lapsed range of the at-risk index).
_RANK_SPAN: Final[float] = 101.0


def save_rank(a: Assessment) -> float:
    """The save list's order, highest first, as one number in [0, 1): the savable part
    (:func:`save_score`) as shown, in whole hundredths, then among equals a subscriber whose paid
    period runs before the others, the nearest renewal first, then the savable part itself (the
    order of users without a running period is the savable part's, as before). Why (QA23a F3):
    a running period's savable part is the whole risk, so the subscribers silent for weeks all
    read 1.00, and the renewal is their deadline: ranked by the risk's last digits, a renewal in
    25 days came before four in 1 day. A cancellation scheduled at the period end (``cancel_at_s``,
    savable part 1) comes before them all, its nearest end first: the user asked to leave, the
    others went quiet (QA23a F5). One number, so every reader of the list (``top``, the console,
    the API, the indexes) orders alike.

    >>> from models.model import ChurnModel
    >>> from models.state import DAY_S
    >>> m, day = ChurnModel(), DAY_S
    >>> soon, late = (UserState(first_seen_s=0, last_seen_s=60 * day, n_events=240, active_days=60,
    ...               period_end_day=end) for end in (105, 300))
    >>> a, b = assess(soon, 100 * day, m), assess(late, 100 * day, m)
    >>> round(save_score(a), 2) == round(save_score(b), 2) == 1.0, save_rank(a) > save_rank(b)
    (True, True)
    """
    score = save_score(a)
    shown = round(100.0 * score)
    sig = a.signals
    if sig.cancel_at_s:  # (0.99, 0.9999]: above every other 1.00, the nearest end first
        below = 0.99 + 0.0099 / (1.0 + max(sig.cancel_at_s - sig.now_s, 0) / DAY_S)
    elif paid_period_runs(sig):  # (0.5, 0.99]: above the others of the hundredth, the nearest renewal first
        below = 0.5 + 0.49 / (1.0 + max(sig.period_end_s - sig.now_s, 0) / DAY_S)  # 0.99 in the renewal's grace
    else:  # [0, 0.49]: where the savable part lies in its hundredth
        below = 0.49 * min(max(100.0 * score - shown + 0.5, 0.0), 1.0)
    return (shown + below) / _RANK_SPAN


def rank_above(score: float) -> float:
    """A :func:`save_rank` no user whose savable part is at most ``score`` exceeds (the top of the
    hundredth ``score`` shows as, a hair of float rounding up): the save-list index's bound from a
    bound of the savable part.

    >>> rank_above(0.0) == 1 / 101, rank_above(0.994) == 100 / 101, rank_above(0.995) == rank_above(1.0) == 1.0
    (True, True, True)
    """
    return min((math.floor(100.0 * score + 0.5 + 1e-9) + 1) / _RANK_SPAN, 1.0)


def win_back_key(a: Assessment, st: UserState, model: ChurnModel) -> tuple[int, float, int]:
    """The win-back list's order, highest first: first the users whose own paid plan once paid
    (models.state EVER_PAID: a former subscriber, 1; else 0), then the temperature as shown, in
    whole points (the chance the user is back within the horizon), then what the user was worth
    (:func:`win_back_value`); equal keys by user id, the last in byte order first (the at-risk
    index's order of equal scores, Redis's ZREVRANGE: the console's pages and ``top -n`` read it in
    blocks, and a block cut among equals in another order made ``-n 20`` no prefix of ``-n 50``,
    QA19 F10). Whole points, as the column reads: a shop's lapsed customers all read temperature
    0 and were ordered by hundredths of a point nobody sees, 11.90 of spend ahead of 62.60 (QA17 F12).
    Former subscribers first (QA24a F9): a publisher's default list put 37 free readers who never
    paid before its first former subscriber (the value below counts purchases, and a subscription
    is none). Ever-paid, not the MRR lost (``top --win-back --by mrr`` orders by that): within the
    former subscribers the chance of coming back still leads, so a list cut at ``-n`` holds the
    payers likeliest to return, not only the dearest plans. A product without paid plans (a shop of
    purchases, a free app) has no such user, and its order is as before.

    >>> from models.model import ChurnModel
    >>> m, day = ChurnModel(), 86_400
    >>> loyal = UserState(first_seen_s=0, last_seen_s=300 * day, n_events=900, active_days=280)
    >>> signup = UserState(first_seen_s=290 * day, last_seen_s=290 * day, n_events=2, active_days=1)
    >>> now = 700 * day
    >>> win_back_key(assess(loyal, now, m), loyal, m) > win_back_key(assess(signup, now, m), signup, m)
    True
    """
    return 1 if st.flags & EVER_PAID else 0, float(round(100.0 * p_back_within(a.signals, model)[0])), win_back_value(st)


#: :func:`win_back_value`'s fields: bits each, highest first (spend, active days, day of leaving).
_VALUE_BITS: Final[tuple[int, int, int]] = (16, 10, 14)
#: Days from the epoch to 2000-01-01: the leave day counts from there (14 bits: until 2044).
_DAY_2000: Final[int] = 10_957


def win_back_value(st: UserState) -> int:
    """What a lapsed user was worth, as one integer that orders like the tuple (spend in whole
    currency units up to 65,535, then active days up to 1,023, then the UTC day of their last
    event, the latest leave first): read from the state alone, so it stays what the user's last
    review put in the at-risk index until their next event (:func:`index_score`). Why: at equal
    temperature a salaried customer of 280 active days came after a signup never funded
    (QA19 F10); a value from a user's own history, not their account's lost MRR (``top --win-back
    --by mrr`` ranks by that: it is not in the user's state)."""
    spend_bits, days_bits, day_bits = _VALUE_BITS
    spend = min(int(st.revenue), (1 << spend_bits) - 1) if st.revenue > 0.0 else 0
    days = min(st.active_days, (1 << days_bits) - 1)
    left = min(max(st.last_seen_s // DAY_S - _DAY_2000, 0), (1 << day_bits) - 1)
    return (spend << (days_bits + day_bits)) | (days << day_bits) | left


#: One more than the largest :func:`win_back_value`: the index packs it below a whole point.
_VALUE_SPAN: Final[int] = 1 << sum(_VALUE_BITS)


def win_back_score(a: Assessment, st: UserState, model: ChurnModel) -> float:
    """:func:`win_back_key` as one number, in the at-risk index's scale: 1 + 1.01 for a former
    subscriber + (the whole-point temperature + :func:`win_back_value` scaled below 1) / 100, in
    [1, 2.01) for the others, [2.01, 3.02) for former subscribers. Strictly in the key's order
    (each step is exact in a double). A lapsed user's temperature only falls in silence, and the
    ever-paid mark is set by a statement (a review) and never cleared, so this live score is at
    most the one their last review put in the index: the console reads blocks of the index until
    the block's last entry is below the rows to show."""
    paid, point, value = win_back_key(a, st, model)
    return 1.0 + 1.01 * paid + (point + 0.99 * value / _VALUE_SPAN) / 100.0


#: Days in a month on average (365.25 / 12): :func:`monthly_spend` is per month, as MRR is.
MONTH_DAYS: Final[float] = 30.4375


def monthly_spend(st: UserState, now_s: int) -> float:
    """The user's purchases per month: their purchase amounts to date (``UserState.revenue``) over
    the months since their first purchase, at least one. The state keeps the total and the first
    purchase's time, no spend per window (a window would cost bytes: models.state's budget), so
    this is the only recent-ish rate it can say honestly: a buyer of 430.92 over 3 months is worth
    143.64 a month, and the rate falls as a lapse grows (the same 9 months after the first
    purchase, 47.88). Subscription statements are not purchases (models.vocabulary): MRR is apart.

    >>> st = UserState(first_purchase_s=0, last_purchase_s=60 * DAY_S, n_purchases=3, revenue=300.0)
    >>> round(monthly_spend(st, int(4 * MONTH_DAYS * DAY_S)), 2), monthly_spend(st, 10 * DAY_S), monthly_spend(UserState(), 0)
    (75.0, 300.0, 0.0)
    """
    if st.revenue <= 0.0 or st.n_purchases == 0:
        return 0.0
    return st.revenue / max((now_s - st.first_purchase_s) / (MONTH_DAYS * DAY_S), 1.0)


def value_at_stake(risk: float, mrr: float, st: UserState, now_s: int) -> float:
    """What ``top --by value`` ranks by: ``risk`` (the save list's savable risk, its own key; the
    win-back list's risk, about 1 for a lapsed user) x the user's monthly value, their own
    subscription's ``mrr`` (the win-back list: the MRR it lost) plus :func:`monthly_spend`. Why
    (QA22b F8): a free-to-play game's save list ranked by the savable risk alone put a whale who
    had spent 430.92 at rank 255 of 464, and ``--by mrr`` saw only the 4.99 pass. Not the chance
    of coming back for the win-back list: it is about 0 for most lapsed users (temperature 0), and
    by it the game's lapsed whales came after lapsed 4.99 passes at temperature 3.

    >>> value_at_stake(0.5, 9.99, UserState(), 0), value_at_stake(0.1, 0.0, UserState(n_purchases=2, revenue=430.0), 0)
    (4.995, 43.0)
    """
    return risk * (mrr + monthly_spend(st, now_s))


#: The largest float below 1: a reachable user's index score stays in the save part of the index
#: even when P(alive) is 1 and P(leaves | alive) rounds to 1.
_BELOW_ONE: Final[float] = math.nextafter(1.0, 0.0)


def index_score(a: Assessment, st: UserState, model: ChurnModel) -> float:
    """The user's score in the at-risk index (users with an open at-risk alert, one sorted set per
    bucket: the console's *save* and *win back* pages, ``churnwatch top -n`` and ``--win-back
    -n``, streams.console.data), taken at the user's last review (``a``, of ``st``): a lapsed user
    :func:`win_back_score` (former subscribers first, then the whole-point temperature and
    :func:`win_back_value` scaled below 1), at least 1,
    so the lapsed head every bucket in :func:`win_back_key`'s order exactly (a block of the index
    cut among users of equal temperature holds the most valuable of them: QA19 F10); any other
    :func:`save_rank` (below 1, in save order)."""
    if a.stage in LAPSED:
        return win_back_score(a, st, model)
    return min(save_rank(a), _BELOW_ONE)  # 1.0 itself would put a reachable user in the lapsed range


def save_key(st: UserState, now_s: int, model: ChurnModel) -> tuple[float, object] | None:
    """``(live save rank, assessment)`` of ``st`` at ``now_s`` if it belongs on the save list
    then, else None: :func:`daily_list`'s test and key (:func:`save_rank`), for readers that pick
    the states themselves."""
    a = _listed(st, now_s, model, JUDGED)
    return None if a is None else (save_rank(a), a)


def _listed(st: UserState, now_s: int, model: ChurnModel, keep: frozenset[str]) -> Assessment | None:
    """The live assessment of a tracked user whose stage is in ``keep`` at ``now_s`` (a user's
    events are never in its future: assessed at their last event at the earliest), else None."""
    if st.n_events == 0:
        return None
    a = assess(st, max(now_s, st.last_seen_s), model)
    return a if a.stage in keep else None


#: Bit i set where STAGES[i] is on the save list (models.lifecycle.JUDGED): a shift and a mask in the compiled core, where an int in
#: a frozenset was boxed and looked up (twice a user written, models.step.index_scores).
_SAVE_BITS: Final[int] = sum(1 << i for i, s in enumerate(STAGES) if s in JUDGED)


#: Scores of the save-list index are integers (compact in a listpack): micro-units of risk, rounded
#: up past float noise so a stored score is always above the bound it stands for.
REACH_SCALE: Final[int] = 1_000_000


def reach_index_score(bound: float) -> int:
    """The save-list index's score of :func:`save_bound`'s ``bound`` (streams.worker.store.reach_score
    and ``models.step.state_args`` use it: one formula).

    >>> reach_index_score(0.25), reach_index_score(0.0), reach_index_score(1.0)
    (250001, 1, 1000001)
    """
    return int((bound + 1e-9) * REACH_SCALE) + 1


def on_save_list(st: UserState) -> bool:
    """On the save list as of the user's last review: tracked, reviewed, stage on the list (new,
    active, declining: models.lifecycle.JUDGED). Until
    the next review this is what :func:`daily_list` finds live (module docstring)."""
    return st.n_events > 0 and st.stage_since_s > 0 and 0 <= st.stage < len(STAGES) and _SAVE_BITS >> st.stage & 1 == 1


def save_bound(st: UserState, model: ChurnModel, c: CompiledModel | None = None) -> float:
    """A save rank (:func:`save_rank`) no live one of ``st`` exceeds before its next review
    (module docstring): that of P(alive) at the state's last look ``t0`` (its last review or
    event, whichever is later) times P(leaves | alive) at that next review if the user stays
    silent; while a paid period runs at ``t0``, of the risk at that next review (the savable part
    is then the whole risk, models.risk.savable, which only rises in silence; after the period's
    end it is below the risk). It ranks the save-list index. 1.0 without a next review. ``c``:
    ``model.compiled`` where the caller holds it, handed to each part (a generic attribute lookup
    of the Python ChurnModel each, five a call before)."""
    if st.next_review_s <= 0:
        return 1.0
    if c is None:
        c = model.compiled
    t0, t1 = max(st.last_review_s, st.last_seen_s), max(st.next_review_s, st.last_seen_s)
    if scheduled_cancel_s(st, t0):
        return 1.0  # a cancellation scheduled at the period end: save_score's 1 until it takes effect
    sig = compute_signals(st, t1, model, c)  # one scoring, at t1; P(alive) at t0 from it (only T differs)
    paid = paid_period_passes_s(sig) > t0  # a paid period runs at t0 (models.signals.paid_period_runs)
    if not c.silence_monotone:  # a fit with free signs: P(leaves | alive) may peak before t1
        return 1.0 if paid else rank_above(stay_after(sig, (t0 - t1) / DAY_S, model, c)[0])
    if paid:
        p1 = p_stay(sig, model, c)[0]
        return rank_above(combine(p1, leave_probability(sig, p1, st.revenue, model, c)))
    p0, _ = stay_after(sig, (t0 - t1) / DAY_S, model, c)
    p1 = p_stay(sig, model, c)[0] if c.reads_alive else 0.0  # else no feature reads it
    return rank_above(savable(p0, leave_probability(sig, p1, st.revenue, model, c)))


def save_bound_after(a: Assessment, st: UserState, model: ChurnModel, c: CompiledModel | None = None) -> float:
    """:func:`save_bound` from the assessment of the review that left ``st`` (nothing changed the
    state after it: ``models.engine.Outcome.review``), without scoring the user again: that
    review's P(alive) times the P(leaves | alive) its signals reach in silence at the next review
    (models.scoring.SilentRisk, mostly remembered from the engine's last look ahead), equal to
    :func:`save_bound` up to float rounding (the index's scores round up past it). ``c``:
    ``model.compiled`` where the caller holds it."""
    if st.next_review_s <= 0 or a.signals.cancel_at_s:
        return 1.0  # (a cancellation scheduled at the period end: :func:`save_bound`)
    c = model.compiled if c is None else c
    paid = paid_period_runs(a.signals)  # the savable part is the whole risk (:func:`save_bound`)
    if not c.silence_monotone:  # P(leaves | alive) may peak before the next review: P(alive) bounds it
        return 1.0 if paid else rank_above(a.p_stay)
    t1 = max(st.next_review_s, st.last_seen_s)
    if paid:
        return rank_above(SilentRisk(a, model, c).at(t1))
    # scoring.leave_at: SilentRisk's, without an object made and freed per user
    return rank_above(savable(a.p_stay, leave_at(a, t1, model, c)))


def activity_by_kind(sig: Signals, model: ChurnModel) -> list[tuple[str, float]]:
    """Events of the last ~4 weeks per kind, in the product's words (the tracked types, or the
    hashed kinds), then the rest (untracked types, purchases) and the total: what the console
    shows next to a user's scores."""
    labels = slot_labels(model.compiled.vocabulary)
    out = [(label, n) for label, n in zip(labels, sig.slot_28d)]
    rest = sig.act_28d - sum(sig.slot_28d)
    out.append(("other", rest if rest > 0.0 else 0.0))
    out.append(("all", sig.act_28d))
    return out
