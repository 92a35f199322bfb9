"""``train --no-fit``: the shipped default told the product's names, no number fitted (QA19 F9).

A neobank without labels could not make the default read ``account_closed`` as a cancellation:
``backtest --config`` with the default was refused ("a model's roles are fixed when it is
trained"), and the closure counted as activity.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from models.model import load_model
from streams import cli

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000
#: The numbers a fit would set: --no-fit leaves every one of them the default's.
FITTED = ("risk_weights", "risk_intercept", "risk_means", "risk_enter", "risk_exit", "alive_calibration", "bgnbd", "horizon_days")


def _history(path: Path) -> None:
    """40 users over 120 days who open the app or pay most days; c00 closes the account on day 100."""
    rng = random.Random(9)
    rows = ["user_id,ts,event_type,amount"]
    for u in range(40):
        for d in range(rng.randrange(0, 10), 100 if u == 0 else 120):
            t = START_MS + d * DAY_MS + rng.randrange(0, 40_000_000)
            rows.append(f"c{u:02d},{t},{'app_open' if rng.random() < 0.7 else 'card_payment'},")
    rows.append(f"c00,{START_MS + 100 * DAY_MS},account_closed,")
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture()
def unfitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, Path, str]:
    _history(tmp_path / "e.csv")
    (tmp_path / "bank.toml").write_text('[roles]\ncancel = ["account_closed"]\n')
    out = tmp_path / "m.json"
    assert cli.main(["train", "--events", str(tmp_path / "e.csv"), "--config", str(tmp_path / "bank.toml"), "--no-fit",
                     "--out", str(out)]) == 0
    return tmp_path / "e.csv", tmp_path / "bank.toml", out, capsys.readouterr().out


def test_no_fit_keeps_the_default_numbers_and_takes_the_names(unfitted: tuple[Path, Path, Path, str]) -> None:
    _, _, out, printed = unfitted
    model, default = load_model(out), load_model()
    assert {k: getattr(model, k) for k in FITTED} == {k: getattr(default, k) for k in FITTED}
    assert list(model.roles["cancel"]) == ["account_closed"] and list(model.roles["purchase"]) == list(default.roles["purchase"])
    assert set(model.tracked_types) == {"app_open", "card_payment"} and model.version.startswith("unfitted-")
    assert sorted(model.population["kinds"]) == ["app_open", "card_payment"]
    assert 1.0 <= model.population["first_return_days"] < 3.0  # the product's levels: its first-return interval too (QA19 F8)
    first = printed.splitlines()[0]
    assert "no weight fitted" in first and "the shipped default's" in first and "role cancel: account_closed 1" in printed


def _stage(events: Path, tmp_path: Path, argv: list[str]) -> str:
    scores = tmp_path / "s.csv"
    assert cli.main(["backtest", "--events", str(events), "--as-of", "2026-04-12", "--out", str(scores), "--no-progress", *argv]) == 0
    return next(r["stage"] for r in csv.DictReader(scores.open()) if r["user_id"] == "c00")


def test_its_roles_apply_in_a_backtest(unfitted: tuple[Path, Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The closure churns the user under the --no-fit file; the default reads it as a visit, and
    refuses the config's roles in one line that names --no-fit."""
    events, config, out, _ = unfitted
    assert _stage(events, tmp_path, ["--model", str(out)]) == "churned"
    assert _stage(events, tmp_path, []) != "churned"
    assert cli.main(["backtest", "--events", str(events), "--as-of", "2026-04-12", "--out", str(tmp_path / "x.csv"),
                     "--no-progress", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--no-fit" in err


@pytest.mark.parametrize("extra", [["--labels", "t.csv"], ["--l2", "0.1"], ["--churn-after", "45d"]])
def test_no_fit_refuses_what_only_a_fit_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    _history(tmp_path / "e.csv")
    argv = ["train", "--events", str(tmp_path / "e.csv"), "--no-fit", "--out", str(tmp_path / "m.json"), *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"--no-fit fits nothing, so {extra[0]} has nothing to act on" in err
    assert not (tmp_path / "m.json").exists()
