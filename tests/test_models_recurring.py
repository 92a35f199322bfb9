"""A recurring credit handled as a rhythm (QA19 F1/F2): the ``recurring`` role (models.vocabulary),
its rhythm in the state (models.state ``n_recurring``, sharing the purchase fields' bytes of the
record), the late rule (models.signals.credit_late), the engine's alert rules and the reason's
words (docs/SCORES.md "A recurring credit overdue")."""

from __future__ import annotations

import random
from pathlib import Path
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.engine import Alert, advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.signals import CREDIT_LATE_FACTOR, credit_gap_days, credit_late, credit_late_at_s
from models.state import DAY_S, RECURRING_RECORD, UserState, apply_event
from models.vocabulary import RECURRING, Vocabulary
from tests.test_models_alert_policy import T0_MS

DAY_MS = DAY_S * 1000
HOUR_MS = 3_600_000
# The shipped default's weights with a line the risk never reaches: only a rule that opens an alert
# whatever the risk (here the late credit) can open one. A bank: no purchases, a salary.
BANK = load_model().with_(risk_enter=0.9999, risk_exit=0.5,
                          roles={**load_model().roles, "purchase": [], "recurring": ["salary_deposit"]})
# The same without the declaration: a salary is plain activity.
PLAIN = load_model().with_(risk_enter=0.9999, risk_exit=0.5, roles={**load_model().roles, "purchase": []})


def _events(credit_days: list[float], visit_days: list[float]) -> list[Event]:
    """An app_open at 10:00 UTC on each of ``visit_days``, a salary_deposit at 03:00 on each of ``credit_days``."""
    out = [Event("u", T0_MS + int(d * DAY_MS) + 10 * HOUR_MS, "app_open", f"v{i}") for i, d in enumerate(visit_days)]
    out += [Event("u", T0_MS + int(d * DAY_MS) + 3 * HOUR_MS, "salary_deposit", f"s{i}", 2500.0) for i, d in enumerate(credit_days)]
    return out


def _at_risk(events: list[Event], end_day: float, model: ChurnModel = BANK, cut_day: float | None = None) -> list[Alert]:
    end_ms = T0_MS + int(end_day * DAY_MS)
    events = [e for e in events if e.ts_ms < end_ms]
    if cut_day is None:
        alerts = advance("u", None, events, end_ms, model).alerts
    else:
        cut_ms = T0_MS + int(cut_day * DAY_MS)
        first = advance("u", None, [e for e in events if e.ts_ms < cut_ms], cut_ms, model)
        alerts = first.alerts + advance("u", first.state, [e for e in events if e.ts_ms >= cut_ms], end_ms, model).alerts
    return [a for a in alerts if a.kind in ("at_risk", "recovered")]


def _day(day: float) -> str:
    return datetime.fromtimestamp((T0_MS + day * DAY_MS) / 1000, tz=timezone.utc).date().isoformat()


def test_a_stopped_salary_opens_an_at_risk_alert_in_the_banks_words_and_the_next_one_closes_it() -> None:
    """Salary on days 0, 30, 60, 90, app opened every 3 days. The salary due on day 120 does not come:
    at day 90 + 1.2 x 30 = 126 the alert opens, risk far under the line, its first reason the salary;
    the visits do not close it (a visit is no salary); the salary on day 140 does."""
    visits = [float(d) for d in range(1, 150, 3)]
    events = _events([0, 30, 60, 90, 140], visits)
    alerts = _at_risk(events, 150)
    assert [a.kind for a in alerts] == ["at_risk", "recovered"]
    opened, closed = alerts
    late_ms = T0_MS + 90 * DAY_MS + 3 * HOUR_MS + int(CREDIT_LATE_FACTOR * 30 * DAY_MS)
    assert late_ms <= opened.event_time_ms <= late_ms + 1_000
    assert opened.scores.risk < BANK.risk_enter
    assert opened.scores.reasons[0] == f"salary_deposit overdue: usually every 30 days, none for 36 days (last {_day(90)})"
    assert not any("salary_deposit" in r for r in opened.scores.reasons[1:])
    assert closed.event_time_ms == events[-1].ts_ms  # the salary itself
    # the same alerts however the history is cut into batches
    for cut in (95.5, 125.9, 126.5, 139):
        assert [a.alert_id for a in _at_risk(events, 150, cut_day=cut)] == [a.alert_id for a in alerts]
    # without the declaration the same history opens nothing (the risk never reaches the line)
    assert _at_risk(events, 150, PLAIN) == []


def test_two_credits_are_no_rhythm_and_a_late_credit_needs_the_margin() -> None:
    """Credits on days 0 and 30 only: one interval, no rhythm, nothing opens. Three credits 30 days
    apart: no alert at 35 days of silence (within the margin), one at 36."""
    visits = [float(d) for d in range(1, 120, 3)]
    assert _at_risk(_events([0, 30], visits), 119) == []
    assert _at_risk(_events([0, 30, 60], visits), 60 + 35.9) == []
    assert [a.kind for a in _at_risk(_events([0, 30, 60], visits), 60 + 36.5)] == ["at_risk"]


