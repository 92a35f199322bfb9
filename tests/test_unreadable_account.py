"""One account whose stored revenue state cannot be read: the owner's book leaves it out (one
WARNING with the count), a view of that one account says so in one line (the CLI) or 409 (the
console, as for a user). Pure: a reader that hands out records, no Redis or Kafka."""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Any, Iterator

import pytest

from models.account_health import Member, member_key
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.errors import UserError
from streams.settings import Settings
from streams.views import UnreadableAccount, account_book, account_report
from streams.worker.store import UnreadableState
from tests.fake_reader import NoUserStates

T0 = 1_767_225_600_000  # 2026-01-01
SAID = "the stored revenue state of this account cannot be read (format v9, 11 bytes): it will start afresh at its next subscription event"


class _Records(NoUserStates):
    """What Redis keeps of two accounts: acme readable, bolt damaged (a format this version does not know)."""

    def __init__(self) -> None:
        state = AccountState().update(Event("u1", T0, "subscription", "s0", 0.0, "acme", Subscription("active", "Pro", 4999)))
        silent = Member(member_key("u1"), (T0 - 30 * 86_400_000) // 1000, 1, 0.0, 20.0, 20.0, "u1").to_bytes()
        self.records = {"acme": (state.to_bytes(), None, {b"1": silent}), "bolt": (b"\x09\x00 damaged!", None, {b"1": silent})}

    def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
        return self.records.get(account_id, (None, None, {}))

    def progress(self, topic: str) -> dict[int, tuple[int, int]]:
        return {0: (0, T0)}


TABLE = {a: {"account_id": a, "owner": "alice"} for a in ("acme", "bolt")}


def test_the_book_leaves_out_an_unreadable_account_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="streams.views"):
        book = account_book(_Records(), Settings(), "alice", 10, at_risk_only=False, now_ms=T0, table=TABLE)  # type: ignore[arg-type]
    assert [r.account_id for r in book] == ["acme"]
    assert [r.getMessage() for r in caplog.records] == ["1 account(s) with an unreadable stored state left out of the book"]


def test_one_unreadable_account_asked_for_alone_says_so() -> None:
    with pytest.raises(UnreadableAccount) as exc:
        account_report(_Records(), "bolt", {}, T0)  # type: ignore[arg-type]
    assert str(exc.value) == SAID
    assert isinstance(exc.value, UnreadableState), "the console answers 409 with it, as for a user"


def test_accounts_show_says_it_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.cli.accounts as cli
    import streams.views as views

    @contextlib.contextmanager
    def reader(settings: Settings) -> Iterator[Any]:
        yield _Records()

    monkeypatch.setattr(cli, "read_accounts", lambda settings, timeout_s=0: TABLE)
    monkeypatch.setattr(views, "open_reader", reader)
    with pytest.raises(UserError) as exc:
        cli._show(argparse.Namespace(account_id="bolt", timeout=1.0, json=False), Settings())
    assert str(exc.value) == SAID
