"""The ``churnwatch`` command: one subcommand per module, loaded only when used.

Each command module exposes ``add_arguments(parser)`` and ``run(args, settings) -> int``.
A bad argument or setting prints one readable line and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn, Sequence

from streams.settings import Settings, SettingsError

__all__ = ["main", "COMMANDS", "UserError"]


class UserError(Exception):
    """Something the user can fix (a missing file, an unreachable server): one line, exit 2."""


#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("streams.cli.demo", "start broker, Redis, workers and the simulator; show alerts as they come"),
    "worker": ("streams.worker.service", "run a stream worker (Faust app with a batch consumer)"),
    "topics": ("streams.worker.topics", "create the topics (explicit partition counts)"),
    "publish": ("streams.publisher", "publish events from a JSON-lines or CSV file"),
    "simulate": ("streams.offline.simulate", "publish a simulated population with known behaviour and write its ground truth"),
    "alerts": ("streams.cli.alerts", "follow the at-risk topic and print alerts (readable or JSON lines)"),
    "score": ("streams.cli.report", "show one user's live scores and reasons"),
    "top": ("streams.cli.report", "the users most likely to churn, ranked"),
    "churn-rate": ("streams.cli.report", "churn rate by count, percent and revenue"),
    "backtest": ("streams.offline.backtest", "score historical events as of given dates with the stream's own code"),
    "train": ("streams.offline.train", "fit risk weights (and BG/NBD, population) on labelled history; write a model file"),
}


class _Parser(argparse.ArgumentParser):
    """argparse prints the usage block before an error; we print the one line (``-h`` has the rest)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="churnwatch", description="Real-time customer churn detection on Kafka and Redis.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default from CHURNWATCH_LOG_LEVEL or INFO)")
    parser.add_argument("--bootstrap-servers", default=None, help="Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--redis-url", default=None, help="Redis URL (env REDIS_URL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_missing=True)
            continue
        adder = getattr(mod, f"add_{name.replace('-', '_')}_arguments", None) or getattr(mod, "add_arguments")
        adder(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"churnwatch: error: the {args.command!r} command is not built yet", file=sys.stderr)
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
        from streams.redact import install as redact_logs

        redact_logs(settings)  # libraries log secrets too (kafka-python's admin config at DEBUG)
        mod = importlib.import_module(args._module)
        runner = getattr(mod, f"run_{args.command.replace('-', '_')}", None) or getattr(mod, "run")
        return int(runner(args, settings) or 0)
    except (SettingsError, UserError, FileNotFoundError, ValueError) as exc:
        print(f"churnwatch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
