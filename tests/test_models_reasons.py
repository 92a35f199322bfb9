"""The reasons of an alert support what it says (issue 11): never a reason that says the user is fine.

An at-risk alert lists only factors whose contribution to the risk log-odds is positive (weight x
(value - reference), plus the "already gone" part for the silence that caused it: models.reasons),
largest first, in words that read against the user; a recovered alert lists only factors that pull
the risk down. Checked here on generated histories (hypothesis) and on the golden histories of
tests/test_models_golden.py, for the shipped default, the built-in priors and a trained-looking
model with training means (where a factor below its mean pulls the risk down: the ``cooling``
defect, a "chance of coming back" reason with a negative contribution). The contributions are
worked out here again from the alert's signals, from the reason's words.
"""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine import Alert, advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.reasons import IMPROVED, reference
from models.risk import FEATURES, PRIOR_WEIGHTS, combine, feature_vector, risk_probability
from models.scoring import assess, scores_from
from models.temperature import p_stay
from tests.test_models_golden import FINAL_MS, histories as golden_histories
from tests.test_models_properties import DAY_MS, histories

#: The default's effects plus weights on silence, the temperature, re-orders and recent gaps, with the
#: feature means ``train`` measured on a simulated population (weekly snapshots, seed 5).
TRAINED = load_model().with_(
    risk_weights={**PRIOR_WEIGHTS, "cooling": 1.5, "silence_log": 0.3, "gap_trend": 0.4, "inactive_7d": 0.2,
                  "purchase_overdue_log": 0.5},
    risk_means={"silence_log": 1.52, "visit_overdue_log": 0.71, "purchase_overdue_log": 0.06, "inactive_7d": -1.65,
                "inactive_28d": -2.52, "inactive_90d": -2.89, "decline": 0.28, "decline_long": 0.11, "narrowness": 0.78,
                "cooling": 0.24, "gap_trend": -0.12, "tenure_log": 2.54, "active_days_log": 1.95, "buyer": 0.14,
                "purchases_log": 0.15, "revenue_log": 0.62, "negative_share": 0.0},
)
MODELS = [load_model(), ChurnModel(), TRAINED]

#: Reason words -> the factor they state; the first pattern that matches decides.
_AGAINST = [
    (r"^cancelled", "cancelled"),
    (r"^no (visit|return) for", "silence"),
    (r"^usual re-order every", "purchase"),
    (r"^activity over 4 weeks down \d+% against the user's 3-month rate$", "decline_long"),
    (r" down \d+% against the user's 4-week baseline$", "decline"),
    (r"^only [\d.]+ events in the last 4 weeks", "low"),
    (r"^uses \d+ ", "narrow"),
    (r"^chance of (coming back|buying again) within", "cooling"),
    (r"^(a user for only \d+ days|active on a single day so far): churn is likeliest early on$", "tenure"),
    (r"^recent gaps between active days", "gaps"),
    (r" in the last 4 weeks( \(.*\))?$", "negative"),
    (r" in the last week$", "share"),
    (r"from many small signs, none large$", "small_signs"),
]
_FOR = [
    (r"^(active today|last active \d+ days ago), .*usual interval", "silence"),
    (r"^re-ordered \d+ days ago, usual every \d+ days$", "purchase"),
    (r"^activity over 4 weeks (up \d+%|steady) against", "decline_long"),
    (r"^activity (up \d+%|steady) against the user's 4-week baseline$", "decline"),
    (r"^\d+ events in the last 4 weeks$", "low"),
    (r"^uses \d+ ", "narrow"),
    (r"^chance of (coming back|buying again) within", "cooling"),
    (r"^a user for \d+ days$", "tenure"),
    (r"^recent gaps between active days", "gaps"),
    (r"^risk down to \d+% from \d+% when the alert opened$", "risk_fell"),
    (r"^came back (after \d+ days as churned|\d+ days ago)$", "back"),
]
#: Words that read as good news: never in an at-risk alert.
_FINE = [
    (r"chance of .*?: (\d+)%", lambda m: int(m.group(1)) >= 50),
    (r"activity( over 4 weeks)? (up|steady)|down -\d", None),
    (r"came back|^new user|active today|last active|within the usual|^risk down|^re-ordered", None),
    (r"uses (\d+) of the (\d+)", lambda m: 2 * int(m.group(1)) > int(m.group(2))),
    (r"no visit for (\d+\.\d)x", lambda m: float(m.group(1)) < 1.0),
    (r"^a user for \d+ days$", None),
]
_GROUP = {
    "silence": ("silence_log", "visit_overdue_log"), "purchase": ("purchase_overdue_log",), "decline": ("decline",),
    "decline_long": ("decline_long",), "low": ("inactive_7d", "inactive_28d", "inactive_90d"), "narrow": ("narrowness",),
    "cooling": ("cooling",), "negative": ("negative_share",), "tenure": ("tenure_log",), "gaps": ("gap_trend",),
}


