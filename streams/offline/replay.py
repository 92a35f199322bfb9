"""Replay history with the stream's own code: every user's scores as of given dates, and the alerts.

Why a replay of ``models.engine.advance`` and not a separate batch scorer: the stream's alerts
come from reviews the engine runs on event time, so the only backtest that says how the live
system would have behaved is one that runs the very same function over the same events. Each
user's state is advanced incrementally from one as-of date to the next (``advance`` is built so
that applying part 1 then part 2 equals applying everything), so history is read and sorted once.
How good the scores are is measured by ``streams.offline.evaluate``; the command is
``streams.cli.backtest``, which runs this replay over a file in several processes
(``streams.offline.parallel``).
"""

from __future__ import annotations

import bisect
import difflib
import gzip
import json
import logging
import math
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Sequence, TextIO

from models.engine import Alert, advance
from models.events import DEFAULT_TYPE_MAP, EVENT_ORDER, Event, TypeMap, type_aliases
from models.model import ChurnModel, role_names
from models.scoring import Scores, score
from models.state import DAY_S, UserState, tracked
from models.vocabulary import IGNORE, SUBSCRIPTION
from streams.offline.history import TEXT_ENCODING
from streams.timefmt import format_day_or_time

__all__ = ["SCORE_COLUMNS", "Progress", "Replay", "ScoreRow", "VocabularyConfig", "load_config", "load_type_map", "open_text", "replay_users",
           "score_row", "timeline", "with_config"]

logger = logging.getLogger(__name__)

#: Columns of the scores file; numbers are rounded as in the alerts (``Alert.to_dict``).
SCORE_COLUMNS: tuple[str, ...] = ("user_id", "as_of", "risk", "health", "temperature", "stage", "segment", "action", "reason")


# ---------------------------------------------------------------------------------------------
# Inputs: as-of dates, event type configuration, labels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VocabularyConfig:
    """A ``--config`` file: ``event_types`` (name -> the name to use, trimmed and lower-cased as
    ``models.events.type_aliases`` reads them; None when the file has no such table) and ``roles``
    (role -> the event names, after renaming, that play it; only the roles the file lists);
    ``machine``: ``[users] machine``, the user id patterns of machine users (None without it);
    ``key``: ``[users] key``, those of the key users (the champion, the admin: QA24b F1; None without it);
    ``calendar``: ``[calendar] quiet``, the product's quiet periods (None without it);
    ``peak``: ``[calendar] peak``, the product's peak seasons (QA25b F2; None without it)."""

    path: str
    event_types: dict[str, str] | None
    roles: dict[str, list[str]]
    machine: list[str] | None = None
    key: list[str] | None = None
    calendar: list[str] | None = None
    peak: list[str] | None = None


#: The tables of a ``--config`` file that churnwatch reads.
CONFIG_TABLES: tuple[str, ...] = ("event_types", "roles", "users", "calendar")


