"""The account side's watermark: up to which event time every producing partition has sent its copies.

Why: an account's copies (member summaries, subscription statements) are made by the owners of
its *users'* partitions q and read by the owner of the *account's* partition p. Each q's copies
reach p in q's order, but copies of different q's interleave as the q's are read: during a
backlog q1 can be weeks of event time ahead of q2. Applying copies as they come then judges an
account at the wrong times (docs/REVENUE.md, "Limits"). So, as Flink's watermarks flow with the
records of each input channel and an operator's watermark is the minimum over its inputs, and as
Kafka Streams' stream time with a grace bounds how long a window waits:

- each copy carries its producing partition's *mark* (header ``churnwatch-mark``, epoch ms): q
  makes no copy earlier than it from then on. The mark is q's lateness cutoff before the cycle
  that made the copy (an event below the cutoff is rejected as ``late``, streams/worker/clock.py),
  floored to the second (a member copy's time is its user's last seen *second*), and no more than
  the marks of q's cycles whose copies are still unacknowledged (a retried send may land later);
- a producing partition also sends a *heartbeat* to every partition (a record with header
  ``churnwatch-heartbeat: <q>:<mark>``, key chosen to land there), within a second when its
  mark enters another period (``PERIOD_MS``: only whole periods are released) and every 30 s
  otherwise, so a quiet partition, or one whose users name no account, does not hold every
  account back (only once accounts are in use: a worker starts when it makes or reads a copy or a
  heartbeat, or finds that recorded in Redis at its first cycle);
- p's watermark is the minimum of the marks over all partitions of the topic, raised to the
  largest mark less the grace (``CHURNWATCH_ACCOUNT_GRACE_MS``): a partition more than the grace
  behind (a dead worker, a backlog of weeks) holds nobody back longer; its copies then count as late.

Copies below the watermark are complete: no copy earlier can come (but from a partition beyond
the grace, or after a handover lost a borrowed clock floor, streams/worker/clock.py). The account
phase applies copies below the watermark floored to a whole ``PERIOD_MS`` (:func:`release_ms`) and
holds the others (streams/worker/revenue.py): a member copy is a user's summary over one period,
complete only once the period has ended in every producing partition (streams/worker/members.py). Marks are kept in memory only: an owner taking
p learns them again from the next copies and heartbeats (at most ~30 s of holding). Pure.
"""

from __future__ import annotations

from typing import Final, Iterable, Mapping, Sequence

import orjson

from streams.timefmt import parse_ts_ms
from streams.worker.clock import NEVER
from streams.worker.partitioner import partitions_of

__all__ = ["MARK_HEADER", "HEARTBEAT_HEADER", "HEARTBEAT_EVERY_MS", "HEARTBEAT_QUIET_EVERY_MS", "KafkaCopy", "Heartbeats",
           "PERIOD_MS", "fold_marks", "heartbeat_keys", "in_flight_bounds", "mark_of", "parse_heartbeat", "release_ms",
           "stamp_marks", "watermark_ms"]

MARK_HEADER: Final[str] = "churnwatch-mark"
HEARTBEAT_HEADER: Final[str] = "churnwatch-heartbeat"
HEARTBEAT_EVERY_MS: Final[int] = 1_000  # when a partition's mark enters another period
HEARTBEAT_QUIET_EVERY_MS: Final[int] = 30_000  # otherwise: a new owner of p learns it within this
KafkaCopy = tuple[bytes, bytes | None, list[tuple[str, bytes]]]
#: A member copy sums up one user over one period of event time (UTC hours: streams/worker/members.py);
#: the account side applies nothing of a period before every producing partition has passed its end.
#: An hour, not a day: the tightest account rule, the 24 h trial reminder, must still leave before
#: the trial ends (a period adds up to this much to the allowed lateness an account alert waits).
PERIOD_MS: Final[int] = 3_600_000


def mark_of(cutoff_ms: int) -> int:
    """A partition's mark from its lateness cutoff: floored to the second (member copies carry
    their user's last seen second). NEVER stays NEVER.

    >>> mark_of(10_500), mark_of(NEVER) == NEVER
    (10000, True)
    """
    return NEVER if cutoff_ms <= NEVER else cutoff_ms // 1000 * 1000


