"""Faults a fresh user met following the README (QA pass of December 2026), each pinned down.

All pure or on closed ports (nothing listens): no broker, no Redis, each case well under a second
but the two subprocess cases (~1-2 s each).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streams.cli import main
from streams.local import free_port

ROOT = Path(__file__).resolve().parents[1]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    return lines[0]


@pytest.mark.parametrize("argv", [["topics"], ["relayout"], ["digest", "--all-owners"], ["top", "--owner", "alice"]],
                         ids=lambda a: " ".join(a))
def test_commands_that_read_kafka_say_so_in_one_line_when_no_broker_answers(argv: list[str],
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`digest --all-owners` and `top --owner` printed a kafka-python traceback after ~30 s of retries;
    `topics` and `relayout` took 30 s and logged ERROR lines before their one line."""
    code = main(["--bootstrap-servers", f"127.0.0.1:{free_port()}", *argv])
    assert code == 2
    assert "cannot reach Kafka" in _one_line(capsys.readouterr().err)


def test_worker_metrics_port_0_is_one_line_not_fausts_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--metrics-port", "0"]) == 2
    assert "metrics_port must be a TCP port (1-65535), got 0" in _one_line(capsys.readouterr().err)


def test_worker_metrics_port_in_use_is_one_line_not_fausts_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """QA 2026-12: a port another process listens on gave faust's 45-line OSError traceback, exit 1,
    after the topic check. Refused before any Kafka or Redis connection (closed ports here)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--bootstrap-servers", f"127.0.0.1:{free_port()}", "--redis-url", f"redis://127.0.0.1:{free_port()}/0",
                     "worker", "--metrics-port", str(port), "--metrics-bind", "127.0.0.1"])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("churnwatch worker: error: cannot serve metrics on 127.0.0.1:") and "in use" in line, line


def test_a_redis_error_reply_is_one_line(redis_url: str) -> None:
    """`REDIS_URL=redis://host/99` (a database the server lacks) ended in a ResponseError traceback."""
    from streams.errors import UserError
    from streams.settings import Settings
    from streams.views import open_reader

    wrong_db = redis_url.rsplit("/", 1)[0] + "/99" if redis_url.count("/") > 2 else redis_url + "/99"
    with pytest.raises(UserError, match=r"Redis at redis://127\.0\.0\.1:\d+/99 refused: DB index is out of range"):
        with open_reader(Settings(redis_url=wrong_db)):
            pass


def test_output_cut_short_by_the_reader_is_no_traceback() -> None:
    """`churnwatch accounts list | head` printed a BrokenPipeError traceback."""
    code = textwrap.dedent("""
        import sys, types
        import streams.cli as cli
        cmd = types.ModuleType("qa_many_lines")
        cmd.add_arguments = lambda parser: None
        def run(args, settings):
            for i in range(200_000):
                print(f"line {i}")
            return 0
        cmd.run = run
        sys.modules["qa_many_lines"] = cmd
        cli.COMMANDS["many"] = ("qa_many_lines", "prints a lot")
        sys.exit(cli.main(["many"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=20) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_cli_output_carries_no_kafka_client_info_lines() -> None:
    """`simulate`, `publish`, `top --owner` and `digest` printed ~20 kafka-python INFO lines each."""
    import logging

    probe = textwrap.dedent("""
        import logging, sys, types
        import streams.cli as cli
        cmd = types.ModuleType("qa_levels")
        cmd.add_arguments = lambda parser: None
        cmd.run = lambda args, settings: print(logging.getLogger("kafka").getEffectiveLevel(),
                                               logging.getLogger("aiokafka").getEffectiveLevel())
        sys.modules["qa_levels"] = cmd
        cli.COMMANDS["levels"] = ("qa_levels", "")
        sys.exit(cli.main(["levels"]))
    """)
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split() == [str(logging.WARNING)] * 2


@pytest.mark.parametrize("argv, levels", [
    (["score"], ["CRITICAL", "CRITICAL"]),      # read-only: kafka-python's loop warnings are no news to its user
    (["accounts", "show"], ["CRITICAL", "CRITICAL"]),
    (["accounts", "import"], ["WARNING", "WARNING"]),  # writes: as before
    (["worker"], ["WARNING", "NOTSET"]),        # the worker's own logs unchanged (aiokafka's INFO kept)
])
def test_read_only_commands_print_no_kafka_client_warnings(argv: list[str], levels: list[str]) -> None:
    """QA11 F9: `accounts show` and `score` printed 16 kafka-python WARNING lines ("Task ... ran for
    0.365s ... blocking the event loop") under load. The CLI's logging setup quiets the Kafka
    clients for the commands that only read (their errors too since QA18 F9); a service keeps its levels."""
    probe = textwrap.dedent(f"""
        import logging, sys, types
        import streams.cli as cli
        cmd = types.ModuleType("qa_levels")
        def add_arguments(parser):
            parser.add_argument("action", nargs="?")
        cmd.add_arguments = add_arguments
        cmd.run = lambda args, settings: print(logging.getLevelName(logging.getLogger("kafka").level),
                                               logging.getLevelName(logging.getLogger("aiokafka").level))
        sys.modules["qa_levels"] = cmd
        cli.COMMANDS[{argv[0]!r}] = ("qa_levels", "")
        sys.exit(cli.main({argv!r}))
    """)
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split() == levels


_LIBRARY_NOISE = textwrap.dedent("""
    import logging, sys, types
    import streams.cli as cli
    cmd = types.ModuleType("qa_noise")
    def add_arguments(parser):
        parser.add_argument("--owner")
        parser.add_argument("--fail", action="store_true")
    def run(args, settings):
        # what kafka-python 3 logged while `top --owner` / `accounts show` closed their clients (QA18 F9)
        try:
            None.recv(4096)
        except AttributeError:
            logging.getLogger("kafka.net.transport").exception("<KafkaTCPTransport [none] (closed)>: Error receiving network data closing socket")
        logging.getLogger("kafka.cluster").error("Metadata refresh: failed %s", "Cancelled")
        if args.fail:
            from kafka.errors import KafkaConnectionError
            raise KafkaConnectionError("no broker answered\\nsecond line")
        print("  #  account  risk")
    cmd.add_arguments, cmd.run = add_arguments, run
    sys.modules["qa_noise"] = cmd
    cli.COMMANDS["top"] = ("qa_noise", "")
    sys.exit(cli.main(sys.argv[1:]))
""")


def _noise(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _LIBRARY_NOISE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_read_only_commands_hide_library_errors_they_recover_from() -> None:
    """QA18 F9: `top --owner ana` began with kafka-python's ERROR line and a 5-line traceback of
    ``'NoneType' object has no attribute 'recv'``, `accounts show` with "ERROR kafka.cluster:
    Metadata refresh: failed Cancelled": both logged while closing a client, the command went on.
    Now only the command's output; ``--log-level DEBUG`` still shows the clients' lines."""
    quiet = _noise("top", "--owner", "ana")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "  #  account  risk\n", "")
    loud = _noise("--log-level", "DEBUG", "top", "--owner", "ana")
    assert loud.returncode == 0 and "Metadata refresh: failed Cancelled" in loud.stderr and "Traceback" in loud.stderr


def test_a_client_error_that_stops_a_command_is_one_line() -> None:
    """An unreachable service gets one readable line and no traceback (exit 1), the loggers quiet or not."""
    out = _noise("top", "--owner", "ana", "--fail")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == ["churnwatch top: error: kafka KafkaConnectionError: no broker "
                                       "answered (--log-level DEBUG shows the client's own lines)"]


def test_demo_summary_counts_the_replay_against_the_events_generated() -> None:
    """Stopped by --duration mid-replay, the summary said "processed 147,083 of 0 events"."""
    from streams.cli.demo import _Tally, processed_line

    t = _Tally(processed=147_083, to_publish=185_144, publish_started_s=23.8)
    assert processed_line(t).split()[1:] == ["147,083", "of", "185,144", "events", "(replay", "not", "finished)"]
    assert " of 0 " not in processed_line(_Tally())
    done = _Tally(processed=185_144, to_publish=185_144, published=185_144, publish_started_s=10.0, replay_done_s=30.0)
    assert "185,144 events in 20.0 s" in processed_line(done)


def test_demo_logs_go_where_gitignore_and_make_clean_look() -> None:
    """The demo wrote its logs to streams/.churnwatch/demo, which neither .gitignore nor `make clean` names."""
    from streams.cli.demo import DemoOptions

    assert DemoOptions().workdir == ROOT / ".churnwatch" / "demo"
    assert "rm -rf $(VENV) $(QVENV) .churnwatch" in (ROOT / "Makefile").read_text()


def test_empty_charts_have_distinct_whole_ticks_and_no_minus_zero() -> None:
    """The churn page of a product without accounts showed y ticks "1, 0, 0" and "-0"."""
    from streams.console import svg

    def ticks(chart: str) -> list[str]:
        return re.findall(r'class="tick">([^<]*)</text>', chart)

    y = ticks(svg.bars(["2026-11"], [("won", "#0a0", [0.0]), ("lost", "#a00", [0.0])]))[:3]
    assert y == ["0", "1", "2"]
    assert ticks(svg.bars(["a", "b"], [("n", "#000", [3.0, 1.0])]))[:3] == ["0", "2", "4"]
    mrr = ticks(svg.mrr_chart(["2026-11"], [0.0], [{}]))
    assert "-0" not in mrr and len(mrr) == len(set(mrr))
    small_loss = ticks(svg.mrr_chart(["2026-11"], [50.0], [{"new": 50.0, "contraction": 0.3}]))  # a plan 30 cents cheaper
    assert "-0" not in small_loss and len(small_loss) == len(set(small_loss))


def test_console_pages_count_in_words() -> None:
    """"last 1 days", "the first 1 users of the save list", "1 paying accounts": counts on the pages go
    through the reasons' singular/plural rule (the ``counted`` filter), none is written "N nouns"."""
    from streams.console.pages import templates

    folder = ROOT / "streams" / "console" / "templates"
    slips = [(f.name, m[0]) for f in sorted(folder.glob("*.html"))
             for m in re.finditer(r"\}\}\s+(?:paying\s+)?(?:users|days|accounts|weeks|events)\b", f.read_text())]
    assert slips == []
    page = templates.get_template("quadrant.html").render(n=1, as_of_ms=0, chart="", zones={}, cut_h=50)
    assert "the first 1 user of the save list" in page
    assert [templates.filters["counted"](n, "day") for n in (0, 1, 30)] == ["0 days", "1 day", "30 days"]


def test_score_text_counts_in_words() -> None:
    from streams.cli.score import _count

    assert [_count(1, "event"), _count(0, "day"), _count(19, "event")] == ["1 event", "0 days", "19 events"]


def test_alerts_knows_the_account_alerts_its_topic_carries() -> None:
    """`churnwatch alerts --kind account_at_risk` was refused, and account alerts printed as "user ?"."""
    from streams.cli.alerts import format_alert, parse_kinds

    assert parse_kinds("account_at_risk,trial-ending") == {"account_at_risk", "trial_ending"}
    line = format_alert({"kind": "account_at_risk", "account_id": "acct1", "event_time_ms": 1787170715000, "risk": 0.7,
                         "stage": "customer", "action": "check_in", "reasons": ["2 of 3 users silent"]})
    assert "ACCOUNT AT RISK account acct1 risk 0.70" in line and "user ?" not in line


def test_a_bad_log_level_stops_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """CHURNWATCH_LOG_LEVEL=LOUD ran silently at INFO, against docs/OPERATE.md ("a bad value stops the process")."""
    assert main(["--log-level", "LOUD", "score", "u1"]) == 2
    assert "log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'" in _one_line(capsys.readouterr().err)


def test_a_missing_model_file_is_not_called_a_redis_fault(redis_url: str, tmp_path: Path) -> None:
    """`CHURNWATCH_MODEL_PATH=/nope.json churnwatch score U` said "cannot reach Redis at ...: model file ... does not exist"."""
    from streams.errors import UserError
    from streams.settings import Settings
    from streams.views import open_reader

    with pytest.raises(FileNotFoundError, match="nope"):
        with open_reader(Settings(redis_url=redis_url)):
            raise FileNotFoundError(f"model file {tmp_path / 'nope.json'} does not exist")
    with pytest.raises(UserError, match="cannot reach Redis"):
        with open_reader(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")):
            raise ConnectionRefusedError(111, "Connection refused")


def test_a_reader_with_another_key_layout_refuses_instead_of_printing_a_wrong_list(redis_url: str) -> None:
    """`CHURNWATCH_BUCKETS=32 churnwatch top` over workers' 64 buckets printed another (wrong) top list;
    workers refuse such a mismatch, the CLI and the console now do too (the console answers 503)."""
    import asyncio

    from streams.console.deps import Deps, Unavailable
    from streams.errors import UserError
    from streams.settings import Settings
    from streams.views import open_reader
    from streams.worker.store import Store

    workers = Settings(redis_url=redis_url)

    async def first_worker() -> None:
        store = Store(workers)
        try:
            await store.connect()  # records the layout in cw:meta
        finally:
            await store.close()

    asyncio.run(first_worker())
    with open_reader(workers):
        pass  # same layout: no complaint
    other = workers.with_(buckets=32)
    with pytest.raises(UserError, match="says buckets=64, groups_per_bucket=256, format=1 but these settings have buckets=32"):
        with open_reader(other):
            pass

    async def console_page() -> None:
        deps = Deps.from_settings(other)
        try:
            await deps.now_ms()
        finally:
            await deps.store.close()

    with pytest.raises(Unavailable, match="buckets=32"):
        asyncio.run(console_page())


# -- QA pass 2 (December 2026) ------------------------------------------------------------------


def test_publish_of_a_csv_with_an_unknown_header_says_which_columns_it_expected(tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # it read the header as data: "line 1: timestamp 'time' ..." and nothing about the columns
    bad = tmp_path / "events.csv"
    bad.write_text("user,time,event,amount\nu1,2026-01-02T00:00:00Z,order,12.5\n")
    assert main(["publish", "--file", str(bad)]) == 2  # fails on the check, before any broker
    err = _one_line(capsys.readouterr().err)
    assert "line 1" in err and "names user, time, event, amount" in err and "user_id, ts, event_type" in err, err
    data = tmp_path / "data.csv"  # a bad data line keeps its own message: no header to explain
    data.write_text("user_id,ts,event_type\nu1,2026-01-02T00:00:00Z,order\nu2,yesterday,order\n")
    assert main(["publish", "--file", str(data)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "line 3" in err and "header" not in err, err


def test_accounts_list_of_an_empty_table_says_there_are_none(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import streams.cli.accounts as accounts
    import streams.publisher as publisher

    monkeypatch.setattr(publisher, "check_kafka_reachable", lambda settings: None)
    monkeypatch.setattr(accounts, "read_accounts", lambda settings, timeout_s: {})
    assert main(["accounts", "list"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("no accounts in "), (out, err)  # stdout stays JSON lines


@pytest.mark.parametrize("value", ["-5", "0", "0s"])
def test_demo_duration_message_agrees_with_its_check(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    # "-5" said "0 seconds or more", and then 0 was refused too
    assert main(["demo", "--duration", value]) == 2
    assert f"--duration must be a duration of more than 0 seconds, got '{value}'" in _one_line(capsys.readouterr().err)


def test_only_a_closed_stdout_pipe_is_the_readers_broken_pipe(monkeypatch) -> None:
    """A BrokenPipeError exits quietly (141) only when our stdout's reader is gone; any other broken
    pipe (a socket's) is an error to report (found in review: every broken pipe was silenced)."""
    import streams.cli as cli

    class Out:
        def __init__(self, fd: int) -> None:
            self.fd = fd

        def fileno(self) -> int:
            return self.fd

    read_end, write_end = os.pipe()
    try:
        monkeypatch.setattr(sys, "stdout", Out(write_end))
        assert cli._stdout_closed() is False  # the reader is still there
        os.close(read_end)
        read_end = -1
        assert cli._stdout_closed() is True
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)


def _record(name: str, msg: str, created: float, *args: object) -> "logging.LogRecord":
    import logging

    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
    record.created = created
    return record


def test_a_broker_outage_logs_each_kind_of_kafka_error_once_per_period_with_a_count() -> None:
    """QA: ~1,450 aiokafka ERROR lines in 22 s from one worker while the broker was down."""
    from streams.kafka_admin import RepeatLimit

    limit = RepeatLimit(every_s=10.0)
    shown = [r.getMessage() for r in (_record("aiokafka.conn", "Unable connect to %s", 100.0 + i / 10, f"node-{i % 3}")
                                       for i in range(221)) if limit.filter(r)]
    # 22 s of retries: at 100, 110 and 120 s; the later ones say how many were held back
    assert shown == ["Unable connect to node-0",
                     "Unable connect to node-1 (99 more like this in the last 10 s not shown)",
                     "Unable connect to node-2 (99 more like this in the last 10 s not shown)"]
    other = _record("aiokafka.consumer.fetcher", "Failed fetch messages from %s", 100.5, "node-1")
    assert limit.filter(other), "another kind of error is not held back by the first"
    assert limit.filter(_record("streams.worker.consumer", "cycle failed", 100.6)) and \
        limit.filter(_record("streams.worker.consumer", "cycle failed", 100.7)), "churnwatch's own lines all pass"


def test_worker_serves_healthz_while_the_broker_is_unreachable_at_start(redis_url: str, tmp_path: Path) -> None:
    """QA 2026-12: with Kafka unreachable the worker checked its topics (up to its timeouts, ~30 s)
    before its web server started: no /healthz, though OPERATE.md says 200 while the process
    runs. /healthz now answers before that check has given up (its warning not yet logged), and
    /readyz says 503 (no partitions)."""
    import time
    import urllib.error
    import urllib.request

    from tests.harness import Worker

    def status(port: int, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    topics = {"events": "e", "alerts": "a", "dlq": "d", "group": "g"}
    worker = Worker(f"127.0.0.1:{free_port()}", redis_url, topics, tmp_path / "worker.log").start()
    try:
        healthy = 0
        while worker.proc is not None and worker.proc.poll() is None and "could not check/create topics" not in worker.output():
            healthy = status(worker.metrics_port, "/healthz")
            if healthy:
                break
            time.sleep(0.05)  # not a bound: only not to spin
        gave_up = "could not check/create topics" in worker.output()
        ready = status(worker.metrics_port, "/readyz")
    finally:
        code = worker.stop()
    assert healthy == 200 and not gave_up, worker.output()[-2000:]
    assert ready == 503
    assert code == 0, "a stop during the topic check does not wait for it, nor is killed"
