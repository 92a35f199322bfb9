"""Reasons an account manager can act on (QA22a F3, QA22b F10): no trait, no core use, the product's words.

- A type the user never used is no stop: "no profile_switch events in recent weeks, against 0.8 for
  a typical user" led 1,183 of 2,236 at-risk alerts of a streaming service, every one a solo account
  with one profile (models.reasons ``_never_used``).
- The share of the product's most common type is its core use: "play_start events: 35% of the
  user's recent activity, against 31% for a typical user" was a reason for risk in 815 alerts, and
  "session_start events: 34% ..." led 763 of a game's loyal players (models.reasons ``_most_common``).
- A late purchase is said in the product's own purchase name when its role names one: a game's
  ``iap_purchase`` read "usual re-order every 9 days" (models.vocabulary ``own_name``).
"""

from __future__ import annotations

import re

from models.engine import advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.reasons import explain
from models.scoring import assess
from tests.test_models_alert_policy import T0_MS, _visits_and_orders
from tests.test_models_reasons import TRAINED, check_alert
from tests.test_models_reorder import NEVER_BY_RISK

DAY_MS = 86_400_000
#: A streaming service's fit, as QA22a's: fewer profile switches weigh as risk (families churn less),
#: and the share of plays (the most common type) and their count since first seen weigh up while
#: the other types' shares weigh down.
STREAM = TRAINED.with_(
    tracked_types=("play", "browse", "search", "profile_switch"),
    risk_weights={**TRAINED.risk_weights, "inactive:profile_switch": 1.8, "inactive:browse": 0.5,
                  "share:play": 4.5, "lifetime:play": 1.7, "share:browse": -5.0, "share:search": 4.5,
                  "lifetime:search": 1.7},
    risk_means={**TRAINED.risk_means, "inactive:profile_switch": -0.59, "inactive:browse": -2.0, "inactive:play": -2.5,
                "share:play": 0.45, "share:browse": 0.3, "share:search": 0.15, "share:profile_switch": 0.1,
                "lifetime:play": 3.5, "lifetime:search": 2.0},
)


def _viewer(switch_until: int = 0, searches: int = 0, days: int = 62, quiet_from: int = 50) -> list[Event]:
    """Plays (and a browse) daily, ``searches`` searches a day, a profile switch every other day
    until ``switch_until`` (0: a solo account, never), to ``quiet_from``; then a play every 6 days
    (a viewer fading out)."""
    out: list[Event] = []
    for d in range(days):
        if d >= quiet_from and d % 6:
            continue
        t = T0_MS + d * DAY_MS + 20 * 3_600_000
        out += [Event("u", t + 60_000 * k, "play", f"p{d:03d}{k}") for k in range(3)]
        out.append(Event("u", t + 300_000, "browse", f"b{d:03d}"))
        out += [Event("u", t + 400_000 + 60_000 * k, "search", f"s{d:03d}{k}") for k in range(searches)]
        if d < switch_until and d % 2 == 0:
            out.append(Event("u", t + 500_000, "profile_switch", f"w{d:03d}"))
    return out


def _reasons_for_risk(events: list[Event], model: ChurnModel) -> list[str]:
    """The reasons an at-risk alert would give a day after ``events`` (each alert of the history
    supporting itself: tests.test_models_reasons.check_alert)."""
    now_ms = events[-1].ts_ms + DAY_MS
    state = advance("u", None, events, now_ms, model).state
    for alert in advance("u", None, events, now_ms, model).alerts:
        check_alert(alert, model)
    a = assess(state, now_ms // 1000, model)
    assert a.risk >= model.risk_enter, a.risk
    found = explain(state, a.signals, a.stage, a.features, a.p_stay, a.stay_source, model, a.leave, None, "at_risk")
    return [text for *_, text in found]


def test_a_type_the_user_never_used_is_no_reason_for_risk() -> None:
    """A solo viewer fading out never switched profiles: the model weighs fewer switches as risk,
    yet "no profile_switch events in recent weeks" is no reason for risk (a trait, not a stop);
    a family viewer who switched and stopped weeks ago is still told so."""
    solo = _reasons_for_risk(_viewer(), STREAM)
    family = _reasons_for_risk(_viewer(switch_until=10), STREAM)
    assert not any("profile_switch" in text for text in solo), solo
    assert any(re.match(r"^(only about \d+ profile_switch|fewer than 1 profile_switch)", text) for text in family), family


def test_the_share_of_the_most_common_type_is_no_reason_for_risk() -> None:
    """The same weights on plays (the most common type, 45% of a typical user's activity) and on
    searches (15%): a plays-heavy viewer fading out is never told "plays: N% of the user's recent
    activity" for risk, a search-heavy one is still told their searches' share (a rare type the
    model weighs as a sign of leaving, as QA16 F4's skips)."""
    plays = _reasons_for_risk(_viewer(), STREAM)
    searches = _reasons_for_risk(_viewer(searches=6), STREAM)
    assert not any(re.match(r"^plays?( events)?: [\d.]+% of the user's recent activity", text) for text in plays), plays
    assert any(re.match(r"^search(es)?( events)?: [\d.]+% of the user's recent activity", text) for text in searches), searches


def _game_orders() -> list[Event]:
    """Orders every 30 days to day 90, visits every 5 days: late at day ~138 (tests.test_models_addon)."""
    events = _visits_and_orders((0, 30, 60, 90), tuple(range(5, 200, 5)))
    return [Event(e.user_id, e.ts_ms, "iap_purchase", e.event_id, e.amount) if e.type == "purchase" else e for e in events]


def test_a_late_purchase_is_said_in_the_products_own_purchase_name() -> None:
    """A game that declares ``purchase = ["iap_purchase"]``: "usual iap_purchase every 30 days, none
    for N days", no shop's "re-order"; the default's several purchase names keep "re-order"."""
    game = NEVER_BY_RISK.with_(roles={**load_model().roles, "purchase": ["iap_purchase"]})
    end_ms = T0_MS + 200 * DAY_MS
    late = [a for a in advance("u", None, _game_orders(), end_ms, game).alerts if a.kind == "at_risk"]
    assert late and re.fullmatch(r"usual iap_purchase every 30 days, none for \d+ days", late[0].scores.reasons[0]), late
    shop = [a for a in advance("u", None, _visits_and_orders((0, 30, 60, 90), tuple(range(5, 200, 5))), end_ms,
                               NEVER_BY_RISK).alerts if a.kind == "at_risk"]
    assert shop and shop[0].scores.reasons[0].startswith("usual re-order every 30 days"), shop