def watermark_ms(marks: Mapping[int, int], partitions: int, grace_ms: int) -> int:
    """p's watermark: the least mark over partitions ``0..partitions-1`` (NEVER for one not heard
    from), raised to the largest mark less ``grace_ms``.

    >>> watermark_ms({0: 5_000, 1: 9_000}, 2, 10_000), watermark_ms({0: 5_000, 1: 9_000}, 2, 1_000)
    (5000, 8000)
    >>> watermark_ms({0: 5_000}, 2, 1_000), watermark_ms({}, 2, 1_000) == NEVER
    (4000, True)
    """
    if grace_ms < 0:
        raise ValueError(f"grace_ms must be >= 0 ms, got {grace_ms}")
    least = min((marks.get(q, NEVER) for q in range(partitions)), default=NEVER)
    most = max(marks.values(), default=NEVER)
    return least if most == NEVER else max(least, most - grace_ms)


def release_ms(watermark: int, period_ms: int = PERIOD_MS) -> int:
    """What the account side may apply (copies, due reviews strictly below it): the watermark floored
    to the start of its period, so every copy of a period that has not ended everywhere waits, and
    a member's copy of a period (its versions from several cycles, merged) is applied once, whole,
    at its first event, with nothing of the account applied past that time before it. NEVER stays.

    >>> release_ms(7_200_000 + 5_000), release_ms(NEVER) == NEVER
    (7200000, True)
    """
    if period_ms <= 0:
        raise ValueError(f"period_ms must be > 0 ms, got {period_ms}")
    return NEVER if watermark <= NEVER else watermark // period_ms * period_ms


def stamp_marks(copies: Iterable[KafkaCopy], marks: Mapping[int, int]) -> None:
    """Add the mark of each copy's producing partition (the first header's ``<q>:<offset>``) to
    its headers, in place. A copy of a partition without a mark gets none (it holds nobody back).

    >>> c = (b"acme", b"{}", [("churnwatch-account", b"3:17")])
    >>> stamp_marks([c], {3: 5000}); c[2][-1]
    ('churnwatch-mark', b'5000')
    """
    for _, _, headers in copies:
        q = int(headers[0][1].split(b":", 1)[0])
        mark = marks.get(q, NEVER)
        if mark != NEVER:
            headers.append((MARK_HEADER, b"%d" % mark))


