"""The ``churnwatch`` command: one subcommand per module, loaded only when used.

Each command is a module of this package exposing ``add_arguments(parser)`` and
``run(args, settings) -> int``; only the module of the command given is imported, and command
modules import their heavy dependencies (numpy, scipy, Kafka clients) inside ``run``.
A bad argument or setting prints one readable line and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import importlib
import logging
import os
import select
import sys
import zlib
from typing import Any, NoReturn, Sequence

from streams.errors import UserError
from streams.settings import Settings, SettingsError

__all__ = ["main", "COMMANDS"]

#: One BLAS thread unless the operator sets it (before any command imports numpy): the fits of
#: ``train`` have tens of parameters, and OpenBLAS's idle threads spin beside scipy's L-BFGS-B.
#: Measured on 2 cores (load 1.5): ``train --churn-after`` on the quality table's CDNOW half
#: took 12.4-16.0 s wall (10.4-12.7 s CPU) with the default threads, 3.2-5.6 s (3.0-3.2 s)
#: with one; the model files are identical (tests/conftest.py sets the same for the suite).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("streams.cli.demo", "start broker, Redis, workers and the simulator; show alerts as they come"),
    "worker": ("streams.cli.worker", "run a stream worker (Faust app with a batch consumer)"),
    "topics": ("streams.cli.topics", "create the topics (explicit partition counts)"),
    "relayout": ("streams.cli.relayout", "move the state to the events topic's new partition count (workers stopped)"),
    "publish": ("streams.cli.publish", "publish events from a JSON-lines or CSV file"),
    "simulate": ("streams.cli.simulate", "publish a simulated population with known behaviour and write its ground truth"),
    "alerts": ("streams.cli.alerts", "follow the at-risk topic and print alerts (readable or JSON lines)"),
    "dlq": ("streams.cli.dlq", "read the dead letters: why each record was refused, where it came from, what it held"),
    "score": ("streams.cli.score", "show one user's live scores and reasons"),
    "top": ("streams.cli.top", "today's ranked list within a budget: users to save, or --win-back the lapsed"),
    "churn-rate": ("streams.cli.churn_rate", "churn rate by count, percent and revenue"),
    "backtest": ("streams.cli.backtest", "score historical events as of given dates with the stream's own code"),
    "train": ("streams.cli.train", "fit risk weights (and BG/NBD, population) on labelled history; write a model file"),
    "learn": ("streams.cli.learn", "learn a successor of the model in use from the stream's own outcomes; workers adopt it if it beats the current one"),
    "report": ("streams.cli.revenue", "churn in money and count over a history file: MRR movements, churn rates, NRR, cohorts"),
    "digest": ("streams.cli.digest", "an owner's daily digest: the accounts to save today (print, or publish to the digest topic)"),
    "accounts": ("streams.cli.accounts", "account facts (name, owner, segment, renewal): import a CSV to the compacted accounts topic"),
    "console": ("streams.cli.console", "serve the account managers' pages and the JSON API from the live state"),
    "forward": ("streams.cli.forward", "POST each alert to a CRM webhook (signed, retried, dead-lettered)"),
    "erase": ("streams.cli.erase", "delete users' data from Redis and keep them erased (personal data: README)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse prints the usage block before an error; we print the one line (``-h`` has the rest).
    An unknown option is named before a missing required one: argparse checks the required ones
    first, so ``churnwatch digest --bogus`` answered "one of the arguments --owner --all-owners is
    required" and said nothing of ``--bogus`` (QA19 F12)."""

    _argv: Sequence[str] | None = None
    #: the subcommands' parsers by name (the top-level parser's): an argument no parser took is
    #: named by its command's parser ("churnwatch dlq: error: ..."), as every other line is
    commands: dict[str, argparse.ArgumentParser] = {}

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None) -> Any:  # type: ignore[override]
        self._argv = list(sys.argv[1:] if args is None else args)  # what :meth:`error` looks through
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        unknown = self._unknown_options() if "required" in message else []
        if unknown:
            message = f"unrecognized arguments: {' '.join(unknown)}"
        elif message.endswith(": expected one argument"):
            message = self._option_like_value(message)
        if message.startswith("unrecognized arguments: "):
            message += self._did_you_mean(message.removeprefix("unrecognized arguments: ").split())
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _did_you_mean(self, tokens: list[str]) -> str:
        """The option an unknown one was most likely meant to be (QA23a F9: ``top --winback`` said
        only "unrecognized arguments"), by ``difflib``'s closeness among this parser's options."""
        known = [o for o in self._option_string_actions if o.startswith("--")]
        guesses = [m[0] for t in tokens if t.startswith("--") for m in [difflib.get_close_matches(t.split("=")[0], known, n=1)] if m]
        return f" (did you mean {' / '.join(dict.fromkeys(guesses))}?)" if guesses else ""

    def _option_like_value(self, message: str) -> str:
        """argparse reads a value that starts with "-" as an option: ``backtest --horizon -3d`` said
        "expected one argument" (QA21 F11). The value is judged by the option's own type when it has
        one (its error is the line), else the line says how to give it (``--horizon=-3d``)."""
        argv = list(self._argv or [])
        for i, token in enumerate(argv[:-1]):
            action = self._option_string_actions.get(token)
            value = argv[i + 1]
            if action is None or f"argument {'/'.join(action.option_strings)}:" not in message or not value.startswith("-"):
                continue
            if callable(action.type):
                try:
                    action.type(value)
                except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
                    return f"argument {'/'.join(action.option_strings)}: {exc}"
            return f"{message} (it reads {value!r} as an option: write {token}={value})"
        return message

    def _unknown_options(self) -> list[str]:
        """The options of the last arguments parsed that this parser does not know, found by parsing
        them again with nothing required."""
        argv, groups = self._argv or [], self._mutually_exclusive_groups
        required = [(a, a.required) for a in self._actions] + [(g, g.required) for g in groups]
        for item, _ in required:
            item.required = False
        try:
            _, extras = super().parse_known_args(argv, None)
        finally:
            for item, flag in required:
                item.required = flag
        return [e for e in extras if e.startswith("-") and e != "-"]


