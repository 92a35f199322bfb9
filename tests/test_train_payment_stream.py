"""train warns when the purchase role's names are a stream of payments (QA19 F4).

A neobank declared ``purchase = ["card_payment"]`` (the README's purchase names include
payment and transaction): customers pay every 2-3 days, the re-order rule alerted all 3,000 of
them ("usual re-order every 2 days, none for 4 days"), and train said nothing about it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streams import cli

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000


def _history(path: Path, purchase: str, every_days: int) -> None:
    """60 users over 150 days who open the app most days and buy ``purchase`` every
    ``every_days`` days; a third stop on a day of 60-120."""
    rng = random.Random(4)
    rows = ["user_id,ts,event_type,amount"]
    for u in range(60):
        end = rng.randrange(60, 120) if u % 3 == 0 else 150
        for d in range(rng.randrange(0, 20), end):
            t = START_MS + d * DAY_MS + rng.randrange(0, 40_000_000)
            if rng.random() < 0.7:
                rows.append(f"c{u:02d},{t},app_open,")
            if d % every_days == u % every_days:
                rows.append(f"c{u:02d},{t + 60_000},{purchase},12.50")
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize(("every_days", "warned"), [(2, True), (21, False)])
def test_train_warns_of_purchases_made_every_few_days(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      every_days: int, warned: bool) -> None:
    """Card payments every 2 days declared as purchases: one WARNING line naming them, that the
    re-order rule will fire after days, and to declare them as activity; orders every 3 weeks: none."""
    _history(tmp_path / "events.csv", "card_payment", every_days)
    (tmp_path / "bank.toml").write_text('[roles]\npurchase = ["card_payment"]\n')
    assert cli.main(["train", "--events", str(tmp_path / "events.csv"), "--config", str(tmp_path / "bank.toml"),
                     "--l2", "0.01", "--out", str(tmp_path / "m.json")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "stream of payments" in ln]
    if warned:
        assert len(lines) == 1 and lines[0].startswith("WARNING: purchases (card_payment) are made every ")
        assert "re-order" in lines[0] and "declare them as activity" in lines[0]
    else:
        assert lines == []
