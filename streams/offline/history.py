"""Reading historical events from CSV files, shared by ``train`` and ``backtest``.

Both commands must read history exactly the same way, or a model trained on one reading would
be evaluated on another. The format is the one users export from a warehouse:

``user_id,ts,event_type[,amount][,event_id]`` with or without a header row, optionally
gzip-compressed (``.gz``), rows in any order. ``ts`` is ISO-8601 (``Z``/offset; naive means UTC)
or epoch milliseconds, read by ``streams.timefmt`` exactly as the stream reads them (epoch numbers
before 2000 are taken for seconds and refused; ISO dates before 2000 are history, e.g. CDNOW).
Event names are the product's own, trimmed and lower-cased (``Order`` is ``order``), and no name
is unknown: the model's vocabulary says which play a role (``order`` and ``payment`` are purchases
under the default roles). A ``--config`` :class:`models.events.TypeMap` renames the names it lists
and only those; the ``amount`` is kept on every row, as ``publish`` sends it, and must be a number
from 0 to ``MAX_AMOUNT`` (1e12) as the stream's decoder wants it: a row with another (a refund's
``-49``) is refused with its line in every command, not kept offline and dead-lettered live.

Accounts and subscriptions (docs/REVENUE.md) come in further columns, read by their names in the
header row only (a file without a header keeps the positional layout above): ``account_id`` on any
row, and on ``subscription`` rows ``status``, ``plan``, ``mrr`` (money, at most two decimals) and
optionally ``trial_ends`` and ``period_end`` (the end of the period paid for, the next renewal),
times like ``ts``, and ``seats`` (the seats the ``mrr`` pays for, a whole number), e.g. ``user_id,ts,event_type,amount,account_id,status,plan,mrr,period_end``.
On other rows those are ignored. An optional ``currency`` column is checked on ``subscription`` rows
and rows with an amount by the stream's rule (models/currency.py: the deployment's
``CHURNWATCH_CURRENCY`` when set, ignored when unset): a row in another currency is refused with its line.

Rows without an ``event_id`` get the id the stream's worker derives from the event's content
(``streams.records.content_event_id``), as ``churnwatch publish`` sends them: the same row has
the same id in every command and live, whatever the file is called or where the row is, which keeps
the order of same-millisecond events stable (ids break ties, ``models.events.EVENT_ORDER``). It was
``<file name>:<line number>`` until QA4 #2: two daily ``events.csv`` then shared ids (the stream
dropped the second file's events as duplicates) and a repeated row counted twice. A row that repeats
an earlier one exactly (the same user, time and id) is read once (:func:`drop_repeats`), as the
worker drops a repeated id in a batch.

Speed (the backtest reads a million rows): a whole file is read in one block and, when nothing
in it needs the csv module's quoting rules, split at newlines and commas; times go through
``streams.timefmt.ts_reader``; one :class:`EventRows` reads every row the same way, whichever
way the rows were split. About 1.1 us per row here, a third of the csv-module path before.
"""

from __future__ import annotations

import logging

import contextlib
import csv
import gc
import gzip
import io
import itertools
import math
import operator
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator

from models.currency import currency_refusal
from models.events import DEFAULT_TYPE_MAP, EVENT_ORDER, Event, EventType, TypeMap
from models.intake import MAX_AMOUNT, epoch_unit_hint
from models.subscription import Subscription
from streams.offline.bad_lines import BadLines, BadLinesError, RowError
from streams.timefmt import MIN_EVENT_MS, parse_ts_ms, ts_reader
from streams.records import content_event_id, plain_event_id

__all__ = ["TEXT_ENCODING", "BadLinesError", "EventRows", "RowError", "drop_repeats", "header_user_column", "iter_events_csv", "numbered_events_csv", "read_events_csv", "read_labels_csv", "read_text", "readable", "repeats_line",
           "text_events"]

logger = logging.getLogger(__name__)

_COLUMNS = ("user_id", "ts", "event_type", "amount", "event_id")
_EXTRA = ("account_id", "status", "plan", "mrr", "trial_ends", "period_end", "currency", "seats")  # by header name only
_ABSENT = 1 << 62  # the index of a column the file does not have: past the end of every row
_POSITIONAL = {c: i for i, c in enumerate(_COLUMNS)}  # the columns of a file without a header row
#: What a CSV header row must name: said when a first line could not be read (EventRows._header_hint).
CSV_COLUMNS = "user_id, ts, event_type or type (optional: amount, event_id; for subscriptions: account_id, status, plan, mrr, trial_ends, period_end, seats)"


