"""The console and its JSON API on the state a real worker built from a simulated population.

One worker applies 300 simulated users x 120 days (module fixture, its own key prefix); then the
API is compared with the CLI (``churnwatch top --json``, ``churnwatch score --json``), paged to
the end of both lists, tested against its own OpenAPI document (schemathesis), and the pages are
driven in headless Chromium (tests/test_console_browser.py uses the same fixture module).
"""

from __future__ import annotations

import html
import re
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.testclient import TestClient

from models.lifecycle import REACHABLE
from models.rfm import SEGMENTS
from models.state import STAGES
from streams.console.api import ACTIONS
from streams.console.app import create_app
from streams.console.data import block_size_for
from streams.settings import Settings
from streams.worker.history import HISTORY_WEEKS, decode_points
from streams.timefmt import parse_ts_ms
from streams.worker.keys import Keys, locate
from streams.worker.store import read_state
from tests.console_state import OWNERS, _built_prefixes, _run_cli, built_state, cli_json  # noqa: F401  (fixtures)
from tests.harness import redis_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(built_state: Settings) -> Any:
    with TestClient(create_app(built_state)) as c:
        yield c


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["user_id"] for i in items]


def test_first_page_is_the_ranking_of_churnwatch_top(built_state: Settings, client: TestClient) -> None:
    top = cli_json(built_state, ["top", "-n", "15", "--json"])
    assert len(top) == 15, "the simulated population should have 15 users at risk"
    page = client.get("/api/v1/at-risk", params={"limit": 15}).json()
    assert _ids(page["items"]) == [t["user_id"] for t in top]
    for row, t in zip(page["items"], top):
        assert (row["risk"], row["savable"], row["health"], row["temperature"], row["stage"], row["action"]) == \
            (t["risk"], t["savable"], t["health"], t["temperature"], t["stage"], t["action"])
    back = cli_json(built_state, ["top", "--win-back", "-n", "8", "--json"])  # one win-back order too
    page = client.get("/api/v1/at-risk", params={"list": "win_back", "limit": 8}).json()
    assert back and _ids(page["items"]) == [t["user_id"] for t in back]