_GLOBAL_OPTIONS_WITH_VALUE = ("--log-level", "--bootstrap-servers", "--redis-url")


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (global options before it take one value each), if any."""
    tokens = iter(argv)
    for token in tokens:
        if token in COMMANDS:
            return token
        if token in _GLOBAL_OPTIONS_WITH_VALUE:
            next(tokens, None)
        elif not token.startswith("-"):
            return None  # not a command: argparse says so in one line
    return None


def _parser(command: str | None) -> argparse.ArgumentParser:
    """The full parser, with the arguments of ``command`` only: its module is the only one imported,
    so ``churnwatch alerts --help`` does not pay for numpy and scipy."""
    parser = _Parser(prog="churnwatch", description="Real-time customer churn detection on Kafka and Redis.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default from CHURNWATCH_LOG_LEVEL or INFO)")
    parser.add_argument("--bootstrap-servers", default=None, help="Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--redis-url", default=None, help="Redis URL (env REDIS_URL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    parser.commands = dict(sub.choices)
    return parser



#: Long-running commands whose logs an operator reads (streams.kafka_admin.quiet_kafka_logs).
_SERVICES = frozenset({"worker", "forward", "learn"})
#: Commands that only read (Kafka and Redis): the Kafka clients' warnings are not for their user
#: (streams.kafka_admin.quiet_kafka_logs ``read_only``); ``accounts import`` writes, so not it.
_READ_ONLY = frozenset({"alerts", "dlq", "score", "top", "churn-rate", "digest", "accounts"})


def _read_only(args: argparse.Namespace) -> bool:
    return args.command in _READ_ONLY and getattr(args, "action", None) != "import"


def _client_error(exc: BaseException) -> bool:
    """An error raised by the Kafka or Redis clients (their modules, not imported here: ``--help``
    stays fast), as a broker or Redis lost in the middle of a command gives."""
    return type(exc).__module__.split(".")[0] in ("kafka", "aiokafka", "redis")


def _stdout_closed() -> bool:
    """True when stdout is a pipe whose reader is gone (poll reports POLLERR on its write end): only
    then is a BrokenPipeError the reader's doing (``| head``) and not a connection's."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no fileno (captured), no poll on this platform
        return False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(_command_in(argv))
    args, extras = parser.parse_known_args(argv)
    if extras:  # the command's parser says it, with its name (QA21 F11: "churnwatch: error: ...")
        before = args.command is None or argv.index(extras[0]) < argv.index(args.command)
        (parser if before else parser.commands[args.command]).error(f"unrecognized arguments: {' '.join(extras)}")
    if not args.command:
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env(
            kafka_bootstrap_servers=args.bootstrap_servers,
            redis_url=args.redis_url,
            log_level=args.log_level,
        )
        logging.basicConfig(
            level=getattr(logging, settings.log_level.upper(), logging.INFO),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        from streams.kafka_admin import limit_kafka_repeats, quiet_kafka_logs
        from streams.redact import install as redact_logs

        redact_logs(settings)  # libraries log secrets too (kafka-python's admin config at DEBUG)
        # every connection at INFO buried the output of simulate, publish, top --owner, digest
        quiet_kafka_logs(service=args.command in _SERVICES, read_only=_read_only(args))
        limit_kafka_repeats()  # a broker outage: one line per kind of error every 10 s, with a count
        mod = importlib.import_module(args._module)
        return int(mod.run(args, settings) or 0)
    except (SettingsError, UserError, FileNotFoundError, ValueError) as exc:
        for line in str(exc).splitlines() or [""]:  # one problem a line, each said as such (a file's bad lines)
            print(f"churnwatch {args.command}: error: {line}", file=sys.stderr)
        return 2
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a .gz read outside history.readable: still one line
        print(f"churnwatch {args.command}: error: an input file is not a whole gzip file, truncated or corrupt ({exc})",
              file=sys.stderr)
        return 2
    except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:  # a path given where a file was meant
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"churnwatch {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as exc:
        if not _stdout_closed():  # a socket's broken pipe, not our reader's: say it, in one line
            print(f"churnwatch {args.command}: error: {exc}", file=sys.stderr)
            return 1
        # the reader of our output went away (`churnwatch accounts list | head`): not an error of ours;
        # stdout is pointed at devnull so the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if not _client_error(exc):
            raise
        # a Kafka or Redis client's error that stops the command: one line (its loggers are quiet
        # in a read-only command, so this line is all its user sees of it)
        name = type(exc).__name__
        detail = (str(exc).removeprefix(f"{name}: ").strip().splitlines() or ["no detail"])[0][:300]
        print(f"churnwatch {args.command}: error: {type(exc).__module__.split('.')[0]} {name}: {detail} "
              "(--log-level DEBUG shows the client's own lines)", file=sys.stderr)
        return 1
