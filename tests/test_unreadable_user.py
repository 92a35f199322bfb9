"""One user whose stored state cannot be read, asked for alone: ``churnwatch score`` and the
console's user page (API and HTML) say what is there instead of failing on the record."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from models.state import UserState
from streams.cli import main
from streams.console.app import create_app
from streams.settings import Settings
from streams.worker.keys import locate
from streams.worker.store import BucketWrite, StateWrite, Store

T0_S = 1_767_225_600  # 2026-01-01
SAID = "the stored state of this user cannot be read (format v9, 11 bytes): it will start afresh at its next event"


def _settings(url: str) -> Settings:
    return Settings(redis_url=url)  # the layout `churnwatch score` reads with (no settings given)


@pytest.fixture()
def damaged(redis_url: str) -> Settings:
    """A store as a worker leaves it (the user "gail" and the topic's progress), then gail's
    record overwritten by one of a format this version does not know."""
    settings = _settings(redis_url)

    async def build() -> None:
        store = Store(settings)
        await store.connect()
        try:
            st = UserState(first_seen_s=T0_S - 86_400, last_seen_s=T0_S, n_events=3, active_days=2, act_7d=1.0)
            b, g = locate("gail", store.buckets, store.groups)
            field = f"{settings.topic_events}:0"
            assert await store.write([BucketWrite(b, [(field, "", "0")], [StateWrite(g, "gail", st.to_bytes(), field, 0, None)], {})], "w:1") == []
            await store.write_progress(settings.topic_events, {0: (0, T0_S * 1000)})
            await store.client.hset(store.keys.users(b, g), "gail", b"\x09\x00 damaged!")
        finally:
            await store.close()

    asyncio.run(build())
    return settings


def test_churnwatch_score_says_the_state_cannot_be_read(damaged: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--redis-url", damaged.redis_url, "score", "gail"]) == 2
    err = capsys.readouterr().err
    assert err == f"churnwatch score: error: {SAID}\n", "one line saying what is there"


def test_the_console_user_page_says_the_state_cannot_be_read(damaged: Settings) -> None:
    with TestClient(create_app(damaged), raise_server_exceptions=False) as client:
        api: Any = client.get("/api/v1/users/gail")
        page = client.get("/users/gail")
        spec = client.get("/openapi.json").json()
    assert api.status_code == 409, api.text
    assert api.json()["error"] == {"status": 409, "code": "unreadable_state", "message": SAID}
    assert page.status_code == 409 and SAID in page.text and "Traceback" not in page.text
    assert "409" in spec["paths"]["/api/v1/users/{user_id}"]["get"]["responses"], "the API's document says so too"
    assert "409" in spec["paths"]["/api/v1/accounts/{account_id}"]["get"]["responses"], "an account's too (views.UnreadableAccount)"