def _all_pages(client: TestClient, list_name: str, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        params = {"list": list_name, "limit": limit, **({"cursor": cursor} if cursor else {})}
        reply = client.get("/api/v1/at-risk", params=params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        rows += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("paging did not end")


def test_paging_walks_each_list_once(built_state: Settings, client: TestClient) -> None:
    """Pages of 7 cover exactly the index's members (save: reachable, win back: lapsed), once each;
    the win-back pages warmest first (within the index's blocks: one block here)."""
    r = redis_client(built_state.redis_url)
    try:
        index = set()
        for b in range(built_state.buckets):
            index |= {m.decode() for m in r.zrange(f"{built_state.key_prefix}:{{{b}}}:risk", 0, -1)}
    finally:
        r.close()
    save = _all_pages(client, "save", 7)
    win_back = _all_pages(client, "win_back", 7)
    assert save and win_back
    for rows in (save, win_back):
        assert len(_ids(rows)) == len(set(_ids(rows)))
    assert all(row["stage"] in REACHABLE for row in save), "dormant users are lapsed, not to save"
    assert all(row["stage"] in ("dormant", "churned") for row in win_back)
    assert any(row["stage"] == "churned" and row["action"] == "win_back" for row in win_back)
    listed = set(_ids(save)) | set(_ids(win_back))
    assert listed <= index
    # every user of the index is on one list but a reactivated one (back from churned, on neither
    # list: QA16 F3) whose at-risk alert stays open until they are back at their own level (QA19 F6)
    unlisted = {u: client.get(f"/api/v1/users/{u}").json()["stage"] for u in index - listed}
    assert set(unlisted.values()) <= {"reactivated"}, unlisted
    # whole points, as shown, then value (models.ranking.win_back_key); the JSON's one decimal may
    # sit on a half point (2.5: 2 or 3), so the whole points each row can have
    points = [{round(row["temperature"] - 0.05), round(row["temperature"] + 0.05)} for row in win_back]
    assert len(win_back) <= block_size_for(7) and all(max(a) >= min(b) for a, b in zip(points, points[1:]))
    one_page = client.get("/api/v1/at-risk", params={"list": "save", "limit": 500}).json()
    assert set(_ids(one_page["items"])) == set(_ids(save)) and one_page["next_cursor"] is None
    keys = [row["savable"] for row in one_page["items"][:15]]
    assert keys == sorted(keys, reverse=True), "the first block is ranked by the live savable part of the risk"
    assert all(row["savable"] <= row["risk"] for row in one_page["items"])


def test_user_equals_churnwatch_score_and_has_weekly_history(built_state: Settings, client: TestClient) -> None:
    top = client.get("/api/v1/at-risk", params={"limit": 3}).json()["items"]
    lengths = []
    for row in top:  # the head of the save list holds new users too (one week of history or less)
        user_id = row["user_id"]
        (cli,) = cli_json(built_state, ["score", user_id, "--json"])
        body = client.get(f"/api/v1/users/{user_id}").json()
        assert {k: body[k] for k in cli} == cli
        assert len(body["history"]) <= HISTORY_WEEKS
        lengths.append(len(body["history"]))
        weeks = [p["week_start"] for p in body["history"]]
        assert weeks == sorted(set(weeks))
        assert row["trend"] == body["history"]
    assert max(lengths) >= 2, lengths



def test_user_page_labels_each_weekly_point_by_the_weeks_end(built_state: Settings, client: TestClient) -> None:
    """A point is the state at the end of its week (Monday 00:00 UTC after it), and the chart's
    last point is the live scores: the x labels were the week starts (the state at Nov 30 under
    "Nov 23") and the title counted the current week as a 13th."""
    from datetime import date

    def day(iso: str) -> str:
        return date.fromisoformat(iso).strftime("%b %d")

    top = client.get("/api/v1/at-risk", params={"limit": 20}).json()["items"]
    histories = {r["user_id"]: client.get(f"/api/v1/users/{r['user_id']}").json()["history"] for r in top}
    user_id = max(histories, key=lambda u: len(histories[u]))
    points = histories[user_id]
    assert len(points) == HISTORY_WEEKS, "120 days fill the 12 weeks"
    assert all(date.fromisoformat(p["week_end"]).toordinal() - date.fromisoformat(p["week_start"]).toordinal() == 7
               for p in points)
    page = client.get(f"/users/{user_id}").text
    chart = page.split("<h2>Health and temperature", 1)[1].split("</svg>", 1)[0]
    x_labels = [t for t in re.findall(r'class="tick">([^<]+)</text>', chart) if t[0].isalpha()]
    assert x_labels == [day(p["week_end"]) for p in points] + ["now"]
    assert f"(the last {HISTORY_WEEKS} weeks) and now" in page and f"{HISTORY_WEEKS + 1} weeks" not in page

def test_history_records_are_small_and_capped(built_state: Settings) -> None:
    r = redis_client(built_state.redis_url)
    try:
        sizes = []
        for key in r.scan_iter(match=f"{built_state.key_prefix}:{{*}}:hist:*", count=1000):
            for user, raw in r.hgetall(key).items():
                b, g = locate(user.decode(), built_state.buckets, built_state.groups_per_bucket)
                assert key.decode() == f"{built_state.key_prefix}:{{{b}}}:hist:{g}"
                assert r.hexists(f"{built_state.key_prefix}:{{{b}}}:u:{g}", user), "no history without a state"
                sizes.append(len(raw))
                assert decode_points(raw)
    finally:
        r.close()
    assert sizes and max(sizes) == 5 * HISTORY_WEEKS, "120 days fill the 12 weeks of the users still there"


def test_errors_are_json_4xx(client: TestClient) -> None:
    cases = [
        ("/api/v1/at-risk?cursor=nonsense", 400), ("/api/v1/at-risk?limit=0", 400), ("/api/v1/at-risk?list=all", 400),
        ("/api/v1/at-risk?owner=mallory", 404), ("/api/v1/users/nobody-at-all", 404), ("/api/v1/accounts/a1", 404),
        ("/api/v1/churn?period=forever", 400), ("/api/v1/nothing-here", 404),
    ]
    for path, status in cases:
        reply = client.get(path)
        assert reply.status_code == status, (path, reply.text)
        error = reply.json()["error"]
        assert error["status"] == status and error["message"], path
    save = client.get("/api/v1/at-risk", params={"limit": 2}).json()
    reply = client.get("/api/v1/at-risk", params={"list": "win_back", "cursor": save["next_cursor"]})
    assert reply.status_code == 400 and "save" in reply.json()["error"]["message"]


def test_churn_refuses_a_parameter_it_does_not_read(client: TestClient) -> None:
    """QA9 M5: ``owner=alice`` was ignored and the global figures came back as if they were alice's."""
    reply = client.get("/api/v1/churn", params={"owner": "alice", "revenue_period": "month"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["message"] == (
        "/api/v1/churn has no parameter 'owner' (it takes period, revenue_period): the live figures are for all "
        "accounts; per owner, run `churnwatch report --events FILE --accounts ACCOUNTS.csv --by-owner` (docs/REVENUE.md)")
    reply = client.get("/api/v1/churn?periods=90d")
    assert reply.status_code == 400 and reply.json()["error"]["message"] == \
        "/api/v1/churn has no parameter 'periods' (it takes period, revenue_period)"
    assert client.get("/api/v1/churn", params={"period": "90d", "revenue_period": "week"}).status_code == 200


def test_every_endpoint_refuses_a_parameter_it_does_not_read(client: TestClient) -> None:
    """Review 16 L-4: only /api/v1/churn refused one; ``/api/v1/at-risk?ownr=alice`` (a typo)
    returned everyone's rows as if filtered by owner."""
    cases = [("/api/v1/at-risk?ownr=alice", "/api/v1/at-risk has no parameter 'ownr' (it takes owner, list, limit, cursor, "
                                            "segment, stage, action)"),
             ("/api/v1/users?id=u1&segmnet=x", "/api/v1/users has no parameter 'segmnet' (it takes id)"),
             ("/api/v1/accounts/a1?owner=alice", "/api/v1/accounts/a1 has no parameter 'owner' (it takes none)"),
             ("/api/v1/owners?all=1", "/api/v1/owners has no parameter 'all' (it takes none)")]
    for path, message in cases:
        reply = client.get(path)
        assert reply.status_code == 400 and reply.json()["error"]["message"] == message, (path, reply.text)
    assert client.get("/api/v1/at-risk", params={"owner": "all", "list": "save", "limit": 5, "stage": "", "segment": "",
                                                 "action": "", "cursor": ""}).status_code == 200


def test_a_cache_buster_is_not_a_parameter(client: TestClient) -> None:
    """QA9 follow-up: ``?_=1733230000000`` (jQuery's ``cache: false``, many dashboards' fetch
    helpers) was a 400 on every call; it asks for nothing, so it is let through, and a typo still is not."""
    assert client.get("/api/v1/churn", params={"_": "1733230000000"}).status_code == 200
    assert client.get("/api/v1/owners", params={"_": "1"}).status_code == 200
    reply = client.get("/api/v1/owners", params={"_": "1", "__": "1"})
    assert reply.status_code == 400 and reply.json()["error"]["message"] == "/api/v1/owners has no parameter '__' (it takes none)"


def test_the_money_figures_name_the_deployment_currency(built_state: Settings, client: TestClient) -> None:
    """QA9 M1: with ``CHURNWATCH_CURRENCY`` the Churn page and the API say what currency the MRR is in."""
    assert client.get("/api/v1/churn").json()["revenue"]["currency"] is None, "unset: one unnamed currency"
    assert 'id="currency"' not in client.get("/churn").text
    with TestClient(create_app(built_state.with_(currency="eur"))) as c:
        assert c.get("/api/v1/churn").json()["revenue"]["currency"] == "EUR"
        page = c.get("/churn").text
        assert ', in <span id="currency">EUR</span></h2>' in page and "MRR now (EUR)" in page
        assert "Purchases of churned users" in page and "Revenue of churned users" not in page


def test_the_open_alerts_split_into_reachable_and_lapsed(built_state: Settings, client: TestClient) -> None:
    """QA14 F8: "698 with an open at-risk alert" counted users who lapsed with their alert open (an
    alert stays open while its user lapses), read as half the base above an empty save list. The
    API and the pages split the total by the stage each user of the at-risk index had at its last
    review (as the index scores it: lapsed at 1 and above), read here from the stored states."""
    r = redis_client(built_state.redis_url)
    try:
        stages: dict[str, int] = {"reachable": 0, "lapsed": 0}
        for b in range(built_state.buckets):
            for user, key in r.zrange(f"{built_state.key_prefix}:{{{b}}}:risk", 0, -1, withscores=True):
                bb, g = locate(user.decode(), built_state.buckets, built_state.groups_per_bucket)
                stage = STAGES[read_state(r.hget(f"{built_state.key_prefix}:{{{bb}}}:u:{g}", user)).stage]
                part = "reachable" if stage in REACHABLE else "lapsed"
                assert (key < 1) == (part == "reachable"), (user, stage, key)
                stages[part] += 1
    finally:
        r.close()
    reachable, lapsed = stages["reachable"], stages["lapsed"]
    assert reachable and lapsed, "the simulated population has open alerts of both kinds"
    body = client.get("/api/v1/churn").json()
    assert (body["at_risk_reachable"], body["at_risk_lapsed"], body["at_risk"]) == (reachable, lapsed, reachable + lapsed)
    book = client.get("/book").text
    assert (f'<span id="at-risk">{reachable + lapsed}</span> with an open at-risk alert (<span id="at-risk-reachable">'
            f'{reachable}</span> still reachable, <span id="at-risk-lapsed">{lapsed}</span> lapsed)') in book
    churn = client.get("/churn").text
    assert (f'<span id="at-risk">{reachable + lapsed}</span> with an open at-risk alert: <span id="at-risk-reachable">'
            f'{reachable}</span> still reachable, <span id="at-risk-lapsed">{lapsed}</span> lapsed') in churn
    assert f"{reachable + lapsed} at risk" not in churn


def test_no_purchases_card_for_a_product_without_purchases(built_state: Settings, client: TestClient) -> None:
    """QA14 F8: a subscription app (no purchase event) had a "Purchases of churned users 0" card and
    an empty weekly chart. The simulated users buy, so both show here; on a copy of the same state
    whose churned users' purchases were never counted (the ``churned_rev:<day>`` counters, which
    the workers write only above 0, removed) the card and chart are gone, the rest stays."""
    body = client.get("/api/v1/churn").json()
    shown = client.get("/churn").text
    # counted on earlier days; the last 30 days' churned users bought nothing: a true 0, so the card stays
    assert body["churned_revenue_counted"] is True
    assert 'id="churned-revenue"' in shown and "Purchases of churned users per week" in shown and 'id="no-purchases"' not in shown
    assert f'id="churned-revenue">{body["churned_revenue"]:,.2f}<' in shown  # to the cent, as the CLI (QA17 F11)
    old, new = built_state.key_prefix, built_state.key_prefix + "np"
    r = redis_client(built_state.redis_url)
    try:
        for key in list(r.scan_iter(match=f"{old}:*", count=1000)):
            r.restore(new + key.decode()[len(old):], 0, r.dump(key), replace=True)
        for b in range(built_state.buckets):
            fields = [f for f in r.hkeys(f"{new}:{{{b}}}:stats") if f.startswith(b"churned_rev:")]
            if fields:
                r.hdel(f"{new}:{{{b}}}:stats", *fields)
        with TestClient(create_app(built_state.with_(key_prefix=new))) as c:
            without = c.get("/api/v1/churn").json()
            page = c.get("/churn").text
    finally:
        for key in list(r.scan_iter(match=f"{new}:*", count=1000)):
            r.delete(key)
        r.close()
    assert without["churned_revenue_counted"] is False and without["churned_revenue"] == 0
    assert all(w["churned_revenue"] == 0 for w in without["weekly"])
    assert 'id="churned-revenue"' not in page and "Purchases of churned users" not in page and 'id="no-purchases"' in page
    assert (without["churned"], without["users"]) == (body["churned"], body["users"]) and 'id="churn-rate"' in page


def test_the_churned_card_says_how_many_were_trials_that_never_paid(built_state: Settings, client: TestClient) -> None:
    """QA23a F2: "132 users churned = 9.0%", 105 of them trials that never paid, unsaid. The simulated
    users hold no trial: no line; on a copy of the same state where one churn of the window is
    counted as a trial's (``churned_trial:<day>``, models.step), the API, the card and churn-rate
    say "1 of them trials that never paid; the other N = x%" alike (ChurnSummary.figures)."""
    body = client.get("/api/v1/churn").json()
    free = body["churned_never_paid"]  # (the simulated users who never paid: QA24a F4, below)
    assert body["churned_trials"] == 0 and body["churn_rate_others"] == round((body["churned"] - free) / body["active_at_start"], 4)
    assert ('id="churned-trials"' in client.get("/churn").text) == (0 < free < body["churned"]) and body["churned"] > 0
    old, new = built_state.key_prefix, built_state.key_prefix + "tr"
    first = body["as_of"][:10].replace("-", "")
    r = redis_client(built_state.redis_url)
    try:
        for key in list(r.scan_iter(match=f"{old}:*", count=1000)):
            r.restore(new + key.decode()[len(old):], 0, r.dump(key), replace=True)
        days = sorted((f.decode(), b) for b in range(built_state.buckets) for f in r.hkeys(f"{new}:{{{b}}}:stats")
                      if f.startswith(b"churned:") and f.decode()[8:] <= first)
        day, b = days[-1]  # the latest churn day: within the window (the body counts churned users)
        r.hset(f"{new}:{{{b}}}:stats", "churned_trial:" + day[8:], 1)
        with TestClient(create_app(built_state.with_(key_prefix=new))) as c:
            trial = c.get("/api/v1/churn").json()
            page = c.get("/churn").text
        (cli,) = cli_json(built_state.with_(key_prefix=new), ["churn-rate", "--days", "30", "--json"])
    finally:
        for key in list(r.scan_iter(match=f"{new}:*", count=1000)):
            r.delete(key)
        r.close()
    others = trial["churned"] - 1 - free
    assert trial["churned_trials"] == 1 and trial["churn_rate_others"] == round(others / trial["active_at_start"], 4)
    assert (cli["churned_trials"], cli["churn_rate_others"]) == (1, trial["churn_rate_others"])
    free_words = f" and {free} never paid at all" if free and others > 0 else ""
    others = others if free_words else others + free
    assert (f'id="churned-trials">1 of them trials that never paid{free_words}; the other {others} = '
            f'{100 * others / trial["active_at_start"]:.1f}%<') in page


def test_the_churn_page_and_api_say_when_the_account_side_is_catching_up(built_state: Settings, client: TestClient) -> None:
    """QA24b F2: mid-catch-up the Churn page read "churned 0.00" for a month and ``/api/v1/churn``
    said nothing, while ``churn-rate`` ended with a note. The built state is current: no note; on a
    copy of it with one account review 280 days overdue (a backlog being replayed, ``Keys.account_due``)
    the API carries churn-rate's ``revenue.behind_note`` word for word and the page shows it."""
    assert client.get("/api/v1/churn").json()["revenue"]["behind_note"] is None
    assert 'id="behind-note"' not in client.get("/churn").text
    old, new = built_state.key_prefix, built_state.key_prefix + "bh"
    r = redis_client(built_state.redis_url)
    try:
        for key in list(r.scan_iter(match=f"{old}:*", count=1000)):
            r.restore(new + key.decode()[len(old):], 0, r.dump(key), replace=True)
        behind = built_state.with_(key_prefix=new)
        with TestClient(create_app(behind)) as c:
            now_s = parse_ts_ms(c.get("/api/v1/churn").json()["as_of"]) // 1000
            r.zadd(Keys(new).account_due(behind.topic_events, 0), {"northwind": now_s - 280 * 86_400})
            body = c.get("/api/v1/churn").json()
            page = c.get("/churn").text
        (cli,) = cli_json(behind, ["churn-rate", "--json"])
    finally:
        for key in list(r.scan_iter(match=f"{new}:*", count=1000)):
            r.delete(key)
        r.close()
    note = body["revenue"]["behind_note"]
    assert note and note.startswith("the account side is 280 days behind the stream time (catching up a backlog)")
    assert note == cli["revenue"]["behind_note"]
    shown = re.search(r'id="behind-note">([^<]*)<', page)
    assert shown and html.unescape(shown.group(1)) == f"Note: {note}"


def test_bearer_token_when_configured(built_state: Settings) -> None:
    with TestClient(create_app(built_state.with_(console_token="s3cret-token"))) as c:
        denied = c.get("/api/v1/churn")
        assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Bearer")
        assert denied.json()["error"]["code"] == "unauthorized"
        assert c.get("/api/v1/churn", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.get("/api/v1/churn", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and ok.json()["users"] > 0
        assert c.get("/openapi.json").status_code == 200, "the document itself is public"


def test_churn_matches_churnwatch_churn_rate(built_state: Settings, client: TestClient) -> None:
    (cli,) = cli_json(built_state, ["churn-rate", "--days", "30", "--json"])
    body = client.get("/api/v1/churn", params={"period": "30d"}).json()
    assert (body["churned"], body["churn_rate"], body["churned_revenue"], body["active_at_start"]) == \
        (cli["churned"], cli["churn_rate"], cli["churned_revenue"], cli["active_at_start"])
    assert len(body["weekly"]) == 12 and sum(w["won"] for w in body["weekly"]) > 0
    # accounts' revenue: the periods and cohorts churn-rate prints for the same range, to the cent
    rev = body["revenue"]
    first, last = rev["periods"][0]["period_start"], rev["periods"][-1]["period_end"]
    (cli,) = cli_json(built_state, ["churn-rate", "--period", "month", "--from", first, "--to", last, "--json"])
    assert rev["period"] == "month" and rev["periods"] == cli["revenue"]["periods"] and rev["cohorts"] == cli["revenue"]["cohorts"]
    assert rev["cohorts"] and any(p["lost"] for p in rev["periods"]), "contoso cancelled"
    assert rev["periods"][-1]["nrr_pct"] is not None  # the current month (the browser test compares it with churn-rate's)
    weekly = client.get("/api/v1/churn", params={"revenue_period": "week"}).json()["revenue"]
    assert weekly["period"] == "week" and weekly["periods"][-1]["end_mrr"] == rev["periods"][-1]["end_mrr"]


def test_pages_render(built_state: Settings, client: TestClient) -> None:
    for path in ("/book", "/book?list=win_back", "/book?action=check_in", "/book?action=onboard", "/quadrant", "/churn",
                 "/churn?revenue_period=week"):
        reply = client.get(path)
        assert reply.status_code == 200, path
        assert "<svg" in reply.text or "<table" in reply.text
        assert "http://" not in reply.text.replace("http://www.w3.org", ""), "no external resource"
    # every action of models.actions has a colour in the quadrant's legend and a choice in My book's filter
    quadrant, book = client.get("/quadrant").text, client.get("/book").text
    for action in ACTIONS:
        assert f'class="legend">{action.replace("_", " ")}</text>' in quadrant, action
        assert f'<option value="{action}"' in book, action
    assert client.get("/book?stage=bogus").status_code == 400
    assert client.get("/users/nobody-at-all").status_code == 404
    assert client.get("/static/console.css").status_code == 200


# -- the API against its own OpenAPI document ------------------------------------------------


@pytest.fixture(scope="module")
def api_schema(built_state: Settings) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(built_state))


def test_api_conforms_to_its_openapi_document(api_schema: Any) -> None:
    """Every operation, with generated parameters (valid and not), answers as its document says."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/at-risk", "/api/v1/users/{user_id}", "/api/v1/churn",
                                              "/api/v1/accounts/{account_id}"}
    for op in operations:

        @hypothesis.given(case=op.as_strategy())
        @hypothesis.settings(max_examples=40, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def check(case: Any) -> None:
            # a cursor is opaque: one the API never gave out is rightly refused (400) though "schema-valid";
            # the filters' values depend on the list (users: lifecycle stage, RFM segment, user action;
            # an owner's accounts: account stage and action): a value of the other kind is refused (400)
            q = case.query or {}
            users = (q.get("owner") or "all") == "all"
            other_kind = users and (q.get("stage", STAGES[0]) not in STAGES or q.get("segment", SEGMENTS[0]) not in SEGMENTS
                                    or q.get("action", ACTIONS[0]) not in ACTIONS)
            forged = bool(q.get("cursor")) or other_kind
            case.call_and_validate(excluded_checks=[positive_data_acceptance] if forged else None)

        check()


def test_redis_down_is_a_503_not_a_traceback(built_state: Settings) -> None:
    from streams.local import free_port

    nowhere = built_state.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(nowhere)) as c:
        reply = c.get("/api/v1/at-risk")
        assert reply.status_code == 503 and reply.json()["error"]["code"] == "redis_unavailable"
        page = c.get("/book")
        assert page.status_code == 503 and "Redis does not answer" in page.text


def test_a_request_after_redis_closed_the_pooled_connections_is_answered(built_state: Settings) -> None:
    """QA3 #6: after ``CLIENT KILL TYPE normal`` (or a Redis restart) the next request answered
    503 ``redis_unavailable`` once, though Redis was up: its pooled connection was stale. It is
    now sent again on a new connection (Store ``reconnect_once``)."""
    import redis

    admin = redis.Redis.from_url(built_state.redis_url)
    try:
        before = {c["id"] for c in admin.client_list()}
        with TestClient(create_app(built_state)) as c:
            assert c.get("/api/v1/at-risk?limit=2").status_code == 200
            mine = [c["id"] for c in admin.client_list() if c["id"] not in before]
            assert mine, "the console holds a pooled connection"
            for cid in mine:
                admin.client_kill_filter(_id=cid)
            reply = c.get("/api/v1/at-risk?limit=2")
            assert reply.status_code == 200, reply.text
            assert c.get("/book?owner=alice").status_code == 200
    finally:
        admin.close()


# -- owners and accounts -----------------------------------------------------------------------


def test_owner_book_is_the_ranking_of_churnwatch_top_owner(built_state: Settings, client: TestClient) -> None:
    assert client.get("/api/v1/owners").json()["owners"] == ["all", *OWNERS]
    seen = 0
    for owner in OWNERS:
        top = cli_json(built_state, ["top", "--owner", owner, "--json"])
        page = client.get("/api/v1/at-risk", params={"owner": owner}).json()
        assert page["owner"] == owner and page["items"] == top, owner
        seen += len(top)
    assert seen, "some account of the simulated owners is at risk"
    every = cli_json(built_state, ["top", "--owner", "alice", "--all", "--json"])
    churned = [a for a in every if a["stage"] == "churned"]
    win_back = client.get("/api/v1/at-risk", params={"owner": "alice", "list": "win_back"}).json()["items"]
    assert churned and win_back == churned, "contoso cancelled: alice's account to win back"


def test_account_equals_churnwatch_top_owner_and_has_members(built_state: Settings, client: TestClient) -> None:
    every = cli_json(built_state, ["top", "--owner", "alice", "--all", "--json"])
    assert {a["account_id"] for a in every} == {"northwind", "contoso", "fabrikam"}
    for cli in every:
        body = client.get(f"/api/v1/accounts/{cli['account_id']}").json()
        assert {k: body[k] for k in cli} == cli
        assert sum(m["counted"] for m in body["members"]) == cli["users"] and body["subscriptions"]
        # paid for a year from the first subscription event; contoso's cancellation renews nothing
        renews = [s["renews_on"] for s in body["subscriptions"]]
        if cli["account_id"] == "contoso":
            assert cli["renews_on"] is None and all(r is None for r in renews)
        else:
            assert renews == [cli["renews_on"]] and cli["renews_in_days"] > 200
        page = client.get(f"/accounts/{cli['account_id']}").text
        assert ('id="renews"' in page) == (cli["renews_on"] is not None)
        assert cli["renews_on"] is None or f'renews {cli["renews_on"]} (in {cli["renews_in_days"]} days)' in page
        # QA22b F7: a churned account whose users still use the product says so on its page as in the API
        assert ('id="still-used"' in page) == bool(body.get("still_used")), body.get("still_used")
        assert not body.get("still_used") or f'Still used: {html.escape(body["still_used"])}</p>' in page
    assert client.get("/api/v1/accounts/no-such-account").status_code == 404
    # QA 2026-12: each member row shows what the member's own page shows (not the open alert's
    # risk, 0 when none, nor the hour's first event), in the pages' time format
    for cli in every:
        body = client.get(f"/api/v1/accounts/{cli['account_id']}").json()
        page = client.get(f"/accounts/{cli['account_id']}").text
        for m in (m for m in body["members"] if m["user_id"]):
            user = client.get("/api/v1/users", params={"id": m["user_id"]}).json()  # "." and ".." too (QA4 #8)
            assert (m["risk"], m["last_seen"], m["stage"]) == (user["risk"], user["last_seen"], user["stage"]), m
            assert f'data-value="{m["last_seen"]}">{m["last_seen"][:10]} {m["last_seen"][11:16]} UTC</td>' in page
        assert ".000Z<" not in page and "Z</td>" not in page
    for path in ("/book?owner=alice", "/book?owner=alice&list=win_back", "/accounts/northwind"):
        reply = client.get(path)
        assert reply.status_code == 200 and "<table" in reply.text, path
    book = client.get("/book?owner=alice").text
    assert "/accounts/" in book
    # QA 2026-12-02: the renewal column of `top --owner`, and the user counts said to be everyone's
    cells = re.findall(r'<td class="renewal">([^<]*)</td>', book)
    text = _run_cli(built_state, ["top", "--owner", "alice"]).decode()
    assert cells and len(cells) == len(cli_json(built_state, ["top", "--owner", "alice", "--json"]))
    assert all(c in text for c in cells) and any(c != "-" for c in cells), (cells, text)
    assert client.get("/accounts/no-such-account").status_code == 404


def test_an_owner_book_header_gives_the_owner_figures_not_every_user(built_state: Settings, client: TestClient) -> None:
    """QA6 L5: with an owner picked, the header still counted every owner's users ("all owners'
    customers: 11 users tracked · 4 with an open at-risk alert") above alice's one account. It
    gives the owner's figures now: accounts in the table, at risk (or to win back) and the MRR."""
    save = cli_json(built_state, ["top", "--owner", "alice", "-n", "100", "--json"])
    back = cli_json(built_state, ["top", "--owner", "alice", "--win-back", "-n", "100", "--json"])
    for list_name, rows, money in (("save", save, "mrr"), ("win_back", back, "lost_mrr")):
        page = client.get("/book", params={"owner": "alice", "list": list_name}).text
        head = re.search(r'<p class="asof" id="owner-figures">(.*?)</p>', page, re.S)
        assert head, page[:2000]
        text = re.sub(r"<[^>]+>", "", head.group(1))
        assert "tracked" not in text and "all owners" not in text, text
        assert "alice's book: 3 accounts · " in text, text  # northwind, contoso, fabrikam
        stake = f"{sum(r[money] for r in rows):,.2f}"
        said = f"{len(rows)} at risk, MRR {stake} at stake" if list_name == "save" else f"{len(rows)} to win back, lost MRR {stake}"
        assert said in text, (said, text)
    assert "users tracked" not in client.get("/book?owner=alice").text and " tracked · " in client.get("/book").text


def test_a_missing_id_names_the_page_own_path(client: TestClient) -> None:
    """QA6 L5: ``/accounts?id=`` said "give it in the path (/users/<id>)"."""
    for path, named in (("/accounts?id=", "/accounts/<id>"), ("/users?id=", "/users/<id>"),
                        ("/api/v1/accounts?id=", "/api/v1/accounts/<id>")):
        reply = client.get(path)
        assert reply.status_code == 400 and f"give it in the path ({named}) or as ?id=" in html.unescape(reply.text), (path, reply.text)


def test_the_no_data_page_does_not_send_back_to_itself(built_state: Settings) -> None:
    """QA6 L5: with no data every page is the 503 "No data yet", whose only link, "Back to My book",
    led to the same 503. It says what fills the pages and offers to try again instead."""
    empty = built_state.with_(key_prefix=f"{built_state.key_prefix}empty")
    with TestClient(create_app(empty)) as c:
        for path in ("/book", "/churn", "/accounts/northwind"):
            page = c.get(path)
            assert page.status_code == 503 and "No data yet" in page.text, path
            assert "Back to My book" not in page.text and 'id="retry"' in page.text and "churnwatch worker" in page.text, page.text
        assert "Back to My book" in c.get("/nowhere").text, "a 404 still leads back"


def test_the_churn_headline_is_the_last_complete_period(built_state: Settings, client: TestClient) -> None:
    """QA6 L5: the headline cards were those of the period holding the stream time ("NRR, month from
    2026-12-01 100.0%" ten hours into December, after a November of 33.3 %). They show the last
    complete period, labelled so, and the period to date is a line below, labelled as such."""
    rev = client.get("/api/v1/churn").json()["revenue"]
    done, now = rev["periods"][-2], rev["periods"][-1]
    page = client.get("/churn").text
    assert f'id="headline" data-period="{done["period_start"]}"' in page
    assert f'id="nrr" data-value="{done["nrr_pct"] or ""}"' in page and f'id="grr" data-value="{done["grr_pct"] or ""}"' in page
    assert f'<span id="won">{done["won"]}</span> / <span id="lost">{done["lost"]}</span>' in page
    assert f'<p class="asof" id="headline-label">Last full month, from {done["period_start"]}:</p>' in page
    assert f"Month to date, from {now['period_start']} (not complete)" in page
    assert f'id="mrr" data-value="{now["end_mrr"]}"' in page, "MRR now is now's"


# -- a customer's past alerts and an account's members -----------------------------------------


def _topic_alerts(settings: Settings) -> list[dict[str, Any]]:
    import orjson

    from tests.harness import read_topic

    return [orjson.loads(r.value) for r in read_topic(settings.kafka_bootstrap_servers, settings.topic_alerts, settings.partitions)]


def test_user_page_names_no_hashed_kind(built_state: Settings, client: TestClient) -> None:
    """QA 2026-12: under the default model (hashed kinds) the user page listed "kind0" .. "kind7";
    it shows the total and the breadth the reasons count instead."""
    import re

    top = client.get("/api/v1/at-risk", params={"limit": 5}).json()["items"]
    for row in top:
        page = client.get(f"/users/{row['user_id']}").text
        assert not re.search(r">kind\d+<", page), row["user_id"]
        activity = client.get(f"/api/v1/users/{row['user_id']}").json()["activity_28d"]
        assert f"<td>all event types</td><td class=\"num\">{activity['all']:.1f}</td>" in page
        used = re.search(r'id="kinds">Uses (\d+) kinds? of activity in 4 weeks\.', page)
        slots = sum(n >= 0.5 for k, n in activity.items() if k.startswith("kind"))
        assert used and int(used[1]) - slots in (0, 1), row["user_id"]  # a recent purchase is a kind too


def test_user_page_lists_the_types_a_model_tracks_by_name() -> None:
    from models.engine import advance
    from models.events import Event
    from models.model import ChurnModel, load_model
    from models.scoring import score
    from streams.console.pages import _activity

    start_ms, day_ms = 1_767_225_600_000, 86_400_000
    events = [Event("u", start_ms + i * day_ms, ("view", "click", "share")[i % 3], f"e{i}") for i in range(20)]
    now_s = (start_ms + 21 * day_ms) // 1000
    named = ChurnModel(tracked_types=("view", "click", "message"))
    rows, note = _activity(score(advance("u", None, events, now_s * 1000, named).state, now_s, named).signals, named)
    assert [k for k, _ in rows] == ["view", "click", "message", "other"] and note == ""  # share: untracked, in other
    hashed = load_model()
    st = advance("u", None, events, now_s * 1000, hashed).state
    rows, note = _activity(score(st, now_s, hashed).signals, hashed)
    assert [k for k, _ in rows] == ["all event types"] and note.startswith("Uses ") and "kind" in note


def test_users_and_accounts_list_the_alerts_the_worker_emitted(built_state: Settings, client: TestClient) -> None:
    """Each user's list is the alerts worth a call the worker sent for it, newest first, capped;
    an account's is its account alerts; members carry their user ids and link to their pages."""
    from streams.worker.alert_log import ALERT_LOG_CAP, logged_kind

    sent = _topic_alerts(built_state)
    by_user: dict[str, dict[str, dict[str, Any]]] = {}
    for a in sent:
        if "user_id" in a and logged_kind(a):
            by_user.setdefault(a["user_id"], {})[a["alert_id"]] = a  # at-least-once: de-duplicated on the id
    top = client.get("/api/v1/at-risk", params={"limit": 5}).json()["items"]
    assert top and all(row["user_id"] in by_user for row in top), "users to save got an at-risk alert"
    for user_id in [row["user_id"] for row in top] + sorted(by_user)[:5]:
        want = sorted(by_user[user_id].values(), key=lambda a: a["event_time_ms"], reverse=True)[:ALERT_LOG_CAP]
        got = client.get("/api/v1/users", params={"id": user_id}).json()["alerts"]  # "." and ".." too (QA4 #8)
        assert [(a["alert_id"], a["kind"], a["event_time_ms"], a["reasons"]) for a in got] == \
            [(a["alert_id"], a["kind"], a["event_time_ms"], a["reasons"]) for a in want], user_id  # a recovery's why too (QA6 L3)
    assert any(a["kind"] == "at_risk" and a["reasons"] for a in client.get(f"/api/v1/users/{top[0]['user_id']}").json()["alerts"])
    page = client.get(f"/users/{top[0]['user_id']}").text
    assert 'id="alerts"' in page and by_user[top[0]["user_id"]] and next(iter(by_user[top[0]["user_id"]])) in page

    contoso = client.get("/api/v1/accounts/contoso").json()
    want_ids = sorted((a for a in sent if a.get("account_id") == "contoso"), key=lambda a: a["event_time_ms"], reverse=True)
    assert [a["alert_id"] for a in contoso["alerts"]] == list(dict.fromkeys(a["alert_id"] for a in want_ids))[:ALERT_LOG_CAP]
    assert contoso["alerts"][0]["kind"] == "account_churned"
    members = [m["user_id"] for m in contoso["members"]]
    assert members and all(members), "every member is listed by its user id"
    html = client.get("/accounts/contoso").text
    assert all(f'href="/users/{u}"' in html for u in members)
    assert all(client.get(f"/api/v1/users/{u}").status_code == 200 for u in members)


def test_owner_book_pages_and_filters(built_state: Settings, client: TestClient) -> None:
    """An owner's book pages by cursor through `churnwatch top --owner --all`'s order and filters by
    the account's stage, action and segment; a cursor of another owner or list is refused."""
    every = cli_json(built_state, ["top", "--owner", "alice", "--all", "--json"])
    save = cli_json(built_state, ["top", "--owner", "alice", "--json"])
    rows, cursor = [], None
    for _ in range(10):
        body = client.get("/api/v1/at-risk", params={"owner": "alice", "limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        rows += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert rows == save and len(save) >= 1
    churned = [a for a in every if a["stage"] == "churned"]
    for key, value in (("stage", "churned"), ("action", "win back"), ("segment", "smb")):
        got = client.get("/api/v1/at-risk", params={"owner": "alice", "list": "win_back", key: value}).json()["items"]
        assert got == churned, key
    assert client.get("/api/v1/at-risk", params={"owner": "alice", "segment": "enterprise"}).json()["items"] == []
    action = save[0]["action"]
    assert client.get("/api/v1/at-risk", params={"owner": "alice", "action": action}).json()["items"] == \
        [a for a in save if a["action"] == action]
    assert client.get("/api/v1/at-risk", params={"owner": "alice", "stage": "declining"}).status_code == 400
    assert client.get("/api/v1/at-risk", params={"stage": "past_due"}).status_code == 400
    if len(save) > 1:
        first = client.get("/api/v1/at-risk", params={"owner": "alice", "limit": 1}).json()
        assert client.get("/api/v1/at-risk", params={"owner": "bob", "cursor": first["next_cursor"]}).status_code == 400
        html = client.get("/book", params={"owner": "alice", "limit": 1}).text
        assert 'id="next"' in html and "cursor=" in html
    html = client.get("/book", params={"owner": "alice", "list": "win_back", "segment": "smb"}).text
    assert all(f'data-account="{a["account_id"]}"' in html for a in churned)
    # QA 2026-12-02 (#11, #18): the win-back tab in `top --owner --win-back`'s order (lost MRR, then
    # the latest to leave), showing what it is ranked by; its Stage filter offers the stages it holds
    win_back = cli_json(built_state, ["top", "--owner", "alice", "--win-back", "-n", "500", "--json"])
    html = client.get("/book", params={"owner": "alice", "list": "win_back"}).text
    assert re.findall(r'data-account="([^"]+)"', html) == [a["account_id"] for a in win_back][:50] and win_back
    assert ">Lost MRR</th><th>Left on</th>" in html and '<option value="trial_lost">' in html
    assert '<select name="stage">' not in client.get("/book", params={"owner": "alice"}).text


def test_quadrant_draws_the_save_list_and_says_so(built_state: Settings, client: TestClient) -> None:
    """QA 2026-12: the README said the quadrant shows "the 300 users most at risk"; it draws the
    first 300 users of the save list (My book's order), which is what an account manager calls.
    Its dots are that list's first page, and the page and the README say so."""
    from pathlib import Path

    html = client.get("/quadrant").text
    dots = re.findall(r'href="/users/([^"]+)"', html)
    save = _ids(client.get("/api/v1/at-risk", params={"limit": 300}).json()["items"])
    assert dots and sorted(dots) == sorted(save), (len(dots), len(save))
    assert f"the first {len(save)} users of the save list" in html
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    bullet = readme[readme.index("- **Quadrant**"):].split("\n- ")[0]
    assert "first 300 users of the save list" in " ".join(bullet.split()) and "most at risk" not in bullet, bullet


def test_a_member_names_its_account_and_owner_in_score_the_api_and_its_page(built_state: Settings, client: TestClient) -> None:
    """QA6 M3: a user's scores, its API answer and its page never said which account (so which owner)
    the user belongs to, though the account lists the user: a CRM could not route the user's alert.
    Now every member of every account says so, ``churnwatch score --json`` alike, and the page links
    back to the account and its owner's book; a user of no account says nothing of one."""
    book = {a["account_id"]: a for o in OWNERS for a in cli_json(built_state, ["top", "--owner", o, "--all", "--json"])}
    seen = 0
    for account_id, row in book.items():
        for m in client.get(f"/api/v1/accounts/{account_id}").json()["members"]:
            if not m["user_id"] or seen >= 12:
                continue
            seen += 1
            body = client.get("/api/v1/users", params={"id": m["user_id"]}).json()
            want = {"account_id": account_id, "account_name": row["name"], "owner": row["owner"]}
            assert {k: body.get(k) for k in want} == want, (m["user_id"], body)
            if m["user_id"] not in (".", ".."):
                (cli,) = cli_json(built_state, ["score", m["user_id"], "--json"])
                assert {k: cli.get(k) for k in want} == want
                if seen == 1:  # the text too, once (each run is a process that reads the accounts topic)
                    text = _run_cli(built_state, ["score", m["user_id"]]).decode()
                    assert f"account {account_id} ({row['name']}), owner {row['owner']}" in text, text
                page = client.get(f"/users/{m['user_id']}").text
                assert f'href="/accounts/{account_id}"' in page and f"owner <a href=\"/book?owner={row['owner']}\">" in page
    assert seen >= 5
    members = {m["user_id"] for a in book for m in client.get(f"/api/v1/accounts/{a}").json()["members"]}
    loner = next(r["user_id"] for r in client.get("/api/v1/at-risk", params={"limit": 50}).json()["items"] if r["user_id"] not in members)
    body = client.get(f"/api/v1/users/{loner}").json()
    assert "account_id" not in body and "owner" not in body
    assert 'id="account"' not in client.get(f"/users/{loner}").text
