"""docs/ALERTS.md lists every field of both alert kinds: checked against real alerts, so the doc
cannot drift from ``Alert.to_dict`` (models/engine.py) and ``account_alert``
(streams/worker/account_alerts.py). Pure: no broker, no Redis."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from models.account_health import Member, member_key
from models.engine import advance
from models.events import Event
from models.model import load_model
from models.revenue import AccountState
from models.subscription import Subscription
from streams.offline.simulate import generate
from streams.worker.account_alerts import AccountWork, decide_alert, decide_reminders

DOC = Path(__file__).resolve().parents[1] / "docs" / "ALERTS.md"
DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01
_TYPES = {"string": str, "integer": int, "number": float, "array of strings": list, "string or null": (str, type(None))}


def doc_fields(section: str) -> dict[str, str]:
    """The field table after ``<!-- fields: section -->`` in docs/ALERTS.md: field -> type."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split(f"<!-- fields: {section} -->", 1)[1].strip().split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.splitlines()[2:]]
    return {re.fullmatch(r"`(\w+)`", r[1].strip()).group(1): r[2].strip() for r in rows}  # type: ignore[union-attr]


def user_alerts() -> list[dict[str, object]]:
    """One real user alert of each kind: the shipped model over 30 simulated users."""
    events, _ = generate(7, 30, T0, 90)
    per_user: dict[str, list[Event]] = {}
    for ev in events:
        per_user.setdefault(ev.user_id, []).append(ev)
    model, first = load_model(), {}
    for user, evs in per_user.items():
        for a in advance(user, None, evs, T0 + 120 * DAY_MS, model).alerts:
            first.setdefault(a.kind, a.to_dict())
    return list(first.values())


def _account(status: str, silent_days: int, trial_ends_ms: int = 0) -> AccountWork:
    state = AccountState().update(Event("u1", T0, "subscription", "s0", 0.0, "acme",
                                        Subscription(status, "Pro", 4999, trial_ends_ms)))  # type: ignore[arg-type]
    seen_s = (T0 + (60 - silent_days) * DAY_MS) // 1000
    members = {member_key(u): Member(member_key(u), seen_s, 1, 0.0, 20.0, 20.0, u) for u in ("u1", "u2")}
    return AccountWork(state, {}, members)


def account_alerts() -> list[dict[str, object]]:
    """Real account alerts: at risk, churned, recovered, and a trial reminder."""
    alerts: list[tuple[bytes | None, bytes]] = []
    acc = _account("active", silent_days=15)  # silent, not gone (21 days: lapsed, no at-risk alert: QA16 F11)
    decide_alert("acme", acc, T0 + 60 * DAY_MS, alerts)
    acc.members = {k: Member(k, (T0 + 61 * DAY_MS) // 1000, 1, 0.0, 20.0, 20.0, m.user_id) for k, m in acc.members.items()}
    for day in (61, 68):  # back, and a week below the close (a recovery holds: QA20a F8)
        decide_alert("acme", acc, T0 + day * DAY_MS, alerts)
    acc.state = acc.state.update(Event("u1", T0 + 69 * DAY_MS, "subscription", "s1", 0.0, "acme", Subscription("cancelled", "Pro", 0)))
    decide_alert("acme", acc, T0 + 69 * DAY_MS, alerts)
    trial = _account("trial", silent_days=49, trial_ends_ms=T0 + 62 * DAY_MS)
    for now in (T0 + 60 * DAY_MS, T0 + 61 * DAY_MS):  # the at-risk alert opens, then the 24 h reminder
        decide_reminders("trial", trial, now, decide_alert("trial", trial, now, alerts), alerts)
    return [orjson.loads(v) for _, v in alerts]


def _check(alert: dict[str, object], fields: dict[str, str]) -> None:
    assert list(alert) == list(fields), f"{alert['kind']}: docs/ALERTS.md lists {list(fields)}, the alert has {list(alert)}"
    for name, kind in fields.items():
        assert isinstance(alert[name], _TYPES[kind]), f"{alert['kind']}.{name}: {alert[name]!r} is not {kind}"


def test_the_doc_lists_every_user_alert_field_in_order_with_its_type() -> None:
    alerts = user_alerts()
    assert sorted(a["kind"] for a in alerts) == ["at_risk", "recovered", "stage_changed"]
    for alert in alerts:
        _check(alert, doc_fields("user"))


def test_the_doc_lists_every_account_alert_field_in_order_with_its_type() -> None:
    alerts = account_alerts()
    assert sorted({a["kind"] for a in alerts}) == ["account_at_risk", "account_churned", "account_recovered", "trial_ending"]
    for alert in alerts:
        extra = doc_fields(alert["kind"]) if alert["kind"] in ("trial_ending", "account_churned") else {}
        _check(alert, {**doc_fields("account"), **extra})


def test_the_doc_names_every_kind_and_account_action() -> None:
    from models.account_health import ACCOUNT_ACTIONS
    from models.actions import Action
    from models.engine import AlertKind

    text = DOC.read_text(encoding="utf-8")
    for word in (*AlertKind.__args__, "account_at_risk", "account_recovered", "account_churned", "trial_ending",
                 *ACCOUNT_ACTIONS, *Action.__args__):
        assert f"`{word}`" in text, f"docs/ALERTS.md does not name `{word}`"


def test_the_doc_recovered_example_is_a_real_alert() -> None:
    """The ``account_recovered`` example of docs/ALERTS.md is the fixture's real alert, field for
    field: its reasons say why the account is better (issue 11), as the alerts do."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- example: account_recovered -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    real = [a for a in account_alerts() if a["kind"] == "account_recovered"]
    assert real == [orjson.loads(block)]


def test_a_b2c_accounts_alert_carries_the_documented_usage_unknown_flag() -> None:
    """QA19 F7: the alert of a user's own account (no ``account_id``, no member copy) adds one
    optional field, ``usage_unknown`` (after ``reasons``), which the doc names with its type; the
    documented fields keep their order and types (``health`` and ``users`` integers, 0)."""
    state = AccountState().update(Event("c1", T0, "subscription", "s0", 0.0, "", Subscription("active", "premium", 799)))
    acc = AccountWork(state.update(Event("c1", T0 + DAY_MS, "subscription", "s1", 0.0, "", Subscription("cancelled", "premium", 0))), {}, {})
    alerts: list[tuple[bytes | None, bytes]] = []
    decide_alert("c1", acc, T0 + DAY_MS, alerts)
    alert = orjson.loads(alerts[0][1])
    fields = {**doc_fields("account"), "usage_unknown": "boolean", **doc_fields("account_churned")}
    assert list(alert) == list(fields), list(alert)
    assert alert["usage_unknown"] is True and (alert["health"], alert["users"], alert["action"]) == (0, 0, "win back the plan")
    assert '`"usage_unknown": true` (a boolean, after `reasons`' in DOC.read_text(encoding="utf-8")
