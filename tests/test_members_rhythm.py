"""A member's own rhythm in its account's silence rule (QA18 F4; models.account_health.silent_after_s):
a light user is silent for its account after 2 of its usual intervals between active days, at
least 14 days and at most 30; a frequent one after 14 days, exactly as before the member copy
carried a rhythm. And the member record that carries it: records of the formats before still read."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from models.account_health import (MEMBER_HEAD_BYTES, MEMBER_ID_AT, Member, gone_member, member_key, recovered_reasons, rollup,
                                   silent_after_s, silent_member)
from models.revenue import AccountView
from streams.worker.revenue import parse_member_copy, member_copy

DAY_S = 86_400
NOW_S = 1_772_323_200  # 2026-03-01
VIEW = AccountView(9_900, True, "active", ("Pro",), 0, 0, 0, 1)


def _member(key: int, silent_days: float, gap: float, weight: float = 20.0) -> Member:
    return Member(key, int(NOW_S - silent_days * DAY_S), 1, 0.0, weight, weight, f"u{key}", gap)


def test_a_ten_day_member_is_not_silent_at_15_days_and_is_at_40() -> None:
    ten = _member(1, 0, 10.0)
    assert silent_after_s(ten) == 20 * DAY_S
    assert [silent_member(ten, NOW_S + d * DAY_S) for d in (15, 19, 20, 40)] == [False, False, True, True]
    # in its account: with a daily colleague active today, 1 of 2 silent only from day 20
    daily = Member(2, NOW_S, 1, 0.0, 20.0, 20.0, "u2", 1.2)
    at15, at40 = (rollup([ten, replace(daily, last_seen_s=NOW_S + d * DAY_S)], VIEW, None, 0, NOW_S + d * DAY_S) for d in (15, 40))
    assert (at15.silent, at15.reasons) == (0, ())
    assert at40.silent == 1
    assert at40.reasons[-1] == "1 of 2 users silent for 5 weeks, against a usual 10 days between their active days"


@settings(max_examples=300, deadline=None)
@given(gaps=st.lists(st.one_of(st.just(0.0), st.floats(0.5, 7.0)), min_size=1, max_size=6),
       silences=st.lists(st.integers(0, 120 * DAY_S), min_size=6, max_size=6),
       weights=st.lists(st.floats(0.0, 50.0), min_size=6, max_size=6))
@example(gaps=[1.0, 1.0], silences=[14 * DAY_S, 14 * DAY_S - 1, 0, 0, 0, 0], weights=[20.0] * 6)
def test_a_member_of_a_rhythm_of_a_week_or_less_is_judged_exactly_as_before(gaps: list[float], silences: list[int],
                                                                             weights: list[float]) -> None:
    """Two intervals of a week or less are at most 14 days: such members (a daily user) are silent
    from 14 days exactly, and the whole roll-up (risk, reasons, stage, recovery) is the one of the
    same members without a rhythm (records of the format before)."""
    members = [Member(i + 1, NOW_S - silences[i], 1, 0.0, weights[i], weights[i], f"u{i}", g) for i, g in enumerate(gaps)]
    before = [replace(m, gap_days=0.0) for m in members]
    for m in members:
        assert silent_member(m, NOW_S) == (NOW_S - m.last_seen_s >= 14 * DAY_S)
        assert gone_member(m, NOW_S) == (NOW_S - m.last_seen_s >= 21 * DAY_S)
    new, old = rollup(members, VIEW, None, 0, NOW_S), rollup(before, VIEW, None, 0, NOW_S)
    assert new == old
    assert recovered_reasons(new, 0.8) == recovered_reasons(old, 0.8)


@settings(max_examples=300, deadline=None)
@given(gap=st.floats(0.0, 60.0), silence=st.integers(0, 100 * DAY_S), longer=st.floats(0.0, 30.0))
def test_the_silence_line_is_14_days_or_two_intervals_at_most_30_and_never_earlier_for_a_slower_rhythm(gap: float, silence: int,
                                                                                                        longer: float) -> None:
    m = _member(1, silence / DAY_S, gap)
    after = silent_after_s(m)
    assert 14 * DAY_S <= after <= 30 * DAY_S
    if gap > 0:
        assert after == min(30 * DAY_S, max(14 * DAY_S, int(2 * gap * DAY_S)))
    assert silent_after_s(replace(m, gap_days=gap + longer)) >= after  # a slower rhythm is never silent sooner
    assert silent_member(m, NOW_S) == (silence >= after)
    assert gone_member(m, NOW_S) == (NOW_S - m.last_seen_s >= after + 7 * DAY_S)


def test_a_monthly_member_is_silent_after_the_30_day_cap_not_after_months() -> None:
    monthly = _member(1, 0, 30.0)
    assert [silent_member(monthly, NOW_S + d * DAY_S) for d in (29, 30)] == [False, True]
    assert [gone_member(monthly, NOW_S + d * DAY_S) for d in (36, 37)] == [False, True]


def test_light_users_silent_at_two_weeks_no_longer_put_the_account_at_risk() -> None:
    """QA18 F4's case: a champion active today, two users who come every 9-10 days quiet for 15
    days. Before (no rhythm): "2 of 3 users silent for 2 weeks", at risk; now: none silent."""
    champ = Member(1, NOW_S, 1, 0.0, 40.0, 40.0, "champ", 1.5)
    light = [_member(2, 15, 9.2, 5.0), _member(3, 15, 10.4, 5.0)]
    before = rollup([champ, *(replace(m, gap_days=0.0) for m in light)], VIEW, None, 0, NOW_S)
    now = rollup([champ, *light], VIEW, None, 0, NOW_S)
    assert before.stage == "at_risk" and before.reasons == ("2 of 3 users silent for 2 weeks",)
    assert now.stage == "customer" and now.silent == 0 and now.reasons == ()
    later = rollup([champ, *light], VIEW, None, 0, NOW_S + 7 * DAY_S)  # 22 days: past both their lines
    assert later.reasons[-1] == "2 of 3 users silent for 3 weeks, against a usual 9-10 days between their active days"
    # a recovery does not call the light users active in the last 2 weeks
    assert recovered_reasons(now, 0.53)[0] == "all 3 users active within their usual rhythm (1 in the last 2 weeks)"


def test_member_records_of_every_format_read() -> None:
    """The record of the format before the user id (25 bytes), before the rhythm (25 bytes and the
    id), and now (25, the rhythm's 5, the id): each reads back; one without a rhythm is written as
    before (so records before and after compare equal byte for byte)."""
    with_rhythm = Member(member_key("u1"), NOW_S, 2, 0.5, 3.25, 7.5, "u1", 9.5)
    data = with_rhythm.to_bytes()
    assert len(data) == MEMBER_ID_AT + 2 and data[MEMBER_HEAD_BYTES] == 0xFF
    assert Member.from_bytes(data) == with_rhythm
    assert Member.from_bytes(data[:MEMBER_ID_AT]) == replace(with_rhythm, user_id="")  # an id too long to keep
    plain = replace(with_rhythm, gap_days=0.0)
    assert plain.to_bytes() == data[:MEMBER_HEAD_BYTES] + b"u1"  # the format before the rhythm
    assert Member.from_bytes(plain.to_bytes()) == plain
    assert Member.from_bytes(data[:MEMBER_HEAD_BYTES]) == replace(plain, user_id="")  # the 25-byte format
    # an id whose first character is any UTF-8 (even one starting with the highest lead byte) is never read as a rhythm
    for uid in ("\U0010ffff-x", "é" * 3, "\udcff"):
        old = replace(plain, user_id=uid)
        assert Member.from_bytes(old.to_bytes()) == old
    # a member copy (the Kafka record between workers) and a held copy carry it in hex
    _, value, _ = member_copy("acme", NOW_S * 1000, with_rhythm, 0, 9)
    assert parse_member_copy(value) == ("acme", NOW_S * 1000, with_rhythm)


def test_held_copies_of_either_format_read_back() -> None:
    """An account's held copies (revenue ``_held_json``, kept in Redis between cycles) written before
    the rhythm (a 25-byte record and its id in hex) and after read back as the members they were."""
    from streams.worker.revenue import MemberCopy, _held_json, _parse_held

    old = Member(member_key("u1"), NOW_S, 1, 0.0, 3.0, 4.0, "u1")
    new = replace(old, key=member_key("u2"), user_id="u2", gap_days=12.5)
    held = _held_json([MemberCopy(0, 5, "acme", NOW_S * 1000, m, 1, 9) for m in (old, new)])
    assert [c.member for c in _parse_held(held, 0, "acme")] == [old, new]  # type: ignore[union-attr]
    assert old.to_bytes().hex() in held.decode()  # the row of the format before, as it was