#: UTF-8 that skips a leading byte-order mark: Excel's "CSV UTF-8" writes one, which read as
#: plain UTF-8 glued itself to the first column's name and hid the header row (QA4 #6).
TEXT_ENCODING = "utf-8-sig"


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=TEXT_ENCODING, newline="")
    return open(path, encoding=TEXT_ENCODING, newline="")


@contextlib.contextmanager
def readable(path: str | Path) -> Iterator[None]:
    """Reading ``path`` inside: a truncated or corrupt ``.gz`` (EOFError, gzip.BadGzipFile,
    zlib.error) or bytes that are not UTF-8 become one ValueError naming the file, which the
    commands print in one line (exit 2), not a traceback (QA4 #7).

    >>> with readable("fake.csv.gz"):
    ...     _ = gzip.decompress(b"\\x1f\\x8b\\x08garbage")
    Traceback (most recent call last):
    ...
    ValueError: fake.csv.gz: not a whole gzip file, truncated or corrupt (Compressed file ended before the end-of-stream marker was reached)
    """
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{path}: not a whole gzip file, truncated or corrupt ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start} of the text: {exc.reason})") from None


def check_input_file(path: str | Path) -> Path:
    """``path`` if it is a file to read; else one line saying what it is instead (a folder gave an
    IsADirectoryError traceback: QA3 #13). FileNotFoundError and ValueError: the commands print them.

    >>> check_input_file("/")
    Traceback (most recent call last):
    ...
    ValueError: / is a folder, not a file
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if not p.is_file():
        raise ValueError(f"{p} is a folder, not a file" if p.is_dir() else f"{p} is not a regular file")
    return p


def read_text(path: str | Path) -> str:
    """The whole file as text (gunzipped when it ends in ``.gz``), read in one go: a history is
    read whole anyway, and one block is several times cheaper than line by line."""
    p = check_input_file(path)
    with readable(p):
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        return raw.decode(TEXT_ENCODING)


def _skipped(row: list[str]) -> bool:
    """Blank rows and ``#`` comments carry nothing (a blank line is ``[]`` or ``[""]``)."""
    return not row or (len(row) == 1 and not row[0].strip()) or row[0].startswith("#")


def _header(row: list[str], path: Path, wanted: tuple[str, ...]) -> dict[str, int] | None:
    """Column name -> index if ``row`` is a header row (it names ``user_id``), else None. A header
    without ``event_type`` may name it ``type``, as the event contract's JSON does (QA10 F12: it read
    as a file with no event names, "line 2: empty event_type")."""
    names = tuple(c.strip().lower() for c in row)
    if "user_id" not in names:
        if row and row[0].lstrip().startswith("{"):  # JSON lines read as CSV blamed a "timestamp" (QA5 L4)
            raise ValueError(f"{path.name}: the first row is a JSON object; this command reads CSV files "
                             f"({','.join(wanted)}, header row optional); `churnwatch publish` takes JSON lines")
        return None
    missing = [c for c in wanted[:2] if c not in names]
    if missing:
        raise ValueError(f"{path.name}: header has no {missing} column")
    index = {name: i for i, name in enumerate(names)}  # a repeated name: the last one counts
    if "event_type" in wanted and "event_type" not in index:
        if "type" not in index:
            raise ValueError(f"{path.name}: header has no event_type column (found: {', '.join(n for n in names if n)})")
        index["event_type"] = index["type"]  # the event contract's own name for it (QA10 F12)
    return index


def _rows(path: Path, wanted: tuple[str, ...]) -> Iterator[tuple[int, list[str], dict[str, int]]]:
    """(line number, row, column name -> index); the header row is optional and detected by its names."""
    check_input_file(path)
    with readable(path), _open_text(path) as handle:
        index = {name: i for i, name in enumerate(wanted)}
        first = True
        for lineno, row in enumerate(csv.reader(handle), start=1):
            if _skipped(row):
                continue
            if first:
                first = False
                named = _header(row, path, wanted)
                if named is not None:
                    index = named
                    continue
            yield lineno, row, index


