"""A "recovered" alert only when the user has come back (QA19 F6, models.engine._may_close).

QA19's bank: customers moving their money out (salary stopped, card use fading over two months)
dipped under the risk's exit line on a bill paid or a week of app visits and got "recovered" 63
times between their first at-risk alert and the closure of the account, with reasons such as
"active over 175 days (first to last visit)" or "about 2 transfer_out events in recent weeks". An
open at-risk alert now closes only once the user's own activity is back at their usual level over
the last week and the last 4 weeks (models.lifecycle.back_share) and the risk stays at the exit
line through the user's usual interval in silence; the alert says the return first, never the
tenure, never a type of the product's ``negative`` role.
"""

from __future__ import annotations

from models import engine
from models.engine import advance
from models.events import Event
from models.lifecycle import RETURN_SHARE, back_share
from models.model import load_model
from models.reasons import explain
from models.scoring import SilentRisk, assess, scores_from
from models.signals import compute_signals
from models.state import DAY_S, UserState, apply_event
from models.temperature import p_stay
from models.risk import feature_vector
from tests.test_models_reasons import TYPED

DAY_MS = 86_400_000
T0_MS = 1_767_225_600_000  # 2026-01-01


def _daily(pattern: list[tuple[int, int]], kinds: tuple[str, ...] = ("view", "click", "post")) -> list[Event]:
    """(days, events a day) spells one after the other: 0 events a day is a silence."""
    out: list[Event] = []
    day = 0
    for n_days, per_day in pattern:
        for _ in range(n_days):
            for k in range(per_day):
                out.append(Event("u", T0_MS + day * DAY_MS + 3_600_000 * (8 + 3 * k), kinds[k % len(kinds)], f"e{len(out):05d}"))
            day += 1
    return out


def test_a_user_at_a_third_of_their_rate_is_not_recovered_until_back_at_it() -> None:
    """3 events a day for 100 days, 12 silent days (at risk), then 1 a day for 40 days, then 3 a
    day again. At day 136 the risk is under the exit line and the user is "active" (the rule
    before QA19 F6 said "recovered" there, on "about 39 events in recent weeks"), but their own
    activity is a half of their level: the alert stays open until they are back at it."""
    model = load_model()
    events = _daily([(100, 3), (12, 0), (40, 1), (30, 3)])
    alerts = [a for a in advance("u", None, events, T0_MS + 183 * DAY_MS, model).alerts if a.kind != "stage_changed"]
    assert [a.kind for a in alerts] == ["at_risk", "recovered"], [(a.kind, a.event_time_ms) for a in alerts]
    mid = advance("u", None, [e for e in events if e.ts_ms < T0_MS + 137 * DAY_MS], T0_MS + 136 * DAY_MS + 12 * 3_600_000, model)
    a = assess(mid.state, (T0_MS + 136 * DAY_MS) // 1000 + 12 * 3600, model)
    assert a.risk <= model.risk_exit and a.stage == "active" and back_share(a.signals) < 0.6, (a.risk, a.stage)
    assert mid.state.at_risk_since_s != 0  # still open
    recovered = alerts[1]
    assert recovered.event_time_ms >= T0_MS + 152 * DAY_MS  # back at 3 a day
    assert back_share(recovered.scores.signals) >= RETURN_SHARE
    assert recovered.scores.reasons[0].startswith("activity back at the user's usual level: the last week at ")


def test_a_dip_under_the_exit_line_is_no_recovery() -> None:
    """Back at their level, the risk at the line now but over it after the user's usual interval
    of silence: a dip, no recovery; with the line where the risk stays under it then, one."""
    model = load_model()
    events = _daily([(100, 3), (12, 0), (40, 1), (30, 3)])
    state = advance("u", None, events, T0_MS + 181 * DAY_MS, model).state
    state.at_risk_since_s, state.alert_risk = (T0_MS + 105 * DAY_MS) // 1000, 0.6
    now_s = events[-1].ts_ms // 1000
    a = assess(state, now_s, model)
    ahead = SilentRisk(a, model).at(now_s + int(a.signals.visit_gap_days * DAY_S))
    assert back_share(a.signals) >= RETURN_SHARE and a.stage == "active" and ahead > a.risk
    tight = model.with_(risk_exit=(a.risk + ahead) / 2)  # the risk now under the line, after the usual pause over it
    roomy = model.with_(risk_exit=min(ahead + 0.01, model.risk_enter - 0.01))
    assert not engine._may_close(state, assess(state, now_s, tight), now_s, tight)
    assert engine._may_close(state, assess(state, now_s, roomy), now_s, roomy)


def test_recovery_reasons_never_give_the_tenure_nor_a_negative_type() -> None:
    """A user of 200 days who never disliked anything, under a model that weighs a larger share
    of dislikes (a ``negative`` name) as risk and a longer tenure as safety: neither "active over
    200 days" nor "dislikes: 0% of the user's recent activity" is news of a recovery (QA19 F6:
    "active over 175 days (first to last visit)" led 32 of 63 recoveries of a bank's leavers)."""
    model = TYPED.with_(risk_weights={**TYPED.risk_weights, "tenure_log": -0.6, "share:dislike": 20.0})
    assert model.risk_weights["share:dislike"] > 0.0 and "dislike" in model.compiled.vocabulary.roles["negative"]
    state = UserState()
    for e in _daily([(200, 3)], ("view", "click", "message")):
        apply_event(state, e, model.compiled.vocabulary)
    now_s = (T0_MS + 200 * DAY_MS) // 1000
    sig = compute_signals(state, now_s, model)
    p, source = p_stay(sig, model)
    told = explain(state, sig, "active", feature_vector(sig, p, state.revenue), p, source, model, purpose="recovered")
    texts = [text for _, _, text in told]
    assert texts and texts[0].startswith("activity back at the user's usual level"), texts
    assert not any("dislike" in t or t.startswith("active over") for t in texts), texts


def test_a_recovered_alert_says_none_while_the_user_keeps_their_own_action() -> None:
    """QA20a F7: a light user (a visit every third day) at risk after 20 silent days, back at
    their rhythm: health under the action line, neither using nor paying by the quadrant, which
    says ``check_in``. The recovered alert closes the case, so its action is ``none`` (as
    ``account_recovered``'s); the user's own action, what ``score``, ``top`` and the console show,
    is still the quadrant's."""
    model = load_model()
    days = [d for d in range(180) if d % 3 == 0 and not 100 <= d < 120]
    events = [Event("u", T0_MS + d * DAY_MS + 9 * 3_600_000, "view", f"e{i:03d}") for i, d in enumerate(days)]
    out = advance("u", None, events, T0_MS + 180 * DAY_MS, model)
    kinds = [a.kind for a in out.alerts if a.kind != "stage_changed"]
    assert kinds == ["at_risk", "recovered"], kinds
    recovered = out.alerts[[a.kind for a in out.alerts].index("recovered")]
    assert recovered.scores.health < model.action_health and recovered.to_dict()["action"] == "none"
    now_s = recovered.event_time_ms // 1000
    state = advance("u", None, [e for e in events if e.ts_ms <= recovered.event_time_ms], recovered.event_time_ms, model).state
    assert state.at_risk_since_s == 0
    assert scores_from(state, assess(state, now_s, model), model).action == "check_in"