def load_config(path: str | Path | None) -> VocabularyConfig | None:
    """The ``[event_types]``, ``[roles]``, ``[users]`` and ``[calendar]`` tables of a JSON or TOML file (None without a file);
    ValueError in one line naming the file for anything else.

    Other top-level keys are left for whoever else reads the file (a ``description``, a tool's own
    table), with one WARNING naming them, as before the file carried roles; a key that looks like a
    misspelt ``event_types`` or ``roles`` is refused, "did you mean" (:func:`_misspelt`): ignored,
    the renames or roles it meant would be missing from the model without a word (review 10 A5)."""
    if not path:
        return None
    target = Path(path)
    try:
        text = target.read_text(encoding=TEXT_ENCODING)  # a BOM (Notepad) is no part of the JSON/TOML
    except OSError as exc:  # QA17 F10: "[Errno 2] No such file or directory: 'nope.toml'" named no option
        raise ValueError(f"config {target}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"config {target}: not UTF-8 text: expected a JSON or TOML file") from None
    try:
        data: Any = tomllib.loads(text) if target.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"config {target}: cannot parse it ({exc})") from None
    extra = sorted(set(data) - set(CONFIG_TABLES)) if isinstance(data, dict) else []
    typo = next(((key, meant) for key in extra if (meant := _misspelt(key))), None)
    if typo:
        raise ValueError(f"config {target}: unknown table {typo[0]!r}: did you mean {typo[1]!r}? (churnwatch reads "
                         f"'event_types', 'roles', 'users' and 'calendar')")
    if not isinstance(data, dict) or not (set(CONFIG_TABLES) & set(data)):
        raise ValueError(f"config {target}: needs an 'event_types' table of name -> event name strings, a 'roles' "
                         f"table of role -> list of event names and/or a 'users' table (machine, key = [user id patterns]) and/or a 'calendar' table (quiet, peak = [\"07-01..08-31\", ...])"
                         + (f" (found only: {extra})" if extra else ""))
    if extra:
        logger.warning("config %s: ignoring %s (churnwatch reads only 'event_types', 'roles', 'users' and 'calendar')", target,
                       ", ".join(repr(k) for k in extra))
    mapping = data.get("event_types")
    if mapping is not None and (not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())):
        raise ValueError(f"config {target}: needs an 'event_types' table of name -> event name strings")
    roles = data.get("roles", {})
    try:
        aliases = type_aliases(mapping) if mapping is not None else None
        if not isinstance(roles, dict):
            raise ValueError(f"'roles' must be a table of role -> list of event names, got {type(roles).__name__}")
        machine, key = _user_patterns(data.get("users"), "machine"), _user_patterns(data.get("users"), "key")
        calendar, peak = _calendar_quiet(data.get("calendar")), _calendar_quiet(data.get("calendar"), "peak")
        # the model file's rules (known roles, lists of names, one role a name, quiet and peak ranges); against the base's: train
        ChurnModel(roles=roles, machine_users=machine or (), key_users=key or (), quiet_calendar=calendar or (),
                   peak_calendar=peak or ())
    except ValueError as exc:
        raise ValueError(f"config {target}: {exc}") from None
    return VocabularyConfig(str(target), aliases, {k: list(v) for k, v in roles.items()}, machine, key, calendar, peak)


def _user_patterns(users: object, kind: str) -> list[str] | None:
    """``[users] machine`` or ``[users] key`` (``kind``) of a config (None without it), the keys the table has.

    >>> _user_patterns({"machine": ["svc_*"]}, "machine"), _user_patterns({"machine": ["svc_*"]}, "key"), _user_patterns(None, "key")
    (['svc_*'], None, None)
    >>> _user_patterns({"bots": ["svc_*"]}, "machine")
    Traceback (most recent call last):
    ...
    ValueError: 'users' reads only 'machine' and 'key' (lists of user id patterns such as "svc_*"), got ['bots']
    """
    return _one_list(users, "users", ("machine", "key"), kind, 'lists of user id patterns such as "svc_*"')


def _calendar_quiet(calendar: object, key: str = "quiet") -> list[str] | None:
    """``[calendar] quiet`` (``key`` "peak": ``[calendar] peak``) of a config (None without the table
    or the key): the product's quiet periods, its peak seasons (``ChurnModel.quiet_calendar``,
    ``peak_calendar`` check the ranges).

    >>> _calendar_quiet({"quiet": ["07-01..08-31"]}), _calendar_quiet(None), _calendar_quiet({"peak": ["11-15..12-31"]}, "peak")
    (['07-01..08-31'], None, ['11-15..12-31'])
    >>> _calendar_quiet({"summer": "07-01..08-31"})
    Traceback (most recent call last):
    ...
    ValueError: 'calendar' reads only 'quiet' and 'peak' (lists of ranges MM-DD..MM-DD such as "07-01..08-31"), got ['summer']
    """
    return _one_list(calendar, "calendar", ("quiet", "peak"), key, 'lists of ranges MM-DD..MM-DD such as "07-01..08-31"')


