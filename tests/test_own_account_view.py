"""A user's own account (no ``account_id`` on its events, no member copy) says that its use is not
seen (QA23a F3): its figures are its billing's alone (docs/REVENUE.md, "A user's own account (B2C)
is not judged on usage"), and the API object and the console page say so, as its alerts do."""

from __future__ import annotations

from models.account_health import Member, member_key, rollup
from models.revenue import AccountView

DAY_S = 86_400
NOW_S = 1_772_323_200  # 2026-03-01
NOW_MS = NOW_S * 1000


def test_a_users_own_account_object_says_its_use_is_unknown() -> None:
    """QA23a F3: a silent annual subscriber's own account (no ``account_id``, no member) read risk
    0.0, temperature 100, stage customer, action none in /api/v1/accounts/{id} and ``top --owner
    --json``: its billing's figures alone (the documented rule: the user's own scores judge its
    use), but nothing said so, as its alerts do (``usage_unknown``). The object says it too; an
    account with members does not."""
    from streams.views import AccountReport

    renews = NOW_MS + 241 * DAY_S * 1000
    view = AccountView(667, True, "active", ("annual",), 0, 0, 0, NOW_MS - 100 * DAY_S * 1000, renews, (renews,), (member_key("f1"),))
    own = rollup([], view, None, 0, NOW_S, NOW_MS, own=True, account="f1")
    assert (own.stage, own.risk, own.temperature, own.action, own.usage_known) == ("customer", 0.0, 100, "none", False)
    assert AccountReport("f1", "", "", "", own, 0, NOW_MS).to_dict()["usage_unknown"] is True
    seen = rollup([Member(member_key("f1"), NOW_S, 1, 0.0, 2.0, 20.0)], view, None, 0, NOW_S, NOW_MS, own=True, account="f1")
    assert "usage_unknown" not in AccountReport("f1", "", "", "", seen, 0, NOW_MS).to_dict()


def test_the_console_account_page_says_a_users_own_account_does_not_see_its_use() -> None:
    """QA23a F3: the account page of a silent annual subscriber read risk 0.00, temperature 100,
    action none with nothing to say why; it says what the API's ``usage_unknown`` says and links the
    user's own page, which judges the use. An account with members says nothing of it."""
    from streams.console.pages import templates
    from streams.views import AccountReport

    renews = NOW_MS + 241 * DAY_S * 1000
    view = AccountView(667, True, "active", ("annual",), 0, 0, 0, NOW_MS - 100 * DAY_S * 1000, renews, (renews,), (member_key("f00513"),))
    pages = []
    for members in ([], [Member(member_key("f00513"), NOW_S, 1, 0.0, 2.0, 20.0)]):
        report = AccountReport("f00513", "", "", "", rollup(members, view, None, 0, NOW_S, NOW_MS, own=True, account="f00513"), renews, NOW_MS)
        d = {**report.to_dict(), "as_of": "", "subscriptions": [], "members": [], "alerts": []}
        pages.append(templates.get_template("account.html").render(r=report, a=report.rollup, d=d, as_of_ms=NOW_MS))
    blind, seen = pages
    assert 'id="usage-unknown"' in blind and 'href="/users/f00513"' in blind and "judged here by its billing alone" in blind
    assert 'id="usage-unknown"' not in seen
