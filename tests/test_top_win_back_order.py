"""The win-back list's order is total: ``top --win-back -n k`` is the first k rows of ``-n m`` (QA19 F10).

646 of 648 lapsed users of a neobank tied at temperature 0; the console's pages and ``top -n`` read
the at-risk index in blocks whose size grows with ``-n``, and the index held ties in another order
than the page ranked them, so ``-n 20`` was no prefix of ``-n 50`` and never-funded signups headed
page 1 while the salaried customers who left came only with ``-n 200``.
"""

from __future__ import annotations

import asyncio

from models.engine import advance
from models.events import Event
from models.model import load_model
from models.ranking import daily_list
from streams.settings import Settings
from streams.views import open_reader, top_users
from streams.worker.store import Store
from tests.test_save_index import _write as write_states

T0, DAY = 1_767_225_600_000, 86_400_000
END = T0 + 500 * DAY


def _history(uid: str, loyal: bool) -> list[Event]:
    """A loyal customer: a visit every 2 days for 200 days, then gone; a signup: one day, never back."""
    days = range(0, 200, 2) if loyal else (100,)
    return [Event(uid, T0 + d * DAY + 3_600_000, "view", f"{uid}-{d}") for d in days]


def _population() -> dict[str, bool]:
    """90 lapsed users, 18 loyal among them, their ids interleaved with the signups'."""
    return {f"u{i:03d}": i % 5 == 2 for i in range(90)}


def _write(redis_url: str, users: dict[str, bool]) -> dict:  # type: ignore[type-arg]
    """The users' states in Redis as the worker writes them (with their at-risk index scores)."""
    model = load_model()
    states = {uid: advance(uid, None, _history(uid, loyal), END, model).state for uid, loyal in users.items()}

    async def write() -> None:
        settings = Settings(redis_url=redis_url)
        store = Store(settings)
        await store.connect()
        await write_states(store, states, END, model)
        await store.write_progress(settings.topic_events, {0: (1, END)})  # the stream time the lists read
        await store.close()

    asyncio.run(write())
    return states


def test_every_page_size_gives_the_same_first_rows_and_the_valuable_leavers_first(redis_url: str) -> None:
    users = _population()
    states = _write(redis_url, users)
    model = load_model()
    listed = daily_list(states.items(), END // 1000, model, "win_back", share=1.0)
    assert len(listed) == len(users), "every user is lapsed"
    assert {round(r.scores.temperature) for r in listed} == {0}, "all tie at temperature 0"
    assert all(states[u].at_risk_since_s for u in users), "all are in the at-risk index (top -n, the console)"
    settings = Settings(redis_url=redis_url)
    with open_reader(settings) as reader:
        pages = {k: [r.user_id for r in top_users(reader, settings, k, kind="win_back")] for k in (1, 3, 10, 18, 25, 90)}
        share = [r.user_id for r in top_users(reader, settings, share=1.0, kind="win_back")]
    assert share == [r.user_id for r in listed], "--share reads every state: the same order"
    for k, rows in pages.items():
        assert rows == share[:k], (k, rows, share[:k])
    loyal = [u for u, is_loyal in users.items() if is_loyal]
    assert sorted(pages[18]) == sorted(loyal), "at equal temperature the customers of 100 active days come first"