def _one_list(table: object, name: str, keys: tuple[str, ...], key: str, what: str) -> list[str] | None:
    """The list under ``key`` of a config's table ``name``, whose keys are ``keys`` (None without
    the table or the key; the model file checks the items); ValueError naming the keys and ``what``
    they hold."""
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) - set(keys):
        raise ValueError(f"'{name}' reads only {' and '.join(repr(k) for k in keys)} ({what}), got "
                         f"{sorted(table) if isinstance(table, dict) else type(table).__name__}")
    if key not in table:
        return None
    value = table[key]
    return list(value) if isinstance(value, list) else value  # type: ignore[no-any-return]


def _misspelt(key: str) -> str | None:
    """The table of :data:`CONFIG_TABLES` that ``key`` looks like a misspelling of, or None.

    >>> [_misspelt(k) for k in ("event_type", "EventTypes", "event-types", "Roles", "role", "description", "tool")]
    ['event_types', 'event_types', 'event_types', 'roles', 'roles', None, None]
    """
    folded = key.strip().lower().replace("-", "_").replace(" ", "_")
    meant = difflib.get_close_matches(folded, CONFIG_TABLES, n=1, cutoff=0.8) or difflib.get_close_matches(
        folded.replace("_", ""), [t.replace("_", "") for t in CONFIG_TABLES], n=1, cutoff=0.8)
    if not meant:
        return None
    return next(t for t in CONFIG_TABLES if meant[0] in (t, t.replace("_", "")))


def load_type_map(path: str | Path | None) -> TypeMap:
    """The ``event_types`` renaming (name -> the name to use) of a JSON or TOML file.

    Without a file every event keeps the product's name (``DEFAULT_TYPE_MAP``); with one, the
    names it lists are renamed and every other name is kept.
    """
    config = load_config(path)
    if config is None:
        return DEFAULT_TYPE_MAP
    if config.event_types is None:
        raise ValueError(f"config {config.path}: needs an 'event_types' table of name -> event name strings")
    return TypeMap(config.event_types)


def with_config(model: ChurnModel, config: VocabularyConfig | None, what: str) -> ChurnModel:
    """``model`` as a command that reads events under it with ``--config`` runs it (``what``
    names the model in errors). A model carries its renames (``ChurnModel.event_types``, written
    by ``train --config``) and its roles, and every reader applies them, so the stream and every
    command read the events the same way: a config may repeat them; one that says otherwise is
    refused in one line. A model without renames takes the config's (the default's use: backtest
    the shipped model on renamed events); a worker given that model would not apply them (only a
    model that carries them does), so the caller says so.
    """
    if config is None:
        return model
    if config.event_types is not None and model.event_types and config.event_types != dict(model.event_types):
        raise ValueError(f"--config {config.path} renames {_pairs(config.event_types)}, but {what} carries its own renames "
                         f"({_pairs(model.event_types)}) and is read with them everywhere: leave --config out or make it the same")
    differ = sorted(role for role, names in config.roles.items() if role_names(role, names) != role_names(role, model.roles.get(role, ())))
    if differ:
        role = differ[0]
        raise ValueError(f"--config {config.path} declares roles.{role} = {config.roles[role]}, but {what} has "
                         f"{list(model.roles.get(role, ()))}: a model's roles are fixed in its file (train --config "
                         f"writes them into the model): leave [roles] out, or write a model file with them: churnwatch "
                         f"train --events FILE --config {config.path} --no-fit --out m.json keeps the default's weights "
                         f"(no labels needed), without --no-fit fits them on your history")
    for key, declared, field in (("quiet", config.calendar, "quiet_calendar"), ("peak", config.peak, "peak_calendar")):
        held = getattr(model, field)
        if declared is not None and held and tuple(declared) != held:
            raise ValueError(f"--config {config.path} declares calendar.{key} = {declared}, but {what} has "
                             f"{list(held)}: a model's calendar is fixed in its file (train --config writes it): "
                             f"leave [calendar] out or make it the same")
        if declared and not held:
            model = model.with_(**{field: declared})
    if config.event_types and not model.event_types:
        return model.with_(event_types=config.event_types)
    return model


