"""``churnwatch accounts import``: account facts to a compacted topic on the real broker, read back as a table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from streams.cli import main
from streams.cli.accounts import read_accounts_csv
from streams.errors import UserError
from streams.settings import Settings
from streams.worker.accounts import read_accounts, read_quiet
from tests.harness import read_topic

FILE = ("account_id,name,owner,segment,renewal_date,notes\n"
        "acct1,Acme Ltd,dana,enterprise,2026-09-30,big\n"
        "acct2,Globex,li,smb,,\n"
        "acct3,Initech,li,smb,2026-03-01T12:00:00Z,\n")


def test_file_rows_are_checked_and_the_last_row_of_an_account_wins(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text(FILE + "acct2,Globex Corp,sam,mid-market,2027-01-15,\n")
    facts = {a.account_id: a for a in read_accounts_csv(f)}
    assert (facts["acct2"].name, facts["acct2"].owner, facts["acct2"].renewal_date) == ("Globex Corp", "sam", "2027-01-15")
    assert facts["acct3"].renewal_date == "2026-03-01" and len(facts) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,renewal_date\nacct1,2026-01-01\n,2026-01-01\n")
    with pytest.raises(UserError, match="bad.csv line 3: account_id"):
        read_accounts_csv(bad)


def test_a_file_saved_by_excel_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    """QA4 #6: Excel's "CSV UTF-8" starts with a BOM, which glued itself to ``account_id`` ("the header
    row has no account_id column (found \ufeffaccount_id, ...)")."""
    f = tmp_path / "a_bom.csv"
    f.write_bytes(b"\xef\xbb\xbfaccount_id,name,owner,segment,renewal_date\r\nbom1,\"Acme, Inc.\",Zo\xc3\xab,ent,2026-06-01\r\n")
    [facts] = read_accounts_csv(f)
    assert (facts.account_id, facts.name, facts.owner) == ("bom1", "Acme, Inc.", "Zo\u00eb")


@pytest.mark.integration
def test_import_publishes_a_compacted_table_keyed_by_account(kafka_bootstrap: str, unique_name: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    topic = f"accounts-{unique_name}"
    monkeypatch.setenv("CHURNWATCH_TOPIC_ACCOUNTS", topic)
    monkeypatch.setenv("CHURNWATCH_PARTITIONS", "3")
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(FILE)
    second.write_text("account_id,owner,quiet,delete\nacct2,sam,08-01..08-31,\nacct3,,,yes\n")  # acct2 changes owner, acct3 leaves
    assert main(["--bootstrap-servers", kafka_bootstrap, "accounts", "import", str(first)]) == 0
    assert "published 3 accounts" in capsys.readouterr().out
    assert main(["--bootstrap-servers", kafka_bootstrap, "accounts", "import", str(second)]) == 0
    assert "(1 deletions)" in capsys.readouterr().out

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_topics([topic])
        assert len(described[0]["partitions"]) == 3  # created explicitly, not auto-created with 4
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        reported = configs.get("topic", {}).get(topic, {}) if isinstance(configs, dict) else {}
        assert reported.get("cleanup.policy", "compact") == "compact"  # Tansu 0.6.0 reports no configs at all
    finally:
        admin.close()
    # every record is keyed by its account id: one key -> one partition, the latest record last
    keys: dict[bytes, set[int]] = {}
    for r in read_topic(kafka_bootstrap, topic, 3):
        keys.setdefault(r.key, set()).add(r.partition)
    assert sorted(keys) == [b"acct1", b"acct2", b"acct3"] and all(len(p) == 1 for p in keys.values())

    table = read_accounts(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_accounts=topic))
    assert sorted(table) == ["acct1", "acct2"]
    assert table["acct1"] == {"account_id": "acct1", "name": "Acme Ltd", "owner": "dana", "segment": "enterprise",
                              "renewal_date": "2026-09-30"}
    assert table["acct2"]["owner"] == "sam" and table["acct2"]["name"] == ""  # a row states the whole record
    # what a worker reads of it at connect (streams.worker.pipeline.Pipeline.load_quiet): the quiet periods
    quiet = read_quiet(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_accounts=topic))
    assert {a: [str(p) for p in ps] for a, ps in quiet.items()} == {"acct2": ["08-01..08-31"]}
    assert main(["--bootstrap-servers", kafka_bootstrap, "accounts", "list"]) == 0
    assert [line.count('"account_id"') for line in capsys.readouterr().out.splitlines()] == [1, 1]


