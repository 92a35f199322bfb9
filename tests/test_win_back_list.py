"""Who the user win-back list holds (QA pass 3, 2026-12-02, item 12): `top --win-back -n` and the
console's tab read the at-risk index, the users whose at-risk alert is open; a user who lapses
without one (an explicit cancel makes a user churned at once, and at-risk alerts are for reachable
users) is listed by `--share` only. README and `top --help` said "lapsed users, warmest first" and
left that out; they say it now (docs/SCORES.md "The daily lists" always did)."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.engine import advance
from models.events import Event
from models.model import load_model
from models.state import STAGES

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


def test_a_user_who_cancels_lapses_without_an_at_risk_alert() -> None:
    """Why the index-read list leaves such a user out: churned at the cancel, no at-risk alert open.
    60 daily days: since QA19 F6 (2026-12-05) the shipped default's day-1 alert of a new daily user
    closes on day 24 (back at their own level and under the exit line through a usual pause),
    not day 10; a cancel on day 19 found it open."""
    events = [Event("u1", T0 + d * DAY_MS + 3_600_000, "view", f"e{d}") for d in range(60)]
    events.append(Event("u1", T0 + 59 * DAY_MS + 7_200_000, "cancel", "c"))
    out = advance("u1", None, events, T0 + 80 * DAY_MS, load_model(None))
    assert STAGES[out.state.stage] == "churned" and out.state.at_risk_since_s == 0, "lapsed, with no open at-risk alert"


def test_readme_and_help_say_whom_the_win_back_list_leaves_out() -> None:
    from streams.cli import top

    parser = argparse.ArgumentParser()
    top.add_arguments(parser)
    said = " ".join(parser.format_help().split())
    assert "with -n those whose at-risk alert is open" in said and "--share 100% is every lapsed user with an activity event" in said, said
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "with `-n` those whose at-risk alert is still open" in readme
    assert "`--win-back --share 100%` lists every lapsed user who used the product" in readme


def test_share_100_percent_leaves_out_a_user_whose_only_event_is_a_cancellation() -> None:
    """What README and `top --help` now say (review 2026-12-02): `--share 100%` lists every lapsed
    user with an activity event; one whose only event is a cancel is tracked but in no list."""
    from models.ranking import daily_list
    from models.state import tracked

    model = load_model(None)
    used = advance("u1", None, [Event("u1", T0 + d * DAY_MS, "view", f"e{d}") for d in range(5)]
                   + [Event("u1", T0 + 5 * DAY_MS, "cancel", "c1")], T0 + 40 * DAY_MS, model).state
    only = advance("u2", None, [Event("u2", T0 + 5 * DAY_MS, "cancel", "c2")], T0 + 40 * DAY_MS, model).state
    assert tracked(only) and only.n_events == 0
    rows = daily_list([("u1", used), ("u2", only)], (T0 + 40 * DAY_MS) // 1000, model, "win_back", share=1.0)
    assert [r.user_id for r in rows] == ["u1"]