def _plain(text: str) -> str | None:
    """``text`` with ``\\r\\n`` made ``\\n`` when splitting it at newlines and commas reads it exactly
    as the csv module does (no quotes, no lone carriage return, no NUL); else None."""
    if '"' in text or "\0" in text:
        return None
    if "\r" in text:
        if text.count("\r") != text.count("\r\n"):
            return None
        text = text.replace("\r\n", "\n")
    return text


def header_user_column(text: str, look: int = 1 << 16) -> int:
    """Which column of ``text``'s rows holds the user id: as its header row names it, else the
    first. Only the first ``look`` characters are read (a header row is near the top)."""
    for row in csv.reader(io.StringIO(text[:look], newline="")):
        if not _skipped(row):
            names = [c.strip().lower() for c in row]
            return len(names) - 1 - names[::-1].index("user_id") if "user_id" in names else 0  # the last of repeats, as _header
    return 0


def _cell(row: list[str], i: int | None) -> str:
    return row[i].strip() if i is not None and i < len(row) else ""


def _subscription(row: list[str], columns: tuple[int | None, ...]) -> Subscription:
    """The subscription columns of one ``subscription`` row (named in the header)."""
    if columns[1] is None:
        raise ValueError("a subscription row needs a header with a status column")
    return Subscription.parse(_cell(row, columns[1]), _cell(row, columns[2]), _cell(row, columns[3]),
                              _time_cell(row, columns[4], "trial_ends"), _time_cell(row, columns[5], "period_end"),
                              _cell(row, columns[7]))


