"""The filter of docs/OPERATE.md "Repair after the clock jumped", step 3: which records of the old
events topic to copy into the new one.

Reads the lines ``kafka-console-consumer.sh --property print.headers=true --property
print.key=true`` prints (``headers<TAB>key<TAB>value``) on stdin and writes ``key<TAB>value`` for
``kafka-console-producer.sh --property parse.key=true`` on stdout, leaving out

- the records churnwatch wrote there itself (a ``churnwatch-*`` header: re-routed copies, account
  copies, heartbeats), and
- the events dated before ``T0``, the cut of step 2: the history published into the old topic by
  mistake (it has no such header) was published again into the new topic up to T0, so copying it
  would apply it twice, or dead-letter it as ``late`` behind the live events (review 10 B1).

The event time is the worker's own reading (``streams.worker.codec.Decoder``: ``ts`` in ms, s or
ISO text), so "before T0" means what it means to the workers. A record that is no event (bad
JSON, no ``ts``) is copied as it is: the workers dead-letter it in the new topic as in the old.

Usage: ``python -m streams.worker.repair_copy T0`` (T0 in epoch milliseconds or ISO 8601, the time of the
first live event, which step 2 published up to, exclusive).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Iterable, Iterator, TextIO

from models.events import Event
from streams.worker.codec import Decoder

__all__ = ["kept_lines", "main"]


def kept_lines(lines: Iterable[str], t0_ms: int, decoder: Decoder, wall_now_ms: int) -> Iterator[str]:
    """``key<TAB>value`` of each record to copy (see the module's docstring), in their order.

    >>> lines = ['NO_HEADERS\\tu1\\t{"user_id":"u1","type":"view","ts":"2026-01-01T00:00:00Z"}\\n',
    ...          'NO_HEADERS\\tu2\\t{"user_id":"u2","type":"view","ts":1790000000000}\\n',
    ...          'churnwatch-account:x\\tacme\\t{"user_id":"u2","type":"view","ts":1790000000000}\\n',
    ...          'NO_HEADERS\\tu3\\tnot json\\n']
    >>> list(kept_lines(lines, 1780000000000, Decoder(), 1790000000000))
    ['u2\\t{"user_id":"u2","type":"view","ts":1790000000000}\\n', 'u3\\tnot json\\n']
    """
    for line in lines:
        headers, sep, rest = line.partition("\t")
        if not sep or "churnwatch-" in headers:
            continue
        value = rest.partition("\t")[2].rstrip("\n")
        ev = decoder.decode(value.encode(), wall_now_ms)
        if isinstance(ev, Event) and ev.ts_ms < t0_ms:
            continue
        yield rest if rest.endswith("\n") else rest + "\n"


def parse_t0(text: str) -> int:
    """T0 as epoch milliseconds, from milliseconds or ISO 8601 text (what the worker reads as ``ts``)."""
    value = json.dumps({"user_id": "t0", "type": "t0", "ts": int(text) if text.isdigit() else text})
    ev = Decoder().decode(value.encode(), int(time.time() * 1000) + 10**12)  # any T0 up to decades ahead
    if not isinstance(ev, Event):
        raise SystemExit(f"T0 {text!r} is not a time in ms or ISO 8601: {ev.detail}")
    return ev.ts_ms


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    t0_ms, decoder = parse_t0(args[0]), Decoder()
    for line in kept_lines(stdin, t0_ms, decoder, int(time.time() * 1000)):
        stdout.write(line)
        stdout.flush()  # the copy runs while the producers move: each record goes on at once
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
