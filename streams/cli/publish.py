"""``churnwatch publish``: check a file of events, then publish it in event-time order (nothing is
sent if a line is bad)."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.argtypes import rate
from streams.errors import UserError
from streams.offline.bad_lines import BadLinesError
from streams.publisher import check_file, ensure_events_topic, publish_bulk, records_in_time_order
from streams.offline.history import repeats_line
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", required=True, metavar="EVENTS.jsonl|EVENTS.csv[.gz]",
                        help="events to publish (JSON lines or CSV user_id,ts,event_type,amount), in any order: "
                             "sent in event-time order (a file out of order is sorted in memory first: its records' "
                             "bytes plus ~30-40 bytes an event and each user id once, ~130 bytes for 95-byte records; too large for memory: "
                             "sort it by ts upstream, a file in time order is streamed, each user id held once)")
    parser.add_argument("--far-last-event", action="store_true",
                        help="send the file even when its latest event is one user's, more than the allowed lateness "
                             "plus a week after every other user's (refused by default: a wrong date, such as a device "
                             "clock ahead, moves every partition's clock there)")
    parser.add_argument("--rate", type=rate, default=0.0, metavar="EVENTS_PER_S",
                        help="publishing rate, paced from the first event sent; 0 = as fast as possible (default)")


def unacked_file(path: Path) -> Path:
    """Where a failed publish of ``path`` writes the events the broker did not acknowledge: beside
    it, named after it (JSON lines, whatever ``path`` was).

    >>> unacked_file(Path("/data/mix.csv.gz")), unacked_file(Path("br.jsonl"))
    (PosixPath('/data/mix.unacked.jsonl'), PosixPath('br.unacked.jsonl'))
    """
    name = path.name
    for suffix in (".gz", ".csv", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return path.with_name(f"{name}.unacked.jsonl")


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    # Check the whole file first, so a bad line never leaves half a file published; and how far it
    # is from event-time order, which the workers need (QA7 H1: in file order, an export sorted by
    # user lost 97.5% of its events to the DLQ as late).
    try:
        order = check_file(path, settings)
    except BadLinesError as exc:  # every bad line said (QA23a F9); the file is still refused whole
        if exc.bad.count == 1:
            raise
        raise UserError(f"{exc}; nothing was sent: fix them and publish the file again") from None
    if order.events == 0:
        raise UserError(f"{path}: no events in the file")
    if order.behind:
        print(order.reorder_line(path.name), flush=True)
    late_start = order.late_start_line()
    if late_start:  # users new at the file's start (QA10 F16, QA23a F6), as backtest and train say it
        print(f"WARNING: {late_start}", flush=True)
    ahead = order.ahead_line()
    if ahead and not args.far_last_event:  # QA22b F4: one row far after all others moves every partition's clock to it
        raise UserError(f"{path}: {ahead}. Nothing was sent: drop or fix that row, or pass --far-last-event if its date is right")
    if order.repeats:  # QA15 F5: bulk actions without an event_id were dead-lettered without a word
        print(f"WARNING: {repeats_line(order.repeats, path.name)}", flush=True)
    ensure_events_topic(settings)
    # Sorted (if it must be) before the producer starts: --rate paces the sending, and the seconds
    # printed are the sending's (review 11 R11-3).
    records = records_in_time_order(path, settings, order)
    stats = publish_bulk(settings, records, rate=args.rate, unacked_to=unacked_file(path))
    print(f"published {stats.events:,} events from {path} to {settings.topic_events} in {stats.seconds:.1f} s "
          f"({stats.events_per_s:,.0f} events/s from the first event sent)")
    return 0
