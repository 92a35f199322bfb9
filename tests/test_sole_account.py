"""An account that is its one user follows its user's own judgement (QA17 F4; models.account_health.sole_member).

A shop that sends ``account_id`` = the user id (the README's way to a per-owner list) got an
account rule of fixed 2 weeks of silence: 3,589 ``account_at_risk`` for 3,000 customers, and an
owner's book of customers long gone. Here the user's own lifecycle and at-risk alert, made by the
engine from its own rhythm, decide the account's; accounts of several members keep the account's rules.
"""

from __future__ import annotations

import orjson

from models.account_health import Member, member_key, recovered_reasons, rollup, silence_index, silence_risk_at
from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.revenue import AccountState, AccountView
from models.state import STAGES
from streams.views import member_now
from streams.worker.account_alerts import AccountWork, decide_alert

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01
NO_PLAN = AccountView(0, False, "none", (), 0, 0, 0, 0)
MODEL = ChurnModel()


def _buyer(user: str, every_days: int, orders: int) -> tuple[list[Event], int]:
    """A customer who visits and orders every ``every_days`` days; the events and the last one's time."""
    events = []
    for k in range(orders):
        t = T0 + k * every_days * DAY_MS + (k % 3) * 3_600_000  # a little jitter of the hour
        events += [Event(user, t, "app_open", f"o{k}", 0.0, user), Event(user, t + 600_000, "purchase", f"p{k}", 25.0, user)]
    return events, events[-1].ts_ms


def _account_now(user: str, every_days: int, silent_days: int) -> tuple[Member, object]:
    """The customer's member record as of its last event (what the stream's copy holds), judged
    now as the owner's book judges it (``member_now``), and the user's state now."""
    events, last = _buyer(user, every_days, 12)
    now = last + silent_days * DAY_MS
    state = advance(user, None, events, now, MODEL).state
    record = Member(member_key(user), state.last_seen_s, STAGES.index("active"), 0.0, 10.0, 10.0, user)
    return member_now(record, state, now, MODEL, open_risk=True), state


def test_a_weekly_customer_silent_10_days_is_not_at_risk_one_overdue_by_its_rhythm_is() -> None:
    quiet, state = _account_now("c1", 7, 10)
    assert not state.at_risk_since_s  # the user's own judgement: not yet
    r = rollup([quiet], NO_PLAN, None, 0, state.last_seen_s + 10 * 86_400, account="c1")
    assert (r.stage, r.risk, r.silent, r.reasons) == ("prospect", 0.0, 0, ())
    overdue, state = _account_now("c1", 7, 17)
    assert state.at_risk_since_s and STAGES[overdue.stage] == "declining"  # its own alert opened by its rhythm
    r = rollup([overdue], NO_PLAN, None, 0, state.last_seen_s + 17 * 86_400, account="c1")
    assert r.stage == "at_risk" and r.risk == round(max(0.5, overdue.risk), 4) and r.silent == 1
    assert r.reasons == (f"the only user c1 at risk by its own alert (risk {round(100 * overdue.risk)}%)",)  # the stream's: no user reasons


def test_a_monthly_customer_silent_3_weeks_is_neither_at_risk_nor_gone() -> None:
    """The fixed rules read 0.8 "the only user silent for 2 weeks" at day 14 and lapsed at day 21
    of a customer who orders every 30 days; its own rhythm says it is not even due."""
    member, state = _account_now("c2", 30, 22)
    assert not state.at_risk_since_s
    r = rollup([member], NO_PLAN, None, 0, state.last_seen_s + 22 * 86_400, account="c2")
    assert rollup([member], NO_PLAN, None, 0, state.last_seen_s + 22 * 86_400).stage == "lapsed"  # the fixed rules
    assert (r.stage, r.risk, r.reasons) == ("prospect", 0.0, ())


def test_a_customer_dormant_by_its_own_rhythm_is_lapsed_and_says_so() -> None:
    member, state = _account_now("c3", 7, 40)
    assert STAGES[member.stage] in ("dormant", "churned")
    r = rollup([member], NO_PLAN, None, 0, state.last_seen_s + 40 * 86_400, account="c3")
    assert (r.stage, r.action) == ("lapsed", "win back")
    assert r.reasons == (f"the only user c3 {STAGES[member.stage]}, silent for 5 weeks",)


def test_three_members_keep_the_account_rules_whatever_their_own_alerts() -> None:
    """Several members (one of them the user whose id the account has): the account counts their
    silence; its users' own alerts are theirs. A company's account of one user so far (its id is
    not the user's) keeps the account's rules too: its next users are to come."""
    now_s = T0 // 1000 + 100 * 86_400

    def members(silent_days: int, risk: float, users: tuple[str, ...] = ("u1", "u2", "u3")) -> list[Member]:
        return [Member(member_key(u), now_s - silent_days * 86_400, 1, risk, 10.0, 10.0, u) for u in users]

    quiet, alerted = (rollup(members(15, risk), NO_PLAN, None, 0, now_s, account="u1") for risk in (0.0, 0.9))
    assert quiet == alerted and (quiet.stage, quiet.risk, quiet.reasons) == ("at_risk", 0.8, ("all 3 users silent for 2 weeks",))
    assert rollup(members(1, 0.9), NO_PLAN, None, 0, now_s, account="u1").risk == 0.0  # their open alerts do not make it at risk
    assert recovered_reasons(rollup(members(1, 0.0), NO_PLAN, None, 0, now_s, account="u1"))[0] == "all 3 users active in the last 2 weeks"
    company = rollup(members(15, 0.0, ("bob",)), NO_PLAN, None, 0, now_s, account="acme")
    assert (company.stage, company.reasons) == ("at_risk", ("the only user silent for 2 weeks",))


