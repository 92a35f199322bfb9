"""The product's vocabulary: which event names the state tracks one by one, and which play a role.

Every product names its events its own way ("post", "unfriend", "video_play"). The state keeps
the total activity plus, per *slot*, a 7-day and a 4-week decayed count (models.state). Which
name goes to which slot:

- **declared** (``tracked_types`` in the model file, written by ``churnwatch train`` from the
  product's history or by hand): slot i is the i-th name; other names count only in the total.
  Reasons then speak the product's words ("post down 70% against the user's 4-week baseline").
- **not declared** (the shipped default, which knows no product): every name is hashed
  (CRC-32) into :data:`DEFAULT_SLOTS` slots, so breadth of use and per-kind decline still work
  on any product without a configuration; reasons say "one kind of activity".

Roles are declared by name (``roles`` in the model file), with defaults that recognise the
usual spellings: ``purchase`` (an activity that also carries an amount and feeds BG/NBD),
``cancel`` (not activity: the user says they leave), ``subscription`` (a billing statement of
the revenue side, models.subscription: not usage, so the usage state leaves it to models.revenue).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final, Mapping, Sequence

__all__ = [
    "ACTIVITY",
    "CANCEL",
    "DEFAULT_ROLES",
    "DEFAULT_SLOTS",
    "DEFAULT_VOCABULARY",
    "MAX_SLOTS",
    "PURCHASE",
    "ROLES",
    "SUBSCRIPTION",
    "Vocabulary",
]

ACTIVITY: Final[int] = 0
PURCHASE: Final[int] = 1
CANCEL: Final[int] = 2
SUBSCRIPTION: Final[int] = 3
#: Role names as the model file writes them -> role code.
ROLES: Final[Mapping[str, int]] = {"purchase": PURCHASE, "cancel": CANCEL, "subscription": SUBSCRIPTION}
DEFAULT_ROLES: Final[Mapping[str, tuple[str, ...]]] = {
    "purchase": ("purchase", "order", "payment", "checkout", "buy", "transaction"),
    "cancel": ("cancel", "cancellation", "unsubscribe", "cancel_subscription", "subscription_cancel", "account_delete", "delete_account"),
    "subscription": ("subscription",),
}
#: Slots when no names are declared (hashed), and the most a model may declare.
DEFAULT_SLOTS: Final[int] = 8
MAX_SLOTS: Final[int] = 16
_CACHE_MAX: Final[int] = 10_000  # distinct names remembered (a product has tens, not millions)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Slots and roles of event names (module docstring).

    >>> v = Vocabulary(("post", "like"))
    >>> v.lookup("like"), v.lookup("order"), v.lookup("share"), v.lookup("cancellation")
    ((1, 0), (-1, 1), (-1, 0), (-1, 2))
    >>> Vocabulary().lookup("post")[0] in range(DEFAULT_SLOTS)
    True
    """

    tracked: tuple[str, ...] = ()
    roles: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    _names: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.tracked) > MAX_SLOTS:
            raise ValueError(f"tracked_types names {len(self.tracked)} event types, at most {MAX_SLOTS}")
        if len(set(self.tracked)) != len(self.tracked) or not all(isinstance(n, str) and n for n in self.tracked):
            raise ValueError(f"tracked_types must be distinct non-empty names, got {list(self.tracked)}")
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"roles name unknown roles {sorted(unknown)}; known: {sorted(ROLES)}")

    @property
    def n_slots(self) -> int:
        return len(self.tracked) if self.tracked else DEFAULT_SLOTS

    def slot_name(self, slot: int) -> str | None:
        """The event name of ``slot``, None for hashed slots (several names may share one)."""
        return self.tracked[slot] if self.tracked else None

    def lookup(self, name: str) -> tuple[int, int]:
        """(slot or -1, role) of an event name; cancellations and subscription statements take no
        slot (they are not activity)."""
        found = self._names.get(name)
        if found is None:
            found = self._resolve(name)
            if len(self._names) < _CACHE_MAX:
                self._names[name] = found
        return found

    def _resolve(self, name: str) -> tuple[int, int]:
        role = ACTIVITY
        for role_name, names in self.roles.items():
            if name in names:
                role = ROLES[role_name]
                break
        if role in (CANCEL, SUBSCRIPTION):
            return -1, role
        if self.tracked:
            return (self.tracked.index(name) if name in self.tracked else -1), role
        if role == PURCHASE:
            return -1, role  # purchases have their own counters (models.state)
        return zlib.crc32(name.encode()) % DEFAULT_SLOTS, role


DEFAULT_VOCABULARY: Final[Vocabulary] = Vocabulary()
