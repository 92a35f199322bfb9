"""Machine users (``[users] machine`` of the model; QA23b F2, F3): a service key's events are its
account's usage, but the key is none of its users (counted, silent, named "most active"), gets no
at-risk alert of its own, and a running key is one seat in use, a silent one the usage falling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import pytest

from models.account_health import (DAY_S, Member, Trend, key_user, machine_user, member_key, rollup, silence_index, silence_risk_at)
from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from streams.cli.train import with_vocabulary
from streams.offline.replay import load_config
from streams.worker.members import member_versions

NOW = 200 * DAY_S


def _m(uid: str, seen_days_ago: float, weight: float, machine: bool = False, gap: float = 0.0) -> Member:
    return Member(member_key(uid), int(NOW - seen_days_ago * DAY_S), 1, 0.0, weight, weight, uid, gap, machine)


def test_the_flag_costs_no_byte_and_reads_back() -> None:
    person, key = _m("ann", 1, 5.0, gap=3.0), _m("svc_acme", 1, 5.0, True, 3.0)
    assert len(key.to_bytes()) == len(person.to_bytes()) + len("svc_acme") - len("ann")
    back = Member.from_bytes(key.to_bytes())
    assert back == key and back.machine and back.stage == 1
    assert not Member.from_bytes(person.to_bytes()).machine


def test_the_key_is_never_the_most_active_user_nor_counted() -> None:
    # QA23b acc197: 2 developers and the key, the champion silent; read "1 of 3 users", named the key
    champion, dev, key = _m("acc197_d00", 20, 6.0), _m("acc197_d01", 1, 2.0), _m("svc_acc197", 0, 80.0, True)
    r = rollup([champion, dev, key], None, None, 0, NOW)
    assert r.users == 2 and r.silent == 1
    assert r.reasons[0].startswith("its most active user acc197_d00 silent for 2 weeks")
    assert any(t.startswith("1 of 2 users silent") for t in r.reasons)
    assert not any("svc_acc197" in t for t in r.reasons)
    unflagged = rollup([champion, dev, Member(key.key, key.last_seen_s, 1, 0.0, 80.0, 80.0, "svc_acc197")], None, None, 0, NOW)
    assert unflagged.users == 3  # the declaration is what changes it


def test_a_silent_key_is_no_silent_user_but_the_usage_falling() -> None:
    # QA23b F3: a month-end batch key silent from mid-month read "its most active user svc_... silent for 2 weeks"
    devs = [_m(f"d{i}", 1, 2.0) for i in range(3)]
    key = _m("svc_acme", 10, 60.0, True)
    trend = Trend(0, NOW, 0.5 * (66.0 * 14 / 28))  # the last 2 weeks at half the 3-month rate
    r = rollup([*devs, key], None, None, 0, NOW, trend=trend)
    assert r.silent == 0 and r.users == 3
    named = [t for t in r.reasons if "svc_acme" in t]  # said with the usage's fall, its share of the activity 60 of 66
    assert len(named) == 1 and named[0].startswith("usage over the last 2 weeks down ")
    assert named[0].endswith("; its machine user svc_acme (91% of its activity) last seen 10 days ago")
    quiet = rollup([*devs, _m("svc_acme", 20, 60.0, True)], None, None, 0, NOW)
    assert quiet.silent == 0 and quiet.risk == 0.0 and not any("silent" in t for t in quiet.reasons)


def test_its_only_developer_gone_while_the_key_runs_is_at_risk_not_lapsed() -> None:
    # QA23b acc332: its only developer gone since 06-19, the API running: no alert before
    dev, key = _m("acc332_d00", 40, 6.0), _m("svc_acc332", 0, 80.0, True)
    r = rollup([dev, key], None, None, 0, NOW)
    assert r.stage == "at_risk" and r.users == 1 and r.reasons[0].startswith("the only user silent for 5 weeks")
    gone = rollup([dev, _m("svc_acc332", 40, 80.0, True)], None, None, 0, NOW)
    assert gone.stage == "lapsed"  # nothing runs: the win-back list's, as before


def test_a_running_key_is_a_seat_in_use_in_the_risk() -> None:
    # light developers of a healthy account: 2 of 3 silent, the API running (QA23b: 42 -> 5 healthy accounts alerted)
    devs = [_m("d0", 1, 6.0), _m("d1", 16, 1.0), _m("d2", 16, 1.0)]
    running = rollup([*devs, _m("svc", 0, 60.0, True)], None, None, 0, NOW)
    stopped = rollup([*devs, _m("svc", 20, 60.0, True)], None, None, 0, NOW)
    assert running.reasons[0].startswith("2 of 3 users silent") and running.risk == pytest.approx(0.4)
    assert stopped.risk == pytest.approx(0.5333, abs=1e-4)


@pytest.mark.parametrize("days", [0, 5, 13, 14, 15, 25, 40, 95, 120])
def test_the_index_reads_the_risk_rollup_computes(days: int) -> None:
    members = [_m("d0", 30, 2.0), _m("d1", 3, 5.0, gap=9.0), _m("svc_a", 0, 60.0, True), _m("svc_b", 12, 9.0, True, 1.0)]
    t = NOW + days * DAY_S
    r = rollup(members, None, None, 0, t)
    r_u = 0.0 if r.stage == "lapsed" else r.risk  # no billing rule holds here: the risk is the users' part
    assert silence_risk_at(silence_index(members, ()), t) == pytest.approx(r_u if r.stage != "lapsed" else 0.8, abs=1e-4)


def _silent_heavy_user(uid: str) -> list[Event]:
    """A daily user for 60 days, then silent: the default model opens an at-risk alert on it."""
    return [Event(uid, d * 86_400_000 + 3_600_000, "api_call", f"e{d}", 0.0, "acme") for d in range(1, 60)]


def test_a_machine_user_gets_no_at_risk_alert() -> None:
    plain, machine = ChurnModel(), ChurnModel(machine_users=("svc_*",))
    events, until = _silent_heavy_user("svc_acme"), 120 * 86_400_000
    assert "at_risk" in [a.kind for a in advance("svc_acme", None, events, until, plain).alerts]
    out = advance("svc_acme", None, events, until, machine)
    assert "at_risk" not in [a.kind for a in out.alerts]
    person = _silent_heavy_user("ann")
    assert "at_risk" in [a.kind for a in advance("ann", None, person, until, machine).alerts]


def test_member_copies_carry_the_flag() -> None:
    model = ChurnModel(machine_users=("svc_*",))
    assert all(m.machine for _, m in member_versions("svc_acme", None, _silent_heavy_user("svc_acme")[:3], model))
    assert not any(m.machine for _, m in member_versions("ann", None, _silent_heavy_user("ann")[:3], model))


@pytest.mark.parametrize("kind, test", [("machine", machine_user), ("key", key_user)])  # key users: QA24b F1 (tests/test_key_users.py)
def test_declared_in_the_config_and_kept_in_the_model_file(tmp_path: Path, kind: str, test: Callable[[str, Sequence[str]], bool]) -> None:
    path = tmp_path / "names.toml"
    path.write_text(f'[roles]\nignore = ["invoice_paid"]\n[users]\n{kind} = ["svc_*", "bot-?"]\n')
    model = with_vocabulary(ChurnModel(), load_config(path))
    field = f"{kind}_users"
    assert getattr(model, field) == ("svc_*", "bot-?")
    assert getattr(ChurnModel.from_json(model.to_json()), field) == ("svc_*", "bot-?")
    assert test("bot-7", getattr(model, field)) and not test("Svc_1", getattr(model, field))
    assert field not in json.loads(ChurnModel().to_json())  # a model without it keeps its file and id
    (tmp_path / "bad.toml").write_text(f'[users]\n{kind} = "svc_*"\n')
    with pytest.raises(ValueError, match=f"users.{kind} must be a list of user id patterns"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text('[user]\nmachine = ["svc_*"]\n')
    with pytest.raises(ValueError, match="did you mean 'users'"):
        load_config(tmp_path / "typo.toml")