def test_no_accounts_topic_is_an_empty_table(kafka_bootstrap: str, unique_name: str) -> None:
    """Before any import the topic does not exist: the console's owner picker gets no owner, not an error."""
    assert read_accounts(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_accounts=f"no-accounts-{unique_name}")) == {}


def test_show_prints_the_account_with_when_its_paid_period_ends() -> None:
    """``accounts show``'s text: the facts, the renewal the subscriptions state, the roll-up and each
    subscription (a cancelled one renews nothing)."""
    from models.account_health import AccountRollup
    from models.events import Event
    from models.revenue import AccountState
    from models.subscription import Subscription
    from streams.cli.accounts import account_text
    from streams.views import AccountReport, account_subscriptions

    day, start = 86_400_000, 1_772_323_200_000  # 2026-03-01
    state = AccountState()
    for user, plan, status, cents, period_end in (("u1", "Pro", "active", 9_900, start + 12 * day),
                                                  ("u2", "Add-on", "active", 999, start + 40 * day),
                                                  ("u3", "Seats", "cancelled", 0, start + 5 * day)):
        state.update(Event(user, start - 30 * day, "subscription", user, 0.0, "acme", Subscription(status, plan, cents, 0, period_end)))  # type: ignore[arg-type]
    now = start + 10 * 3_600_000
    rollup = AccountRollup(40, 38, 0.62, "at_risk", 5, 3, 0.6, 10_899, ("3 of 5 users silent for 2 weeks",),
                           "re-engage the silent users")
    report = AccountReport("acme", "Acme Corp", "alice", "2026-03-22", rollup, state.get().renews_ms, now)
    lines = account_text(report, account_subscriptions(state, now))
    assert lines[:2] == ["Acme Corp (acme), owner alice, contract renewal 2026-03-22, as of 2026-03-01 10:00 UTC (stream time)",
                         "renews 2026-03-13 (in 12 days)"]
    assert [line.split() for line in lines[-3:]] == [
        ["Pro", "active", "99.00", "since", "2026-01-30", "renews", "2026-03-13"],
        ["Add-on", "active", "9.99", "since", "2026-01-30", "renews", "2026-04-10"],
        ["Seats", "cancelled", "0.00", "since", "2026-01-30"]]
    assert report.to_dict()["renews_on"] == "2026-03-13" and report.to_dict()["renews_in_days"] == 12
    assert "renews" not in "\n".join(account_text(AccountReport("x", "", "", "", rollup), []))


def test_accounts_show_says_what_went_before_a_churn() -> None:
    """QA22a F5: the API's ``warned_reasons`` carried "payment failed today (past due)" before an
    involuntary churn, ``accounts show`` not: it says it now, as the win-back book does."""
    from models.account_health import AccountRollup
    from streams.cli.accounts import account_text
    from streams.views import AccountReport

    gone = AccountRollup(50, 0, 1.0, "churned", 2, 0, 1.0, 0, ("cancelled after failed payments",),
                         "win back: fix the payment with the billing contact")
    report = AccountReport("acme", "", "", "", gone, 0, 1_772_323_200_000, 4999, 1_772_236_800_000, 1_771_027_200_000,
                           ("payment failed today (past due)",))
    assert account_text(report, [])[-2] == "before it left: at risk since 2026-02-14: payment failed today (past due)"
    assert not any(line.startswith("before it left") for line in account_text(replace(report, warned_ms=0, warned_reasons=()), []))


def _report(name: str, stage: str = "at_risk"):  # type: ignore[no-untyped-def]
    from models.account_health import AccountRollup
    from streams.views import AccountReport

    rollup = AccountRollup(40, 38, 0.62, stage, 5, 3, 0.6, 10_899, ("3 of 5 users silent for 2 weeks",),
                           "re-engage the silent users")
    return AccountReport("acme", name, "alice", "2026-03-22", rollup, 0, 1_772_323_200_000)


