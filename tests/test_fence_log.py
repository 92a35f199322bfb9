"""The WARNING of a fenced write names what refused it: a moved offset, or a newer owner's token."""

from __future__ import annotations

import logging

import pytest

from streams.worker.pipeline import _log_fenced
from streams.worker.store import Fenced


def test_a_token_refusal_says_a_newer_owners_write_was_found(caplog: pytest.LogCaptureFixture) -> None:
    """A write of due reviews alone is refused by the partition's token, not its offset: the
    message said "ev:3|token now at offset w1:7", as if an offset had moved to a worker id."""
    with caplog.at_level(logging.WARNING, logger="streams.worker.pipeline"):
        _log_fenced("cycle", [Fenced(2, "ev:3|token", "w1:7")])
        _log_fenced("account write", [Fenced(5, "acct|ev:3", "41"), Fenced(6, "acct|ev:3", "41")])
    token, offset = (r.getMessage() for r in caplog.records)
    assert token == "cycle fenced in 1 bucket(s): ev:3 holds a newer owner's write (token w1:7: another worker owns it); re-reading"
    assert offset == "account write fenced in 2 bucket(s): acct|ev:3 now at offset 41 (another worker owns it); re-reading"
    assert all(r.args for r in caplog.records), "lazy %s formatting"