@settings(max_examples=40, deadline=None)
@given(gap=st.integers(min_value=7, max_value=35), n=st.integers(min_value=3, max_value=8),
       jitter=st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=8, max_size=8))
def test_a_credit_on_time_never_opens_an_alert(gap: int, n: int, jitter: list[float]) -> None:
    """Credits every ``gap`` days, each interval off by up to 5% (a pay day moved by a weekend),
    app opens every 2 days, the history ending a tenth of an interval after the last credit is
    due: no interval reaches 1.2 times the mean of the others, so nothing opens."""
    days = [0.0]
    for i in range(n - 1):
        days.append(days[-1] + gap * (1.0 + jitter[i]))
    due = days[-1] + gap * 1.1
    visits = [float(d) for d in range(1, int(due), 2)]
    assert _at_risk(_events(days, visits), due) == []


@settings(max_examples=30, deadline=None)
@given(gap=st.integers(min_value=7, max_value=35), n=st.integers(min_value=3, max_value=6),
       cut=st.floats(min_value=0.01, max_value=0.99))
def test_a_credit_late_by_the_margin_opens_at_its_second_however_the_history_is_cut(gap: int, n: int, cut: float) -> None:
    """``n`` credits ``gap`` days apart, then none, app opens every 2 days: the alert opens within a
    second of the last credit + 1.2 intervals, the same alert whether the history comes in one
    batch or is cut anywhere in the silence."""
    days = [float(gap * i) for i in range(n)]
    end = days[-1] + 2 * gap
    visits = [float(d) for d in range(1, int(end), 2)]
    events = _events(days, visits)
    alerts = _at_risk(events, end)
    late_ms = T0_MS + int(days[-1] * DAY_MS) + 3 * HOUR_MS + int(CREDIT_LATE_FACTOR * gap * DAY_MS)
    assert [a.kind for a in alerts] == ["at_risk"]
    assert late_ms - 1_000 <= alerts[0].event_time_ms <= late_ms + 1_000
    assert alerts[0].scores.reasons[0].startswith(f"salary_deposit overdue: usually every {gap} days, none for ")
    cut_day = days[-1] + cut * 2 * gap
    assert [a.alert_id for a in _at_risk(events, end, cut_day=cut_day)] == [alerts[0].alert_id]


