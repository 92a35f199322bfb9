"""Key users (``[users] key`` of the model; QA24b F1): a declared key user (a school's champion
teacher, an admin) silent past their own rhythm puts the account at risk on their own, whatever
their share of its activity, and the account recovers when they are back. Nothing declared: as before."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from models.account_health import (DAY_S, KEY_RISK, Member, key_user, member_key, rollup, silence_index, silence_risk_at)
from models.events import Event
from models.model import ChurnModel
from models.quiet_period import parse_quiet, quiet_members, quiet_window
from models.revenue import AccountState
from streams.cli.train import with_vocabulary
from streams.offline.replay import load_config
from streams.worker.account_alerts import AccountWork
from streams.worker.revenue import AccountsAdvanced, MemberCopy, _apply_in_order, _review_until
from streams.worker.members import member_versions

NOW = 200 * DAY_S


def _m(uid: str, seen_days_ago: float, weight: float, key: bool = False, gap: float = 0.0) -> Member:
    return Member(member_key(uid), int(NOW - seen_days_ago * DAY_S), 1, 0.0, weight, weight, uid, gap, False, key)


def _school(teacher_seen_days_ago: float, key: bool) -> list[Member]:
    """QA24b sch018: the champion teacher 20% of the activity, 2 other teachers, 8 students."""
    students = [_m(f"sch018_s{i:02d}", 1, 7.0) for i in range(8)]
    teachers = [_m("sch018_t2", 1, 4.0, gap=1.5), _m("sch018_t3", 2, 4.0, gap=1.5)]
    return [_m("sch018_t1", teacher_seen_days_ago, 16.0, key, 1.6), *teachers, *students]


def test_the_flag_costs_no_byte_and_reads_back() -> None:
    plain, key = _m("sch018_t1", 1, 5.0, gap=2.0), _m("sch018_t1", 1, 5.0, True, 2.0)
    assert len(key.to_bytes()) == len(plain.to_bytes()) == 39  # 25 + 5 rhythm + the id: the account budget unchanged
    back = Member.from_bytes(key.to_bytes())
    assert back == key and back.key_user and not back.machine and back.stage == 1
    assert not Member.from_bytes(plain.to_bytes()).key_user
    both = Member.from_bytes(Member(1, 5, 3, 0.0, 1.0, 1.0, "x", 0.0, True, True).to_bytes())
    assert both.machine and both.key_user and both.stage == 3


def test_a_silent_key_user_puts_the_account_at_risk_alone() -> None:
    before, after = rollup(_school(15, False), None, None, 0, NOW), rollup(_school(15, True), None, None, 0, NOW)
    assert before.risk < 0.5 and before.stage != "at_risk"  # 20% of the activity: 0.16 alone (QA24b F1)
    assert after.risk == pytest.approx(KEY_RISK) and after.stage == "at_risk"
    assert after.reasons[0] == ("its key user sch018_t1 silent for 2 weeks (20% of its activity), "
                                "past their usual 2 days between active days")
    assert after.action == "re-engage the silent users"
    assert not any(t.startswith("its most active user sch018_t1") for t in after.reasons)  # named once


def test_back_or_not_yet_silent_is_no_risk() -> None:
    for days in (0, 13):  # back today, or silent less than 14 days: under the line of their own rhythm
        r = rollup(_school(days, True), None, None, 0, NOW)
        assert r.risk == 0.0 and not r.reasons


def test_a_light_key_user_is_judged_by_their_own_rhythm() -> None:
    light = [_m("adm", 20, 2.0, True, 12.0), *(_m(f"u{i}", 1, 5.0) for i in range(4))]
    assert rollup(light, None, None, 0, NOW).risk < 0.5  # 2 usual intervals are 24 days
    assert rollup(light, None, None, 0, NOW + 5 * DAY_S).risk >= KEY_RISK


@pytest.mark.parametrize("days", [0, 13, 14, 15, 40, 89, 95, 120])
def test_the_index_reads_the_risk_rollup_computes(days: int) -> None:
    members = [*_school(15, True), _m("sch018_t4", 3, 2.0, True, 9.0)]
    t = NOW + days * DAY_S
    r = rollup(members, None, None, 0, t)
    assert silence_risk_at(silence_index(members, ()), t) == pytest.approx(r.risk if r.stage != "lapsed" else 0.8, abs=1e-4)


def test_a_declared_quiet_period_covers_the_key_user_too() -> None:
    # teachers take holidays: in a declared break a key user who was there before it is not silent
    period = parse_quiet("12-20..01-04")
    jan2 = 1767312000  # 2026-01-02 00:00 UTC
    school = [Member(m.key, jan2 - 15 * DAY_S, 1, 0.0, m.act_28d, m.base_28d, m.user_id, m.gap_days, False, m.key_user)
              for m in _school(0, True)]
    window = quiet_window(period, jan2 * 1000)
    assert window is not None
    assert rollup(quiet_members(school, window, jan2), None, None, 0, jan2).risk == 0.0
    assert rollup(school, None, None, 0, jan2).risk >= KEY_RISK  # undeclared, the silence counts


def test_member_copies_carry_the_flag() -> None:
    model = ChurnModel(key_users=("*_t1",))
    events = [Event(u, d * 86_400_000, "teacher_login", f"e{d}", 0.0, "sch018") for u in ("sch018_t1",) for d in range(1, 4)]
    assert all(m.key_user for _, m in member_versions("sch018_t1", None, events, model))
    assert not any(m.key_user for _, m in member_versions("sch018_t1", None, events, ChurnModel()))


def test_both_declared_in_one_config(tmp_path: Path) -> None:
    (tmp_path / "school.toml").write_text('[users]\nkey = ["*_t1"]\nmachine = ["svc_*"]\n')
    model = with_vocabulary(ChurnModel(), load_config(tmp_path / "school.toml"))
    assert (model.key_users, model.machine_users) == (("*_t1",), ("svc_*",))
    assert key_user("sch018_t1", model.key_users) and not key_user("sch018_s01", model.key_users)


def _school_alerts(key: bool, back_day: int = 130) -> list[dict]:
    """The worker's account side (``_apply_in_order``, ``_review_until``) on a school: its champion
    teacher (a daily user, a fifth of the activity) last seen on day 100 and back on ``back_day``,
    6 students daily throughout; the teacher's copies flagged a key user or not (``key``)."""
    t0 = 1_767_225_600_000  # 2026-01-01
    acc, out, offset = AccountWork(AccountState(), {}, {}), AccountsAdvanced(), 0
    for day in range(1, 200):
        copies = []
        for i, (uid, weight) in enumerate([("sch018_t1", 12.0), *((f"sch018_s{j}", 8.0) for j in range(6))]):
            if uid == "sch018_t1" and 100 < day < back_day:
                continue
            ts_ms, offset = t0 + day * 86_400_000 + i * 60_000, offset + 1
            m = Member(member_key(uid), ts_ms // 1000, 1, 0.0, weight, weight, uid, 1.0, False, key and uid == "sch018_t1")
            copies.append(MemberCopy(0, offset, "sch018", ts_ms, m))
        _apply_in_order("sch018", acc, copies, out)
    _review_until("sch018", acc, t0 + 200 * 86_400_000, out)
    return [{**orjson.loads(v), "day": (orjson.loads(v)["event_time_ms"] - t0) // 86_400_000} for _, v in out.alerts]


def test_the_worker_alerts_on_the_key_user_s_silence_and_recovers_on_their_return() -> None:
    assert _school_alerts(False) == []  # a fifth of the activity silent: 0.16, no alert (QA24b F1)
    alerts = _school_alerts(True)
    assert [(a["kind"], a["day"]) for a in alerts][:1] == [("account_at_risk", 114)]  # 14 days after day 100
    assert alerts[0]["reasons"][0].startswith("its key user sch018_t1 silent for 2 weeks")
    assert [a["kind"] for a in alerts] == ["account_at_risk", "account_recovered"] and alerts[1]["day"] >= 130


@pytest.mark.parametrize("days", [15, 20])
def test_a_one_user_account_whose_key_user_is_silent_is_at_risk_not_a_crash(days: int) -> None:
    """QA25b F1: a marketplace shop of one user (``shop007_o``, account ``shop007``: not the user's
    own id, so the account's rules judge it) whose only user is a declared key user. Silent past
    their rhythm, the key user is taken out of the silent users before the most-active one is named,
    and naming compared the two largest weights of a one-user list: IndexError, every worker cycle
    retried for ever (the QA replay's account side stuck 336 days behind, no event applied after)."""
    owner = [_m("shop007_o", days, 9.0, True, 1.5)]
    r = rollup(owner, None, None, 0, NOW)
    assert r.stage == "at_risk" and r.risk >= KEY_RISK
    assert r.reasons[0].startswith("its key user shop007_o silent for")
    assert rollup(owner, None, None, 0, NOW + 30 * DAY_S).stage == "lapsed"  # gone 21 days and more: win back
