"""``churnwatch forward --url URL``: POST each alert to a CRM webhook (streams/forward)."""

from __future__ import annotations

import argparse
import asyncio
import signal

from streams.cli.alerts import parse_kinds, parse_seconds
from streams.cli.argtypes import positive_int
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True,
                        help="the receiver's URL (http:// or https://), its final address: redirects are not followed "
                             "(a 3xx is dead-lettered with its Location); the secret is CHURNWATCH_FORWARD_SECRET")
    parser.add_argument("--timeout", default="10s", metavar="S", help="per request (default 10s)")
    parser.add_argument("--max-attempts", type=positive_int("attempts"), default=8,
                        help="tries before an alert goes to the dead-letter topic (default 8)")
    parser.add_argument("--backoff-max", default="30s", metavar="S", help="longest wait between tries (default 30s)")
    parser.add_argument("--kind", default=None, metavar="KIND[,KIND]",
                        help="POST only alerts of these kinds, as `churnwatch alerts --kind` ('account' for every account "
                             "kind: a B2B CRM's choice, docs/ALERTS.md); the others are passed over (default: all)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="a new forwarder group starts at the oldest alert (default: new alerts only)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.forward.service import ForwardOptions, forward

    opts = ForwardOptions(
        url=args.url, secret=settings.forward_secret.encode(), timeout_s=parse_seconds(args.timeout, name="--timeout"),
        max_attempts=args.max_attempts, backoff_max_s=parse_seconds(args.backoff_max, name="--backoff-max"),
        from_beginning=args.from_beginning, kinds=parse_kinds(args.kind),
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        only = f", only {', '.join(sorted(opts.kinds))}" if opts.kinds else ""
        print(f"forwarding {settings.topic_alerts} to {args.url} (group {settings.forward_group}, "
              f"dead letters to {settings.topic_alerts_dlq}{only}); Ctrl-C stops", flush=True)
        stats = await forward(settings, opts, stop)
        passed = f", {stats.passed_over} passed over (--kind)" if opts.kinds else ""
        print(f"stopped: {stats.delivered} delivered, {stats.dead_lettered} dead-lettered, {stats.retries} retries{passed}",
              flush=True)
        return 0

    return asyncio.run(main())
