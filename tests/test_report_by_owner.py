"""``churnwatch report --accounts FILE --by-owner`` (QA9 M5): the monthly movement table per account
manager, from the events file and the accounts file, by the report's own ledger.

A small hand-made history with its figures worked out by hand (below), in the spirit of QA9's
(alice: acme new 100 in September and +50 in October, beta 300 churned in November; bob: delta 29
churned in September and back at 99 in October, gamma 99 down to 29 in November; an account the
accounts file does not name goes under no owner).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

EVENTS = """user_id,ts,event_type,amount,account_id,status,plan,mrr
a1,2026-09-05T00:00:00Z,subscription,,acme,active,Pro,100
a2,2026-10-10T00:00:00Z,subscription,,acme,active,Addon,50
b1,2026-08-01T00:00:00Z,subscription,,beta,active,Team,300
b1,2026-11-15T00:00:00Z,subscription,,beta,cancelled,Team,0
d1,2026-06-01T00:00:00Z,subscription,,delta,active,Basic,29
d1,2026-09-30T23:59:59Z,subscription,,delta,cancelled,Basic,0
d1,2026-10-20T00:00:00Z,subscription,,delta,active,Pro,99
g1,2026-09-16T00:00:00Z,subscription,,gamma,active,Pro,99
g1,2026-11-01T01:30:00Z,subscription,,gamma,active,Basic,29
o1,2026-10-01T00:00:00Z,subscription,,orphan,active,Pro,10
u1,2026-10-02T00:00:00Z,view,,acme,,,
"""
ACCOUNTS = """account_id,name,owner
acme,Acme,alice
beta,Beta,alice
delta,Delta,bob
gamma,Gamma,bob
"""
#: owner -> month -> (new, expansion, contraction, churned, reactivation, end MRR), by hand
HAND = {
    "alice": {"2026-09-01": ("100.00", "0.00", "0.00", "0.00", "0.00", "400.00"),
              "2026-10-01": ("0.00", "50.00", "0.00", "0.00", "0.00", "450.00"),
              "2026-11-01": ("0.00", "0.00", "0.00", "300.00", "0.00", "150.00")},
    "bob": {"2026-09-01": ("99.00", "0.00", "0.00", "29.00", "0.00", "99.00"),
            "2026-10-01": ("0.00", "0.00", "0.00", "0.00", "99.00", "198.00"),
            "2026-11-01": ("0.00", "0.00", "70.00", "0.00", "0.00", "128.00")},
    None: {"2026-09-01": ("0.00", "0.00", "0.00", "0.00", "0.00", "0.00"),
           "2026-10-01": ("10.00", "0.00", "0.00", "0.00", "0.00", "10.00"),
           "2026-11-01": ("0.00", "0.00", "0.00", "0.00", "0.00", "10.00")},
}
_KEYS = ("new", "expansion", "contraction", "churned", "reactivation", "end_mrr")


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "e.csv").write_text(EVENTS)
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    return tmp_path / "e.csv", tmp_path / "accounts.csv"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from streams.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_by_owner_gives_each_owners_movements_and_they_add_up_to_the_whole(files: tuple[Path, Path],
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    events, accounts = files
    span = ["--from", "2026-09-01", "--to", "2026-12-01", "--json"]
    code, out, err = _run(["report", "--events", str(events), "--accounts", str(accounts), "--by-owner", *span], capsys)
    assert code == 0, err
    body = orjson.loads(out)
    got = {o["owner"]: {p["period_start"]: tuple(p[k] for k in _KEYS) for p in o["periods"]} for o in body["owners"]}
    assert got == HAND
    assert [(o["owner"], o["accounts"]) for o in body["owners"]] == [("alice", 2), ("bob", 2), (None, 1)]
    code, out, err = _run(["report", "--events", str(events), *span], capsys)
    whole = orjson.loads(out)["periods"]
    for i, month in enumerate(whole):  # one ledger per owner, the same code: the owners' cents add up to the file's
        for key in ("start_mrr_cents", "new_cents", "expansion_cents", "contraction_cents", "churned_cents",
                    "reactivation_cents", "end_mrr_cents", "customers_start", "won", "lost"):
            assert month[key] == sum(o["periods"][i][key] for o in body["owners"]), (month["period_start"], key)


def test_by_owner_text_and_its_arguments(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    events, accounts = files
    code, out, err = _run(["report", "--events", str(events), "--accounts", str(accounts), "--by-owner",
                           "--from", "2026-11-01", "--to", "2026-12-01"], capsys)
    assert code == 0, err
    blocks = out.split("\n\n")
    assert blocks[0].startswith("owner alice: 2 accounts\nperiod") and "300.00" in blocks[0]
    assert blocks[1].startswith("owner bob: 2 accounts\n") and "70.00" in blocks[1]
    assert blocks[2].startswith("no owner (accounts without an owner in the accounts file): 1 account\n")
    assert "5 accounts; each owner's accounts as the accounts file assigns them now" in blocks[3]
    code, _, err = _run(["report", "--events", str(events), "--by-owner", "--from", "2026-11-01", "--to", "2026-12-01"], capsys)
    assert code == 2 and "--by-owner needs --accounts ACCOUNTS.csv" in err