def test_owner_book_names_each_account_beside_its_id(capsys: pytest.CaptureFixture[str]) -> None:
    """QA 2026-12: ``top --owner`` showed the account ids only; the name the accounts table holds is
    shown beside the id ("-" when the table has none), and the columns after it stay in place."""
    from streams.cli.top import print_book

    print_book([_report("Acme Corp"), _report("")], False)
    head, named, unnamed = capsys.readouterr().out.splitlines()
    assert head.split()[:4] == ["#", "account", "name", "risk"]
    assert named.split()[1:5] == ["acme", "Acme", "Corp", "0.62"], named
    assert unnamed.split()[1:4] == ["acme", "-", "0.62"], unnamed
    assert named.index("0.62") == unnamed.index("0.62") == head.index("risk")  # right-aligned under its header


def test_accounts_show_and_top_owner_say_the_stage_in_one_vocabulary(capsys: pytest.CaptureFixture[str]) -> None:
    """QA 2026-12: ``accounts show`` printed "at risk" where ``top --owner`` prints ``at_risk`` for the
    same account; both print the value the docs and the JSON use."""
    from streams.cli.accounts import account_text
    from streams.cli.top import print_book

    for stage in ("at_risk", "past_due"):
        report = _report("Acme Corp", stage)
        print_book([report], False)
        book_row = capsys.readouterr().out.splitlines()[1]
        shown = " ".join(account_text(report, []))
        assert f" {stage} " in book_row and f"stage {stage}," in shown, (book_row, shown)
        assert report.to_dict()["stage"] == stage


def test_ignored_columns_and_an_account_changed_by_a_later_row_are_said_and_a_bad_delete_refused(tmp_path: Path) -> None:
    """QA3 #17: two rows of one account with different owners, an unknown column (colour) and
    delete=maybe all passed --dry-run silently."""
    f = tmp_path / "a.csv"
    f.write_text("account_id,name,owner,colour,delete\nacct1,Acme,alice,red,\nacct1,Acme,alice,red,no\nacct1,Acme,bob,red,0\n")
    said: list[str] = []
    facts = read_accounts_csv(f, warn=said.append)
    assert [(a.account_id, a.owner, a.deleted) for a in facts] == [("acct1", "bob", False)]  # the last row still wins
    assert said == ["a.csv: column colour ignored (account facts: account_id, name, owner, segment, renewal_date, quiet, delete)",
                    "a.csv line 4: account acct1 again (line 3); this row wins: owner alice -> bob"]  # an identical repeat is no news
    f.write_text("account_id,delete\nacct1,maybe\n")
    with pytest.raises(UserError, match=r"a.csv line 2: delete must be yes/true/1, or no/false/0 or empty, got 'maybe'"):
        read_accounts_csv(f, warn=said.append)


