"""Reading historical events from CSV files, shared by ``train`` and ``backtest``.

Both commands must read history exactly the same way, or a model trained on one reading would
be evaluated on another. The format is the one users export from a warehouse:

``user_id,ts,event_type[,amount][,event_id]`` with or without a header row, optionally
gzip-compressed (``.gz``), rows in any order. ``ts`` is ISO-8601 (``Z``/offset; naive means UTC)
or epoch milliseconds, read by ``streams.timefmt`` exactly as the stream reads them (epoch numbers
before 2000 are taken for seconds and refused; ISO dates before 2000 are history, e.g. CDNOW).
Event names pass through a :class:`models.events.TypeMap`, so
``order``/``payment`` become ``purchase`` and unknown names become ``other``.

Accounts and subscriptions (docs/REVENUE.md) come in further columns, read by their names in the
header row only (a file without a header keeps the positional layout above): ``account_id`` on any
row, and on ``subscription`` rows ``status``, ``plan``, ``mrr`` (money, at most two decimals) and
optionally ``trial_ends`` (a time like ``ts``), e.g.
``user_id,ts,event_type,amount,account_id,status,plan,mrr``. On other rows those are ignored.

Rows without an ``event_id`` get ``<file name>:<line number>``, which keeps the order of
same-millisecond events stable between runs (ids only break ties, see ``models.events.EVENT_ORDER``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from pathlib import Path
from typing import IO, Iterator

from models.events import DEFAULT_TYPE_MAP, EVENT_ORDER, Event, EventType, TypeMap
from models.subscription import Subscription
from streams.timefmt import MIN_EVENT_MS, parse_ts_ms

__all__ = ["iter_events_csv", "read_events_csv", "read_labels_csv"]

_COLUMNS = ("user_id", "ts", "event_type", "amount", "event_id")
_EXTRA = ("account_id", "status", "plan", "mrr", "trial_ends")  # by header name only


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _rows(path: Path, wanted: tuple[str, ...]) -> Iterator[tuple[int, list[str], dict[str, int]]]:
    """(line number, row, column name -> index); the header row is optional and detected by its names."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        index = {name: i for i, name in enumerate(wanted)}
        first = True
        for lineno, row in enumerate(reader, start=1):
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].startswith("#"):
                continue
            if first:
                first = False
                names = tuple(c.strip().lower() for c in row)
                if "user_id" in names:
                    missing = [c for c in wanted[:2] if c not in names]
                    if missing:
                        raise ValueError(f"{path.name}: header has no {missing} column")
                    index = {}
                    for i, name in enumerate(names):
                        index[name] = i  # a repeated name: the last one counts
                    continue
            yield lineno, row, index


def _cell(row: list[str], i: int | None) -> str:
    return row[i].strip() if i is not None and i < len(row) else ""


def _subscription(row: list[str], columns: tuple[int | None, ...]) -> Subscription:
    """The subscription columns of one ``subscription`` row (named in the header)."""
    if columns[1] is None:
        raise ValueError("a subscription row needs a header with a status column")
    raw_ends = _cell(row, columns[4])
    ends_ms = parse_ts_ms(raw_ends) if raw_ends else 0
    return Subscription.parse(_cell(row, columns[1]), _cell(row, columns[2]), _cell(row, columns[3]), ends_ms)


def iter_events_csv(path: str | Path, type_map: TypeMap = DEFAULT_TYPE_MAP) -> Iterator[Event]:
    """Events of ``path`` in file order; a bad row raises ValueError naming file and line."""
    p = Path(path)
    kinds: dict[str, EventType] = {}  # event name as written -> as the product's vocabulary spells it
    seen_index: dict[str, int] | None = None
    extra: tuple[int | None, ...] = (None,) * 5  # account_id, status, plan, mrr, trial_ends
    for lineno, row, index in _rows(p, _COLUMNS):
        if index is not seen_index:  # once per file: the optional columns, by name
            seen_index = index
            extra = tuple(index.get(c) for c in _EXTRA)  # none without a header row
        n = len(row)
        try:
            i = index.get("user_id", n)
            user = row[i].strip() if i < n else ""
            if not user:
                raise ValueError("empty user_id")
            i = index.get("ts", n)
            ts = row[i] if i < n else ""
            ts_ms = parse_ts_ms(ts)
            if ts_ms < MIN_EVENT_MS and ts.strip().replace(".", "", 1).isdigit():
                raise ValueError(f"timestamp {ts!r} is not epoch milliseconds after 2000-01-01")
            i = index.get("event_type", n)
            name = row[i] if i < n else ""
            kind = kinds.get(name)
            if kind is None:
                stripped = name.strip()
                if not stripped:
                    raise ValueError("empty event_type")
                kind = type_map.canonical(stripped)
                if len(kinds) < 4096:  # free-text names: bounded
                    kinds[name] = kind
            amount = 0.0
            i = index.get("amount", n)
            raw_amount = row[i].strip() if i < n else ""
            if raw_amount:  # checked and kept on every row (as the stream's decoder does); the model reads it on purchases
                amount = float(raw_amount)
                if not math.isfinite(amount):
                    raise ValueError(f"amount {raw_amount!r} is not a finite number")
            i = index.get("event_id", n)
            event_id = (row[i].strip() if i < n else "") or f"{p.name}:{lineno}"
            account = _cell(row, extra[0]) if extra[0] is not None else ""
            sub = _subscription(row, extra) if kind == "subscription" else None
        except ValueError as exc:
            raise ValueError(f"{p.name} line {lineno}: {exc}") from None
        yield Event(user, ts_ms, kind, event_id, amount, account, sub)


def read_events_csv(path: str | Path, type_map: TypeMap = DEFAULT_TYPE_MAP) -> list[Event]:
    """All events of ``path`` sorted by (ts_ms, event_id).

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); f = os.path.join(d, "e.csv")
    >>> _ = open(f, "w").write("user_id,ts,event_type,amount\\nu1,2026-01-02T00:00:00Z,order,12.5\\nu1,1767225600000,page_view,\\n")
    >>> [(e.type, e.ts_ms, e.amount) for e in read_events_csv(f)]
    [('page_view', 1767225600000, 0.0), ('order', 1767312000000, 12.5)]
    """
    events = list(iter_events_csv(path, type_map))
    events.sort(key=EVENT_ORDER)
    return events


def read_labels_csv(path: str | Path) -> dict[str, int]:
    """``user_id,churned_at`` -> {user: churn time in epoch ms}; an empty ``churned_at`` means
    the user did not churn and is left out. The earliest time wins if a user appears twice."""
    p = Path(path)
    out: dict[str, int] = {}
    for lineno, row, index in _rows(p, ("user_id", "churned_at")):
        n = len(row)
        i, j = index.get("user_id", n), index.get("churned_at", n)
        user = row[i].strip() if i < n else ""
        raw = row[j].strip() if j < n else ""
        if not user:
            raise ValueError(f"{p.name} line {lineno}: empty user_id")
        if not raw:
            continue
        try:
            ts = parse_ts_ms(raw)
        except ValueError as exc:
            raise ValueError(f"{p.name} line {lineno}: {exc}") from None
        out[user] = min(ts, out.get(user, ts))
    return out
