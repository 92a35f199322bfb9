"""Every bad line of a file in one error (QA23a F9): ``publish``, ``backtest``, ``train`` and
``report`` named only a file's first bad line, so a file with N bad lines took N runs to fix.

The readers (``streams.offline.history``, ``streams.publisher``) now read on past a bad row and
collect it here; at the end of the file one :class:`BadLinesError` lists them, one line each as
the CLI prints every error ("e.csv line 3: empty user_id"), the first :data:`SHOWN` by line number,
then per reason how many more there are, then the total. The policy is unchanged: a file with a
bad line is refused whole (``publish`` sends nothing, ``backtest`` writes nothing), so nothing is
lost; only the telling changed. A file with a single bad line says that one line, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["SHOWN", "BadLines", "BadLinesError", "RowError"]

#: Bad lines listed one by one; the rest are counted per reason. Twenty fit on a screen and show
#: every kind of mistake a file usually has (QA23a's bad.csv: 4 lines, 4 reasons); a file with
#: thousands (a wrong delimiter, a column shifted) needs the count and its first line, not the list.
SHOWN: Final[int] = 20
#: Distinct reasons counted; past it a reason is counted as "other" (free text in values could
#: otherwise make each line its own reason).
_MAX_KINDS: Final[int] = 50
_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(?:[.,:]\d+)*")


class RowError(ValueError):
    """A bad row: the message names the file and line, ``lineno`` is the line (so the first bad
    line of a file read in pieces can be told), ``reason`` the message after "line N: "."""

    def __init__(self, message: str, lineno: int, reason: str = "") -> None:
        super().__init__(message)
        self.lineno = lineno
        self.reason = reason or message.split(": ", 1)[-1]


def reason_kind(reason: str) -> str:
    """What two bad lines have in common when they fail the same way: the reason with its values
    (quoted text, numbers) blanked.

    >>> reason_kind("timestamp '2026-05-03 07:xx' is neither ISO-8601 nor epoch milliseconds")
    'timestamp … is neither ISO-… nor epoch milliseconds'
    >>> reason_kind("mrr '6.665833' has fractions of a cent") == reason_kind("mrr '1.001' has fractions of a cent")
    True
    """
    return _VALUES.sub("…", reason)


@dataclass(slots=True)
class BadLines:
    """The bad lines of one file ``name`` as they are read: the first :data:`SHOWN` by line number
    (``shown``: line -> message) and per reason kind [count, its first line, that line's reason].
    Shards of one file reading their own rows each collect theirs; :meth:`add_all` folds them."""

    name: str
    shown: dict[int, str] = field(default_factory=dict)
    kinds: dict[str, list] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(k[0] for k in self.kinds.values())

    def add(self, exc: RowError) -> None:
        """Keep ``exc``'s line (lines may come in any order)."""
        self._keep(exc.lineno, str(exc))
        key = reason_kind(exc.reason)
        if key not in self.kinds and len(self.kinds) >= _MAX_KINDS:
            key = ""
        kind = self.kinds.setdefault(key, [0, exc.lineno, exc.reason])
        kind[0] += 1
        if exc.lineno < kind[1]:
            kind[1], kind[2] = exc.lineno, exc.reason

    def _keep(self, lineno: int, message: str) -> None:
        self.shown[lineno] = message
        if len(self.shown) > SHOWN:
            del self.shown[max(self.shown)]

    def add_all(self, other: "BadLines") -> None:
        """Fold in another reader's lines of the same file (each line read by one of them)."""
        for lineno, message in other.shown.items():
            self._keep(lineno, message)
        for key, (n, first, reason) in other.kinds.items():
            kind = self.kinds.setdefault(key, [0, first, reason])
            kind[0] += n
            if first < kind[1]:
                kind[1], kind[2] = first, reason

    def check(self) -> None:
        """Raise :class:`BadLinesError` naming them all, if any line was bad."""
        if self.kinds:
            raise BadLinesError(self)


class BadLinesError(RowError):
    """A file's bad lines, one message line each (:class:`BadLines`); ``lineno``: the first.

    >>> bad = BadLines("e.csv")
    >>> for n in (9, 3, 4):
    ...     bad.add(RowError(f"e.csv line {n}: empty user_id" if n != 4 else "e.csv line 4: mrr '1.001' has fractions of a cent", n))
    >>> print(BadLinesError(bad))
    e.csv line 3: empty user_id
    e.csv line 4: mrr '1.001' has fractions of a cent
    e.csv line 9: empty user_id
    e.csv: 3 bad lines
    """

    def __init__(self, bad: BadLines) -> None:
        lines = [bad.shown[n] for n in sorted(bad.shown)]
        if bad.count > 1:
            listed: dict[str, int] = {}
            for message in bad.shown.values():
                key = reason_kind(message.split(": ", 1)[-1])
                key = key if key in bad.kinds else ""
                listed[key] = listed.get(key, 0) + 1
            for key, (n, first, reason) in sorted(bad.kinds.items(), key=lambda kv: kv[1][1]):
                more = n - listed.get(key, 0)
                if more > 0:
                    like = f"like line {first} ({reason})" if key else "of other reasons"
                    lines.append(f"{bad.name}: {more:,} more bad line{'s' if more != 1 else ''} {like}")
            lines.append(f"{bad.name}: {bad.count:,} bad lines")
        super().__init__("\n".join(lines), min(bad.shown))
        self.bad = bad