def _time_cell(row: list[str], i: int | None, name: str) -> int:
    """An optional time column read as ``ts`` is, 0 when empty. A ``period_end`` before 2000 is
    refused in either form, as the stream's codec refuses it (``MIN_EVENT_MS``, one rule): an epoch
    number then is most likely epoch seconds, as Stripe exports them."""
    raw = _cell(row, i)
    if not raw:
        return 0
    try:
        ms = parse_ts_ms(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if name == "period_end" and ms and ms < MIN_EVENT_MS:
        if raw.replace(".", "", 1).isdigit():
            raise ValueError(f"{name} {raw!r} is not epoch milliseconds after 2000-01-01{epoch_unit_hint(ms, MIN_EVENT_MS, None)}")
        raise ValueError(f"{name} {raw!r} is before 2000-01-01")
    return ms


def _amount(raw: str) -> float:
    """An amount cell as a number; a decimal comma is named (a spreadsheet's export in a European
    locale: QA17 F10), not Python's "could not convert string to float".

    >>> _amount("12.90"), _amount(" 7 ")
    (12.9, 7.0)
    >>> _amount("12,90")
    Traceback (most recent call last):
    ValueError: amount '12,90' is not a number: write the decimal point as a dot (12.90)
    """
    try:
        return float(raw)
    except ValueError:
        hint = f": write the decimal point as a dot ({raw.replace(',', '.')})" if raw.count(",") == 1 and "." not in raw else ""
        raise ValueError(f"amount {raw!r} is not a number{hint}") from None


def _bad_amount(raw: str, amount: float) -> str:
    """Why a row's amount is refused: the worker dead-letters a record whose amount is not from 0
    to ``MAX_AMOUNT`` (``bad_amount``, the whole event), so every reader refuses the row, naming
    its line, rather than the backtest keeping an event the stream loses (review 11 R11-1: a
    refund's ``-49`` lost a ``refund`` signal and a cancelled ``subscription`` statement live).

    >>> _bad_amount("-49", -49.0)
    "amount '-49' is below 0, which the stream refuses (bad_amount): for a refund or credit, leave the amount empty (the event's type, e.g. refund, is what the model reads of it; revenue counts no negative amounts)"
    """
    if math.isfinite(amount) and amount < 0:
        return (f"amount {raw!r} is below 0, which the stream refuses (bad_amount): for a refund or credit, leave the "
                f"amount empty (the event's type, e.g. refund, is what the model reads of it; revenue counts no negative amounts)")
    if math.isfinite(amount):
        return f"amount {raw!r} is above {MAX_AMOUNT:g}, which the stream refuses (bad_amount): a unit or encoding mistake?"
    return f"amount {raw!r} is not a finite number"


def _check_currency(raw: str, configured: str, statement: bool) -> None:
    """A row's ``currency`` cell by the stream's rule (models.currency): ValueError saying why and
    which reason the workers would dead-letter the event with."""
    why = currency_refusal(raw, configured)
    if why:
        raise ValueError(f"{why} (the workers would dead-letter it: {'bad_subscription' if statement else 'bad_amount'})")


class EventRows:
    """Turns the rows of one history file into events: the one reading of a row, shared by the
    streaming reader (``iter_events_csv``), the whole-file one and the backtest's shards.

    ``index`` maps column names to positions (the header's, or the positional layout); a bad row
    raises ValueError naming the file and line. ``currency`` is the deployment's (upper case, ""
    unnamed), against which a ``currency`` column is checked.
    """

    def __init__(self, name: str, index: dict[str, int], type_map: TypeMap = DEFAULT_TYPE_MAP, currency: str = "") -> None:
        self.name = name
        self.currency = currency
        self.type_map = type_map
        self.user_col = index.get("user_id", _ABSENT)
        self._ts_col = index.get("ts", _ABSENT)
        self._type_col = index.get("event_type", _ABSENT)
        self._amount_col = index.get("amount", _ABSENT)
        self._id_col = index.get("event_id", _ABSENT)
        self._extra = tuple(index.get(c) for c in _EXTRA)  # account_id, ..., period_end, currency, seats: by header only
        # A row with more cells than the header (or the positional layout) has an unquoted comma in a
        # value: a decimal comma split "12,90" into an amount of 12 and a stray 90 (QA17 F7).
        self._width = max(index.values()) + 1
        self._too_wide = (f"the header names {self._width} columns" if index != _POSITIONAL
                          else f"a file without a header row has at most {self._width} columns ({','.join(_COLUMNS)})")
        self._kinds: dict[str, EventType] = {}  # event name as written -> as the product's vocabulary spells it
        # Ids are derived from the record ``publish`` sends, whose type is the name trimmed and
        # lower-cased (no renaming): the same id under any ``--config`` type map.
        self._plain = not type_map.aliases
        self._read_ts = ts_reader()

    def event(self, row: list[str], lineno: int) -> Event:
        """The event of one row (``lineno`` names it in errors); without an ``event_id``, its content's."""
        n = len(row)
        try:
            if n > self._width:
                raise ValueError(f"{n} cells, but {self._too_wide}: a value holding a comma must be quoted, and an "
                                 f"amount written with a decimal point (12.90, not 12,90)")
            i = self.user_col
            user = row[i].strip() if i < n else ""
            if not user:
                raise ValueError("empty user_id")
            i = self._ts_col
            ts = row[i] if i < n else ""
            ts_ms = self._read_ts(ts)
            if ts_ms < MIN_EVENT_MS and ts.strip().replace(".", "", 1).isdigit():
                raise ValueError(f"timestamp {ts!r} is not epoch milliseconds after 2000-01-01{epoch_unit_hint(ts_ms, MIN_EVENT_MS, None)}")
            i = self._type_col
            name = row[i] if i < n else ""
            kind = self._kinds.get(name)
            if kind is None:
                kind = self._kind(name)
            amount = 0.0
            i = self._amount_col
            raw_amount = row[i].strip() if i < n else ""
            if raw_amount:  # checked and kept on every row, by the stream's decoder's rule; the model reads it on purchases
                amount = _amount(raw_amount)
                if not 0.0 <= amount <= MAX_AMOUNT:  # also false for NaN and inf
                    raise ValueError(_bad_amount(raw_amount, amount))
            i = self._id_col
            event_id = row[i].strip() if i < n else ""
            extra = self._extra
            account = _cell(row, extra[0]) if extra[0] is not None else ""
            sub = _subscription(row, extra) if kind == "subscription" else None
            if extra[6] is not None and (sub is not None or raw_amount):
                _check_currency(_cell(row, extra[6]), self.currency, sub is not None)
        except ValueError as exc:
            raise RowError(f"{self.name} line {lineno}: {exc}{self._header_hint(row, lineno)}", lineno) from None
        if not event_id:  # the id of the record publish sends, whose type is the name trimmed and lower-cased
            named = kind if self._plain else name.strip().lower()
            event_id = (plain_event_id(user, ts_ms, named, amount, account) if sub is None
                        else content_event_id(Event(user, ts_ms, named, "", amount, account, sub)))
        return Event(user, ts_ms, kind, event_id, amount, account, sub)

    def _header_hint(self, row: list[str], lineno: int) -> str:
        """What a header row must name, when a row read as data holds no digit at all (no time can be
        in it: a header the reader did not know, e.g. split at ``;`` or without ``user_id``, which
        would otherwise read as "line 1: empty timestamp" and hide the cause)."""
        if self._width != len(_POSITIONAL) or any(c.isdigit() for cell in row for c in cell):
            return ""
        names = ", ".join(c.strip() for c in row)
        return f"; if line {lineno} is a header, it names {names}, but the columns must be named {CSV_COLUMNS}"

    def _kind(self, name: str) -> EventType:
        stripped = name.strip()
        if not stripped:
            raise ValueError("empty event_type")
        kind = self.type_map.canonical(stripped)
        if len(self._kinds) < 4096:  # free-text names: bounded
            self._kinds[name] = kind
        return kind


def text_events(text: str, name: str, type_map: TypeMap = DEFAULT_TYPE_MAP,
                users: tuple[str, str | None] = ("", None), currency: str = "") -> list[Event]:
    """The events of a whole history file's ``text`` in file order (``name`` is the file's, for
    errors and default ids). ``users`` = (first, end) keeps only the rows of user ids from
    ``first`` up to but excluding ``end`` (None: no end), in ``str`` order; rows with an empty
    user id are read by the first range (``first`` ""), so that they fail once. ``currency``: the
    deployment's (:class:`EventRows`). Bad rows raise one :class:`BadLinesError` naming them all.

    Text without quotes, NUL or lone carriage returns is split at newlines and commas, which
    reads it exactly as the csv module does and costs a fraction; other text goes through csv.
    """
    plain = _plain(text)
    rows: Iterable[list[str]]
    if plain is None:
        rows = csv.reader(io.StringIO(text, newline=""))
    else:
        rows = map(str.split, plain.split("\n"), itertools.repeat(","))
    numbered = enumerate(rows, start=1)
    index = {c: i for i, c in enumerate(_COLUMNS)}
    first: list[tuple[int, list[str]]] = []
    for lineno, row in numbered:  # the first row: a header, or already data
        if not _skipped(row):
            named = _header(row, Path(name), _COLUMNS)
            if named is None:
                first.append((lineno, row))
            else:
                index = named
            break
    reader = EventRows(name, index, type_map, currency)
    make, col = reader.event, reader.user_col
    bad = BadLines(name)
    low, end = users
    every = not low and end is None
    out: list[Event] = []
    append = out.append
    with _gc_paused():
        for lineno, row in itertools.chain(first, numbered):
            if (len(row) < 2 or row[0][:1] == "#") and _skipped(row):
                continue
            if not every:
                user = row[col].strip() if col < len(row) else ""
                if user < low or (end is not None and user >= end):  # an empty user id: the first range's
                    continue
            try:
                append(make(row, lineno))
            except RowError as exc:  # read on: one error names every bad line (streams.offline.bad_lines)
                bad.add(exc)
    bad.check()
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Reading makes a million small objects that all live on: the cyclic collector would scan
    them again and again (a third of the reading time, measured) and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def iter_events_csv(path: str | Path, type_map: TypeMap = DEFAULT_TYPE_MAP, currency: str = "") -> Iterator[Event]:
    """Events of ``path`` in file order, read as a stream; bad rows raise one ValueError naming each file line."""
    for _, event in numbered_events_csv(path, type_map, currency):
        yield event


def numbered_events_csv(path: str | Path, type_map: TypeMap = DEFAULT_TYPE_MAP, currency: str = "",
                        bad: BadLines | None = None) -> Iterator[tuple[int, Event]]:
    """(line number, event) of ``path`` in file order (:func:`iter_events_csv` with the line, which
    ``churnwatch publish`` names when the worker's decoder refuses the record it would send). Bad
    rows are skipped and, at the end, raise one :class:`BadLinesError` naming them all; or, given
    ``bad``, are added to it for the caller to raise with the lines it finds bad itself."""
    p = Path(path)
    reader: EventRows | None = None
    found = BadLines(p.name) if bad is None else bad
    for lineno, row, index in _rows(p, _COLUMNS):
        if reader is None:
            reader = EventRows(p.name, index, type_map, currency)
        try:
            event = reader.event(row, lineno)
        except RowError as exc:
            found.add(exc)
            continue
        yield lineno, event
    if bad is None:
        found.check()


def read_events_csv(path: str | Path, type_map: TypeMap = DEFAULT_TYPE_MAP, currency: str = "") -> list[Event]:
    """All events of ``path`` sorted by (ts_ms, event_id), exact repeats once (:func:`drop_repeats`).

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); f = os.path.join(d, "e.csv")
    >>> _ = open(f, "w").write("user_id,ts,event_type,amount\\nu1,2026-01-02T00:00:00Z,order,12.5\\nu1,1767225600000,page_view,\\n")
    >>> [(e.type, e.ts_ms, e.amount) for e in read_events_csv(f)]
    [('page_view', 1767225600000, 0.0), ('order', 1767312000000, 12.5)]
    """
    events = text_events(read_text(path), Path(path).name, type_map, currency=currency)
    events.sort(key=EVENT_ORDER)
    kept = drop_repeats(events)
    if len(kept) < len(events):
        logger.warning("%s", repeats_line(len(events) - len(kept), Path(path).name))
    return kept


def repeats_line(repeats: int, name: str) -> str:
    """The warning of rows counted once (:func:`drop_repeats`; the workers dead-letter them as
    ``duplicate_event_id``). Why (QA pass 15 F5): a B2B admin's bulk actions, 14 ``seat_removed``
    rows of one user in one second without an ``event_id``, have one content-derived id, so 170 real
    events of the file were counted once and the rest dead-lettered, and nothing said so.

    >>> repeats_line(170, "pm.csv")
    "170 rows of pm.csv repeat an earlier row's user, time and event id (without an event_id column, the id derived from the row's content): counted once; if they are separate actions (seats removed at once), give each row its own event_id"
    """
    return (f"{repeats:,} row{'s' * (repeats != 1)} of {name} repeat an earlier row's user, time and event id (without an "
            f"event_id column, the id derived from the row's content): counted once; if they are separate actions "
            f"(seats removed at once), give each row its own event_id")


_TS_MS = operator.attrgetter("ts_ms")


def drop_repeats(events: list[Event]) -> list[Event]:
    """``events`` (sorted by ``EVENT_ORDER``) without the exact repeats: an event whose user, time
    and id an earlier one has. A row without an id has its content's (``content_event_id``), so a
    repeated line of a file counts once, as the worker drops a repeated id within a batch (and
    ``train --from-topic`` drops repeated ids). ``events`` itself when there is none (the usual case).

    >>> a, b = Event("u1", 5, "view", "x"), Event("u2", 5, "view", "x")
    >>> drop_repeats([a, b, Event("u1", 5, "view", "x"), Event("u1", 6, "view", "x")])
    [Event(user_id='u1', ts_ms=5, type='view', event_id='x', amount=0.0, account_id='', subscription=None), \
Event(user_id='u2', ts_ms=5, type='view', event_id='x', amount=0.0, account_id='', subscription=None), \
Event(user_id='u1', ts_ms=6, type='view', event_id='x', amount=0.0, account_id='', subscription=None)]
    """
    times = list(map(_TS_MS, events))
    same_ms = itertools.compress(range(1, len(times)), map(int.__eq__, times, itertools.islice(times, 1, None)))
    equal = [i for i in same_ms if events[i].event_id == events[i - 1].event_id]  # C loops; few survive
    if not equal:
        return events
    runs, drop, users = set(equal), [], set()
    for i in equal:  # events i-1 and i have one (time, id): per run of them, the first of each user stays
        if i - 1 not in runs:
            users = {events[i - 1].user_id}
        if events[i].user_id in users:
            drop.append(i)
        else:
            users.add(events[i].user_id)
    if not drop:
        return events
    out: list[Event] = []
    start = 0
    for i in drop:
        out += events[start:i]
        start = i + 1
    out += events[start:]
    return out



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
