"""train says when customers of the history came back after more than the retention (QA21 F8).

The stream forgets a churned customer ``customer_retention_days`` (180 by default) after the
churn is reported: QA21's gift buyers (an order in February, the next in October) came back
"new" in October, their history gone (28 of 198), and train said nothing of it although its
history showed them.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from streams import cli

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000


def _history(path: Path, gift_buyers: int) -> None:
    """40 users over 300 days who open the app every few days and order now and then, a third of
    them stopping on a day of 100-200; and ``gift_buyers`` customers who order on day 10 and come
    back 250 days later to order again."""
    rng = random.Random(7)
    rows = ["user_id,ts,event_type,amount"]
    for u in range(40):
        end = rng.randrange(100, 200) if u % 3 == 0 else 300
        for d in range(rng.randrange(0, 30), end, rng.randrange(2, 5)):
            t = START_MS + d * DAY_MS + rng.randrange(0, 40_000_000)
            rows.append(f"u{u:02d},{t},app_open,")
            if rng.random() < 0.1:
                rows.append(f"u{u:02d},{t + 60_000},purchase,20.00")
    for g in range(gift_buyers):
        for d in (10, 260):
            rows.append(f"gift{g},{START_MS + d * DAY_MS + g * 3_600_000},purchase,35.00")
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("gift_buyers", [2, 0])
def test_train_says_which_retention_keeps_customers_back_after_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  gift_buyers: int) -> None:
    """Two customers back after 250 days: one WARNING naming 2, their share of the customers who
    came back, and a --retention of at least 250 days, also in the model file's training report;
    a history without such a silence: no line and no key."""
    _history(tmp_path / "events.csv", gift_buyers)
    out = tmp_path / "m.json"
    assert cli.main(["train", "--events", str(tmp_path / "events.csv"), "--l2", "0.01", "--out", str(out)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "yearly buyers" in ln]
    training = json.loads(out.read_text())["training"]
    if not gift_buyers:
        assert lines == [] and "long_returns" not in training
        return
    assert len(lines) == 1 and lines[0].startswith("WARNING: 2 customers came back after more than 180 days of silence")
    found = training["long_returns"]
    assert found["customers"] == 2 and found["retention_days"] == 180
    assert found["returned"] >= 2 and f"{100 * 2 / found['returned']:.1f}% of the {found['returned']} customers" in lines[0]
    days = int(re.search(r"--retention (\d+)d keeps all of these 2", lines[0]).group(1))  # type: ignore[union-attr]
    assert days == found["suggested_days"] and 250 <= days <= 251


def test_train_with_the_retention_it_suggests_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--retention 251d (what the line suggests for two customers back after 250 days): kept, no line."""
    _history(tmp_path / "events.csv", 2)
    out = tmp_path / "m.json"
    assert cli.main(["train", "--events", str(tmp_path / "events.csv"), "--retention", "251d",
                     "--no-fit", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kept 251 days after the churn is reported" in printed and "yearly buyers" not in printed
    assert "long_returns" not in json.loads(out.read_text())["training"]