@settings(max_examples=50, deadline=None)
@given(days=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=12), seed=st.integers(0, 2**16))
def test_the_rhythm_is_the_same_in_any_order_of_the_events(days: list[int], seed: int) -> None:
    """Credits (and visits) applied in any order give the same first and last credit and the same
    count of days where the count can be exact: the first and last credits and every day counted."""
    vocabulary = BANK.compiled.vocabulary
    events = _events([float(d) for d in days], [float(d) + 0.5 for d in days])
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    in_order = UserState()
    for ev in sorted(events, key=lambda e: e.ts_ms):
        apply_event(in_order, ev, vocabulary)
    anyhow = UserState()
    for ev in shuffled:
        apply_event(anyhow, ev, vocabulary)
    first, last = min(days), max(days)
    assert (in_order.first_recurring_s - T0_MS // 1000) // DAY_S == first == (anyhow.first_recurring_s - T0_MS // 1000) // DAY_S
    assert in_order.last_recurring_s == anyhow.last_recurring_s
    assert in_order.n_recurring == len(set(days))  # exact in event order
    assert 1 <= anyhow.n_recurring <= in_order.n_recurring
    assert in_order.n_purchases == anyhow.n_purchases == 0


def test_the_record_keeps_the_rhythm_in_the_purchase_fields_bytes() -> None:
    """A salaried user's record is format 7 (93 bytes + 8 a slot, the marker in the flags' byte 2:
    no byte more than format 4) and reads back to the same state, the record's marker not in
    memory; a user without credits writes format 4 as before (7 if a flag is set)."""
    events = _events([0, 30, 60], [1, 2, 31, 61])
    st_ = advance("u", None, events, T0_MS + 62 * DAY_MS, BANK).state
    raw = st_.to_bytes()
    assert st_.n_recurring == 3 and st_.n_purchases == 0 and st_.flags & RECURRING_RECORD == 0
    assert raw[0] == 7 and raw[2] & RECURRING_RECORD and len(raw) == 93 + 8 * st_.n_slots
    back = UserState.from_bytes(raw)
    assert back == st_ and back.flags == st_.flags
    plain = advance("u", None, events, T0_MS + 62 * DAY_MS, PLAIN).state
    assert plain.n_recurring == 0 and len(plain.to_bytes()) == 93 + 8 * plain.n_slots
    assert plain.to_bytes()[0] == (7 if plain.flags else 4)


def test_a_buyer_keeps_no_recurring_rhythm_in_either_order() -> None:
    """The rhythm shares the purchases' bytes: a purchase clears it, a credit after a purchase adds
    nothing, so both orders end alike; a state holding both has no record."""
    shop_bank = load_model().with_(roles={**load_model().roles, "recurring": ["salary_deposit"]})
    vocabulary = shop_bank.compiled.vocabulary
    credits = _events([0, 30, 60], [])
    buy = Event("u", T0_MS + 45 * DAY_MS, "purchase", "p1", 10.0)
    for order in (credits + [buy], [buy] + credits, credits[:2] + [buy] + credits[2:]):
        s = UserState()
        for ev in order:
            apply_event(s, ev, vocabulary)
        assert (s.n_purchases, s.n_recurring, s.first_recurring_s, s.last_recurring_s) == (1, 0, 0, 0)
        assert UserState.from_bytes(s.to_bytes()) == s
    with pytest.raises(ValueError, match="purchases or a recurring rhythm, not both"):
        UserState(n_purchases=1, first_purchase_s=5, last_purchase_s=5, n_recurring=1, first_recurring_s=1, last_recurring_s=1).to_bytes()


def test_the_late_second_is_the_last_credit_plus_the_margin() -> None:
    s = UserState(first_recurring_s=0, last_recurring_s=61 * DAY_S, n_recurring=3)
    assert credit_gap_days(s) == 30.5
    assert abs(credit_late_at_s(s) - (61 * DAY_S + 36.6 * DAY_S)) <= 1
    assert not credit_late(s, credit_late_at_s(s) - 1) and credit_late(s, credit_late_at_s(s))
    assert credit_late_at_s(UserState(first_recurring_s=0, last_recurring_s=30 * DAY_S, n_recurring=2)) == 0


def test_the_role_is_declared_by_name_and_stays_activity() -> None:
    """``roles.recurring`` names keep their tracked slot (activity) and play the role; several names
    are said joined; no default names."""
    v = Vocabulary(("app_open", "salary_deposit"), roles={"recurring": ["salary_deposit"], "cancel": ["account_closed"]})
    assert v.lookup("salary_deposit") == (1, RECURRING) and v.lookup("app_open") == (0, 0)
    assert Vocabulary(roles={"recurring": ["salary_deposit", "pension"]}).recurring_text() == "salary_deposit or pension"
    assert "recurring" not in load_model().roles


@pytest.mark.parametrize(("roles", "message"), [
    ({"recurring": "salary_deposit"}, "roles.recurring must be a list of event names, got a str ('salary_deposit')"),
    ({"recurring": ["Salary_Deposit"]}, "roles.recurring names 'Salary_Deposit': event names are non-empty, trimmed and lower-case"),
    ({"recurring": ["salary_deposit"], "ignore": ["salary_deposit"]}, "event name 'salary_deposit' is in two roles (recurring, ignore)"),
    ({"recuring": ["salary_deposit"]}, "roles name unknown role 'recuring'"),
])
def test_a_wrong_declaration_is_refused_in_one_readable_line(roles: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        load_model().with_(roles=roles)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("config", "expected"), [
    ('[roles]\nrecurring = "salary_deposit"\n', "roles.recurring must be a list of event names, got a str ('salary_deposit')"),
    ('[roles]\nrecurring = ["salary_deposit"]\nignore = ["salary_deposit"]\n', "event name 'salary_deposit' is in two roles"),
    ('[roles]\nrecurring = ["complaint"]\n', "event name 'complaint' is in two roles (negative, recurring)"),
])
def test_train_refuses_a_wrong_recurring_declaration_in_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, expected: str) -> None:
    """``train --config``: a recurring declaration that cannot be read says why in one line, rc 2, no model written
    (a name the default ``negative`` role keeps is said with how to declare that role without it)."""
    from streams.cli import main
    from tests.test_model_vocabulary_file import _one_event_csv, _one_line
    path = tmp_path / "names.toml"
    path.write_text(config, encoding="utf-8")
    out = tmp_path / "m.json"
    assert main(["train", "--events", str(_one_event_csv(tmp_path)), "--config", str(path), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"config {path}:" in line and expected in line, line
    assert not out.exists()


def test_train_warns_when_buyers_also_get_the_recurring_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A history where a customer both buys and gets a salary: train says in one WARNING line that
    their recurring rhythm is not kept (the shared bytes), and writes the model with the role."""
    from streams.cli import main
    rows = ["user_id,ts,event_type,amount"]
    for i, user in enumerate(("a", "b")):
        rows += [f"{user},2026-0{m}-25T03:00:00Z,salary_deposit,2500" for m in range(1, 5)]
        rows += [f"{user},2026-0{m}-1{i}T10:00:00Z,app_open," for m in range(1, 5)]
    rows.append("a,2026-02-02T10:00:00Z,purchase,12.5")
    events = tmp_path / "e.csv"
    events.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tmp_path / "names.toml"
    config.write_text('[roles]\nrecurring = ["salary_deposit"]\n', encoding="utf-8")
    out = tmp_path / "m.json"
    assert main(["train", "--events", str(events), "--config", str(config), "--no-fit", "--out", str(out)]) == 0
    warned = [line for line in capsys.readouterr().out.splitlines() if "recurring events" in line]
    assert warned == [warned[0]] and warned[0].startswith("WARNING: 1 user has both purchases (purchase) and recurring events (salary_deposit)")
    assert list(load_model(out).roles["recurring"]) == ["salary_deposit"]
