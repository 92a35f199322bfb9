"""Bad input on the command line: exactly one readable stderr line, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import main
from streams.local import free_port

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


CASES: list[tuple[list[str], str]] = [
    (["demo", "--duration", "10x"], "cannot read '10x' as a duration"),
    (["alerts", "--timeout", "5 parsecs"], "--timeout"),
    (["publish", "--file", "/nonexistent/events.jsonl"], "no such file"),
    (["publish", "--file", "/nonexistent/events.csv.gz"], "no such file"),
    (["demo", "--metrics-port", "99999"], "--metrics-port must be a TCP port"),
    (["--bootstrap-servers", "127.0.0.1:notaport", "alerts"], "not host:port"),
    (["simulate", "--users", "abc"], "argument --users: must be a whole number of users, got 'abc'"),
    (["demo", "--users", "many"], "argument --users: must be a whole number of users"),
    (["demo", "--workers", "0"], "argument --workers: must be at least 1 worker"),
    (["simulate", "--rate", "-5", "--no-publish"], "argument --rate"),
    (["simulate", "--start", "yesterday", "--no-publish"], "--start"),
    (["simulate", "--mix", "steady=lots", "--no-publish"], "argument --mix: 'steady=lots': weight 'lots' is not a number"),
    (["simulate", "--mix", "gamer=1", "--no-publish"], "argument --mix: 'gamer=1': expected persona=weight"),
    (["simulate", "--mix", "steady=0", "--no-publish"], "give at least one persona a weight > 0"),
    (["simulate", "--mix", "steady=1,steady=2", "--no-publish"], "steady is given twice"),  # QA3 #15: the later one won
    (["simulate", "--mix", "steady=1e308,buyer=1e308", "--no-publish"], "the weights add up to more than a number can hold"),
    (["simulate", "--accounts", "5", "--users", "10", "--no-publish"], "--users sets the size"),  # was ignored
    (["simulate", "--start", "1990-01-01"], "the workers reject events before 2000-01-01 (too_old)"),  # every event to the DLQ
    (["simulate", "--start", "2030-01-01"], "past now: the workers reject events ahead of the wall clock (future)"),
    (["simulate", "--days", "100000"], "past now"),
    (["alerts", "--kind", "at_risk,bogus"], "unknown alert kind bogus"),
    (["top", "-n", "x"], "argument -n"),
    (["top", "--all"], "--all lists every account of an owner: give --owner NAME"),  # QA 2026-12: printed the user list
    (["top", "--by", "mrr"], "--by mrr ranks the users' win-back list: give --win-back, or --by value for the save list (an owner's win-back book is by lost MRR already)"),
    # QA20a F4: --win-back was given, and the line asked for it
    (["top", "--owner", "alice", "--win-back", "--by", "mrr"], "--by ranks the users' lists, not an owner's book (its --win-back is by lost MRR already): leave --by out"),
    (["top", "--owner", "alice", "--by", "value"], "--by ranks the users' lists, not an owner's book"),
    # QA22b F8: a value-weighted order is --by value; another name is one line naming the choices
    (["top", "--by", "spend"], "argument --by: invalid choice: 'spend' (choose from 'chance', 'mrr', 'value')"),
    (["top", "--owner", "alice", "--share", "50%"], "--share ranks users"),  # QA 2026-12: "no account of alice is at risk"
    (["top", "--owner", "alice", "--win-back", "--all"], "--win-back lists the owner's churned accounts"),
    (["churn-rate", "--days", "0"], "argument --days: must be at least 1 day"),
    (["learn", "--l2", "-1"], "argument --l2: --l2 must be in [0, inf), got -1"),
    (["learn", "--l2", "nan"], "argument --l2: --l2 must be in [0, inf), got nan"),
    (["learn", "--min-gain", "2"], "--min-gain must be in [0, 1) AUC points"),
    (["nosuchcommand"], "invalid choice"),
    # QA19 F12: the unknown option first, not "one of the arguments --owner --all-owners is required"
    (["digest", "--bogus"], "unrecognized arguments: --bogus"),
    (["score", "--bogus"], "unrecognized arguments: --bogus"),  # a required positional, the same
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    # QA21 F11: an option of another command was "churnwatch: error: ..." without the command's name
    (["dlq", "--timeout", "2"], "churnwatch dlq: error: unrecognized arguments: --timeout 2"),
    (["--bogus", "top"], "churnwatch: error: unrecognized arguments: --bogus"),  # a global one: the top level's
    # a near miss names the option meant (QA23a F9); "--bogus" is close to nothing: no guess
    (["top", "--winback"], "churnwatch top: error: unrecognized arguments: --winback (did you mean --win-back?)"),
    (["backtest", "--horizn=30d"], "unrecognized arguments: --horizn=30d (did you mean --horizon?)"),
    # QA21 F11: a value starting with "-" is read as an option ("expected one argument"): judged by its type, or how to give it
    (["top", "-n", "-x"], "churnwatch top: error: argument -n: must be a whole number of users or accounts, got '-x'"),
    (["backtest", "--events", "README.md", "--as-of", "2026-01-01", "--out", "/tmp/x.csv", "--horizon", "-3d"],
     "argument --horizon: expected one argument (it reads '-3d' as an option: write --horizon=-3d)"),
    (["digest"], "one of the arguments --owner --all-owners is required"),  # nothing unknown: the missing one
    # QA5 L3: topic names Kafka refuses were created on Tansu, and a worker ran on "bad topic!"
    (["topics", "--events-topic", ""], "argument --events-topic: is not a Kafka topic name"),
    (["topics", "--alerts-topic", "bad topic!"], "argument --alerts-topic: is not a Kafka topic name"),
    (["topics", "--dlq-topic", "t" * 250], "(250 characters)"),
    (["worker", "--events-topic", ".."], "'.' and '..' are not allowed"),
    (["relayout", "--events-topic", "a/b"], "argument --events-topic: is not a Kafka topic name"),
    (["learn", "--topic", "a b"], "argument --topic: is not a Kafka topic name"),
    (["train", "--from-topic", "--topic", "é"], "argument --topic: is not a Kafka topic name"),
    # QA5 L4: accepted, then read nothing for "-1 s" / "nan s"
    (["accounts", "list", "--timeout", "-1"], "argument --timeout: --timeout must be in (0, inf) seconds, got -1"),
    (["accounts", "show", "a1", "--timeout", "nan"], "argument --timeout: --timeout must be in (0, inf) seconds, got nan"),
    (["dlq", "--max", "0"], "argument --max: must be at least 1 dead letter, got 0"),
    # QA20a F5: a reason no dead letter carries read the whole topic and said "0 dead letters"
    (["dlq", "--reason", "late,bad_ammount"], "--reason: unknown reason bad_ammount (known: oversized, not_utf8,"),
    (["dlq", "--alerts", "--reason", "late"], "--reason: unknown reason late for --alerts (known: refused, retries_exhausted, not_an_alert)"),
    # QA20 F12: a traceback, "OverflowError: date value out of range"
    (["churn-rate", "--days", "1000000"], "argument --days: must be at most 36500 days, got 1000000"),
    (["top", "--owner", "ana", "-n", "0"], "argument -n: must be at least 1 user or account, got 0"),
    # QA16 F8: a bare number was milliseconds; train ran 40 s on "45 ms of silence is churn"
    (["train", "--events", "README.md", "--churn-after", "45", "--out", "/tmp/x.json"],
     "--churn-after 45: give a unit, such as 45d (or 12h, 90m); a bare number would be milliseconds"),
    (["backtest", "--events", "README.md", "--as-of", "2026-01-01/2026-02-01/7", "--out", "/tmp/x.csv"],
     "--as-of STEP 7: give a unit, such as 7d (or 12h, 90m); a bare number would be milliseconds"),
    (["learn", "--window", "90", "--dry-run"], "--window 90: give a unit, such as 90d (or 12h, 90m); a bare number would be milliseconds"),
    # QA17 F1: the retention a churned customer is kept, checked as the other durations
    (["train", "--events", "README.md", "--retention", "400", "--out", "/tmp/x.json"],
     "--retention 400: give a unit, such as 400d (or 12h, 90m); a bare number would be milliseconds"),
    (["train", "--events", "README.md", "--retention", "12h", "--out", "/tmp/x.json"],
     "--retention 0.5d: give at least 1d (a churned user's state is kept this long after the churn is reported)"),
    (["train", "--events", "README.md", "--retention", "a year", "--out", "/tmp/x.json"], "--retention: cannot read 'a year' as a duration"),
]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv, expected", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_argument_is_one_line_and_exit_2(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        code = int(exc.code or 0)
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith("churnwatch")
    assert expected in line


def test_bad_line_of_a_file_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"user_id": "a", "type": "view", "ts": 1767261600000}\n{"user_id": "a", "type": "view"\n')
    assert main(["publish", "--file", str(path)]) == 2
    assert "events.jsonl line 2: not JSON" in _one_line(capsys.readouterr().err)
    csv_path = tmp_path / "events.csv"
    csv_path.write_text("user_id,ts,event_type,amount\nu1,2026-01-01T00:00:00Z,view,\nu1,someday,view,\n")
    assert main(["publish", "--file", str(csv_path)]) == 2
    assert "events.csv line 3" in _one_line(capsys.readouterr().err)


def test_unreachable_servers_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"user_id": "a", "type": "view", "ts": 1767261600000}\n')
    port = _closed_port()
    assert main(["--bootstrap-servers", f"127.0.0.1:{port}", "publish", "--file", str(path)]) == 2
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in _one_line(capsys.readouterr().err)
    assert main(["--redis-url", f"redis://127.0.0.1:{port}", "top"]) == 2
    assert f"cannot reach Redis at redis://127.0.0.1:{port}" in _one_line(capsys.readouterr().err)


def test_an_option_close_to_none_gets_no_guess(capsys: pytest.CaptureFixture[str]) -> None:
    """The guess of QA23a F9 only where an option is close: "--bogus" is named alone."""
    with pytest.raises(SystemExit):
        main(["top", "--bogus"])
    assert _one_line(capsys.readouterr().err).endswith("error: unrecognized arguments: --bogus")


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--users", "abc"],  # argparse
        ["publish", "--file", "/nonexistent/events.jsonl"],  # UserError raised in a command module
        ["demo", "--duration", "3 fortnights"],  # ValueError
    ],
)
def test_as_a_real_process(argv: list[str]) -> None:
    """``python -m streams.cli``, as users and the demo run it (the module is also ``__main__`` there)."""
    proc = subprocess.run([sys.executable, "-m", "streams.cli", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert _one_line(proc.stderr).startswith(f"churnwatch {argv[0]}: error: ")
    assert proc.stdout == ""


def test_folders_and_unwritable_outputs_are_one_line_before_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA3 #13: a folder as input file gave IsADirectoryError tracebacks; ``train --out`` and
    ``simulate --events-out`` in a missing folder failed only after all the work; a CSV given as
    ``--model`` said "Expecting value: line 1 column 1" without naming the file."""
    events = tmp_path / "e.csv"
    events.write_text("user_id,ts,event_type\nu1,2026-01-01T00:00:00Z,view\n")
    missing = tmp_path / "nowhere" / "x.out"
    cases = [
        (["publish", "--file", str(tmp_path)], f"{tmp_path}: a folder, not a file"),
        (["backtest", "--events", str(tmp_path), "--as-of", "2026-01-01", "--out", str(tmp_path / "b.csv")], "is a folder, not a file"),
        (["train", "--events", str(tmp_path), "--out", str(tmp_path / "m.json")], "--events"),
        (["train", "--events", str(events), "--out", str(missing)], f"--out {missing}: folder {missing.parent} does not exist"),
        (["train", "--events", str(events), "--out", str(tmp_path)], f"--out {tmp_path}: a folder; give a file name"),
        (["simulate", "--users", "50", "--no-publish", "--events-out", str(missing)], f"--events-out {missing}: folder"),
        (["simulate", "--users", "50", "--no-publish", "--truth-out", str(missing)], f"--truth-out {missing}: folder"),
        (["backtest", "--events", str(events), "--model", str(events), "--as-of", "2026-01-01", "--out", str(tmp_path / "b.csv")],
         f"model file {events}: not a churnwatch model"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert expected in _one_line(err), (argv, err)
        assert "simulated" not in out and "model ->" not in out, "refused before the work"


def test_console_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """QA3 #13: uvicorn's ERROR and INFO lines and exit 3; now the worker's metrics-port check."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--redis-url", f"redis://127.0.0.1:{_closed_port()}/0", "console", "--port", str(port)])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"churnwatch console: error: cannot serve the console on 127.0.0.1:{port}:") and "in use" in line, line


def test_a_truncated_or_corrupt_gz_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA4 #7: a truncated ``.gz`` ended backtest, publish, train and report in an EOFError traceback,
    a ``.gz`` that is no gzip in gzip.BadGzipFile; bytes that are not UTF-8 named no file."""
    import gzip

    fake = tmp_path / "fake.csv.gz"
    fake.write_bytes(b"\x1f\x8b\x08garbage")
    cut = tmp_path / "cut.csv.gz"
    whole = gzip.compress(b"user_id,ts,event_type\n" + b"".join(b"u%d,2026-01-01T00:00:00Z,view\n" % i for i in range(2000)))
    cut.write_bytes(whole[:len(whole) // 2])
    plain = tmp_path / "t.jsonl.gz"
    plain.write_bytes(b'x{"user_id":"a","type":"view","ts":1767261600000}\n')
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"user_id,ts,event_type\nZo\xeb,2026-01-01T00:00:00Z,view\n")
    for f in (fake, cut, latin):
        cases = [["backtest", "--events", str(f), "--as-of", "2026-01-01", "--out", str(tmp_path / "b.csv")],
                 ["train", "--events", str(f), "--out", str(tmp_path / "m.json"), "--churn-after", "45d"],
                 ["report", "--events", str(f), "--from", "2026-01-01", "--to", "2026-02-01"],
                 ["publish", "--file", str(f)]]
        for argv in cases:
            assert main(argv) == 2, argv
            line = _one_line(capsys.readouterr().err)
            assert f"{f}: not " in line, (argv, line)
    assert main(["publish", "--file", str(plain)]) == 2
    assert f"{plain}: not a whole gzip file" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("prefix, why", [
    ("", "is empty"),
    ("cw{eu}", "hash-tag brace"),
    ("cw eu", "blank or control character"),
    ("cw\tx", "blank or control character"),
    ("cw:", "empty part"),
    ("cw::eu", "empty part"),
    ("cw:progress", "taken for those of deployment 'cw'"),
    ("cw:eu:adue", "taken for those of deployment 'cw:eu'"),
])
def test_a_key_prefix_that_breaks_the_key_scheme_is_one_line(prefix: str, why: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Any command, before it touches Redis: ``CHURNWATCH_KEY_PREFIX`` was taken as it came (a
    ``cw:progress`` deployment's keys are ``cw``'s progress keys of a topic named ``meta`` and the
    like, and ``cw``'s rebuild deletes them; a brace moves every key of a bucket to another slot)."""
    monkeypatch.setenv("CHURNWATCH_KEY_PREFIX", prefix)
    assert main(["--redis-url", f"redis://127.0.0.1:{_closed_port()}/0", "top"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"churnwatch top: error: key_prefix (CHURNWATCH_KEY_PREFIX) {prefix!r} ") and why in line, line


def test_every_key_follows_its_prefix_with_a_bucket_or_a_family() -> None:
    """What ``keys.prefix_refusal`` relies on: a key of deployment P is ``P:{b}:...`` or ``P:<family>...``
    with a family of ``keys.FAMILIES``; a key name added without its family there would let a prefix
    ``cw:<it>`` through. Prefixes that extend one another by another name share no key."""
    import inspect

    from streams.settings import Settings
    from streams.worker.keys import FAMILIES, Keys

    args = {"bucket": 3, "group": 5, "topic": "ev", "partition": 0, "period": "day", "account_id": "a"}

    def every_key(prefix: str) -> set[str]:
        keys, out = Keys(prefix), set()
        for name, member in inspect.getmembers(Keys):
            if name.startswith("_") or name == "prefix":
                continue
            if isinstance(member, property):
                out.add(getattr(keys, name))
            else:
                params = list(inspect.signature(member).parameters)[1:]
                out.add(getattr(keys, name)(*(args[p] for p in params)))
        return out

    cw = every_key("cw")
    assert len(cw) > 15
    for key in cw:
        rest = key[len("cw:"):]
        assert rest.startswith("{") or rest.split(":")[0] in FAMILIES, key
    assert not cw & every_key("cw:eu") and not cw & every_key("cw:eu:x")
    for family in FAMILIES:
        with pytest.raises(ValueError, match="taken for those of deployment 'cw'"):
            Settings(key_prefix=f"cw:{family}")
    assert Settings(key_prefix="cw:eu").key_prefix == "cw:eu"


def test_a_topic_name_from_the_environment_kafka_refuses_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """QA5 L3: settings validate every topic_* field (CHURNWATCH_TOPIC_*), not only the options."""
    monkeypatch.setenv("CHURNWATCH_TOPIC_DLQ", "dead letters")
    assert main(["topics"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "topic_dlq (CHURNWATCH_TOPIC_DLQ) is not a Kafka topic name" in line


def test_a_binary_accounts_file_names_the_file_and_what_was_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA5 L4: was "error: 'utf-8' codec can't decode byte 0xa1 in position 0" (no file, no hint)."""
    path = tmp_path / "binary.bin"
    path.write_bytes(b"\xa1\x00\xff\x13" * 64)
    assert main(["accounts", "import", str(path), "--dry-run"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "binary.bin: not UTF-8 text (byte 0xa1 at position 0): expected a CSV file of accounts (account_id," in line


def test_backtest_of_json_lines_says_it_reads_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA5 L4: JSON lines (which `publish` takes) were read as CSV and blamed a timestamp 'type:"view"'."""
    path = tmp_path / "ok.jsonl"
    path.write_text('{"user_id": "u1", "type": "view", "ts": 1767261600000}\n')
    assert main(["backtest", "--events", str(path), "--as-of", "2026-01-01", "--out", str(tmp_path / "bt.csv")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "ok.jsonl: the first row is a JSON object; this command reads CSV files (user_id,ts,event_type" in line
    assert not (tmp_path / "bt.csv").exists()


def test_backtest_plot_out_without_plot_user_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA5 L4: --plot-out alone was ignored without a word. (--plot-user alone is fine: its picture
    goes next to --out, as its help says, and the command prints where.)"""
    path = tmp_path / "ev.csv"
    path.write_text("user_id,ts,event_type,amount\nu1,2026-01-01T00:00:00Z,view,\n")
    png = tmp_path / "p.png"
    assert main(["backtest", "--events", str(path), "--as-of", "2026-01-02", "--out", str(tmp_path / "bt.csv"),
                 "--plot-out", str(png)]) == 2
    assert "--plot-out is where --plot-user's picture goes: give --plot-user USER_ID too" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["publish", "report", "backtest"])
def test_a_row_wider_than_its_header_is_refused_not_cut(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA17 F7: an unquoted decimal comma ``12,90`` was read as an amount of 12 and a stray cell,
    published and reported as 12.00 without a word; a quoted one gave Python's own message (F10)."""
    def run(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        argv = {"publish": ["--bootstrap-servers", f"127.0.0.1:{_closed_port()}", "publish", "--file", str(path)],
                "report": ["report", "--events", str(path), "--from", "2026-01-01", "--to", "2026-02-01"],
                "backtest": ["backtest", "--events", str(path), "--as-of", "2026-01-02", "--out", str(tmp_path / "bt.csv")]}[command]
        assert main(argv) == 2
        err = capsys.readouterr().err
        return err.strip().splitlines()[0] if name == "semi.csv" else _one_line(err)

    wide = run("comma.csv", "user_id,ts,event_type,amount\nc1,2026-01-01T10:00:00Z,order,12,90\n")
    assert "comma.csv line 2: 5 cells, but the header names 4 columns: a value holding a comma must be quoted" in wide
    quoted = run("quoted.csv", 'user_id,ts,event_type,amount\nc1,2026-01-01T10:00:00Z,order,"12,90"\n')
    assert "quoted.csv line 2: amount '12,90' is not a number: write the decimal point as a dot (12.90)" in quoted
    bare = run("bare.csv", "c1,2026-01-01T10:00:00Z,order,12,90,e1,x\n")
    assert "bare.csv line 1: 7 cells, but a file without a header row has at most 5 columns (user_id,ts,event_type,amount,event_id)" in bare
    # read as data, both lines are bad (QA23a F9: every bad line is said); the first says why
    semi = run("semi.csv", "user_id;ts;event_type;amount\nc1;2026-01-01T10:00:00Z;order;12\n")
    assert "semi.csv line 1: empty timestamp; if line 1 is a header, it names user_id;ts;event_type;amount, but the columns must be named user_id, ts" in semi
    assert not (tmp_path / "bt.csv").exists()


def test_an_accounts_row_wider_than_its_header_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA17 F7: ``c1,Bob, Ltd,anna`` under a 3-column header was imported ("OK") with the owner cut."""
    path = tmp_path / "accounts.csv"
    path.write_text("account_id,name,owner\nc1,Bob, Ltd,anna\n")
    assert main(["accounts", "import", str(path), "--dry-run"]) == 2
    assert 'accounts.csv line 2: 1 cell more than the header names: a value holding a comma must be quoted ("Bob, Ltd")' \
        in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["train", "backtest"])
def test_a_config_file_that_cannot_be_read_is_named(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA17 F10: was "[Errno 2] No such file or directory: 'nope.toml'" with no option named."""
    events = tmp_path / "e.csv"
    events.write_text("user_id,ts,event_type\nu1,2026-01-01T00:00:00Z,view\n")
    out = {"train": ["--out", str(tmp_path / "m.json")], "backtest": ["--as-of", "2026-01-02", "--out", str(tmp_path / "b.csv")]}[command]
    assert main([command, "--events", str(events), *out, "--config", str(tmp_path / "nope.toml")]) == 2
    assert f"config {tmp_path / 'nope.toml'}: cannot read it (No such file or directory)" in _one_line(capsys.readouterr().err)


def test_digest_without_owners_points_to_the_b2c_recipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """QA19 F12: a B2C bank's ``digest --all-owners`` ended "no account ... has an owner" and no
    more; the one line says how a B2C product gets owners (README's recipe)."""
    import streams.publisher
    import streams.worker.accounts

    monkeypatch.setattr(streams.publisher, "check_kafka_reachable", lambda settings: None)
    monkeypatch.setattr(streams.worker.accounts, "read_accounts", lambda settings: {"c00001": {"name": "", "owner": ""}})
    assert main(["digest", "--all-owners"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "has an owner: " in line
    assert "account_id = the user id" in line and "churnwatch accounts import" in line and "README" in line


@pytest.mark.parametrize("env, expected", [
    ({"CHURNWATCH_KAFKA_SECURITY_PROTOCOL": "TLS"},
     "CHURNWATCH_KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got 'TLS'"),
    ({"CHURNWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-515"},
     "CHURNWATCH_KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL), got 'SCRAM-SHA-515'"),
    ({"CHURNWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
     "CHURNWATCH_KAFKA_SECURITY_PROTOCOL SASL_SSL needs CHURNWATCH_KAFKA_SASL_MECHANISM"),
])
@pytest.mark.parametrize("command", [["topics"], ["worker"], ["alerts", "--timeout", "1s"]])
def test_a_kafka_security_setting_no_client_takes_is_one_line(env: dict[str, str], expected: str, command: list[str],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """QA20 F1: taken as it came, `TLS` let `topics` connect in plain text and exit 0, the worker retry
    "cannot start yet (ValueError: `security_protocol` should be SSL or PLAINTEXT)" for ever, and a
    mistyped mechanism was dropped. Refused before any connection (the broker's port is closed)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--bootstrap-servers", f"127.0.0.1:{_closed_port()}", *command]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"churnwatch {command[0]}: error: ") and expected in line, line


def test_kafka_security_settings_are_read_in_any_case() -> None:
    """As Kafka's own clients read `security.protocol`: `sasl_ssl` is SASL_SSL, handed to the clients upper case."""
    from streams.settings import Settings

    s = Settings(kafka_security_protocol="sasl_ssl", kafka_sasl_mechanism="scram-sha-512", kafka_sasl_username="u")
    kw = s.kafka_client_kwargs()
    assert (kw["security_protocol"], kw["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert "security_protocol" not in Settings(kafka_security_protocol=" plaintext").kafka_client_kwargs()


def test_relayout_with_redis_unreachable_is_the_common_line(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """QA20 F2: relayout said "error: redis ConnectionError: ... (--log-level DEBUG shows the client's
    own lines)", exit 1, where every other command says "cannot reach Redis at <url>", exit 2. The
    broker side stands in (a topic of 8 partitions); Redis is a closed port."""
    import streams.publisher
    import streams.worker.relayout

    monkeypatch.setattr(streams.publisher, "check_kafka_reachable", lambda settings: None)
    monkeypatch.setattr(streams.worker.relayout, "partition_count", lambda settings, topic: 8)
    port = _closed_port()
    assert main(["--redis-url", f"redis://:pw@127.0.0.1:{port}/0", "relayout"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"churnwatch relayout: error: cannot reach Redis at redis://:***@127.0.0.1:{port}/0: "), line


def _bad_lines_file(path: Path) -> tuple[Path, list[str]]:
    """A history with 30 unreadable times, 5 empty user ids and one negative amount among good rows,
    and the lines a command must print of it: the first 20 bad ones, the rest counted per reason."""
    rows, bad = ["user_id,ts,event_type,amount"], []
    for k in range(200):
        lineno = len(rows) + 1
        if k % 6 == 1 and k < 180:
            rows.append(f"u{k % 7},soon {k},view,")
            bad.append((lineno, f"timestamp 'soon {k}' is neither ISO-8601 nor epoch milliseconds"))
        elif k % 40 == 4:
            rows.append(",2026-01-02T00:00:00Z,view,")
            bad.append((lineno, "empty user_id"))
        elif k == 150:
            rows.append("u1,2026-01-02T00:00:00Z,order,-5")
            bad.append((lineno, "amount '-5' is below 0"))
        else:
            rows.append(f"u{k % 7},2026-01-{1 + k % 20:02d}T10:00:00Z,view,")
    path.write_text("\n".join(rows) + "\n")
    name = path.name
    times = [n for n, why in bad if why.startswith("timestamp")]
    empty = [n for n, why in bad if why == "empty user_id"]
    assert len(bad) == 36 and len(times) == 30 and len(empty) == 5
    shown = [f"{name} line {n}: {why}" for n, why in bad[:20]]
    rest_times = 30 - sum(n in times for n, _ in bad[:20])
    rest_empty = 5 - sum(n in empty for n, _ in bad[:20])
    amount = next(n for n, why in bad if why.startswith("amount"))
    expected = shown + [f"{name}: {rest_times} more bad lines like line {times[0]} (timestamp 'soon 1' is neither ISO-8601 "
                        f"nor epoch milliseconds)", f"{name}: {rest_empty} more bad lines like line {empty[0]} (empty user_id)",
                        f"{name}: 1 more bad line like line {amount} (amount '-5' is below 0, which the stream refuses"]
    return path, expected + [f"{name}: 36 bad lines"]


@pytest.mark.parametrize("command", ["publish", "train", "backtest", "report"])
def test_every_bad_line_of_a_history_is_said_in_one_run(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA23a F9: ``publish`` (and the commands reading the same file) named the first bad line only,
    one fix and rerun per line. Now one run says the first 20, the rest counted per reason with the
    first line of each, and the total, one line each as every error is said; the file is still
    refused whole (nothing sent, nothing written)."""
    path, expected = _bad_lines_file(tmp_path / "h.csv")
    out = tmp_path / "o.csv"
    argv = {"publish": ["--bootstrap-servers", f"127.0.0.1:{_closed_port()}", "publish", "--file", str(path)],
            "train": ["train", "--events", str(path), "--out", str(out)],
            "backtest": ["backtest", "--events", str(path), "--as-of", "2026-01-10", "--out", str(out), "--no-progress"],
            "report": ["report", "--events", str(path), "--from", "2026-01-01", "--to", "2026-02-01"]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    prefix = f"churnwatch {command}: error: "
    assert all(line.startswith(prefix) for line in lines), lines
    said = [line.removeprefix(prefix) for line in lines]
    assert len(said) == len(expected) and all(s.startswith(e) for s, e in zip(said, expected)), said
    if command == "publish":  # the policy, said: the file is published whole or not at all
        assert said[-1] == "h.csv: 36 bad lines; nothing was sent: fix them and publish the file again"
    assert not out.exists()


def test_publish_says_every_bad_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """JSON lines too: a line that is not JSON and one the workers' decoder refuses, both said."""
    path = tmp_path / "e.jsonl"
    path.write_text('{"user_id": "a", "type": "view", "ts": 1767261600000}\n{"user_id": "a", "type": "view"\n'
                    '{"user_id": "a", "type": "view", "ts": 1767261600000, "amount": -3}\n[1]\n')
    assert main(["--bootstrap-servers", f"127.0.0.1:{_closed_port()}", "publish", "--file", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == ["e.jsonl line 2", "e.jsonl line 3", "e.jsonl line 4", "e.jsonl"], lines
    assert "not JSON" in lines[0] and "bad amount" in lines[1] and "expected a JSON object" in lines[2]