def in_flight_bounds(copies: Iterable[KafkaCopy]) -> dict[int, int]:
    """What a cycle in flight bounds the marks of later cycles by: its copies are not acknowledged
    yet (a retried send may land after a later cycle's), so a later mark of q must not pass the
    earliest of them from q (its time floored to the second); nothing for a q it made none from.

    Until 4 December 2026 the bound was the mark the cycle's copies carried. With cycles always
    overlapping (``pipeline_depth`` 2 through a backlog) each cycle's mark was then at most the one
    before it, so every mark of a replay stayed where its first cycle left it (NEVER on a fresh
    start: copies without a mark), no watermark moved until the backlog ended, and held copies left
    by the 500-copy bound (QA pass 15 F2: one worker, 193,876 by the bound, none by the watermark).

    >>> c = [(b"a", b'{"ts":7300}', [("churnwatch-member", b"1:4")]), (b"a", b'{"ts":"1970-01-01T00:00:05Z"}', [("churnwatch-account", b"1:5")])]
    >>> in_flight_bounds(c), in_flight_bounds([])
    ({1: 5000}, {})
    """
    out: dict[int, int] = {}
    for _, value, headers in copies:
        q = int(headers[0][1].split(b":", 1)[0])
        try:
            ts = orjson.loads(value or b"")["ts"]
            t = int(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else parse_ts_ms(str(ts))
        except Exception:  # a copy the account side dead-letters: it holds nothing back
            continue
        t = mark_of(t)
        if t < out.get(q, t + 1):
            out[q] = t
    return out


def parse_heartbeat(value: bytes) -> tuple[int, int] | None:
    """``(q, mark_ms)`` of a heartbeat header's value, or None when it is not one."""
    q, _, mark = value.decode("ascii", "replace").partition(":")
    if q.isdigit() and mark.lstrip("-").isdigit():
        return int(q), int(mark)
    return None


def heartbeat_keys(partitions: int) -> list[bytes]:
    """One record key per partition ``0..partitions-1`` that the producers' partitioner (murmur2)
    puts there, so a heartbeat keyed by it lands where it must.

    >>> from streams.worker.partitioner import partitions_of
    >>> keys = heartbeat_keys(8); partitions_of(keys, list(range(8)))
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    found: dict[int, bytes] = {}
    i = 0
    while len(found) < partitions:
        batch = [b"churnwatch-heartbeat-%d" % j for j in range(i, i + 64)]
        for key, p in zip(batch, partitions_of(batch, list(range(partitions)))):
            found.setdefault(p, key)
        i += 64
    return [found[p] for p in range(partitions)]


class Heartbeats:
    """When this worker's partitions send heartbeats, and the records (pure: wall time is an argument)."""

    __slots__ = ("keys", "sent_ms", "sent_marks", "active")

    def __init__(self, partitions: int) -> None:
        self.keys: list[bytes] = []
        self.address(partitions)
        self.sent_ms = 0
        self.sent_marks: dict[int, int] = {}
        # Off until accounts are in use: this worker made or read a copy or a heartbeat (one worker
        # making copies heartbeats to every partition, so every worker turns on within a heartbeat),
        # or Redis records that one did (a restart: streams.worker.pipeline turns it on);
        # a deployment without accounts writes no extra record.
        self.active = False

    def address(self, partitions: int) -> None:
        """Send to partitions ``0..partitions-1`` (the topic's count) from now on."""
        self.keys = heartbeat_keys(partitions)

    def due(self, marks: Mapping[int, int], wall_now_ms: int) -> list[KafkaCopy]:
        """The heartbeats to send now (to every partition, one per own partition with a mark), or none."""
        if not self.active:
            return []
        # Moved = entered another period: the account side uses the watermark floored to a period
        # (release_ms), so a mark moving within one changes nothing there; counting every move
        # heartbeated P x P records a second under traffic (every busy partition's mark moves).
        sent = self.sent_marks
        moved = any(q not in sent or sent[q] // PERIOD_MS != m // PERIOD_MS for q, m in marks.items() if m != NEVER)
        every = HEARTBEAT_EVERY_MS if moved else HEARTBEAT_QUIET_EVERY_MS
        if wall_now_ms - self.sent_ms < every:
            return []
        out = self.records({q: m for q, m in marks.items() if m != NEVER})
        if out:
            self.sent_ms, self.sent_marks = wall_now_ms, dict(marks)
        return out

    def snapshot(self) -> tuple[int, dict[int, int]]:
        """When the last heartbeats went out and with which marks: ``due`` counts them as sent when it
        returns them, so a cycle abandoned with them restores this (``restore``); else the next
        heartbeat of a mark that entered a new period waited ``HEARTBEAT_QUIET_EVERY_MS``, not 1 s.

        >>> h = Heartbeats(2); h.active = True; before = h.snapshot()
        >>> len(h.due({0: PERIOD_MS}, 10_000)), h.due({0: PERIOD_MS}, 10_500)
        (2, [])
        >>> h.restore(before); len(h.due({0: PERIOD_MS}, 10_500))
        2
        """
        return self.sent_ms, dict(self.sent_marks)

    def restore(self, snapshot: tuple[int, dict[int, int]]) -> None:
        """Back to a ``snapshot``: the heartbeats ``due`` returned since were not sent."""
        self.sent_ms, self.sent_marks = snapshot[0], dict(snapshot[1])

    def records(self, marks: Mapping[int, int]) -> list[KafkaCopy]:
        return [(key, b"", [(HEARTBEAT_HEADER, b"%d:%d" % (q, m))]) for q, m in sorted(marks.items()) for key in self.keys]


def fold_marks(into: dict[int, int], marks: Sequence[tuple[int, int]]) -> None:
    """Fold ``(q, mark)`` pairs into ``into`` (marks only rise)."""
    for q, m in marks:
        if m > into.get(q, NEVER):
            into[q] = m
