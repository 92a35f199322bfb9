"""The account simulator (streams/offline/simulate_accounts.py): what an account does when its users
cancel (QA pass 3, 2026-12-02, item 8)."""

from __future__ import annotations

from models.events import Event
from models.revenue import AccountState

T0 = 1_767_225_600_000  # 2026-01-01


def test_an_account_whose_users_all_cancel_stops_paying_then() -> None:
    """QA: `simulate --accounts 300 --seed 7` had 5 of 10 cancelling users keep an active
    subscription (acct0104: its only user "cancelled 14 days ago", MRR 49.99, the MRR truth
    counting it). Now an account whose users all sent `cancel` has nothing in force after the
    last of them, and its MRR truth ends at 0; a user who cancels beside colleagues is a seat."""
    from streams.offline.simulate_accounts import generate_accounts

    sim = generate_accounts(7, 300, T0, 120)
    by_account: dict[str, list[Event]] = {}
    for e in sim.events:
        by_account.setdefault(e.account_id, []).append(e)
    checked = 0
    for account, evs in by_account.items():
        users = {e.user_id for e in evs if e.subscription is None}
        cancels = {e.user_id: e.ts_ms for e in evs if e.type == "cancel"}
        if not users or set(cancels) != users:
            continue
        cut = max(cancels.values())
        st = AccountState()
        for e in sorted((e for e in evs if e.subscription is not None), key=lambda e: (e.ts_ms, e.event_id)):
            st.update(e)
        assert st.get().status in ("cancelled", "none") and st.at_ms <= cut, account
        assert sum(m.delta_cents for m in sim.movements if m.account_id == account) == 0, account
        checked += 1
    assert checked >= 4, checked  # acct0104, 0180, 0250 (paying) and 0291 (a trial) in this population
