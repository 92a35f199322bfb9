"""train's one-time-step warning names every one-time step that would take a slot, at once (QA19 F11).

A bank followed the warning and ignored ``premium_subscribed``; the next train tracked
``premium_cancelled`` in the freed slot and warned again.
"""

from __future__ import annotations

from models.events import Event
from models.model import ChurnModel
from streams.cli.train import one_time_line
from streams.offline.train import choose_types, one_time_types


def _events() -> list[Event]:
    """By users: open (40, daily), subscribed (30, once), cancelled (25, once), pay (22, weekly)."""
    out = []
    for i in range(40):
        out += [Event(f"u{i}", (d + 1) * 86_400_000, "open", f"o{i}-{d}") for d in range(10)]
    out += [Event(f"u{i}", 3 * 86_400_000, "premium_subscribed", f"s{i}") for i in range(30)]
    out += [Event(f"u{i}", 9 * 86_400_000, "premium_cancelled", f"c{i}") for i in range(25)]
    out += [Event(f"u{i}", (7 * w + 1) * 86_400_000, "pay", f"p{i}-{w}") for i in range(22) for w in range(3)]
    return out


def test_the_warning_names_the_one_time_steps_next_in_line_too() -> None:
    events, base = _events(), ChurnModel()
    picked = base.with_(tracked_types=choose_types(events, base, 2))
    assert picked.tracked_types == ("open", "premium_subscribed")
    found = one_time_types(events, picked, 2)
    assert list(found) == ["premium_subscribed", "premium_cancelled"], found
    assert (found["premium_subscribed"]["tracked"], found["premium_cancelled"]["tracked"]) == (1.0, 0.0)
    line = one_time_line(found)
    assert "tracked: premium_subscribed (100% of its 30 users" in line
    assert "next in line for its slot: premium_cancelled (100% of its 25 users" in line
    assert 'ignore = ["premium_subscribed", "premium_cancelled"]' in line
    # followed: both ignored in one go, the next train tracks use and warns no more
    followed = ChurnModel(roles={**base.roles, "ignore": ["premium_subscribed", "premium_cancelled"]})
    again = followed.with_(tracked_types=choose_types(events, followed, 2))
    assert again.tracked_types == ("open", "pay") and one_time_types(events, again, 2) == {}


def test_without_a_pick_only_the_tracked_types_are_judged() -> None:
    """A base model's own tracked types (declared by hand): only those, as before."""
    found = one_time_types(_events(), ChurnModel(tracked_types=["open", "premium_subscribed"]))
    assert list(found) == ["premium_subscribed"]