def test_the_catch_up_reads_the_same_users_part_as_the_roll_up() -> None:
    """The worker's quiet rule (``silence_risk_at``) and the roll-up agree for an account that is
    its one user at any time (its users' part does not move without a copy)."""
    for risk in (0.0, 0.3, 0.7):
        m = Member(member_key("c8"), T0 // 1000, 1, risk, 10.0, 10.0, "c8")
        ix = silence_index([m], (), "c8")
        for days in (1, 15, 30, 120):
            now_s = T0 // 1000 + days * 86_400
            assert silence_risk_at(ix, now_s) == rollup([m], NO_PLAN, None, 0, now_s, account="c8").risk


def test_the_stream_opens_and_closes_the_account_alert_with_its_users_own() -> None:
    """A copy saying the user's alert is open opens ``account_at_risk``; 3 weeks of silence alone
    do not (the fixed rule opened one at 2 weeks); a copy saying it closed recovers the account, saying so."""
    key, seen_s = member_key("c9"), T0 // 1000
    acc = AccountWork(AccountState(), {}, {key: Member(key, seen_s, 1, 0.0, 10.0, 10.0, "c9")})
    alerts: list[tuple[bytes | None, bytes]] = []
    decide_alert("c9", acc, (seen_s + 21 * 86_400) * 1000, alerts)
    assert alerts == []
    for day, stage, risk in ((22, 2, 0.62), (25, 1, 0.0)):
        acc.members[key] = Member(key, seen_s + day * 86_400, stage, risk, 10.0, 10.0, "c9")
        decide_alert("c9", acc, (seen_s + day * 86_400) * 1000, alerts)
    got = [orjson.loads(v) for _, v in alerts]
    assert [(a["kind"], a["risk"], a["reasons"][0]) for a in got] == [
        ("account_at_risk", 0.62, "the only user c9 at risk by its own alert (risk 62%)"),
        ("account_recovered", 0.0, "the only user has no at-risk alert open")]


def test_the_owners_book_is_the_owners_part_of_the_user_save_list() -> None:
    """``top --owner`` over accounts that are their one user: the customer overdue by its own
    rhythm, with its own reasons first, ranked by the user's save-list key; the monthly customer
    silent 3 weeks nowhere; one forgotten after it churned (no state) and one dormant on the
    win-back list, not the save list (the fixed rules: all four at risk or lapsed by silence alone)."""
    from streams.settings import Settings
    from streams.views import account_book
    from tests.fake_reader import NoUserStates

    customers = {"c1": (7, 17), "c2": (30, 22), "c3": (7, 40)}
    states, records = {}, {}
    now_ms = T0 + 400 * DAY_MS
    for user, (every, silent) in customers.items():
        events, last = _buyer(user, every, 12)
        shift = now_ms - silent * DAY_MS - last  # each silent ``silent`` days at now_ms
        events = [Event(e.user_id, e.ts_ms + shift, e.type, e.event_id, e.amount, e.account_id) for e in events]
        states[user] = advance(user, None, events, now_ms, MODEL).state
    for user in (*customers, "c4"):
        seen_s = states[user].last_seen_s if user in states else (now_ms - 300 * DAY_MS) // 1000
        risk = 0.9 if user == "c4" else 0.0  # c4's last copy: its alert open, 300 days ago
        records[user] = (None, None, {b"k": Member(member_key(user), seen_s, 1, risk, 10.0, 10.0, user).to_bytes()})

    class Reader(NoUserStates):
        def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
            return records[account_id]

        def load_user(self, user_id: str) -> object:
            return states.get(user_id)

    table = {u: {"account_id": u, "owner": "anna"} for u in records}
    save = account_book(Reader(), Settings(), "anna", 10, now_ms=now_ms, table=table)  # type: ignore[arg-type]
    assert [r.account_id for r in save] == ["c1"]
    assert save[0].savable is not None and 0 < save[0].savable <= save[0].rollup.risk
    assert save[0].rollup.reasons[-1].startswith("the only user c1 at risk by its own alert") and len(save[0].rollup.reasons) > 1
    win_back = account_book(Reader(), Settings(), "anna", 10, now_ms=now_ms, table=table, churned_only=True)  # type: ignore[arg-type]
    assert sorted(r.account_id for r in win_back) == ["c3", "c4"]
    assert next(r for r in win_back if r.account_id == "c4").rollup.reasons == ("the only user c4 churned, silent for 42 weeks",)


def test_a_one_person_account_at_risk_is_not_silent_while_its_user_is_there() -> None:
    """QA22a F7: ``accounts show s00015`` said "1 user (1 silent)", "re-engage the silent users" of
    a viewer seen the day before, because its own at-risk alert was open. The account is at risk as
    its user is, but silent (count, health) only when the user is, and told to ask about the fall."""
    now_s = (T0 + 60 * DAY_MS) // 1000
    for days, silent, action in ((1, 0, "ask why their use is falling"), (16, 1, "re-engage the silent users")):
        user = Member(member_key("s15"), now_s - days * 86_400, STAGES.index("active"), 0.7, 10.0, 10.0, "s15")
        r = rollup([user], NO_PLAN, None, 0, now_s, account="s15")
        assert (r.stage, r.risk, r.users, r.silent, r.action) == ("at_risk", 0.7, 1, silent, action), r
        assert r.reasons == ("the only user s15 at risk by its own alert (risk 70%)",)
        assert (r.health > 90) == (not silent), r.health  # half of health is the silent share