def _key(text: str, table: list[tuple[str, str]]) -> str | None:
    return next((key for pattern, key in table if re.search(pattern, text)), None)


def _fine(text: str) -> bool:
    return any((m := re.search(p, text)) is not None and (ok is None or ok(m)) for p, ok in _FINE)


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def _contributions(alert: Alert, model: ChurnModel) -> dict[str, float]:
    """Each factor's share of the risk log-odds, from the alert's signals (revenue is weighed by
    none of these models)."""
    sig = alert.scores.signals
    assert sig is not None
    p, source = p_stay(sig, model)
    values = feature_vector(sig, p, 0.0)
    leave = risk_probability(values, model)
    gone = _logit(combine(p, leave)) - _logit(leave)
    out = {key: sum(model.risk_weights.get(n, 0.0) * (values[FEATURES.index(n)] - reference(n, model)) for n in names)
           for key, names in _GROUP.items()}
    out["silence" if source == "visits" else "purchase"] += gone
    out["cooling"] += 0.5 * gone
    out["small_signs"] = sum(c for c in out.values() if c > 0.0)
    return out


def check_alert(alert: Alert, model: ChurnModel) -> None:
    """The reasons of an at-risk alert (and of a stage change for the worse) push the risk up,
    largest first, and none says the user is fine; those of a recovered alert (and of a stage
    change for the better) pull it down."""
    reasons = alert.scores.reasons
    lifts = _contributions(alert, model)
    if alert.kind in ("at_risk", "recovered"):
        assert reasons, alert  # an alert says why
    if alert.kind == "at_risk" or (alert.kind == "stage_changed" and alert.scores.stage not in IMPROVED):
        ranked = []
        for text in reasons:
            key = _key(text, _AGAINST)
            assert key is not None and not _fine(text), (text, reasons)
            if key in lifts:
                assert lifts[key] > 0.0, (text, lifts)
                if key != "small_signs":
                    ranked.append(lifts[key])
        assert ranked == sorted(ranked, reverse=True), (reasons, lifts)
    else:
        for text in reasons:
            key = _key(text, _FOR)
            assert key is not None, (text, reasons)
            assert key != "cooling" or _fine(text), text  # a chance of coming back above a coin flip
            if key in lifts:
                assert lifts[key] < 0.0, (text, lifts)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 90), st.sampled_from(MODELS))
def test_alert_reasons_support_the_alert(events: list[Event], extra_days: int, model: ChurnModel) -> None:
    for alert in advance("u", None, events, events[-1].ts_ms + extra_days * DAY_MS, model).alerts:
        check_alert(alert, model)


def test_alert_reasons_support_the_alert_on_the_golden_histories() -> None:
    seen = {"at_risk": 0, "recovered": 0}
    for seed in (2, 3):
        for user, evs in golden_histories(seed).items():
            for model in (load_model(), TRAINED):
                for alert in advance(user, None, evs, FINAL_MS, model).alerts:
                    check_alert(alert, model)
                    seen[alert.kind] = seen.get(alert.kind, 0) + 1
    assert seen["at_risk"] > 2000 and seen["recovered"] > 1000 and seen["stage_changed"] > 2000, seen


def test_a_temperature_that_pulls_the_risk_down_is_no_reason() -> None:
    """The cooling case: a user who visits every 60 days has a temperature under 45% (a visit
    within 30 days is unlikely) while P(alive) is high; a model whose training users had lower
    P(alive) on average weighs that as *lowering* the risk, so "chance of coming back: 41%" must
    not be listed for risk. With a mean that makes the same value raise the risk, it is listed."""
    evs = [Event("u", 1_767_225_600_000 + i * 60 * DAY_MS, "view", f"e{i}") for i in range(6)]
    lowers = load_model().with_(risk_weights={**PRIOR_WEIGHTS, "cooling": 2.0}, risk_means={"cooling": 0.6})
    raises = lowers.with_(risk_means={"cooling": 0.0})
    for model, listed in ((lowers, False), (raises, True)):
        state = advance("u", None, evs, evs[-1].ts_ms + 1, model).state
        a = assess(state, state.last_seen_s + 86_400, model)
        for purpose in ("scores", "at_risk"):
            s = scores_from(state, a, model, purpose)
            assert s.temperature < 45.0 and a.p_stay > 0.9
            alert = Alert("x", "at_risk", "u", a.signals.now_s * 1000, s)
            assert (_contributions(alert, model)["cooling"] > 0.0) is listed
            assert any(r.startswith("chance of coming back") for r in s.reasons) is listed, s.reasons
            if purpose == "at_risk":
                check_alert(alert, model)