def _pairs(aliases: Any) -> str:
    return ", ".join(f"{k} -> {v}" for k, v in sorted(dict(aliases).items())) or "none"


def open_text(path: str | Path, mode: str = "r") -> IO[str]:
    """A text file, gzipped when its name ends in ``.gz``; read, a leading byte-order mark is skipped
    (``streams.offline.history.TEXT_ENCODING``), written, none is written."""
    encoding = "utf-8" if "w" in mode or "a" in mode else TEXT_ENCODING
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "t", encoding=encoding, newline="")  # type: ignore[return-value]
    return open(path, mode, encoding=encoding, newline="")


# ---------------------------------------------------------------------------------------------
# The replay: the stream's code, as of each date
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One user's scores at one as-of time, rounded as the alerts round them."""

    user_id: str
    as_of_ms: int
    risk: float
    health: float
    temperature: float
    stage: str
    segment: str
    action: str
    reason: str

    def as_csv(self) -> list[str]:
        return [self.user_id, format_day_or_time(self.as_of_ms), f"{self.risk:.4f}", f"{self.health:.1f}", f"{self.temperature:.1f}",
                self.stage, self.segment, self.action, self.reason]


def score_row(user_id: str, as_of_ms: int, s: Scores) -> ScoreRow:
    return ScoreRow(user_id, as_of_ms, round(s.risk, 4), round(s.health, 1), round(s.temperature, 1), s.stage,
                    s.segment or "", s.action, s.reasons[0] if s.reasons else "")


