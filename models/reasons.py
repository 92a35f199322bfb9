"""Reasons in plain words, most important first, at most three: the factors that push the risk up.

Each reason is a fact about the user that holds now ("no visit for 2.5x the usual interval of
3.0 days") and is tied to the risk features that carry it. Its *contribution* is that group's
share of the risk log-odds against a reference user, sum of weight x (value - reference), plus,
for the silence that made P(alive) fall, the log-odds the "already gone" part adds to the risk
(models.risk.churn_risk). The reference is the model's training mean of each feature; the
shipped default was fitted on nothing and has no means, so each of its effects is measured from
the edge of its own fact (:data:`NEUTRAL`, kept with the risk features in models.risk): silence of 1.5 usual intervals, 2 events in 4 weeks,
a 30% drop, breadth 0.3, no negative feedback, 30 days of tenure. So for the default a reason's
fact holds exactly when its contribution is positive.

What an alert says follows from what it announces (``purpose``):

- ``at_risk`` (also a stage change for the worse): only factors whose contribution is positive
  (at least :data:`MIN_LIFT`, the few largest, largest first), worded against the user; never a fact that reads as good news ("chance
  of coming back 99%", "activity up", "uses 4 of 4 kinds", "came back 3 days ago"). When none
  reaches :data:`MIN_LIFT`, the one that adds most, also if its fact is weak ("active over only 5
  days (first to last visit): churn is likeliest early on", the tenure hazard) rather than a neutral fact.
- ``declining`` (a stage change to declining): as ``at_risk``, with first the test of
  models.lifecycle rule 5 that made the user declining (models.lifecycle.declining_cause: the
  same code the stage comes from), in the words of its fact: "no visit for 2.6x the usual
  interval of 3.6 days" (overdue) or "recent activity (1-week decayed) down 26% against the
  user's 4-week baseline" (the 7-day rate; a user already declining leaves only back at
  (1 + decline_ratio) / 2 of the 4-week rate, 75% with the shipped 0.5), and without the factor
  that would say it again (:func:`_cause_first`).
- ``recovered`` (also a stage change to a healthier stage, :data:`IMPROVED`): first, where it holds,
  the fact an at-risk alert closes on, the user's activity back at their own level
  (models.lifecycle.back_share: "activity back at the user's usual level: the last week at 104% and
  the last 4 weeks at 93% of their 3-month rate (decayed)"; QA19 F6), then the factors that
  pull the risk down (contribution negative), most first, worded as what they are ("recent
  activity (1-week decayed) up 40% against the user's 4-week baseline"), never the tenure (it only
  grows: "active over 175 days" is no news of a recovery) nor a type of the product's ``negative``
  role (a complaint, money moved out), after the return itself for a reactivated user; if
  none, the fall of the risk since the alert opened (none without an alert); if none either, for
  a stage change, the fact the lifecycle rule ended the old stage on (``_stage_fact``): from new,
  "active on 3 days since first seen 14 days ago" (past ``new_days``, with a second active day,
  models.lifecycle rule 4); from reactivated, "came back 14 days ago" (rule 3's ``new_days``
  since the return); from dormant or churned, "came back after 40 days as dormant"; from
  declining, "active again after 9 days declining". Why (2026-12-03): a user with two or more active days who turns 14 days old while
  silent for a while is still "active" by the lifecycle (not yet overdue), yet nothing pulls
  the risk down, so such ``new -> active`` alerts said nothing at all (24 in the 2,000-user
  backtest of docs/SCORES.md), and an alert must always say why; the CI profile's property test
  then found a ``reactivated -> active`` one with nothing to say, hence every stage change.
- ``scores`` (live scores: the console, ``score``, the save and win-back lists' rows): as
  ``at_risk``, with the stage's own story (back after a break, new) last, and nothing when
  nothing pushes the risk up, unless an at-risk alert is still open: then what holds it open
  (:func:`_still_open_text`: "at-risk alert open since 2026-10-25: activity at 62% of the
  user's usual level, it closes at 90%"). Why (QA24a F6): 14 of the 57 rows of a publisher's
  save list said nothing, readers whose risk had fallen to 0.4-5% while the alert stayed open
  by the documented rule (it closes once their activity is back at their own level).

Every feature a model can weigh has words (:func:`feature_key`; tests/test_models_reasons.py
fails for a feature added without them). The per-type features of models.risk speak the
product's names: "only about 2 posts in recent weeks (decayed count, 4-week mean life), against
6.2 for a typical user" (``inactive:post``; the counters decay, so no window is claimed, QA10
F4), "unfriends: 12% of the user's recent activity, against 1.5% for a typical user"
(``share:unfriend``), "recent likes (1-week decayed) down 60% against the user's 4-week baseline"
(the decline, told by the tracked type that fell most); the default's hashed slots are "one
kind of activity". The facts only a trained model weighs (the total's 1-week and 3-month decayed counts,
active days, buying, purchases, spend, and the per-type ones) are told against the reference
user. Every fact a trained model may weigh either way is a reason only where the model weighs
it the way its words read (:func:`_reads_as_it_weighs`), and then only on the alert's side:
events, active days, purchases and spend (fewer than the typical user for risk, more for
recovery), tenure (a short one for risk, the hazard of the first weeks), negative feedback
(some for risk, none for recovery), the gaps between active days (widening for risk), and
the per-type facts, whose reading depends on the type: fewer posts read worse, fewer unfriends
better (the product's ``negative`` role), fewer skips better where the model weighs more skips
as risk (:func:`_more_is_worse`). Of such a type a reason for risk is a rise, "skips: 31% of the
user's recent activity, against 13% for a typical user; recent skips (1-week decayed) up 80%
against the user's 4-week baseline", and a fall ("only about 40 skips since first seen", "recent
skips down 60%") is never one (QA16 F4: 0 of 185 pre-churn alerts of a music app named the
skips its model weighed, 29 said "only about 40 skips since first seen"). A fit that weighs one the other way ("31 active days
so far, against 5.7 for a typical user", "a user for 300 days, longer than the typical 120",
"no negative feedback in the last 4 weeks" as reasons for risk: QA6 M2 and after) gets no
reason from it on either side: more use, a long tenure or no complaint is not, in plain words,
a reason to call. Narrowness is a reason for risk only against the product's own kinds of
activity (:func:`_kinds_known`): the shipped default counts 9 kinds whatever the product has.

The exit opportunity (models.risk.exit_open): while a known end of the paid period lies beyond
the horizon, the leave part of the risk is 0 and the risk is only the "already gone" part, so
the factors of the leave part are no reason for risk (their contributions count 0); a
recovered alert then says so first ("paid through 2021-05-02: no renewal due within 30 days"),
then the facts in the user's favour as with the exit open.
When the exit is open because a known renewal falls within the horizon, an at-risk alert (and
the live scores) say so after the reasons of the risk, always among those shown, where it is news
for the call (:func:`_renewal_news`: within a week, or any time on a plan longer than 45 days;
not the monthly plan's renewal 23 days away, QA17 F13): "renewal due in 5 days (paid through
2020-05-02)" (context: when the user can leave, not why; QA pass 14 F4); a plan longer than 45
days says its renewal beyond the horizon too, with the exit closed (QA23a F3: the save's deadline,
and that the silent user still pays);
in the renewal's grace, the day after the last day paid for (models.signals.RENEWAL_GRACE_S:
renewals are stated at or after the end), still "renewal due today (paid through 2020-05-02)";
past the grace with no renewal stated, first: "paid period ended 1 day ago (2020-05-02), no
renewal stated". A plan cancelled while its period is still paid renews not: no renewal is said,
the cancellation says until when the plan is paid, on any plan, "cancelled today; paid through
2027-05-31 (in 179 days)" (2026-12-05: annual subscribers read "cancelled today", then "renewal
due in 179 days (paid through 2027-05-31)"), as a cancellation scheduled at the period end does.
A pause that runs (or the product's quiet period) makes the leave part 0 as a closed exit does, and
its reasons are told likewise, until the user cancels: a cancellation ends what the pause held, and
its reasons rank on the whole risk, as outside a pause (:func:`_leaves`).

Counts of events are said in whole events, singular or plural as a person writes them ("only about
1 event in recent weeks", not "only 1.0 events": :func:`_whole` says why and how they round),
and days as "1 day", "today" (:func:`_days`, :func:`_ago`).

The one reason that quotes a score quotes the temperature shown (models.temperature.p_back_within),
in the words of what it is: "chance of coming back within 30 days: 12%", or "of buying again"
where the purchase rhythm decided it; against the user only well below a coin flip, and never
while a cancellation stands: the temperature is then 0 because of the cancellation, which is the
first reason already ("cancelled 3 days ago"), not because of a rhythm.
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, Literal, Sequence

from models.compiled import KINDS_KEY, CompiledModel
from models.health import percentile
from models.lifecycle import RETURN_SHARE, back_share, declining_cause
from models.risk import FEATURES, NEUTRAL, SLOT_PREFIXES, at_cap, by_renewal, combine, exit_open, lifetime_count, reference, risk_probability
from models.signals import (Signals, calendar_hold_s, credit_gap_days, credit_late, grievance_stands, kinds_used, kinds_used_count, order_gap_days,
                            _round_even, paid_period_runs, rate_ratio, reorder_late)
from models.state import DAY_S, GRIEVANCE, GRIEVANCE_LATEST, LONG_PERIOD, PAYS_SUBSCRIPTION, UserState
from models.subscription import calendar_days
from models.temperature import StaySource, p_back_within
from models.vocabulary import NEGATIVE, PURCHASE

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = ["IMPROVED", "MAX_REASONS", "MIN_LIFT", "NEUTRAL", "Purpose", "RENEWAL_NEWS_DAYS", "explain", "feature_key", "reasons", "reference"]

MAX_REASONS: Final[int] = 3
Purpose = Literal["scores", "at_risk", "recovered", "declining"]
#: Stages a user moves to when things get better: a change to one is told like a recovery.
IMPROVED: Final[frozenset[str]] = frozenset(("active", "reactivated"))
#: A factor is a reason once it adds this many log-odds (a twentieth of one effect's full say):
#: under it, a fact is true but moves nothing worth a call.
MIN_LIFT: Final[float] = 0.05
#: The temperature is a reason for risk only well below a coin flip, and for recovery only above
#: it: a reason must speak for what the alert says.
_COOLING_BELOW: Final[float] = 0.45
_WARM_FROM: Final[float] = 0.5
_IDX: Final[dict[str, int]] = {name: i for i, name in enumerate(FEATURES)}
# Reason key -> the risk features whose contributions rank it (every feature of models.risk
# FEATURES is in one group; the per-slot features are their own keys, "inactive:post"). Ties
# keep this order: the default's factors first, then those only a trained model weighs.
_GROUPS: Final[dict[str, tuple[int, ...]]] = {
    "silence": (_IDX["silence_log"], _IDX["visit_overdue_log"]),
    "purchase": (_IDX["purchase_overdue_log"],),
    "decline": (_IDX["decline"],),
    "decline_long": (_IDX["decline_long"],),
    "low": (_IDX["inactive_28d"],),
    "narrow": (_IDX["narrowness"],),
    "cooling": (_IDX["cooling"],),
    "negative": (_IDX["negative_share"],),
    "tenure": (_IDX["tenure_log"],),
    "gaps": (_IDX["gap_trend"],),
    "low_7d": (_IDX["inactive_7d"],),
    "low_90d": (_IDX["inactive_90d"],),
    "active_days": (_IDX["active_days_log"],),
    "buyer": (_IDX["buyer"],),
    "purchases": (_IDX["purchases_log"],),
    "revenue": (_IDX["revenue_log"],),
}
#: The reason keys of :data:`_GROUPS` and their features, in its order, by position: the
#: contributions are two parallel lists (:func:`_contributions`), not a dict per alert.
_KEYS: Final[tuple[str, ...]] = tuple(_GROUPS)
#: :data:`_KEYS` as a list, and a lift of 0 for each (:func:`_contributions`; neither is changed).
_KEY_LIST: Final[list[str]] = list(_KEYS)
_NO_LIFTS: Final[list[float]] = [0.0] * len(_KEYS)
#: The position in :data:`_KEYS` of the reason key each fixed risk feature belongs to.
_KEY_AT: Final[tuple[int, ...]] = tuple(
    next(k for k, group in enumerate(_GROUPS.values()) if i in group) for i in range(len(FEATURES))
)
_AT_SILENCE: Final[int] = _KEYS.index("silence")
_AT_PURCHASE: Final[int] = _KEYS.index("purchase")
_AT_COOLING: Final[int] = _KEYS.index("cooling")
#: Keys whose words compare the user with the reference user ("only about 3 events lately
#: (decayed count, 1-week mean life), against 12 for a typical user"): a reason when the contribution says so and the model weighs
#: the fact the way it reads (:func:`_reads_as_it_weighs`; a trained model weighs them either way).
_COMPARED: Final[frozenset[str]] = frozenset(("low_7d", "low_90d", "active_days", "buyer", "purchases", "revenue"))
#: The fixed keys whose feature grows as the fact reads worse for the user: fewer events
#: (``inactive_*`` = -log(1 + events)), more negative feedback, widening gaps between active
#: days. The others that a trained model may weigh either way grow as it reads better: active
#: days, buying, purchases, spend, tenure (:func:`_reads_as_it_weighs`).
_WORSE_AS_IT_GROWS: Final[frozenset[str]] = frozenset(("low_7d", "low_90d", "negative", "gaps"))
#: The fixed keys whose features grow with silence and are not compared with the typical user
#: (models.risk ``moves_with_silence``): silence and overdue, the re-order overdue, the declines,
#: low activity, narrowness, the temperature. Their facts read worse as they grow, and the
#: shipped default and a bounded fit weigh them >= 0; a fit with free signs (``churnwatch train
#: --signs free``) may weigh one < 0, and it is then no reason on either side
#: (:func:`_reads_as_it_weighs`). ``low_7d`` and ``low_90d`` move with silence too: compared facts.
_SILENT: Final[frozenset[str]] = frozenset(("silence", "purchase", "decline", "decline_long", "low", "narrow", "cooling"))
_N_FIXED: Final[int] = len(FEATURES)
#: The keys :func:`_words` gets that are no per-slot feature (none starts with a slot prefix).
_PLAIN: Final[frozenset[str]] = frozenset((*_KEYS, "type_decline"))
#: models.risk.SLOT_PREFIXES as one tuple object: a fixed-size ``Final`` tuple is kept unboxed
#: by the compiled core, which built a new tuple of the three for every ``startswith``.
_PREFIXES: Final[tuple[str, ...]] = SLOT_PREFIXES
assert not any(key.startswith(SLOT_PREFIXES) for key in _PLAIN)
#: Negative feedback is a reason once it adds a quarter of its full say to the log-odds (with the
#: default, 5% of the user's activity): one dislike among a hundred events is no story to tell.
_NEGATIVE_MIN_LIFT: Final[float] = 0.25
assert _NEGATIVE_MIN_LIFT >= MIN_LIFT  # (explain tests the lower line first)
_FIRST: Final[float] = 1e9  # cancellation: always the first reason
_RENEWAL: Final[float] = 5e8  # a paid period ended, no renewal stated: first after a cancellation
#: A renewal this many calendar days away or fewer is told on any plan (:func:`_renewal_news`)
RENEWAL_NEWS_DAYS: Final[int] = 7
_CONTEXT: Final[float] = -5e8  # a renewal due: after every risk reason, before the stage context (_renewal_shown)
#: A trial user's context (models.state.in_trial), as a renewal due is a subscriber's: QA23a F1, a fitness
#: app's at-risk alerts on its 7-day trials said only that the user was new. Without the trial's end:
#: keeping it would cost 2 bytes a trial user (models.state, "TRIAL"), over the memory budget.
_TRIAL_TEXT: Final[str] = "in trial (no conversion stated yet)"
_LAST: Final[float] = -1e9  # stage context: after every risk reason
_P_LOW: Final[float] = 1e-12  # probabilities are clipped to [_P_LOW, _P_HIGH] before a logit
_P_HIGH: Final[float] = 1.0 - 1e-12


#: A reason key's class for the tests of its fact (:func:`_key_class`): compared with the typical
#: user (:data:`_COMPARED`), growing with silence (:data:`_SILENT`), another fixed key, a per-slot
#: feature's key, or none of these.
_COMPARED_KEY: Final[int] = 1
_SILENT_KEY: Final[int] = 2
_FIXED_KEY: Final[int] = 0
_SLOT_KEY: Final[int] = -1
_NO_KEY: Final[int] = -2
_KEY_CLASS: Final[dict[str, int]] = {
    key: _COMPARED_KEY if key in _COMPARED else _SILENT_KEY if key in _SILENT else _FIXED_KEY for key in _PLAIN
}


def _key_class(key: str) -> int:
    """``key``'s class (:data:`_KEY_CLASS`; :data:`_SLOT_KEY` where :func:`_is_slot`, else
    :data:`_NO_KEY`) in one dict lookup. Why: the tests of a fact asked :func:`_is_slot`, then
    ``key in _COMPARED`` and ``key in _SILENT``, three set lookups per test, six tests an alert
    (~0.6k instructions an alert in the compiled core)."""
    cls = _KEY_CLASS.get(key, _NO_KEY)
    if cls == _NO_KEY and key.startswith(_PREFIXES):
        return _SLOT_KEY
    return cls


def _is_slot(key: str) -> bool:
    """``key.startswith(SLOT_PREFIXES)``: a per-slot feature's key ("inactive:post"). A fixed
    key is answered by a set lookup; the tuple of prefixes is one object (:data:`_PREFIXES`).
    Why: the test ran about five times an alert, ~0.35k instructions each with its tuple."""
    return key not in _PLAIN and key.startswith(_PREFIXES)


def _by_rank(found: list[Any]) -> None:
    """Sort ``found`` by rank (its items' first number), largest first, ties in their order:
    ``found.sort(key=lambda item: -item[0])``, by insertion. Why: a handful of items, and the
    sort's keyword call and a key call per item cost ~1.2k instructions an alert. The same order
    for ranks that are never NaN (for a NaN the two algorithms may order differently): every rank
    :func:`explain` adds is a constant or passed a comparison first (tests/test_models_alert_path.py
    compares both on ties, infinities and zeros of either sign). The items typed ``Any``: the
    compiled core moves them as they are (a tuple type would unpack and rebuild each one)."""
    for j in range(1, len(found)):
        item = found[j]
        rank: float = item[0]
        i = j
        while i > 0:
            before: float = found[i - 1][0]
            if not before < rank:
                break
            found[i] = found[i - 1]
            i -= 1
        if i != j:
            found[i] = item


def _logit(p: float) -> float:
    # min(max(p, 1e-12), 1 - 1e-12), spelled as the builtins decide (they cost more than the log).
    p = _P_LOW if _P_LOW > p else p
    p = _P_HIGH if _P_HIGH < p else p
    return math.log(p / (1.0 - p))


def _kinds(sig: Signals, model: "ChurnModel", c: CompiledModel | None = None) -> tuple[int, int]:
    """(kinds of activity used in 4 weeks, kinds the product has): models.signals.kinds_used out
    of the breadth's own denominator, so the words and the risk count the same kinds. ``c``:
    ``model.compiled`` where the caller holds it (a generic attribute lookup of the Python ChurnModel)."""
    if c is None:
        c = model.compiled
    return kinds_used_count(sig, c), c.n_kinds


def _kinds_known(model: "ChurnModel", c: CompiledModel | None = None) -> bool:
    """Whether the model knows which kinds of activity the product has: its population names them
    (``population["kinds"]``: ``churnwatch train`` writes them, or a product declares them) or it
    tracks the product's own event names. Without either (the shipped default) the breadth counts
    every hashed slot and purchases, 9 kinds whatever the product has, so "uses 2 kinds" may be
    every kind a two-event product sends (QA6 M2: it was in 14 of 15 at-risk alerts of such a
    product): narrowness is then no fact against the user, only (5 kinds or more) one for them.
    Worked out once per model (models.compiled ``kinds_known``: ``KINDS_KEY in model.population
    or bool(vocabulary.tracked)``)."""
    return (model.compiled if c is None else c).kinds_known


def _reads_as_it_weighs(key: str, model: "ChurnModel", c: CompiledModel | None = None) -> bool:
    """Whether the model weighs the fact of ``key`` the way its words read: more of what reads
    worse for the user raises the risk. For the compared facts: fewer events, active days,
    purchases or spend than the typical user (a positive weight on ``inactive_7d``/
    ``inactive_90d``, a negative one on ``active_days_log``, ``buyer``, ``purchases_log``,
    ``revenue_log``); for the facts with a reading of their own: a short tenure (a negative
    weight on ``tenure_log``), negative feedback and widening gaps between active days (positive
    ones on ``negative_share``, ``gap_trend``); for a per-type fact, fewer events of the type, or
    a smaller share or lifetime count of it, unless more of the type reads worse (the product's
    ``negative`` role, or the model's weights on the type, :func:`_more_is_worse`: more unfriends
    or skips read worse, more posts better; :func:`_slot_reads_worse_as_it_grows`); never a
    type's recent count (``inactive:``) weighed < 0, which grows with silence as :data:`_SILENT`. Only then is the fact a reason, for risk (the user
    stands on its worse side of the typical user) or for recovery (its better side); weighed
    the other way it is no reason on either side. The shipped default weighs tenure and negative
    feedback as they read (models.risk PRIOR_WEIGHTS) and nothing else of these. A trained fit
    may give such a fact the other sign (a small fit, collinear features: "31 active days so
    far, against 5.7 for a typical user" led 11 of 230 at-risk alerts in QA6 M2; "a user for 300
    days, longer than the typical 120" and "no negative feedback in the last 4 weeks" were said
    against the user with a note, "(a sign of churn in this product's history)"), but more use,
    a long tenure or no complaint is not, in plain words, a reason to call, and the opposite no
    reason for relief (the product's rule: the reasons of an alert support it, never one that
    says the user is fine). The facts that grow with silence (:data:`_SILENT`: silence and
    overdue, the declines, low activity, narrowness, the temperature) read as weighed while no
    feature of theirs is weighed < 0 (the shipped default and a bounded fit, always: models.risk
    ``check_weights``); a fit with free signs may weigh one < 0 (at a given lifetime volume,
    recent silence marks a younger user: docs/SCORES.md, "The sign bounds"), and then silence,
    a decline or a narrow use is no reason for risk, nor "active today" one for relief.

    A function of ``key`` and the model alone: worked out once per key and model
    (:func:`_weighed_as_read`), remembered in models.compiled ``verdicts``. ``c``:
    ``model.compiled`` where the caller holds it."""
    if c is None:
        c = model.compiled
    verdict = c.verdicts.get(key)
    if verdict is None:
        verdict = c.verdicts[key] = _weighed_as_read(key, model, c)
    return verdict


def _weighed_as_read(key: str, model: "ChurnModel", c: CompiledModel) -> bool:
    """:func:`_reads_as_it_weighs` worked out (its docstring says what it answers)."""
    if _is_slot(key):
        i = c.features.index(key)
        if c.weights[i] < 0.0 and key.startswith(_PREFIXES[0]):  # a type's recent count grows with silence: as _SILENT
            return False
        worse = _slot_reads_worse_as_it_grows(key, i, model)
        if _fewer_says_nothing(key, i, model, c) or _volume_of_use(key, i, c) and worse:
            return False
    elif key in _SILENT:  # the "already gone" part adds to silence and temperature: weight 0 reads as it weighs too
        for j in _GROUPS[key]:
            if c.weights[j] < 0.0:
                return False
        return True
    else:
        i = _GROUPS[key][0]
        worse = key in _WORSE_AS_IT_GROWS
    w = c.weights[i]
    return w > 0.0 if worse else w < 0.0


def _volume_of_use(key: str, i: int, c: CompiledModel) -> bool:
    """Whether ``key`` (index ``i``) is the lifetime volume of a type outside the ``negative``
    role: a reason only as fewer than the typical user, never as more, whatever the model's
    weights. QA19 F3: a bank's fit weighed more card payments as risk, and 1,161 of 2,941 at-risk
    alerts said "about 162 card_payment events since first seen (...), against 24 for a typical
    user", loyalty given as the reason to call. A skip's rise stays a reason (its share, QA16 F4);
    its count since first seen does not: beside the recent count it weighs the fall from the
    user's own history, which the type's decline tells in words."""
    return key.startswith(_PREFIXES[2]) and not _negative_slot(i, c)


def _negative_slot(i: int, c: CompiledModel) -> bool:
    """Whether per-slot feature ``i`` is of a type the product declares ``negative`` (a complaint,
    an unfriend, a bank's transfer out where it says so; models.vocabulary): a hashed slot is not."""
    name = c.vocabulary.slot_name((i - _N_FIXED) % c.vocabulary.n_slots)
    return name is not None and c.vocabulary.lookup(name)[1] == NEGATIVE


#: The least typical count of a type (a 4-week decayed count, or since first seen) against which
#: "fewer than the typical user" says something.
_TYPICAL_COUNT_FROM: Final[float] = 0.5


def _fewer_says_nothing(key: str, i: int, model: "ChurnModel", c: CompiledModel) -> bool:
    """Whether per-slot count fact ``key`` would say "fewer than the typical user" of a type the
    typical user does less than once (QA17 F5: "no subscription_started events in recent weeks,
    against 0.0 for a typical user" in 558 at-risk alerts of a shop, customers who never
    subscribed among them: a one-time event of the few is no usage the others fall short of). A
    type more of which reads worse keeps its count against a typical 0 ("2 complaints, against
    0.1 for a typical user" says something)."""
    if key.startswith(_PREFIXES[1]) or _more_is_worse((i - _N_FIXED) % c.vocabulary.n_slots, model, c):
        return False
    typical = _typical(key, model)
    return typical is not None and typical < _TYPICAL_COUNT_FROM


def _slot_reads_worse_as_it_grows(key: str, i: int, model: "ChurnModel") -> bool:
    """Whether per-slot feature ``key`` (index ``i``) grows as its fact reads worse for the user:
    ``inactive:`` (-log(1 + the type's 4-week count)) of a type more of which reads better,
    ``share:`` and ``lifetime:`` of a type more of which reads worse (:func:`_more_is_worse`:
    negative feedback, or a type the model weighs as a sign of leaving, skips in a music app)."""
    c = model.compiled
    return key.startswith(_PREFIXES[0]) != _more_is_worse((i - _N_FIXED) % c.vocabulary.n_slots, model, c)


#: The prefix of :func:`_more_is_worse`'s verdicts in models.compiled ``verdicts`` (no reason key
#: starts with it), followed by the slot's index.
_MORE: Final[str] = "more:"


def _more_is_worse(slot: int, model: "ChurnModel", c: CompiledModel | None = None) -> bool:
    """Whether more events of the type in ``slot`` read worse for the user: a type of the
    product's ``negative`` role (unfriends, thumbs_down), or one the model weighs so, more of it
    raising the risk (a trained fit that ties rising skips to leaving: :func:`_more_weighs_worse`).
    Such a type's facts are reasons for risk only as a rise ("skips: 30% of the user's recent
    activity, against 13% for a typical user"), and fewer of them only a reason for recovery;
    a fall of one ("fewer skips", "recent skips down 60%") is never a reason for risk (QA16 F4:
    a fit weighing rising skips as risk named them in 1 of 419 pre-churn alerts, and some
    at-risk alerts gave "fewer skips" as a reason). A function of the slot and the model alone:
    worked out once, remembered in models.compiled ``verdicts`` as :func:`_reads_as_it_weighs`."""
    if c is None:
        c = model.compiled
    key = _MORE + str(slot)
    verdict = c.verdicts.get(key)
    if verdict is None:
        verdict = c.verdicts[key] = _more_weighs_worse(slot, c)
    return verdict


def _more_weighs_worse(slot: int, c: CompiledModel) -> bool:
    """:func:`_more_is_worse` worked out: the ``negative`` role, else never the product's most
    common type (:func:`_most_common`, QA22), else the log-odds one e-fold more
    of the type adds for a user at the typical share ``s`` of it, through its three features:
    -w(``inactive:``) + w(``share:``) x s(1 - s) + w(``lifetime:``) x (1 - s) (the log of the
    share moves by 1 - s, the share by s(1 - s)), positive. The typical share is the model's
    training mean, else an even share of the slots. One number, not each feature's sign: a
    bounded fit keeps ``inactive:`` >= 0 (silence), so a type whose share weighs +8.7 and whose
    count weighs +0.1 is still a type more of which is risk."""
    vocabulary = c.vocabulary
    name = vocabulary.slot_name(slot)
    if name is not None and vocabulary.lookup(name)[1] == NEGATIVE:
        return True
    n = vocabulary.n_slots
    share = c.references[_N_FIXED + n + slot]
    if _most_common(share, c.references[_N_FIXED + n:_N_FIXED + 2 * n]):
        return False
    s = share if 0.0 < share < 1.0 else 1.0 / n
    w = c.weights
    more = -w[_N_FIXED + slot] + w[_N_FIXED + n + slot] * s * (1.0 - s) + w[_N_FIXED + 2 * n + slot] * (1.0 - s)
    return more > 0.0


def _most_common(share: float, shares: Sequence[float]) -> bool:
    """Whether a type whose typical share is ``share`` is the product's most common type (the
    largest training-mean share of ``shares``, the model's means of every slot's ``share:``): its
    core use (plays in a streaming service, sessions in a game), never a type more of which reads
    worse in :func:`_more_weighs_worse` unless declared ``negative``. Why (QA22a F3, QA22b F10):
    a fit weighs the core type's share up when the other types' shares weigh down (they add up
    to 1: more of the core type is less of the rest, a narrower use, which the breadth reason and
    the other types' own facts say), and its count since first seen up beside the recent one (a
    fall from the user's own history, which the decline says); the formula then read plays as a
    sign of leaving, and "play_start events: 35% of the user's recent activity, against 31% for
    a typical user" was a reason for risk in 815 at-risk alerts of a streaming service,
    "session_start events: 34% ..., against 29%" the first of 763 of a game's loyal players.
    A model without the means (every share 0) has no most common type."""
    return 0.0 < share < 1.0 and share >= max(shares)


def _share_of_use(key: str, model: "ChurnModel", c: CompiledModel | None = None) -> bool:
    """Whether ``key`` is the share of a type of use in the user's recent activity (``share:``, a
    type more of which does not read worse, :func:`_more_is_worse`): never a reason for risk (:func:`_against`,
    :func:`_not_for`). Why (QA14 F4): the shares add up to 1, so a smaller share of one type is a
    larger share of the others, no fact against the user; the rule read a smaller share of a type
    of use as worse, and a model weighing a rare type's share down (``streak_lost``: it marks
    engaged users) told 136 at-risk alerts "streak_lost events: 0.0% of the user's recent activity,
    against 0.3% for a typical user", good news to a fitness CRM. Fewer events of a type is said by
    its own facts (``inactive:``, ``lifetime:``); a larger share of a type more of which reads
    worse (more complaints for the use, more skips for the plays: QA16 F4) is a reason for risk."""
    if not key.startswith(_PREFIXES[1]):
        return False
    return not _slot_reads_worse_as_it_grows(key, (model.compiled if c is None else c).features.index(key), model)


def _kinds_used(sig: Signals, model: "ChurnModel") -> str:
    compiled = model.compiled  # once (a generic attribute lookup of the Python ChurnModel)
    vocabulary = compiled.vocabulary
    kinds = compiled.n_kinds
    if vocabulary.tracked:  # the names: the list itself (else its length is all the words need)
        slots, bought = kinds_used(sig, model, compiled)
        used = len(slots) + (1 if bought else 0)
        own = [i for i in compiled.kinds if vocabulary.lookup(vocabulary.tracked[i])[1] == PURCHASE]
        if own and compiled.purchase_kind:
            # A model file without kinds counts a tracked purchase type twice (its slot and the
            # purchases term, models.compiled.product_kinds: its breadth as before); say it once.
            named = sorted({*slots, *(own[:1] if bought else [])})
            used, kinds, bought = len(named), kinds - 1, False
            slots = named
        names = ", ".join([*(vocabulary.tracked[i] for i in slots), *(["purchases"] if bought else [])]) or "none"
        return f"uses {used} of the {kinds} main kinds of activity in 4 weeks ({names})"
    used = kinds_used_count(sig, compiled)
    if KINDS_KEY in model.population:  # the product's kinds are known: say how many there are
        return f"uses {used} of {kinds} kinds of activity in 4 weeks"
    return f"uses {used} kind{'s' if used != 1 else ''} of activity in 4 weeks"


def _slot_trend(sig: Signals, i: int) -> float:
    """7-day rate over 4-week rate of slot ``i``, as models.signals measures the total's."""
    return rate_ratio(sig.slot_7d[i], sig.slot_28d[i], sig.age_days)


def _type_decline(sig: Signals, model: "ChurnModel") -> tuple[str, float] | None:
    """(name, trend) of the tracked type with the largest 4-week baseline that fell to under
    half its rate in the last week; None without tracked names or such a type. Never a type more
    of which reads worse (:func:`_more_is_worse`): "recent skips down 60%" is good news, no word
    for a decline (QA16 F4)."""
    c = model.compiled
    vocabulary = c.vocabulary
    if not vocabulary.tracked:
        return None
    best: tuple[float, int] | None = None
    for i, n28 in enumerate(sig.slot_28d):
        if n28 >= 4.0 and _slot_trend(sig, i) < 0.5 and (best is None or n28 > best[0]) and not _more_is_worse(i, model, c):
            best = (n28, i)
    return None if best is None else (vocabulary.tracked[best[1]], _slot_trend(sig, best[1]))


#: :func:`_one` and :func:`_plural` of each name asked, worked out once: the names are a model's
#: event names (at most 16 tracked) and the words' own ("event", "purchase"). Why: the words of
#: a count tested the name's letters and endings every time, str methods that are generic calls
#: in the compiled core (~0.4-0.6k instructions a count said, most alerts say one).
_FORMS: Final[dict[str, tuple[str, str]]] = {}


def _forms(name: str) -> tuple[str, str]:
    """(:func:`_one`, :func:`_plural`) of ``name``, remembered in :data:`_FORMS`."""
    forms = _FORMS.get(name)
    if forms is None:
        forms = _FORMS[name] = (name if name.isalpha() else f"{name} event", _plural_of(name))
    return forms


def _plural(name: str) -> str:
    """"posts", "replies", "searches", "boxes": English plural rules for the product's own
    names (-ss, -us, -x, -z, -ch, -sh -> -es; consonant + y -> -ies; else -s), except that a
    name ending in another single s is taken as already plural ("views", "news"; QA10 F4 found
    "searchs"). A name that is not one word keeps its spelling ("thumbs_down events")."""
    return _forms(name)[1]


def _plural_of(name: str) -> str:
    """:func:`_plural` worked out (its docstring says the rules)."""
    if not name.isalpha():
        return f"{name} events"
    if name.endswith(("ss", "us", "x", "z", "ch", "sh")):
        return name + "es"
    if name.endswith("s"):
        return name
    if name.endswith("y") and len(name) > 1 and name[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def _one(name: str) -> str:
    """"search", "plan_upgrade event": one of the product's name, as :func:`_counted` says 1."""
    return _forms(name)[0]


def _counted(name: str, n: int) -> str:
    """"3 dislikes"; a name that is not one word keeps its spelling ("2 thumbs_down events", not
    "2 thumbs_downs")."""
    forms = _forms(name)
    return f"1 {forms[0]}" if n == 1 else f"{n} {forms[1]}"


def _whole(x: float) -> int:
    """A decayed count as a person counts: the nearest whole number, halves up (the per-type
    texts round the same way). The counters are exponentially weighted (models.state): 1.4 is
    "about one event lately", and its decimal is the decay's, not the user's; printed, "only 1.0
    events" read like a machine. Under a half is "no events": what is left is mostly weeks old.
    Numbers in the risk and the ranking keep the exact counter: this is for the words only."""
    return int(x + 0.5)


def _days(x: float) -> str:
    """"1 day", "12 days": whole days as the texts print them (``:.0f``), singular right.

    ``round`` by :func:`~models.signals._round_even` (the same int for a finite float, the same
    error otherwise): the builtin is a module lookup and a generic call in the compiled core (~1k
    instructions, once an alert's texts, docs/SCALING.md).

    >>> _days(1.2), _days(0.6), _days(12.4), _days(2.5)
    ('1 day', '1 day', '12 days', '2 days')
    """
    n = _round_even(x)
    return f"{n} day" if n == 1 else f"{n} days"


def _lasted(x: float) -> str:
    """How long a stage the user left lasted, ``x`` days: "less than a day" where :func:`_days`
    would say "0 days" (a stage left within 12 hours: cancelled at noon, back at midnight, read
    "came back after 0 days as churned"), else :func:`_days`.

    >>> _lasted(0.5), _lasted(0.6), _lasted(9.2)
    ('less than a day', '1 day', '9 days')
    """
    return "less than a day" if _round_even(x) == 0 else _days(x)


def _every(gap_days: float) -> str:
    """A rhythm's usual interval in words: "every day", "every 30 days".

    >>> _every(1.2), _every(30.4)
    ('every day', 'every 30 days')
    """
    return "every day" if _round_even(gap_days) == 1 else f"every {_days(gap_days)}"


def _ago(x: float) -> str:
    """"today", "1 day ago", "12 days ago" of ``x`` days.

    >>> _ago(0.4), _ago(1.3), _ago(3.0)
    ('today', '1 day ago', '3 days ago')
    """
    return "today" if _round_even(x) == 0 else _days(x) + " ago"


def _num(x: float) -> str:
    """A count, amount or percentage as the reasons print it: one decimal under 10 (decayed
    counts; a rare event's share of activity, "0.3%", is not "0%")."""
    return f"{x:.1f}" if x < 10.0 else f"{x:.0f}"


def _typical(name: str, model: "ChurnModel") -> float | None:
    """The reference user's value of feature ``name`` in its fact's own unit (a count, days, a
    share); None when the model has no training mean for it (nothing to compare with)."""
    means = model.risk_means
    if name not in means:
        return None
    ref = float(means[name])
    if name.startswith("inactive"):
        return math.expm1(-ref)
    if name.endswith("_log") or name.startswith(SLOT_PREFIXES[2]):
        return math.expm1(ref)
    return ref


def _versus(name: str, model: "ChurnModel", percent: bool = False) -> str:
    typ = _typical(name, model)
    if typ is None:
        return ""
    return f", against {_num(100.0 * typ)}% for a typical user" if percent else f", against {_num(typ)} for a typical user"


def feature_key(name: str) -> str:
    """The reason key that words the risk feature ``name`` (a per-slot feature, "inactive:post",
    is its own key); KeyError for a feature no reason words."""
    if name.startswith(SLOT_PREFIXES):
        return name
    i = _IDX[name]
    for key, idx in _GROUPS.items():
        if i in idx:
            return key
    raise KeyError(name)


#: Said after a purchase count of a user whose subscription pays (:func:`_besides`).
_BESIDES: Final[str] = " besides the subscription"


def _besides(st: UserState) -> str:
    """" besides the subscription" for a user whose latest statement pays (models.state
    PAYS_SUBSCRIPTION), else "": said after their count of purchases or spend (QA21 F4). The
    purchase role counts one-off orders; a statement is not one. "no purchases since first seen,
    against 1.8 for a typical user" on 183 at-risk alerts of subscribers paying 54.50 a month
    read as if they paid nothing. The fact stays (the risk weighs it), in words billing agrees with."""
    return _BESIDES if st.flags & PAYS_SUBSCRIPTION else ""


def _compared_text(key: str, st: UserState, sig: Signals, values: Sequence[float], model: "ChurnModel", against: bool) -> str:
    """The words of a :data:`_COMPARED` key: the user's value against the reference user's. A
    compared fact is a reason only where it reads the alert's way (:func:`_reads_as_it_weighs`):
    less than typical for risk, more for recovery, so no words need to say why good news would
    be a reason for risk."""
    name = FEATURES[_GROUPS[key][0]]
    vs = _versus(name, model)
    if key == "low_7d":  # decayed counters (1-week and 3-month mean lives): no window claimed
        return _decayed_count(sig.act_7d, "event", against, _WEEK) + vs
    if key == "low_90d":
        return _decayed_count(sig.act_90d, "event", against, _MONTHS_3) + vs
    besides = _besides(st)
    if key == "active_days":
        text = f"{sig.active_days} active day{'s' if sig.active_days != 1 else ''} so far{vs}"
    elif key == "buyer":
        text = f"a buyer ({_counted('purchase', sig.n_purchases)})" if sig.n_purchases > 0 else "never bought" + besides
    elif key == "purchases":
        text = (f"{_counted('purchase', sig.n_purchases)}" if sig.n_purchases > 0 else "no purchase") + f"{besides} so far{vs}"
    else:  # revenue
        text = f"spent {_num(math.expm1(values[_IDX[name]]))}{besides} so far{vs}"
    return text


def _slot_text(key: str, sig: Signals, values: Sequence[float], model: "ChurnModel", against: bool, besides: str = "") -> str:
    """"about 2 posts in recent weeks (decayed count, 4-week mean life), against 6.2 for a
    typical user" (``inactive:``), "unfriends: 12% of the user's recent activity, against 1.5%
    for a typical user" (``share:``), "about 40 posts since first seen (estimated from the recent
    mix), against 310 for a typical user" (``lifetime:``, :func:`_lifetime_text`), in the product's
    names; a hashed slot is "one kind of activity". The per-type counters decay (mean life 4 weeks, models.state), so they are not
    counts in a window: a search 46 days ago still weighs, an upgrade 25 days ago weighs 0.4.
    QA10 F4: "no plan_upgrade events in the last 4 weeks: 1.1% of the user's activity" and "4
    searchs in the last 4 weeks" (the last search 46 days before) stated false facts. So the
    count is said as what it is, "no X" only of a counter at 0, and a share without a count.

    Of a type more of which reads worse (:func:`_more_is_worse`) a reason for risk is a rise:
    "about 12 skips in recent weeks (...), against 4.1 for a typical user", never "only", with the
    type's own rise in the last week when there is one (:func:`_rise`)."""
    compiled = model.compiled
    i = compiled.features.index(key)
    slot = (i - _N_FIXED) % compiled.vocabulary.n_slots
    name = compiled.vocabulary.slot_name(slot)
    worse = _more_is_worse(slot, model, compiled)
    rise = _rise(sig, slot, name) if against and worse else ""
    if key.startswith(SLOT_PREFIXES[2]):
        return _lifetime_text(key, sig, slot, name, values[i], model, against, besides) + rise
    if key.startswith(SLOT_PREFIXES[1]):
        what = "one kind of activity" if name is None else _plural(name)
        return f"{what}: {_num(100.0 * values[i])}% of the user's recent activity{_versus(key, model, percent=True)}{rise}"
    return _decayed_count(sig.slot_28d[slot], name, against and not worse) + _versus(key, model) + rise


#: The least 1-week over 4-week rate of a type at which :func:`_rise` says it rose: "up 20%".
_RISE_FROM: Final[float] = 1.2


def _rise(sig: Signals, slot: int, name: str | None) -> str:
    """"; recent skips (1-week decayed) up 80% against the user's 4-week baseline": the type's own
    rise, said after a reason for risk of a type more of which reads worse, from :data:`_RISE_FROM`
    (the same trend as :func:`_type_decline`'s fall); "" when it did not rise. The reason is the
    fact the model weighs (the share, the count against the typical user); the rise is what a
    person acts on (QA16 F4: skips rise before a listener leaves)."""
    trend = _slot_trend(sig, slot)
    if trend < _RISE_FROM:
        return ""
    what = "use of that kind" if name is None else _plural(name)
    return f"; recent {what}{_RECENT} up {100.0 * (trend - 1.0):.0f}% against the user's 4-week baseline"


#: What a decayed count is, said after it (the counters of models.state: 4-week mean life).
_DECAYED: Final[str] = " (decayed count, 4-week mean life)"
#: The words of each decayed counter's mean life (models.state: 7, 28 and 90 days), for
#: :func:`_decayed_count`: (when, the period "fewer than 1" is said per, what it is).
_WEEK: Final[tuple[str, str, str]] = ("lately", "a week", " (decayed count, 1-week mean life)")
_WEEKS_4: Final[tuple[str, str, str]] = ("in recent weeks", "a 4-week period", _DECAYED)
_MONTHS_3: Final[tuple[str, str, str]] = ("in recent months", "a 3-month period", " (decayed count, 3-month mean life)")


def _decayed_count(count: float, name: str | None, against: bool, life: tuple[str, str, str] = _WEEKS_4) -> str:
    """A decayed counter in true words (:func:`_slot_text` says why): "no posts in recent weeks"
    (the counter is 0), "fewer than 1 post a 4-week period lately" (under a half: what is left is
    weeks old), "only about 3 posts in recent weeks (decayed count, 4-week mean life)". ``life``
    words the counter's mean life: the 4-week ones (per type, total, negative feedback), or the
    total's 1-week and 3-month ones a trained model weighs, "only about 3 events lately (decayed
    count, 1-week mean life)" (:data:`_WEEK`, :data:`_MONTHS_3`; QA11 F1: "only 3 events in the
    last week" was said of users with none that week, 80% of such reasons wrong)."""
    when, period, what_it_is = life
    n = _whole(count)
    if count <= 0.0:
        return f"one kind of activity not used {when}" if name is None else f"no {_plural(name)} {when}"
    if n == 0:
        if name is None:
            return f"one kind of activity used less than once {period} lately"
        return f"fewer than 1 {_one(name)} {period} lately"
    only = "only " if against else ""
    if name is None:
        what = f"one kind of activity used {only}about {n} time{'s' if n != 1 else ''}"
    else:
        what = f"{only}about {_counted(name, n)}"
    return f"{what} {when}{what_it_is}"


#: What a lifetime estimate is, said after it (models.risk.lifetime_count).
_ESTIMATED: Final[str] = " (estimated from the recent mix)"
#: The recent weeks a lifetime reason falls back on (:func:`_lifetime_recent`), told apart from
#: the ``inactive:`` words of the same counter by their end.
_RECENT_COUNT: Final[str] = " (decayed 4-week count)"
_RECENT_SHARE: Final[str] = " (decayed 4-week counts)"
_LIFETIME_WEEKS: Final[tuple[str, str, str]] = ("in recent weeks", "a 4-week period", _RECENT_COUNT)


def _lifetime_text(key: str, sig: Signals, slot: int, name: str | None, value: float, model: "ChurnModel", against: bool,
                   besides: str = "") -> str:
    """The fact behind ``lifetime:<name>`` in true words. The feature is an *estimate*, the type's
    share of the 4-week activity x every event so far (models.risk.lifetime_count), so it is 0
    whenever the recent weeks had none of the type, whatever the user did before: QA12 F4, "no
    purchases counted since first seen" of 402 of 2,207 users who had bought, and "no add_to_cart
    events counted since first seen" of 289 of 289 who had added to a cart. So:

    - the purchase role, of which the state keeps an exact count (``n_purchases``, distinct UTC
      days with a purchase): that count, "only bought on 2 days since first seen, against 3.7 for
      a typical user", when it is on the alert's side of the typical user (fewer for risk, more
      for a recovery), with ``besides`` after the count (:func:`_besides`); else what made the estimate low or high, the recent weeks
      (:func:`_lifetime_recent`);
    - another type, with an estimate of at least a half: "only about 40 posts since first seen
      (estimated from the recent mix), against 310 for a typical user"; under a model that
      carries the volume to the renewal (models.risk.by_renewal), a subscriber's says both
      numbers: "... since first seen, about 60 by the renewal at the user's rate so far (...)";
    - with an estimate under a half: the recent weeks, never "since first seen"."""
    if name is not None and model.compiled.vocabulary.lookup(name)[1] == PURCHASE:
        exact = sig.n_purchases
        ref = reference(key, model)
        if (math.log1p(exact) < ref) if against else (math.log1p(exact) > ref):
            if exact == 0:
                return f"no {_plural(name)}{besides} since first seen{_versus(key, model)}"
            return f"{'only ' if against else ''}bought on {_days(exact)}{besides} since first seen{_versus(key, model)}"
        return _lifetime_recent(sig, slot, name, against)
    n = int(lifetime_count(sig, slot) + 0.5)
    if n == 0:
        return _lifetime_recent(sig, slot, name, against)
    only = "only " if against and value < reference(key, model) else ""
    if name is None:
        what = f"one kind of activity used {only}about {n} time{'s' if n != 1 else ''}"
    else:
        what = f"{only}about {_counted(name, n)}"
    factor = by_renewal(sig)  # a model that carries the volume to the renewal weighs that one
    then = f", about {int(lifetime_count(sig, slot) * factor + 0.5)} by the renewal at the user's rate so far" if factor > 1.0 else ""
    return f"{what} since first seen{then}{_ESTIMATED}{_versus(key, model)}"


def _lifetime_recent(sig: Signals, slot: int, name: str | None, against: bool) -> str:
    """What the lifetime estimate is taken from, when no count since first seen can be said truly
    (:func:`_lifetime_text`), with no comparison with the typical user's count since first seen:
    against the user, the type's 4-week counter, "no add_to_cart events in recent weeks (decayed
    4-week count)", "fewer than 1 purchase a 4-week period lately (decayed 4-week count)"; in their
    favour, its share of the 4-week activity, "purchases: 40% of the user's recent activity
    (decayed 4-week counts)" (a recovery's estimate is high because the share is, though the
    counter may be under a half: "fewer than 1 purchase" read as bad news in 2 recovered alerts of
    QA12's shop)."""
    count = sig.slot_28d[slot]
    if against or count <= 0.0 or sig.act_28d <= 0.0:
        text = _decayed_count(count, name, against, _LIFETIME_WEEKS)
        return text if text.endswith(_RECENT_COUNT) else text + _RECENT_COUNT
    what = "one kind of activity" if name is None else _plural(name)
    return f"{what}: {_num(100.0 * count / sig.act_28d)}% of the user's recent activity{_RECENT_SHARE}"


def _negative_text(st: UserState, sig: Signals, model: "ChurnModel", latest: str = "") -> str:
    """"about 3 unfriends in recent weeks (decayed count, 4-week mean life)": the product's own
    names of the negative feedback the user gave (the state's mask of the role's names used while
    the count was alive). The counter is the 4-week decayed one the risk reads (models.risk
    ``negative_share``), so, as the per-type counts (:func:`_decayed_count`), it is no count in a
    window and is never rounded up: "3 unfriends in the last 4 weeks" (and at least "1") was said
    of counters whose events were weeks older (QA10 F4, reasons11).

    ``latest``: the name of the negative event the alert is raised at (the user's latest event,
    models.engine), which the text then dates, "downgraded today" (:func:`_negative_today`)."""
    if latest:
        return _negative_today(st, sig, model, latest)
    vocabulary = model.compiled.vocabulary
    known = len(vocabulary.roles.get("negative", ()))
    names = [vocabulary.negative_name(i) for i in range(16) if st.negative_names >> i & 1 and i < known]
    if len(names) == 1:
        return _decayed_count(sig.negative_28d, names[0], False)
    kinds = f" ({', '.join(names)})" if names else ""
    n = _whole(sig.negative_28d)
    if sig.negative_28d <= 0.0:
        return f"no negative feedback{kinds} in recent weeks"
    if n == 0:
        return f"fewer than 1 negative-feedback event{kinds} a 4-week period lately"
    return f"about {n} negative-feedback event{'s' if n != 1 else ''}{kinds} in recent weeks{_DECAYED}"


#: Negative feedback in words (models.vocabulary DEFAULT_ROLES, DEFAULT_GRIEVANCE): what the customer
#: did, for the names that read as a deed on their own; a grievance a model declares beyond these is
#: said as the product names it ("support_escalation sent"), another name counted ("1 dislike today").
_NEGATIVE_WORDS: Final[dict[str, str]] = {"complaint": "complained", "refund": "asked for a refund",
                                          "refund_request": "asked for a refund", "chargeback": "disputed a payment (chargeback)",
                                          "downgrade": "downgraded", "uninstall": "uninstalled", "report_abuse": "reported abuse",
                                          "negative_feedback": "gave negative feedback"}


def _negative_today(st: UserState, sig: Signals, model: "ChurnModel", latest: str) -> str:
    """The negative event an alert is raised at, dated: "downgraded today", "1 dislike today"; with
    the count after it when more than about one is in it ("downgraded today; about 3 negative-feedback
    events (downgrade, dislike) in recent weeks (decayed count, 4-week mean life)"). Why (QA22a F10):
    163 at-risk alerts of a streaming service led with "about 1 downgrade in recent weeks (decayed
    count, 4-week mean life)", 145 of them raised at the downgrade itself. The state keeps no time
    of a negative event (nor the plans, which are the account's: its alert says "downgraded from
    standard to basic"), so an alert raised later keeps the count's words."""
    words = _NEGATIVE_WORDS.get(latest) or _counted(latest, 1)
    count = _negative_text(st, sig, model)
    alone = _whole(sig.negative_28d) <= 1 and bin(st.negative_names).count("1") <= 1
    return f"{words} today" if alone else f"{words} today; {count}"


def _grievance_text(st: UserState, sig: Signals, model: "ChurnModel") -> str:
    """A paying customer's standing grievance (models.signals.grievance_stands) in the product's
    words, dated where the state can date it: "complained on 2026-03-02" while it is the user's
    latest activity (models.state GRIEVANCE_LATEST: ``last_seen_s`` is its time; an alert it opens
    is always told so), "complained and asked for a refund, the latest on 2026-03-04" for several,
    else after the last purchase, which it came after: "complained since the last purchase on
    2026-02-20". Which grievances: the state's mask of negative names used (models.state)."""
    vocabulary = model.compiled.vocabulary
    names = [vocabulary.negative_name(i) for i in range(len(vocabulary.roles.get("negative", ())))
             if st.negative_names >> i & 1 and vocabulary.is_grievance(vocabulary.negative_name(i))]
    said: list[str] = []
    for name in names:
        words = _NEGATIVE_WORDS.get(name, f"{name} sent")
        if words not in said:
            said.append(words)
    what = " and ".join(said) if len(said) < 3 else ", ".join(said[:-1]) + " and " + said[-1]
    if st.flags & GRIEVANCE_LATEST:
        day = _day(st.last_seen_s)
        return f"{what} on {day}" if len(said) == 1 else f"{what}, the latest on {day}"
    if st.n_purchases:
        return f"{what} since the last purchase on {_day(st.last_purchase_s)}"
    return f"{what} in recent weeks"


def _day(t_s: int) -> str:
    """The UTC day of epoch second ``t_s``, ISO (2026-03-02)."""
    return datetime.fromtimestamp(t_s, tz=timezone.utc).date().isoformat()


def _typical_tenure(model: "ChurnModel", c: CompiledModel | None = None) -> float:
    """Days of tenure of the reference user (the tenure hazard speaks before them): expm1 of the
    compiled model's reference of ``tenure_log`` (models.risk.reference's), worked out once per
    model (models.compiled ``typical_tenure_days``), not by a generic expm1 call up to three
    times an alert. ``c``: ``model.compiled`` where the caller holds it."""
    return (model.compiled if c is None else c).typical_tenure_days


def _gap_ratio(sig: Signals) -> float:
    return sig.recent_gap_days / sig.visit_gap_days if sig.visit_gap_days > 0.0 else 1.0


#: The least age (days) at which a fixed count fact is compared with the typical user's: the mean
#: life of its decayed counter for a recent count (models.state: 7, 28, 90 days; the per-type
#: ``inactive:`` counts are 4-week ones too), -1 for a count since first seen (``lifetime:`` per type
#: too): the typical user has had the typical tenure to gather it. One lookup a key.
_YOUNG_UNTIL: Final[dict[str, float]] = {"low_7d": 7.0, "low": 28.0, "low_90d": 90.0,
                                         "active_days": -1.0, "buyer": -1.0, "purchases": -1.0, "revenue": -1.0}


def _too_young(key: str, sig: Signals, c: CompiledModel) -> bool:
    """Whether the user is too young for the count of ``key`` to be compared with the typical
    user's: seen for less than the time that count takes to gather, its counter's mean life
    for a recent count ("only about 1 app_open event in recent weeks ..., against 7.6 for a
    typical user", "fewer than 80% of users"), the typical tenure for a count since first seen
    ("1 active day so far, against 12 for a typical user"). Such a count is then no reason for
    risk (:func:`_against`, :func:`_not_for`): a customer of one day has fewer events than a
    customer of four weeks because of their age, which the tenure reason says in its own words
    ("active on a single day so far: churn is likeliest early on"). Why (QA17 F2): 651 at-risk
    alerts on new customers of a shop compared a day-old customer's 4-week count with a typical
    customer's."""
    return _young(key, _key_class(key), sig, c)


def _young(key: str, cls: int, sig: Signals, c: CompiledModel) -> bool:
    """:func:`_too_young` of a key whose class (:func:`_key_class`) the caller has already."""
    age = sig.age_days
    if cls == _SLOT_KEY:
        if key.startswith(_PREFIXES[0]):
            return age < 28.0
        return key.startswith(_PREFIXES[2]) and age < c.typical_tenure_days
    until = _YOUNG_UNTIL.get(key, 0.0)
    return age < (c.typical_tenure_days if until < 0.0 else until)


#: :func:`_by_class`'s answers: no, yes, or the key's own line decides.
_NO: Final[int] = 0
_YES: Final[int] = 1
_OWN_LINE: Final[int] = 2


def _by_class(key: str, sig: Signals, model: "ChurnModel", c: CompiledModel) -> int:
    """What both readings of a fact (:func:`_against`, :func:`_not_for`) answer before its own
    line: no for the count of a user too young for it (:func:`_too_young`); for a compared or
    per-type fact, yes when the model weighs it as it reads and it is not the share of a type of
    use nor the count of a type the user never used (:func:`_never_used`); no for a fact that
    grows with silence weighed < 0 (a free-sign fit); else its own line."""
    cls = _key_class(key)
    if _young(key, cls, sig, c):
        return _NO
    if cls == _SLOT_KEY or cls == _COMPARED_KEY:
        if not _reads_as_it_weighs(key, model, c) or _share_of_use(key, model, c):
            return _NO
        return _NO if cls == _SLOT_KEY and _never_used(key, sig, model, c) else _YES
    if cls == _SILENT_KEY and not _reads_as_it_weighs(key, model, c):
        return _NO
    return _OWN_LINE


def _never_used(key: str, sig: Signals, model: "ChurnModel", c: CompiledModel) -> bool:
    """Whether per-type count fact ``key`` (``inactive:``, or ``lifetime:`` but of the purchase
    role, whose exact count is said) is of a type of use the user never used: its 4-week decayed
    counter is exactly 0, as only a type never done since first seen has it (the counter decays
    by a factor and never returns to 0 once it has counted; float32 needs some 8 years of silence
    to underflow). Then "no X in recent weeks, against 0.8 for a typical user" is a trait, not a
    stop: no reason for risk (:func:`_by_class`). Why (QA22a F3): a streaming service's fit
    weighed fewer profile switches as risk (``inactive:profile_switch`` 1.79: families churn
    less), and 1,183 of 2,236 at-risk alerts led with "no profile_switch events in recent weeks",
    every one of a solo account, which has one profile to watch on: nothing to act on. A user
    who did the type, however long ago, keeps the fact ("fewer than 1 X a 4-week period lately").
    The state keeps no count of a type since first seen, so "a material amount" is "ever"."""
    i = c.features.index(key)
    slot = (i - _N_FIXED) % c.vocabulary.n_slots
    if sig.slot_28d[slot] > 0.0 or key.startswith(_PREFIXES[1]) or _more_is_worse(slot, model, c):
        return False
    name = c.vocabulary.slot_name(slot)
    return not (key.startswith(_PREFIXES[2]) and name is not None and c.vocabulary.lookup(name)[1] == PURCHASE)


def _against(key: str, sig: Signals, back: float, model: "ChurnModel", c: CompiledModel | None = None) -> bool:
    """Whether the fact of ``key`` reads against the user clearly enough to be a reason. A
    compared or per-type fact when the model weighs it as it reads (:func:`_reads_as_it_weighs`:
    its words state the comparison, and a positive contribution then puts the user on its worse
    side), but the share of a type of use never (:func:`_share_of_use`); negative feedback,
    tenure and gaps, likewise, past their own lines; no count of a user too young for it
    (:func:`_too_young`)."""
    if c is None:
        c = model.compiled
    shared = _by_class(key, sig, model, c)
    if shared != _OWN_LINE:
        return shared == _YES
    if key == "silence":
        return sig.visit_overdue >= 1.5
    if key == "purchase":
        return sig.purchase_x >= 1 and sig.purchase_overdue >= 1.5
    if key == "decline":
        return sig.act_28d > 0.0 and sig.trend <= 0.7
    if key == "decline_long":
        return sig.act_90d > 0.0 and sig.trend_long <= 0.7
    if key == "low":
        edges = (model.compiled if c is None else c).act_edges  # the population's ACT_QUANTILES (models.compiled)
        return (percentile(sig.act_28d, edges) < 0.25) if edges else sig.act_28d < 2.0
    if key == "narrow":  # only against the product's own kinds (:func:`_kinds_known`)
        used, kinds = _kinds(sig, model, c)
        return sig.breadth < 0.3 and 2 * used <= kinds and _kinds_known(model, c)
    if key == "cooling":  # not while a cancellation stands: it is the reason, and the temperature's 0 is its (models.temperature)
        return back < _COOLING_BELOW and not sig.cancelled
    if key == "negative":  # "no negative feedback" never (a trained fit may tie complaining to staying)
        return sig.negative_28d >= 0.5 and _reads_as_it_weighs(key, model, c)
    if key == "tenure":  # the hazard of the first weeks; "a user for 300 days" never
        return sig.tenure_days < _typical_tenure(model, c) and _reads_as_it_weighs(key, model, c)
    if key == "gaps":  # widening; quickening visits never
        return _gap_ratio(sig) >= 1.5 and _reads_as_it_weighs(key, model, c)
    return False


#: The least ratio to the user's own rhythm the fallback reason states of a silence or of the gaps
#: between visits: its words print one decimal, and below this they read "1.0x" or "1.1x the usual",
#: which reads as the usual (QA16 F6: 5 at-risk alerts gave only "recent gaps between active days
#: 1.0x the usual 4.0 days"); with nothing left, the alert says its risk comes from many small signs.
_FALLBACK_RATIO: Final[float] = 1.2


def _not_for(key: str, sig: Signals, back: float, model: "ChurnModel", c: CompiledModel | None = None) -> bool:
    """Whether the fact of ``key`` at least does not read in the user's favour (the fallback
    reason for risk: weaker than :func:`_against`, never reassuring: nor the share of a type of
    use, nor the count of a user too young for it, :func:`_too_young`)."""
    if c is None:
        c = model.compiled
    shared = _by_class(key, sig, model, c)
    if shared != _OWN_LINE:
        return shared == _YES
    if key == "silence":  # at least "1.2x": "no visit for 1.0x the usual interval" reads as normal (QA16 F6)
        return sig.visit_overdue >= _FALLBACK_RATIO
    if key == "purchase":
        return sig.purchase_x >= 1 and sig.purchase_overdue > 1.0
    if key == "decline":
        return sig.act_28d > 0.0 and sig.trend < 0.9
    if key == "decline_long":
        return sig.act_90d > 0.0 and sig.trend_long < 0.9
    if key == "low":
        edges = (model.compiled if c is None else c).act_edges  # the population's ACT_QUANTILES (models.compiled)
        return (percentile(sig.act_28d, edges) < 0.5) if edges else sig.act_28d < 4.0
    if key == "narrow":
        used, kinds = _kinds(sig, model, c)
        return (used < 2 or 2 * used < kinds) and _kinds_known(model, c)
    if key == "cooling":
        return back < _WARM_FROM and not sig.cancelled
    if key == "tenure":
        return _against(key, sig, back, model, c)
    if key == "gaps":  # QA16 F6: "recent gaps between active days 1.0x the usual" was an at-risk alert's only reason
        return _gap_ratio(sig) >= _FALLBACK_RATIO and _reads_as_it_weighs(key, model, c)
    return False


def _for(key: str, sig: Signals, back: float, model: "ChurnModel", c: CompiledModel | None = None) -> bool:
    """Whether the fact of ``key`` reads in the user's favour (a reason for recovery): the mirror
    of :func:`_against`, with the same :func:`_reads_as_it_weighs` for the facts a trained model
    may weigh either way (a negative contribution then puts the user on their better side); never
    the tenure nor a per-type fact of a type of the ``negative`` role (QA19 F6)."""
    cls = _key_class(key)
    if cls == _SLOT_KEY:  # of a type the product declares negative, never (QA19 F6): a complaint, money moved out
        compiled = model.compiled if c is None else c
        return _reads_as_it_weighs(key, model, compiled) and not _negative_slot(compiled.features.index(key), compiled)
    if cls == _COMPARED_KEY:
        return _reads_as_it_weighs(key, model, c)
    if key == "negative":  # "about 3 unfriends in recent weeks" never
        return sig.negative_28d < 0.5 and _reads_as_it_weighs(key, model, c)
    if cls == _SILENT_KEY and not _reads_as_it_weighs(key, model, c):  # "active today" never, if silence lowers the risk
        return False
    if key == "silence":
        return sig.visit_overdue <= 1.0
    if key == "decline":
        return sig.act_28d > 0.0 and sig.trend >= 0.9
    if key == "decline_long":
        return sig.act_90d > 0.0 and sig.trend_long >= 0.9
    if key == "low":
        edges = (model.compiled if c is None else c).act_edges  # the population's ACT_QUANTILES (models.compiled)
        return (percentile(sig.act_28d, edges) >= 0.5) if edges else sig.act_28d >= 4.0
    if key == "narrow":
        used, kinds = _kinds(sig, model, c)
        return used >= 2 and 2 * used >= kinds
    if key == "purchase":
        return sig.purchase_x >= 1 and sig.purchase_overdue <= 1.0
    if key == "cooling":
        return back >= _WARM_FROM
    if key == "gaps":  # steady or quickening; widening gaps never
        return _gap_ratio(sig) <= 1.0 and _reads_as_it_weighs(key, model, c)
    # the tenure never: it only grows, so "active over 175 days (first to last visit)" is no news
    # of a recovery (QA19 F6: the first reason of 32 of 63 "recovered" alerts of a bank's
    # switchers who were moving out)
    return False


#: What the declines compare (models.signals ``trend``, ``trend_long``): decayed counters, 1-week
#: over 4-week and 4-week over 3-month rates, not counts in windows. QA11 F1: "activity down 89%"
#: was said of users with no event in 7 days (the 1-week counter never reaches 0), read as "down
#: 100%"; "activity over 4 weeks" claimed a window the same way.
_RECENT: Final[str] = " (1-week decayed)"
_RECENT_LONG: Final[str] = " (4-week decayed)"
#: What the tenure reasons measure: ``tenure_days`` (models.signals), the first to the last
#: activity, which is what the ``tenure_log`` feature they explain weighs. Why not the days since
#: first use (``age_days``, = tenure + silence): the reason states the fact whose contribution
#: ranks it; a user first seen 39 days ago but active over 19 weighs as a 19-day user, so "a user
#: for 39 days" would not support "churn is likeliest early on" (the hazard is measured from the
#: 19), while "a user for only 19 days" stated a false fact (QA11 F7: 80% off by more than a day).
_FIRST_TO_LAST: Final[str] = " (first to last visit)"


def _text(key: str, st: UserState, sig: Signals, temperature: tuple[float, StaySource], model: "ChurnModel",
          c: CompiledModel | None = None) -> str:
    """The words of fact ``key`` against the user. ``c``: ``model.compiled`` where the caller holds it."""
    if key == "cancelled":  # in the product's word when it has one (models.vocabulary.Vocabulary.cancel_name)
        days = sig.cancelled_days
        what = (c or model.compiled).vocabulary.cancel_name() or "cancelled"
        text = f"{what} today" if days < 1.0 else f"{what} {_days(days)} ago"
        # a period still paid: when the plan ends, not a renewal (a cancelled plan renews not)
        return f"{text}; {_paid_left(sig.period_end_s, sig.now_s)}" if sig.period_end_s > 0 and paid_period_runs(sig) else text
    if key == "silence":
        if sig.active_days >= 3:
            return f"no visit for {sig.visit_overdue:.1f}x the usual interval of {sig.visit_gap_days:.1f} days"
        return f"no return for {_days(sig.silence_days)} after {sig.active_days} active day{'s' if sig.active_days != 1 else ''}"
    if key == "purchase":  # the interval the order is due at (models.signals.order_gap_days); a subscriber's add-ons (_besides, QA21 F3)
        what = (c or model.compiled).vocabulary.own_name("purchase") or "re-order"
        return f"usual {what}{_besides(st)} {_every(order_gap_days(sig))}, none for {_days(sig.purchase_silence_days)}"
    if key == "type_decline":
        found = _type_decline(sig, model)
        if found is not None:
            return f"recent {_plural(found[0])}{_RECENT} down {100.0 * (1.0 - found[1]):.0f}% against the user's 4-week baseline"
        key = "decline"
    if key == "decline":
        return f"recent activity{_RECENT} down {100.0 * (1.0 - sig.trend):.0f}% against the user's 4-week baseline"
    if key == "decline_long":
        return f"recent activity{_RECENT_LONG} down {100.0 * (1.0 - sig.trend_long):.0f}% against the user's 3-month rate"
    if key == "low":  # the total is a decayed counter too: no window claimed (:func:`_decayed_count`)
        edges = (model.compiled if c is None else c).act_edges  # the population's ACT_QUANTILES (models.compiled)
        text = _decayed_count(sig.act_28d, "event", True)
        if edges:
            share = percentile(sig.act_28d, edges)
            text += f", fewer than {100.0 * (1.0 - share):.0f}% of users"
        return text
    if key == "narrow":
        return _kinds_used(sig, model)
    if key == "negative":
        return _negative_text(st, sig, model)
    if key == "cooling":
        back, source = temperature
        if source == "purchases":
            return f"chance of buying again within {model.horizon_days:.0f} days: {100.0 * back:.0f}% (BG/NBD on purchases)"
        return f"chance of coming back within {model.horizon_days:.0f} days: {100.0 * back:.0f}% (from the visit rhythm)"
    if key == "tenure":
        if sig.active_days <= 1:
            return "active on a single day so far: churn is likeliest early on"
        if sig.tenure_days < 0.5:  # two UTC days, hours apart (QA6 L2: these said "a single day")
            return f"active over less than a day{_FIRST_TO_LAST}: churn is likeliest early on"
        return f"active over only {_days(sig.tenure_days)}{_FIRST_TO_LAST}: churn is likeliest early on"
    if key == "gaps":
        return f"recent gaps between active days {_gap_ratio(sig):.1f}x the usual {sig.visit_gap_days:.1f} days"
    if key == "back":
        days = (sig.now_s - st.stage_since_s) / DAY_S
        return f"came back after {_lasted(days)} as churned" if st.stage_name == "churned" else f"came back {_ago(days)}"
    if key == "new":
        return f"new user, first seen {_ago(sig.age_days)}"
    if key == "settled":  # what ends "new" (models.lifecycle rule 4): past new_days, a second active day
        return f"active on {sig.active_days} days since first seen {_ago(sig.age_days)}"
    raise KeyError(key)  # pragma: no cover


def _stage_fact(stage: str, st: UserState, sig: Signals, temperature: tuple[float, StaySource],
                model: "ChurnModel") -> tuple[str, float, str]:
    """What a change to a healthier stage rests on when no factor pulls the risk down and no alert
    is open (models.lifecycle's rules): new -> active, past ``new_days`` with a second active day;
    reactivated -> active, ``new_days`` since the return; any other, the time in the stage left."""
    if st.stage_name == "new":
        return ("settled", 0.0, _text("settled", st, sig, temperature, model))
    if st.stage_name == "reactivated":
        return ("back", 0.0, _text("back", st, sig, temperature, model))
    days = (sig.now_s - st.stage_since_s) / DAY_S
    if st.stage_name in ("dormant", "churned"):  # a return, worded as "back" words one from churned
        return ("stage_left", 0.0, f"came back after {_lasted(days)} as {st.stage_name}")
    return ("stage_left", 0.0, f"{stage} again after {_lasted(days)} {st.stage_name}")


def _good_text(key: str, st: UserState, sig: Signals, temperature: tuple[float, StaySource], model: "ChurnModel") -> str:
    """The words of a fact in the user's favour (``recovered`` alerts)."""
    if key == "silence":
        if sig.silence_days < 1.0:
            return f"active today, usual interval {sig.visit_gap_days:.1f} days"
        return f"last active {_ago(sig.silence_days)}, within the usual interval of {sig.visit_gap_days:.1f} days"
    if key == "decline":
        if sig.trend >= 1.05:
            return f"recent activity{_RECENT} up {100.0 * (sig.trend - 1.0):.0f}% against the user's 4-week baseline"
        return f"recent activity{_RECENT} steady against the user's 4-week baseline"
    if key == "decline_long":
        if sig.trend_long >= 1.05:
            return f"recent activity{_RECENT_LONG} up {100.0 * (sig.trend_long - 1.0):.0f}% against the user's 3-month rate"
        return f"recent activity{_RECENT_LONG} steady against the user's 3-month rate"
    if key == "purchase":  # the interval the order is due at (models.signals.order_gap_days), as _text
        own = model.compiled.vocabulary.own_name("purchase")
        what = "re-ordered" if own is None else "last " + own
        return f"{what}{_besides(st)} {_ago(sig.purchase_silence_days)}, usual {_every(order_gap_days(sig))}"
    if key == "low":
        return _decayed_count(sig.act_28d, "event", False)
    if key == "narrow":
        return _kinds_used(sig, model)
    if key == "cooling":
        return _text("cooling", st, sig, temperature, model)
    if key == "gaps":
        return f"recent gaps between active days {_gap_ratio(sig):.1f}x the usual {sig.visit_gap_days:.1f} days"
    if key == "negative":  # under a half, not necessarily 0: an unfriend 3 weeks ago weighs 0.47
        return "no negative feedback in recent weeks" if sig.negative_28d <= 0.0 else "fewer than 1 negative-feedback event a 4-week period lately"
    raise KeyError(key)  # pragma: no cover


def _returned_text(sig: Signals) -> str:
    """The fact a recovered alert closes on (models.lifecycle.back_share): "activity back at the
    user's usual level: the last week at 96% and the last 4 weeks at 104% of their 3-month rate
    (decayed)". Why first (QA19 F6): the recovered alerts of a bank's customers who were moving
    out led with "active over 175 days (first to last visit)" (32 of 63) or "about 2 transfer_out
    events in recent weeks" (3), neither news that the customer came back."""
    week = 100.0 * sig.trend * sig.trend_long
    return (f"activity back at the user's usual level: the last week at {week:.0f}% and the last 4 weeks at "
            f"{100.0 * sig.trend_long:.0f}% of their 3-month rate (decayed)")


def _words(key: str, st: UserState, sig: Signals, values: Sequence[float], temperature: tuple[float, StaySource],
           model: "ChurnModel", against: bool, c: CompiledModel | None = None) -> str:
    """The words of reason ``key``, against the user (``against``) or in their favour (``c``:
    ``model.compiled`` where the caller holds it)."""
    cls = _key_class(key)
    if cls == _COMPARED_KEY:
        return _compared_text(key, st, sig, values, model, against)
    if cls == _SLOT_KEY:
        return _slot_text(key, sig, values, model, against, _besides(st))
    return _text(key, st, sig, temperature, model, c) if against else _good_text(key, st, sig, temperature, model)


def _calendar_text(st: UserState, sig: Signals, c: CompiledModel) -> str:
    """The product's quiet period that holds the user now (models.signals.calendar_hold_s), in
    the words of an account's (models.quiet_period.quiet_text): "in the product's quiet period
    (07-01..08-31)", after it "the product's quiet period (07-01..08-31) ended 5 days ago"; "" when
    it does not hold the user (a pause does)."""
    now = sig.now_s
    if not calendar_hold_s(c.calendar_starts, c.calendar_ends, st.first_seen_s, st.last_seen_s, now, sig.visit_gap_days):
        return ""
    i = bisect.bisect_right(c.calendar_starts, now) - 1
    name, end = c.calendar_names[i], c.calendar_ends[i]
    if now < end:
        return f"in the product's quiet period ({name})"
    return f"the product's quiet period ({name}) ended {_ago((now - end) / DAY_S)}"


def _paid_through(period_end_s: int) -> str:
    """The last day the paid period covers (the state keeps its end rounded up to a day)."""
    return _day(period_end_s - 1)


def _renewal_news(st: UserState, sig: Signals) -> bool:
    """Whether a known period end is news for the call, so a reason: a period that ended
    unrenewed, a renewal within :data:`RENEWAL_NEWS_DAYS` (a week: a quarter of a monthly period,
    time for a save call before the card is charged), or any renewal of a period stated longer
    than models.state.LONG_PERIOD_S (an annual or quarterly plan, whose exit opens only for the
    horizon's last weeks: "renewal due in 29 days" says why the alert comes now; beyond the
    horizon, "renewal due in 241 days" is the save's deadline and says the user still pays: QA23a
    F3, a fitness app's silent annual subscribers were told only "no visit for 42.5x the usual
    interval" while paid for 8 more months).
    Why (QA17 F13): on a monthly plan a renewal is always within the 30-day horizon, and 822
    at-risk alerts of a shop's subscribers said "renewal due in 23 days (paid through
    2026-02-07)", which told the CRM nothing. The state keeps the period's end, not its length,
    so the length is one bit (models.state.LONG_PERIOD), not a share of the period."""
    if not paid_period_runs(sig) or st.flags & LONG_PERIOD:
        return True
    return calendar_days(sig.period_end_s * 1000 - 1, sig.now_s * 1000) <= RENEWAL_NEWS_DAYS


def _renewal_text(sig: Signals, model: "ChurnModel", against: bool) -> str:
    """The exit opportunity in words: a renewal due (``against``), or paid beyond the horizon."""
    end = sig.period_end_s
    if not against:
        return f"paid through {_paid_through(end)}: no renewal due within {model.horizon_days:.0f} days"
    if paid_period_runs(sig):
        return f"renewal due {_paid_days_left(end, sig.now_s)} (paid through {_paid_through(end)})"
    n = calendar_days(sig.now_s * 1000, end * 1000)  # the end is a midnight (models.state): whole days past it
    ago = "today" if n == 0 else f"{n} day{'s' if n != 1 else ''} ago"
    return f"paid period ended {ago} ({_paid_through(end)}), no renewal stated"


def _contributions(sig: Signals, values: Sequence[float], source: StaySource, gone: float,
                   model: "ChurnModel", open_: bool = True, c: CompiledModel | None = None) -> tuple[list[str], list[float]]:
    """Each reason key's contribution to the risk log-odds (module docstring), as (keys, lifts)
    side by side: the keys of :data:`_GROUPS` in its order, then the per-slot features the model
    weighs. The "already gone" part goes to the silence of the rhythm that decided P(alive),
    and half of it to the temperature, which falls with the same silence. With the exit closed
    (``open_`` False) the leave part is not in the risk: its factors contribute nothing.
    Two lists, not a dict: a dict insert per key and alert cost more than the sums. The values
    read as a ``list[float]`` and each sum written ``lifts[k] = lifts[k] + x``: the compiled core
    read a ``Sequence`` item and added in place on a list item through the generic number
    protocol (~0.1k instructions each, 16 an alert); the same float additions. ``c``:
    ``model.compiled`` where the caller holds it."""
    compiled = model.compiled if c is None else c
    refs = compiled.references
    vals: list[float] = values if isinstance(values, list) else list(values)
    # the fixed keys' shared list (never changed: the callers read it), copied only where a
    # per-slot key is added; the lifts a slice of zeros (each a tuple copy or a one-item list
    # repeated, ~0.3k instructions an alert)
    keys = _KEY_LIST
    lifts = _NO_LIFTS[:]
    if open_:
        # A key's contribution is the sum of weight x (value - reference) over its features
        # the model weighs (``terms``: the non-zero weights, in feature order, so a key's sum
        # adds in its group's order).
        # Per-slot features: each its own reason, in the product's names (none for a state kept
        # in another vocabulary's slots, whose per-slot values are not this model's features).
        # A feature past its cap (models.compiled CAPS_KEY) counts at the cap, as in the risk.
        slots = len(vals) == len(compiled.features)
        capped = compiled.capped
        for i, w, _ in compiled.terms:
            if i < _N_FIXED or slots:
                v = vals[i]
                if capped:  # counted at the cap, as in the risk
                    v = at_cap(compiled, i, v)
                if i < _N_FIXED:
                    k = _KEY_AT[i]
                    lifts[k] = lifts[k] + w * (v - refs[i])
                else:
                    if keys is _KEY_LIST:
                        keys = list(_KEYS)
                    keys.append(compiled.features[i])
                    lifts.append(w * (v - refs[i]))
    at = _AT_SILENCE if source == "visits" else _AT_PURCHASE
    lifts[at] = lifts[at] + gone
    lifts[_AT_COOLING] = lifts[_AT_COOLING] + 0.5 * gone
    return keys, lifts


def explain(
    st: UserState,
    sig: Signals,
    stage: str,
    values: Sequence[float],
    p_stay: float,
    source: StaySource,
    model: "ChurnModel",
    leave: float | None = None,
    temperature: tuple[float, StaySource] | None = None,
    purpose: Purpose = "scores",
    c: CompiledModel | None = None,
) -> list[tuple[str, float, str]]:
    """(key, contribution in log-odds, text) of the reasons :func:`reasons` gives, in its order
    (the cancellation and the stage's story carry no contribution: +-inf ranks). ``c``:
    ``model.compiled`` where the caller holds it."""
    if c is None:
        c = model.compiled  # once, handed to each test of a factor (a generic attribute lookup each, before)
    open_ = exit_open(sig, model)
    # whether the leave part is in the risk: the exit open and no pause (nor the product's quiet
    # period) holding the user (models.risk.leave_probability), or a cancellation, which ends what
    # a pause held (:func:`_leaves`)
    leaves = _leaves(sig, open_)
    if leave is None or (sig.cancelled and leaves and sig.paused_until_s > sig.now_s):  # (the caller's: the pause's 0)
        leave = risk_probability(values, model) if leaves else 0.0
    if temperature is None:
        temperature = p_back_within(sig, model)
    back = temperature[0]
    # With the exit closed, what speaks for the user is still what it would be with it open
    # (a recovery is told by its facts, after the period end); what pushes the risk up is only
    # the "already gone" part (the leave part's factors count nothing).
    told = leaves or purpose != "recovered"
    said = leave if told else risk_probability(values, model)
    gone = _logit(combine(p_stay, said)) - _logit(said)
    keys, lifts = _contributions(sig, values, source, gone, model, leaves or not told, c)
    # (rank, key, text, words): a factor's words (``words``: the key they are written for) are
    # written only if it is among the MAX_REASONS shown (:func:`_shown`)
    found: list[tuple[float, str, str, str]] = []
    if purpose == "recovered":
        if stage == "reactivated":
            found.append((_FIRST, "back", _text("back", st, sig, temperature, model), ""))
        returned = back_share(sig) >= RETURN_SHARE  # what an at-risk alert closes on (models.engine._may_close): said first
        if returned:
            found.append((_FIRST, "returned", _returned_text(sig), ""))
        if not open_:  # a known period end beyond the horizon: the subscription cannot end
            found.append((_RENEWAL, "renewal", _renewal_text(sig, model, False), ""))
        for key, lift in zip(keys, lifts):
            # the 4-week rate against the 3-month one is the return's own fact: not twice
            if lift <= -MIN_LIFT and _for(key, sig, back, model, c) and not (returned and key == "decline_long"):
                found.append((-lift, key, "", key))
        _by_rank(found)
        risk = combine(p_stay, leave)
        if not found and st.at_risk_since_s and risk < st.alert_risk:
            text = f"risk down to {100.0 * risk:.0f}% from {100.0 * st.alert_risk:.0f}% when the alert opened"
            return [("risk_fell", 0.0, text)]
        if not found and stage != st.stage_name:  # a stage change: the stage rule's own fact (module docstring)
            return [_stage_fact(stage, st, sig, temperature, model)]
        return _shown(found, -1.0, st, sig, values, temperature, model, False, c)
    if sig.cancelled:
        found.append((_FIRST, "cancelled", _text("cancelled", st, sig, temperature, model), ""))
        if not st.n_events:  # a cancellation alone (models.state.tracked): no use of the product to
            return _shown(found, 1.0, st, sig, values, temperature, model, True, c)  # tell ("active on a single day", "0 kinds")
    # a known renewal within the horizon (or past), or of a long plan at any distance (QA23a F3: the save call's deadline);
    # none of a cancelled plan still paid: its cancellation says until when (_text), no renewal is due
    renewal = sig.period_end_s > 0 and _renewal_news(st, sig) and not (sig.cancelled and paid_period_runs(sig))
    if renewal:
        due = paid_period_runs(sig)  # a renewal to come is context; a period ended unrenewed, news
        found.append((_CONTEXT if due else _RENEWAL, "renewal", _renewal_text(sig, model, True), ""))
    for key, lift in zip(keys, lifts):
        # lift >= (_NEGATIVE_MIN_LIFT if key == "negative" else MIN_LIFT), the key's compare only
        # past the lower line (_NEGATIVE_MIN_LIFT is the higher): a string compare per key saved
        if lift >= MIN_LIFT and (lift >= _NEGATIVE_MIN_LIFT or key != "negative") and _against(key, sig, back, model, c):
            found.append((lift, key, "", "type_decline" if key == "decline" else key))
    if len(found) == (1 if renewal else 0):  # a renewal due is no behavioural reason
        # Nothing crossed its line, yet risk must say why: the factor that adds most, among
        # those whose fact does not read in the user's favour (the tenure hazard, a silence a
        # little past the rhythm, ...), never a neutral or reassuring fact; failing that, for an
        # alert, that the risk is the sum of small signs.
        weak = [(lift, key) for key, lift in zip(keys, lifts) if lift > 0.0 and _not_for(key, sig, back, model, c)]
        if weak:
            lift, key = max(weak)
            found.append((lift, key, "", key))
        elif purpose == "at_risk":  # a change to declining has the lifecycle's cause to tell instead (below)
            risk = combine(p_stay, leave)
            found.append((0.0, "small_signs", f"risk {100.0 * risk:.0f}% within {model.horizon_days:.0f} days from many small signs, none large", ""))
        elif purpose == "scores" and st.at_risk_since_s:  # a list's row: why it is still listed (QA24a F6)
            found.append((0.0, "still_open", _still_open_text(st, sig), ""))
    if sig.in_trial and purpose != "declining":  # the user's plan is a trial: the context, as a renewal's (QA23a F1)
        found.append((_CONTEXT, "trial", _TRIAL_TEXT, ""))
    if c.calendar_starts and sig.paused_until_s > sig.now_s:  # the product's quiet period holds the user (QA24b)
        calendar = _calendar_text(st, sig, c)
        if calendar:
            found.append((_CONTEXT, "calendar", calendar, ""))
    if purpose == "scores":
        if stage == "reactivated":
            found.append((_LAST, "back", _text("back", st, sig, temperature, model), ""))
        elif stage == "new":
            found.append((_LAST, "new", _text("new", st, sig, temperature, model), ""))
    _by_rank(found)  # stable: equal contributions keep the order above
    if purpose == "declining":
        _cause_first(found, st, sig, temperature, model)
    elif reorder_late(sig) and _reads_as_it_weighs("purchase", model, c):  # a rhythm, the re-order late (models.signals.reorder_late): the fact a
        # shop acts on, first (QA12 F2): "usual re-order every 42 days, none for 68 days"; every
        # at-risk alert of a buyer with a rhythm opens late (models.engine.alert_may_open); not
        # where a free-sign fit weighs the re-order overdue < 0 (:func:`_reads_as_it_weighs`)
        found[:] = [item for item in found if item[1] != "purchase"]
        at = 0  # after a cancellation and a paid period ended unrenewed: facts of leaving (_renewal_shown)
        while at < len(found) and found[at][0] >= _RENEWAL:
            at += 1
        found.insert(at, (_FIRST, "purchase", _text("purchase", st, sig, temperature, model), ""))
    if purpose != "declining" and st.n_recurring and credit_late(st, sig.now_s):
        _credit_first(found, st, sig, c)
    if st.flags & GRIEVANCE and grievance_stands(st, sig, c.horizon_days):  # a paying customer's complaint (QA17 F8):
        # what the shop calls about, first (after a change to declining's cause and the facts of
        # leaving: a cancellation, a paid period ended unrenewed, as the late re-order above);
        # the negative-feedback count and "many small signs" would only say less of it
        found[:] = [item for item in found if item[1] != "negative" and item[1] != "small_signs"]
        at = 1 if found and purpose == "declining" else 0
        while at < len(found) and found[at][0] >= _RENEWAL and found[at][1] in ("cancelled", "renewal"):
            at += 1
        found.insert(at, (_FIRST, "grievance", _grievance_text(st, sig, model), ""))
    if sig.cancel_at_s:  # a cancellation scheduled at the period end (QA23a F5): what the save call is about, first
        # no renewal is due (the period ends), and the risk is the request's, no sum of small signs (QA24a)
        found[:] = [item for item in found if item[1] != "renewal" and item[1] != "small_signs"]
        found.insert(0, (_FIRST, "cancel_scheduled", _scheduled_text(sig), ""))
    _renewal_shown(found)
    return _shown(found, 1.0, st, sig, values, temperature, model, True, c)


def _leaves(sig: Signals, open_: bool) -> bool:
    """Whether the leave part is in the risk the reasons explain (``open_``: the exit is open,
    models.risk.exit_open): not while a pause, or the product's quiet period, holds the user
    (models.signals ``paused_until_s``: models.risk.leave_probability's 0, as behind a closed
    exit: the factors of the leave part are no reason, the "already gone" part is), unless the
    user cancelled (or asked to: a scheduled cancellation's leave part is 1, pause or not). A
    cancellation ends what the pause held: its reasons rank on the whole risk, the leave part as
    the model weighs it, as a cancellation's outside a pause. Why (2026-12-05): with the pause's
    leave part 0 the reasons counted the leave factors all the same and measured the "already
    gone" part from the 1e-12 floor (+25.6 log-odds): after "cancelled today" came "no return for
    4 days after 1 active day" (0.20 log-odds of the whole risk) before "active on a single day
    so far" (0.86), and a change to declining during a pause said "chance of coming back 43%"
    (0.26) before "recent activity down 98%" (0.68), a fact of the leave part its risk (1 -
    P(alive)) does not hold; now it says the "already gone" part's facts only."""
    return open_ and (sig.paused_until_s <= sig.now_s or sig.cancelled or sig.cancel_at_s > 0)


def _still_open_text(st: UserState, sig: Signals) -> str:
    """Why a user no factor holds at risk is still on the save or win-back list: their at-risk
    alert is open, and it closes only once their own activity is back at their usual level
    (models.engine._may_close, models.lifecycle.back_share at RETURN_SHARE): "at-risk alert open
    since 2026-10-25: activity at 62% of the user's usual level, it closes at 90%"; where the
    activity is back, the alert waits for the next review that finds the risk low, out of
    declining: "at-risk alert open since 2026-10-25: activity back at the user's usual level,
    it closes when the risk stays low"."""
    since = f"at-risk alert open since {_day(st.at_risk_since_s)}"
    share = back_share(sig)
    if share < RETURN_SHARE:
        return f"{since}: activity at {100.0 * share:.0f}% of the user's usual level, it closes at {100.0 * RETURN_SHARE:.0f}%"
    return f"{since}: activity back at the user's usual level, it closes when the risk stays low"


def _paid_days_left(end_s: int, now_s: int) -> str:
    """Calendar days to the last day a period ending at ``end_s`` pays for, as the account views
    count them (QA11 F8), in words: "today" (also in the renewal's grace, past the end), "in 1
    day", "in 24 days"; a renewal's (:func:`_renewal_text`) and a scheduled cancellation's."""
    n = max(calendar_days(end_s * 1000 - 1, now_s * 1000), 0)
    return "today" if n == 0 else f"in {n} day{'s' if n != 1 else ''}"


def _paid_left(end_s: int, now_s: int) -> str:
    """The paid period a user who is leaving still has, in words: "paid through 2026-03-03 (in 24
    days)"; of a scheduled cancellation (:func:`_scheduled_text`) and of a cancellation while a
    paid period runs ("cancelled today; paid through ...", :func:`_text`)."""
    return f"paid through {_paid_through(end_s)} ({_paid_days_left(end_s, now_s)})"


def _scheduled_text(sig: Signals) -> str:
    """A pending cancellation at the period end in words, the paid days left counted as a renewal's
    (:func:`_renewal_text`): "asked to cancel; paid through 2026-03-03 (in 24 days)"."""
    return f"asked to cancel; {_paid_left(sig.cancel_at_s, sig.now_s)}"


def _credit_first(found: list[tuple[float, str, str, str]], st: UserState, sig: Signals, c: CompiledModel) -> None:
    """A recurring event late (models.signals.credit_late: a salary that has not come), first in
    ``found`` after the facts of leaving (a cancellation, a paid period ended unrenewed), as a late
    re-order: "salary_deposit overdue: usually every 30 days, none for 41 days (last 2026-09-25)".
    The per-type facts of its own names ("no salary_deposit events in recent weeks, against 0.5
    for a typical user") go: they say the same in an event count's words (QA19 F2)."""
    names = c.vocabulary.roles.get("recurring", ())
    found[:] = [item for item in found if not (_is_slot(item[1]) and item[1].rpartition(":")[2] in names)]
    at = 0
    while at < len(found) and found[at][0] >= _RENEWAL:
        at += 1
    text = (f"{c.vocabulary.recurring_text()} overdue: usually {_every(credit_gap_days(st))}, "
            f"none for {_days((sig.now_s - st.last_recurring_s) / DAY_S)} (last {_day(st.last_recurring_s)})")
    found.insert(at, (_FIRST, "recurring", text, ""))


def _renewal_shown(found: list[tuple[float, str, str, str]]) -> None:
    """A renewal due (rank :data:`_CONTEXT`) is when the user can leave, not why they would: it
    comes after the reasons of the risk, and takes the last place shown when more reasons than
    :data:`MAX_REASONS` would hide it. Why (QA pass 14 F4): said first, it led 965 of 1,684 at-risk
    alerts of a monthly-subscription app, where a renewal is always within the 30-day horizon, and
    ``churnwatch top``, which prints the first reason, read "renewal due in 18 days" on every row.
    A paid period that ended with no renewal stated stays first (after a cancellation): that is a
    fact of leaving."""
    for i in range(len(found)):
        if found[i][0] == _CONTEXT:
            if i >= MAX_REASONS:
                found.insert(MAX_REASONS - 1, found.pop(i))
            return


def _cause_first(found: list[tuple[float, str, str, str]], st: UserState, sig: Signals,
                 temperature: tuple[float, StaySource], model: "ChurnModel") -> None:
    """Put first in ``found`` (a change to declining) the test of models.lifecycle rule 5 that made
    the user declining, in the words of its fact: the silence ("no visit for 2.3x the usual
    interval of 1.6 days") or the rate ("recent activity (1-week decayed) down 40% against the
    user's 4-week baseline"), and drop the risk factor that would say the same again. Why
    (2026-12-04): the risk's factors need not include the lifecycle's cause; a user the rate test
    keeps in declining (its way out is higher than its way in) after a visit has a short silence
    and a decline under the risk's own line, and such a change said only "risk 15% within 30 days
    from many small signs, none large"."""
    cause = declining_cause(st, sig, model.compiled)
    if not cause:  # pragma: no cover - the engine asks only of a user stage_of finds declining
        return
    key = "silence" if cause == "overdue" else "decline"
    # the per-type decline ("recent posts down 60%") is another fact than the total's: kept
    same = key == "silence" or _type_decline(sig, model) is None
    if same:
        found[:] = [item for item in found if item[1] != key]
    found.insert(0, (_FIRST, key, _text(key, st, sig, temperature, model), ""))


def _shown(found: list[tuple[float, str, str, str]], sign: float, st: UserState, sig: Signals, values: Sequence[float],
           temperature: tuple[float, StaySource], model: "ChurnModel", against: bool,
           c: CompiledModel | None = None) -> list[tuple[str, float, str]]:
    """(key, ``sign`` x rank, text) of the first MAX_REASONS of the sorted ``found``, the words
    of a factor written here (:func:`_words`, ``against`` the user or in their favour), for the
    reasons shown only: formatting is most of a reason's cost, and an alert's candidates past
    the third were written and dropped."""
    out: list[tuple[str, float, str]] = []
    for lift, key, text, words in found[:MAX_REASONS]:
        out.append((key, sign * lift, _words(words, st, sig, values, temperature, model, against, c) if words else text))
    return out


def reasons(
    st: UserState,
    sig: Signals,
    stage: str,
    values: Sequence[float],
    p_stay: float,
    source: StaySource,
    model: "ChurnModel",
    leave: float | None = None,
    temperature: tuple[float, StaySource] | None = None,
    purpose: Purpose = "scores",
    c: CompiledModel | None = None,
    latest: str = "",
) -> tuple[str, ...]:
    """Up to :data:`MAX_REASONS` reasons for the user's scores, most important first, for
    ``purpose`` (module docstring). ``latest``: the name of the negative-feedback event the scores
    are taken at (the user's latest event: models.engine), which the negative-feedback reason then
    dates ("downgraded today", :func:`_negative_today`); "" elsewhere.

    ``values`` is the risk feature vector (models.risk.feature_vector, or only its weighted
    features, models.risk.weighted_features: no reason reads another) of the same signals and
    ``leave`` its logistic probability, ``p_stay`` and ``source`` P(alive) and its rhythm
    (models.temperature.p_stay), ``temperature`` the temperature shown / 100 and its rhythm
    (models.temperature.p_back_within), when the caller has them already; ``c``: ``model.compiled``
    where the caller holds it (a generic attribute lookup of the Python ChurnModel).
    """
    found = explain(st, sig, stage, values, p_stay, source, model, leave, temperature, purpose, c)
    if latest and purpose != "recovered":  # (a recovery's negative-feedback words are in the user's favour)
        return tuple([_negative_today(st, sig, model, latest) if key == "negative" else text for key, _lift, text in found])
    return tuple([text for _key, _lift, text in found])
