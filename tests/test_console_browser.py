"""The console's real pages in headless Chromium (Debian's ``chromium``, driven by Playwright).

The console is served by uvicorn on 127.0.0.1 over the state a real worker wrote from simulated
events (tests/console_state.py). The test opens My book, follows the first user to their page,
checks that the numbers shown equal ``churnwatch score USER --json``, and saves the screenshots
the README shows (docs/img/console_*.png) when ``CHURNWATCH_SCREENSHOTS`` names that directory
(``make screenshots``); otherwise into a temporary one, so a test run leaves the tracked images
alone. Without a Chromium (``make test`` installs Debian's
when it can) the test is skipped and says why.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from streams.console.app import create_app
from streams.local import free_port
from streams.settings import Settings
from tests.console_state import DOT_USERS, _built_prefixes, built_state, cli_json  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
#: Where the screenshots go: the README's images only when asked for (``make screenshots``).
IMG = Path(os.environ.get("CHURNWATCH_SCREENSHOTS") or tempfile.mkdtemp(prefix="churnwatch-screens-"))
if not os.environ.get("CHURNWATCH_SCREENSHOTS"):
    atexit.register(shutil.rmtree, IMG, True)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def console_url(built_state: Settings) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(built_state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(console_url: str) -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; `make test` does it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=FLAGS, headless=True,
                                                        viewport={"width": 1360, "height": 900})
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_my_book_to_a_user_shows_the_numbers_of_churnwatch_score(built_state: Settings, console_url: str, page: object) -> None:
    p = page  # playwright Page
    p.goto(f"{console_url}/book")  # type: ignore[attr-defined]
    rows = p.locator("table#book tbody tr")  # type: ignore[attr-defined]
    assert rows.count() >= 10
    top = cli_json(built_state, ["top", "-n", "10", "--json"])
    shown = [rows.nth(i).get_attribute("data-user") for i in range(10)]
    assert shown == [t["user_id"] for t in top], "My book ranks as churnwatch top"
    api = p.request.get(f"{console_url}/api/v1/churn").json()  # type: ignore[attr-defined]
    split = [p.inner_text(f"#{k}") for k in ("at-risk", "at-risk-reachable", "at-risk-lapsed")]  # type: ignore[attr-defined]
    assert split == [str(api["at_risk"]), str(api["at_risk_reachable"]), str(api["at_risk_lapsed"])], "QA14 F8: the open alerts split"
    IMG.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(IMG / "console_book.png"), full_page=False)  # type: ignore[attr-defined]

    first = rows.nth(0).locator("a.user")
    user_id = first.inner_text()
    first.click()
    p.wait_for_url(f"**/users/{user_id}")  # type: ignore[attr-defined]
    assert p.inner_text("#user-id") == user_id  # type: ignore[attr-defined]
    (cli,) = cli_json(built_state, ["score", user_id, "--json"])

    def value(css: str) -> str:
        return p.get_attribute(css, "data-value")  # type: ignore[attr-defined]

    assert float(value("#risk")) == cli["risk"] and p.inner_text("#risk") == f"{cli['risk']:.2f}"  # type: ignore[attr-defined]
    assert float(value("#health")) == cli["health"] and float(value("#temperature")) == cli["temperature"]
    assert (value("#stage"), value("#segment") or None, value("#action")) == (cli["stage"], cli["segment"], cli["action"])
    assert value("#as-of") == cli["as_of"] and float(value("#revenue")) == cli["revenue"]
    assert int(p.inner_text("#events")) == cli["events"] and int(p.inner_text("#active-days")) == cli["active_days"]  # type: ignore[attr-defined]
    reasons = p.locator("#reasons li").all_inner_texts() if cli["reasons"] else []  # type: ignore[attr-defined]
    assert reasons == cli["reasons"]
    assert p.locator("svg.chart").count() == 2  # type: ignore[attr-defined]
    p.screenshot(path=str(IMG / "console_user.png"), full_page=True)  # type: ignore[attr-defined]

    for name in ("quadrant", "churn"):
        p.click(f"header nav >> text={'Quadrant' if name == 'quadrant' else 'Churn'}")  # type: ignore[attr-defined]
        p.wait_for_url(f"**/{name}")  # type: ignore[attr-defined]
        assert p.locator("svg").count() >= 1  # type: ignore[attr-defined]
        if name == "churn":  # accounts' revenue retention: the figures of `churnwatch churn-rate` for the last full month
            (cli,) = cli_json(built_state, ["churn-rate", "--json"])  # the current month: MRR now
            shown = p.get_attribute("#headline", "data-period")  # type: ignore[attr-defined]  # the last full month's start (QA6 L5: it was the month to date)
            (full,) = cli_json(built_state, ["churn-rate", "--period", "month", "--from", shown, "--to", cli["revenue"]["periods"][-1]["period_start"], "--json"])
            (month,) = full["revenue"]["periods"]
            assert month["period_start"] == shown and month["period_end"] == cli["revenue"]["periods"][-1]["period_start"]
            assert (value("#nrr"), value("#grr"), p.inner_text("#won"), p.inner_text("#lost")) == (  # type: ignore[attr-defined]
                month["nrr_pct"] or "", month["grr_pct"] or "", str(month["won"]), str(month["lost"]))
            assert value("#mrr") == cli["revenue"]["periods"][-1]["end_mrr"]
            assert p.locator("#cohorts tr[data-cohort]").count() == len(cli["revenue"]["cohorts"]) > 0  # type: ignore[attr-defined]
            assert (p.inner_text("#at-risk-reachable"), p.inner_text("#at-risk-lapsed")) == (  # type: ignore[attr-defined]
                str(api["at_risk_reachable"]), str(api["at_risk_lapsed"]))
            assert p.locator("#churned-revenue").count() == int(api["churned_revenue_counted"])  # type: ignore[attr-defined]
        p.screenshot(path=str(IMG / f"console_{name}.png"), full_page=True)  # type: ignore[attr-defined]

    p.goto(f"{console_url}/book?list=win_back")  # type: ignore[attr-defined]
    stages = p.locator("table#book tbody tr .stage").all_inner_texts()  # type: ignore[attr-defined]
    assert stages and set(stages) <= {"dormant", "churned"}
    back = cli_json(built_state, ["top", "--win-back", "-n", "10", "--json"])
    shown = [rows.nth(i).get_attribute("data-user") for i in range(min(10, rows.count()))]
    assert shown == [t["user_id"] for t in back], "To win back ranks as churnwatch top --win-back"


def test_an_owner_book_to_an_account_shows_the_numbers_of_churnwatch_top_owner(built_state: Settings, console_url: str,
                                                                                page: object) -> None:
    p = page  # playwright Page
    p.goto(f"{console_url}/book")  # type: ignore[attr-defined]
    p.select_option("select[name=owner]", "alice")  # type: ignore[attr-defined]
    p.click("form.filters button[type=submit]")  # type: ignore[attr-defined]
    p.wait_for_url("**/book?owner=alice*")  # type: ignore[attr-defined]
    top = cli_json(built_state, ["top", "--owner", "alice", "--json"])
    rows = p.locator("table#book tbody tr")  # type: ignore[attr-defined]
    assert top and [rows.nth(i).get_attribute("data-account") for i in range(rows.count())] == [t["account_id"] for t in top]
    rows.nth(0).locator("a.account").click()
    p.wait_for_url(f"**/accounts/{top[0]['account_id']}")  # type: ignore[attr-defined]

    def value(css: str) -> str:
        return p.get_attribute(css, "data-value")  # type: ignore[attr-defined]

    assert value("#account-id") == top[0]["account_id"] and float(value("#risk")) == top[0]["risk"]
    assert (int(value("#health")), int(value("#temperature")), value("#stage")) == \
        (top[0]["health"], top[0]["temperature"], top[0]["stage"])
    assert p.locator("#reasons li").all_inner_texts() == top[0]["reasons"]  # type: ignore[attr-defined]
    assert p.locator("#members tr").count() == top[0]["users"] + 1  # type: ignore[attr-defined]
    assert p.inner_text("#renews") == f"renews {top[0]['renews_on']} (in {top[0]['renews_in_days']} days)"  # type: ignore[attr-defined]
    p.screenshot(path=str(IMG / "console_account.png"), full_page=True)  # type: ignore[attr-defined]
    member = p.locator("#members a.user").first  # type: ignore[attr-defined]
    user_id = member.inner_text()
    member.click()  # members are listed by user id and link to their pages
    p.wait_for_url(f"**/users/{user_id}")  # type: ignore[attr-defined]
    assert p.inner_text("#user-id") == user_id  # type: ignore[attr-defined]


def test_users_whose_ids_are_dot_segments_link_to_their_own_pages(built_state: Settings, console_url: str, page: object) -> None:
    """QA4 #8: users ``.`` and ``..`` linked as ``/users/.`` and ``/users/..``, which a browser turns
    into ``/users/`` and ``/`` (dot segments, percent-encoded or not): My book opened. Their links go
    through the query string now, and the page shown is theirs, with ``churnwatch score``'s numbers."""
    p = page  # playwright Page
    p.goto(f"{console_url}/accounts/fabrikam")  # type: ignore[attr-defined]
    links = {a.inner_text(): a.get_attribute("href") for a in p.locator("#members a.user").all()}  # type: ignore[attr-defined]
    assert {uid: links[uid] for uid in DOT_USERS} == {".": "/users?id=.", "..": "/users?id=.."}
    for uid in DOT_USERS:
        p.goto(f"{console_url}/accounts/fabrikam")  # type: ignore[attr-defined]
        p.locator("#members a.user", has_text=re.compile(f"^{re.escape(uid)}$")).click()  # type: ignore[attr-defined]
        p.wait_for_load_state()  # type: ignore[attr-defined]
        assert p.inner_text("#user-id") == uid  # type: ignore[attr-defined]
        (cli,) = cli_json(built_state, ["score", uid, "--json"])
        assert float(p.get_attribute("#risk", "data-value")) == cli["risk"]  # type: ignore[attr-defined]
    other = next(u for u in links if u not in DOT_USERS)
    assert links[other] == f"/users/{other}", "every other id keeps its path link"
    p.goto(f"{console_url}/accounts?id=fabrikam")  # type: ignore[attr-defined]  # the account route takes ?id= too
    assert p.get_attribute("#account-id", "data-value") == "fabrikam"  # type: ignore[attr-defined]


def test_pages_load_with_no_browser_console_error(console_url: str, page: object) -> None:
    """QA6 L5: every first page load logged "Failed to load resource: ... 404" for /favicon.ico (no
    icon declared). The pages declare one, which answers 200; a fresh tab over the console's pages
    logs no console error, no page error and no failed or 4xx/5xx request."""
    tab = page.context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    tab.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    tab.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    tab.on("response", lambda r: errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    try:
        for path in ("/book", "/book?owner=alice", "/churn", "/quadrant"):
            tab.goto(f"{console_url}{path}")
            tab.wait_for_load_state("networkidle")
        icon = tab.get_attribute("link[rel=icon]", "href")
        assert icon, "the pages declare an icon (else the browser asks for /favicon.ico: a 404)"
        reply = tab.request.get(f"{console_url}{icon}")
        assert reply.status == 200 and reply.headers["content-type"].startswith("image/"), (icon, reply.status)
    finally:
        tab.close()
    assert errors == []