def test_an_empty_table_hints_a_command_that_exists(kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """QA3 #14: the hint named ``accounts import --file``, an option that does not exist."""
    import re

    from streams.cli import _command_in, _parser

    monkeypatch.setenv("CHURNWATCH_TOPIC_ACCOUNTS", f"no-accounts-{unique_name}")
    assert main(["--bootstrap-servers", kafka_bootstrap, "accounts", "list", "--timeout", "2"]) == 0
    hint = re.search(r"churnwatch (accounts import [^)]*)\)", capsys.readouterr().err)
    assert hint, "the hint is there"
    argv = hint.group(1).split()
    assert _parser(_command_in(argv)).parse_args(argv).file == "ACCOUNTS.csv"


@pytest.mark.parametrize(("cell", "said"), [
    ("August", "quiet 'August' is not a range MM-DD..MM-DD (e.g. 08-01..08-31; several separated by ';')"),
    ("08-01..08-32", "quiet 08-01..08-32: '08-32' is no day of the year (MM-DD)"),
    ("01-01..10-31", "quiet 01-01..10-31 is 304 days long: an account's off-season is at most 274 days (9 months)"),
    ("08-01..08-31;08-20..09-10", "quiet 08-20..09-10 overlaps 08-01..08-31"),
])
def test_a_bad_quiet_period_is_one_line_with_its_row_and_nothing_is_sent(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                         cell: str, said: str) -> None:
    """QA18 F3: ``quiet`` declares an account's yearly quiet periods; a cell that does not read
    stops the import on its line, before anything is sent (no broker is reached: none is given)."""
    f = tmp_path / "q.csv"
    f.write_text(f"account_id,segment,quiet\nacct1,education,07-25..08-31\nacct2,education,{cell}\n")
    assert main(["--bootstrap-servers", "127.0.0.1:1", "accounts", "import", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"q.csv line 3: {said}"), err


def test_quiet_periods_are_kept_in_one_spelling_and_read_back_by_the_worker(tmp_path: Path) -> None:
    from streams.worker.accounts import quiet_periods

    f = tmp_path / "q.csv"
    f.write_text("account_id,quiet\nacct1, 12-20..01-05 ;08-01..08-31\nacct2,\n")
    facts = {a.account_id: a for a in read_accounts_csv(f)}
    assert facts["acct1"].quiet == "12-20..01-05;08-01..08-31" and facts["acct2"].quiet == ""
    assert b'"quiet"' not in (facts["acct2"].value() or b""), "a record without one reads as before"
    table = {a: orjson.loads(v.value() or b"{}") for a, v in facts.items()}
    table["acct3"] = {"quiet": "sometimes"}  # another tool wrote it: no quiet period, a WARNING
    assert {a: [str(p) for p in ps] for a, ps in quiet_periods(table).items()} == {"acct1": ["12-20..01-05", "08-01..08-31"]}


def test_an_account_gone_to_a_free_plan_renews_nothing() -> None:
    """QA22a F8: an account moved from a paid plan to a free one (churned) still read "renews
    2026-11-06 (in 6 days)", the reason "renewal in 6 days while usage fell 70%", and the API
    ``renews_in_days`` 80, beside stage churned. A gone account renews nothing (README, QA20a F9)."""
    from models.account_health import Member, member_key
    from models.events import Event
    from models.revenue import AccountState
    from models.subscription import Subscription
    from streams.cli.accounts import account_text
    from streams.views import account_report, account_subscriptions
    from tests.fake_reader import NoUserStates

    day, now = 86_400_000, 1_793_404_800_000  # 2026-10-31
    state = AccountState()
    for ts, plan, cents in ((now - 90 * day, "standard", 1399), (now - 25 * day, "standard_free", 0)):
        state.update(Event("s1", ts, "subscription", plan, 0.0, "s1", Subscription("active", plan, cents, 0, now + 6 * day)))
    member = Member(member_key("s1"), (now - 2 * day) // 1000, 1, 0.0, 6.0, 20.0, "s1").to_bytes()  # usage fell 70%

    class Reader(NoUserStates):
        def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
            return state.to_bytes(), None, {b"1": member}

        def progress(self, topic: str) -> dict[int, tuple[int, int]]:
            return {0: (0, now)}

    report = account_report(Reader(), "s1", {}, now)  # type: ignore[arg-type]
    assert report is not None and report.rollup.stage == "churned"
    assert not any("renew" in r for r in report.rollup.reasons), report.rollup.reasons
    assert (report.to_dict()["renews_on"], report.to_dict()["renews_in_days"]) == (None, None)
    shown = account_text(report, account_subscriptions(state, now))
    assert not any("renew" in line for line in shown), shown


def test_an_accounts_off_season_may_run_nine_months(tmp_path: Path) -> None:
    """QA25b F3: a seller open only October-December is quiet from January to mid-September, one
    range of 262 days: an account's own off-season may run 274 days (the product calendar's and a
    peak's stay at 122: models.quiet_period.MAX_DAYS); the worker reads it back the same."""
    from streams.worker.accounts import quiet_periods
    f = tmp_path / "q.csv"
    f.write_text("account_id,segment,quiet\nshop1,seasonal,01-01..09-19\n")
    rows = read_accounts_csv(f)
    assert rows[0].quiet == "01-01..09-19"
    assert [str(p) for p in quiet_periods({"shop1": {"quiet": rows[0].quiet}})["shop1"]] == ["01-01..09-19"]
