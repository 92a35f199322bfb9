"""Reasons in plain words, most important first, at most three.

Each reason is a fact about the user that holds now ("no visit for 2.5x the usual interval of
3.0 days") and is tied to the risk features that carry it. Importance is that group's share of
the risk log-odds against an average user, sum of weight x (value - training mean), plus, for
the silence that made P(alive) fall, the log-odds the "already gone" part adds to the
risk (models.risk.churn_risk); so the first reason is the one that moves the risk most. Facts
the risk model does not weigh (the stage's own story: cancelled, back after a break, new) come
first or last as noted below.

The one reason that quotes a score quotes the temperature shown (models.temperature.p_back_within),
in the words of what it is: "chance of coming back within 30 days: 12%", or "of buying again"
where the purchase rhythm decided it. It is ranked by what the same silence adds to the risk
(its "already gone" part reads P(alive), which falls with the temperature).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, Sequence

from models.health import ACT_QUANTILES, percentile
from models.risk import FEATURES, risk_probability
from models.signals import Signals, rate_ratio
from models.state import DAY_S, UserState
from models.temperature import StaySource, p_back_within

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = ["MAX_REASONS", "reasons"]

MAX_REASONS: Final[int] = 3
#: The temperature is a reason only well below a coin flip: a reason must speak against the
#: user, never say they are fine ("chance of coming back within 30 days: 99%").
_COOLING_BELOW: Final[float] = 0.45
_IDX: Final[dict[str, int]] = {name: i for i, name in enumerate(FEATURES)}
# Reason key -> the risk features whose contributions rank it.
_GROUPS: Final[dict[str, tuple[int, ...]]] = {
    "silence": (_IDX["silence_log"], _IDX["visit_overdue_log"]),
    "purchase": (_IDX["purchase_overdue_log"],),
    "decline": (_IDX["decline"],),
    "low": (_IDX["inactive_7d"], _IDX["inactive_28d"], _IDX["inactive_90d"]),
    "narrow": (_IDX["narrowness"],),
    "cooling": (_IDX["cooling"],),
    "negative": (_IDX["negative_share"],),
}
#: Negative feedback is a reason once it adds a quarter of its full say to the log-odds (with the
#: default, 5% of the user's activity): one dislike among a hundred events is no story to tell.
_NEGATIVE_MIN_LIFT: Final[float] = 0.25
_FIRST: Final[float] = 1e9  # cancellation: always the first reason
_LAST: Final[float] = -1e9  # stage context: after every risk reason
_P_LOW: Final[float] = 1e-12  # probabilities are clipped to [_P_LOW, _P_HIGH] before a logit
_P_HIGH: Final[float] = 1.0 - 1e-12


def _importance(key: str, values: Sequence[float], model: "ChurnModel") -> float:
    weights, means = model.risk_weights, model.risk_means
    total = 0.0
    for i in _GROUPS[key]:
        name = FEATURES[i]
        total += weights.get(name, 0.0) * (values[i] - means.get(name, 0.0))
    return total


def _logit(p: float) -> float:
    # min(max(p, 1e-12), 1 - 1e-12), spelled as the builtins decide (they cost more than the log).
    p = _P_LOW if _P_LOW > p else p
    p = _P_HIGH if _P_HIGH < p else p
    return math.log(p / (1.0 - p))


def _kinds_used(sig: Signals, model: "ChurnModel") -> str:
    vocabulary = model.compiled.vocabulary
    used = [i for i, n in enumerate(sig.slot_28d) if n >= 0.5]
    kinds = len(sig.slot_28d)
    if vocabulary.tracked:
        names = ", ".join(vocabulary.tracked[i] for i in used) or "none"
        return f"uses {len(used)} of the {kinds} main kinds of activity in 4 weeks ({names})"
    return f"uses {len(used)} kind{'s' if len(used) != 1 else ''} of activity in 4 weeks"


def _slot_trend(sig: Signals, i: int) -> float:
    """7-day rate over 4-week rate of slot ``i``, as models.signals measures the total's."""
    return rate_ratio(sig.slot_7d[i], sig.slot_28d[i], sig.age_days)


def _type_decline(sig: Signals, model: "ChurnModel") -> tuple[str, float] | None:
    """(name, trend) of the tracked type with the largest 4-week baseline that fell to under
    half its rate in the last week; None without tracked names or such a type."""
    vocabulary = model.compiled.vocabulary
    if not vocabulary.tracked:
        return None
    best: tuple[float, int] | None = None
    for i, n28 in enumerate(sig.slot_28d):
        if n28 >= 4.0 and _slot_trend(sig, i) < 0.5 and (best is None or n28 > best[0]):
            best = (n28, i)
    return None if best is None else (vocabulary.tracked[best[1]], _slot_trend(sig, best[1]))


def _leaving_signs(sig: Signals, values: Sequence[float], model: "ChurnModel") -> list[tuple[float, str]]:
    """Tracked types whose share of activity the model ties to leaving (``share:`` weight > 0)
    and that the user did in the last week: (log-odds against the training mean, text)."""
    out: list[tuple[float, str]] = []
    compiled = model.compiled
    vocabulary = compiled.vocabulary
    if not vocabulary.tracked:
        return out
    base = len(compiled.features) - len(sig.slot_28d)
    for i, name in enumerate(vocabulary.tracked):
        feature = f"share:{name}"
        w = model.risk_weights.get(feature, 0.0)
        if w > 0.0 and sig.slot_7d[i] >= 1.0:
            lift = w * (values[base + i] - model.risk_means.get(feature, 0.0))
            if lift > 0.0:
                out.append((lift, f"{sig.slot_7d[i]:.0f} {name} in the last week"))
    return out


