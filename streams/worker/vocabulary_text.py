"""The model's vocabulary in words: which event names it tracks and which play a role.

Shared by ``churnwatch train``'s report (with each name's event count in the history) and the
worker's start line (the model's names alone): one wording, so an operator reads the same lines
in both (QA10 F7: nothing said which types were tracked, which left out, or that ``uninstall``
played ``negative``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from models.model import ChurnModel
from models.vocabulary import DEFAULT_SLOTS, GRIEVANCE_ROLE

__all__ = ["ROLE_EFFECTS", "vocabulary_lines"]

#: The roles whose absence changes what train learns, and what it changes.
ROLE_EFFECTS = {"purchase": ("purchases", "no purchase is counted and no purchase model (BG/NBD) is fitted"),
                "cancel": ("cancellations", "no cancellation ends a user: its event counts as activity, and without "
                                            "--labels churn is learned from inactivity alone")}  # QA16 F10: said with --labels too

#: Most names listed on one line (the rest are counted).
_MAX_LISTED = 30


def _listed(items: Sequence[str], none: str = "none") -> str:
    shown = ", ".join(items[:_MAX_LISTED]) or none
    return shown + (f", ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def vocabulary_lines(model: ChurnModel, counts: Mapping[str, int] | None = None) -> list[str]:
    """The tracked types and each role's names; with ``counts`` (events by name, after renaming:
    train's report) each with its event count, the names neither tracked nor in a role (counted as
    plain activity, not one by one) too, and only the names the history has: a purchase or cancel
    role that matched nothing is left to ``streams.cli.train.unmatched_role_lines``. Without
    ``counts`` (the worker's start line, before any event) every name the model declares, and its
    renames.

    >>> m = ChurnModel(tracked_types=["view", "share"])
    >>> for line in vocabulary_lines(m, {"view": 9, "share": 3, "order": 2, "uninstall": 1, "tag": 1000}):
    ...     print(line)
    tracked types (2): view 9, share 3
    left out (counted as plain activity only): tag 1,000
    role purchase: order 2
    role negative: uninstall 1
    >>> vocabulary_lines(ChurnModel(tracked_types=["view"]), {"view": 1})[-1]
    'role negative: no event of its names (dislike, thumbs_down, downvote, ...)'
    >>> for line in vocabulary_lines(ChurnModel(roles={"purchase": ["buy"], "cancel": []}, event_types={"Buy_Now": "buy"})):
    ...     print(line)
    tracked types: none declared (every name is hashed into 8 slots)
    role purchase: buy
    role cancel: no names declared
    renames: buy_now -> buy
    """
    if counts is None:
        return _declared_lines(model)
    role_of = {name: role for role, names in model.roles.items() for name in names if role != GRIEVANCE_ROLE}  # a grievance plays negative
    tracked = set(model.tracked_types)
    by_count = sorted(counts, key=lambda name: (-counts[name], name))
    lines = [f"tracked types ({len(tracked)}): " + _listed([f"{t} {counts.get(t, 0):,}" for t in model.tracked_types])]
    out = [f"{n} {counts[n]:,}" for n in by_count if n not in tracked and n not in role_of]
    lines.append("left out (counted as plain activity only): " + _listed(out))
    for role, names in model.roles.items():
        if role == "subscription" and not counts.get(names[0] if names else "", 0):
            continue  # billing statements: said where they are used (docs/REVENUE.md)
        seen = [f"{n} {counts[n]:,}" for n in by_count if role_of.get(n) == role or role == GRIEVANCE_ROLE and n in names]
        if not seen and role in ROLE_EFFECTS:
            continue  # unmatched_role_lines says it, with what it changes and how to declare names
        looked = ", ".join(list(names)[:3]) + (", ..." if len(names) > 3 else "")
        lines.append(f"role {role}: " + _listed(seen, f"no event of its names ({looked})" if names else "no names declared"))
    return lines


def _declared_lines(model: ChurnModel) -> list[str]:
    """:func:`vocabulary_lines` without counts: what the model file declares."""
    tracked = (f"tracked types ({len(model.tracked_types)}): " + _listed(list(model.tracked_types)) if model.tracked_types
               else f"tracked types: none declared (every name is hashed into {DEFAULT_SLOTS} slots)")
    lines = [tracked] + [f"role {role}: " + _listed(list(names), "no names declared") for role, names in model.roles.items()]
    if model.event_types:
        lines.append("renames: " + _listed([f"{k} -> {v}" for k, v in sorted(model.event_types.items())]))
    return lines