class Progress:
    """A progress bar on stderr, drawn only once a run has lasted ``after_s`` seconds, so short
    runs and tests print nothing. On a terminal it redraws one line; into a file or pipe it
    writes a plain line at most every ``log_every_s``. Wall time here is display only."""

    def __init__(self, label: str, stream: TextIO | None = None, after_s: float = 2.0, enabled: bool = True,
                 log_every_s: float = 10.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._after = after_s
        self._every = 0.25 if self.tty else log_every_s
        self._last = -math.inf
        self._drawn = False

    def update(self, fraction: float) -> None:
        """Show that ``fraction`` (0-1) of the work is done (drawn only now and then)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._start < self._after or now - self._last < self._every:
            return
        self._last = now
        self._draw(fraction, now)

    def _draw(self, fraction: float, now: float) -> None:
        frac = min(1.0, max(0.0, fraction))
        width = 30
        filled = int(frac * width)
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {100 * frac:5.1f}% {now - self._start:6.1f}s"
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Draw 100% and end the line, if anything was drawn at all."""
        if self._drawn:
            self._draw(1.0, time.monotonic())
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()


@dataclass(slots=True)
class Replay:
    """What a replay leaves behind besides the rows it handed out: every user's at-risk and
    recovered alerts as ``(kind, event_time_ms)`` (the engine's own, at the review time that
    raised them; compact because metrics need no more) and counts."""

    alerts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    first_seen_ms: dict[str, int] = field(default_factory=dict)  # each user's earliest event used, billing statements aside
    n_events: int = 0
    n_rows: int = 0
    data_end_ms: int = 0  # the latest event time in the input (labels beyond it cannot be observed)
    #: per process of a parallel replay: events, CPU seconds reading them, CPU seconds replaying them
    work: list[tuple[int, float, float]] = field(default_factory=list)


def replay_users(
    ordered: Sequence[Event],
    dates: Sequence[int],
    model: ChurnModel,
    result: Replay,
    on_rows: Callable[[int, list[ScoreRow]], None],
    on_alerts: Callable[[int, list[tuple[str, list[Alert]]]], None] | None,
    step: Callable[[int, int, int], None] = lambda i, j, n: None,
) -> None:
    """Score every user of ``ordered`` (events sorted by ``EVENT_ORDER``) as of each of ``dates``
    (sorted) from the events strictly before it, and collect the alerts on the way.

    Between two as-of times each user is advanced with only the events of that interval
    (``advance(..., until_ms=as_of)``, which also runs the reviews that came due, exactly as the
    worker's review clock does), then scored with ``models.scoring.score`` at the as-of time. A
    state the engine marks as expired is dropped, as the store drops it; one of billing statements
    alone gets no row, and is not seen until its first other event (models.state.tracked: no
    user yet, as ``churnwatch score`` and the stage counters say). Each date's rows and
    ``(user, alerts)`` go to the callbacks in user id order; ``step(i, j, n)`` is called before
    the j-th of the n users of date i (progress).
    """
    states: dict[str, UserState] = {}
    pos = 0
    for i, date_ms in enumerate(dates):
        end = bisect.bisect_left(ordered, date_ms, lo=pos, key=_ts_ms)
        fresh: dict[str, list[Event]] = {}
        for ev in ordered[pos:end]:
            fresh.setdefault(ev.user_id, []).append(ev)
        pos = end
        vocabulary = model.compiled.vocabulary
        for user, mine in fresh.items():
            if user not in result.first_seen_ms:
                seen = next((ev.ts_ms for ev in mine if vocabulary.lookup(ev.type)[1] not in (SUBSCRIPTION, IGNORE)), None)
                if seen is not None:
                    result.first_seen_ms[user] = seen
        now_s = date_ms // 1000
        users = sorted(states.keys() | fresh.keys())
        rows: list[ScoreRow] = []
        alerts: list[tuple[str, list[Alert]]] = []
        for j, user in enumerate(users):
            step(i, j, len(users))
            out = advance(user, states.get(user), fresh.get(user, ()), date_ms, model)
            if out.alerts:
                for alert in out.alerts:
                    if alert.kind != "stage_changed":
                        result.alerts.setdefault(user, []).append((alert.kind, alert.event_time_ms))
                if on_alerts is not None:
                    alerts.append((user, out.alerts))
            if out.expire:
                states.pop(user, None)
                continue
            states[user] = out.state
            if tracked(out.state):
                rows.append(score_row(user, date_ms, score(out.state, now_s, model)))
        result.n_rows += len(rows)
        if on_alerts is not None:
            on_alerts(i, alerts)
        on_rows(i, rows)


def _ts_ms(ev: Event) -> int:
    return ev.ts_ms


def timeline(user_id: str, events: Iterable[Event], model: ChurnModel, start_ms: int, end_ms: int, step_ms: int = DAY_S * 1000) -> tuple[list[ScoreRow], list[Alert]]:
    """One user's scores every ``step_ms`` from ``start_ms`` to ``end_ms`` and every alert the
    engine raised on the way (the same ``advance``/``score`` calls as the replay)."""
    mine = sorted((ev for ev in events if ev.user_id == user_id), key=EVENT_ORDER)
    rows: list[ScoreRow] = []
    alerts: list[Alert] = []
    state: UserState | None = None
    pos = 0
    for date_ms in range(start_ms, end_ms + 1, step_ms):
        end = bisect.bisect_left(mine, date_ms, lo=pos, key=_ts_ms)
        out = advance(user_id, state, mine[pos:end], date_ms, model)
        pos = end
        alerts.extend(out.alerts)
        state = out.state
        if tracked(state):
            rows.append(score_row(user_id, date_ms, score(state, date_ms // 1000, model)))
    return rows, alerts


# ---------------------------------------------------------------------------------------------
# Metrics: small pure functions (unit-tested against hand-computed cases)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