def _counted(name: str, n: int) -> str:
    """"3 dislikes"; a name that is not one word keeps its spelling ("2 thumbs_down events", not
    "2 thumbs_downs")."""
    if not name.isalpha():
        return f"{n} {name} event" if n == 1 else f"{n} {name} events"
    return f"{n} {name}" if n == 1 or name.endswith("s") else f"{n} {name}s"


def _negative_text(st: UserState, sig: Signals, model: "ChurnModel") -> str:
    """"3 unfriends in the last 4 weeks": the product's own names of the negative feedback the
    user gave (the state's mask of the role's names used while the count was alive). Four weeks
    because the risk reads the 4-week share (models.risk ``negative_share``)."""
    vocabulary = model.compiled.vocabulary
    known = len(vocabulary.roles.get("negative", ()))
    names = [vocabulary.negative_name(i) for i in range(16) if st.negative_names >> i & 1 and i < known]
    n = round(sig.negative_28d)
    n = n if n >= 1 else 1
    if len(names) == 1:
        return f"{_counted(names[0], n)} in the last 4 weeks"
    what = "negative-feedback event" if n == 1 else "negative-feedback events"
    return f"{n} {what} in the last 4 weeks" + (f" ({', '.join(names)})" if names else "")


def _text(key: str, st: UserState, sig: Signals, temperature: tuple[float, StaySource], model: "ChurnModel") -> str:
    if key == "cancelled":
        days = sig.cancelled_days
        return "cancelled today" if days < 1.0 else f"cancelled {days:.0f} days ago"
    if key == "silence":
        if sig.active_days >= 3:
            return f"no visit for {sig.visit_overdue:.1f}x the usual interval of {sig.visit_gap_days:.1f} days"
        return f"no return for {sig.silence_days:.0f} days after {sig.active_days} active day{'s' if sig.active_days != 1 else ''}"
    if key == "purchase":
        return f"usual re-order every {sig.purchase_gap_days:.0f} days, none for {sig.purchase_silence_days:.0f} days"
    if key == "type_decline":
        found = _type_decline(sig, model)
        if found is not None:
            return f"{found[0]} down {100.0 * (1.0 - found[1]):.0f}% against the user's 4-week baseline"
        key = "decline"
    if key == "decline":
        return f"activity down {100.0 * (1.0 - sig.trend):.0f}% against the user's 4-week baseline"
    if key == "low":
        edges = model.population.get(ACT_QUANTILES)
        text = f"only {sig.act_28d:.1f} events in the last 4 weeks"
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
    if key == "back":
        days = (sig.now_s - st.stage_since_s) / DAY_S
        return f"came back after {days:.0f} days as churned" if st.stage_name == "churned" else f"came back {days:.0f} days ago"
    if key == "new":
        return f"new user, first seen {sig.age_days:.0f} days ago"
    raise KeyError(key)  # pragma: no cover


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
) -> tuple[str, ...]:
    """Up to :data:`MAX_REASONS` reasons for the user's scores, most important first.

    ``values`` is the risk feature vector (models.risk.feature_vector) of the same signals and
    ``leave`` its logistic probability, ``p_stay`` and ``source`` P(alive) and its rhythm
    (models.temperature.p_stay), ``temperature`` the temperature shown / 100 and its rhythm
    (models.temperature.p_back_within), when the caller has them already.
    """
    found: list[tuple[float, str]] = []
    # The part of the risk that says "already gone" (models.risk.churn_risk) comes from the
    # silence against the rhythm that decided P(alive): its log-odds go to that fact first and
    # to the temperature (which falls with the same silence) next.
    if leave is None:
        leave = risk_probability(values, model)
    if temperature is None:
        temperature = p_back_within(sig, model)
    risk = 1.0 - p_stay * (1.0 - leave)
    gone = _logit(risk) - _logit(leave)
    if sig.cancelled:
        found.append((_FIRST, "cancelled"))
    if sig.visit_overdue >= 1.5:
        found.append((_importance("silence", values, model) + (gone if source == "visits" else 0.0), "silence"))
    if sig.purchase_x >= 1 and sig.purchase_overdue >= 1.5:
        found.append((_importance("purchase", values, model) + (gone if source == "purchases" else 0.0), "purchase"))
    if sig.trend <= 0.7 and sig.act_28d > 0.0:
        found.append((_importance("decline", values, model), "type_decline"))
    edges = model.population.get(ACT_QUANTILES)
    if (percentile(sig.act_28d, edges) < 0.25) if edges else sig.act_28d < 2.0:
        found.append((_importance("low", values, model), "low"))
    if sig.breadth < 0.3:
        found.append((_importance("narrow", values, model), "narrow"))
    if sig.negative_28d >= 0.5:
        lift = _importance("negative", values, model)
        if lift >= _NEGATIVE_MIN_LIFT:  # only where it raises the risk (a model may weigh it otherwise)
            found.append((lift, "negative"))
    if temperature[0] < _COOLING_BELOW:
        found.append((_importance("cooling", values, model) + 0.5 * gone, "cooling"))
    if stage == "reactivated":
        found.append((_LAST, "back"))
    elif stage == "new":
        found.append((_LAST, "new"))
    signs = _leaving_signs(sig, values, model)
    if not signs and not any(importance > _LAST for importance, _ in found):
        # Nothing crossed its line, yet an alert must say why: the fact that adds most to the
        # risk, among those that always speak against the user (never "coming back ...: 99%").
        found.append(max((_importance(k, values, model), k) for k in ("silence", "low", "narrow")))
    texts = [(importance, _text(key, st, sig, temperature, model)) for importance, key in found]
    texts.extend(signs)
    texts.sort(key=lambda item: -item[0])  # stable: equal importance keeps the order above
    return tuple([text for _, text in texts[:MAX_REASONS]])
