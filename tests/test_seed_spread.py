"""The seed spread of the quality table (benchmarks/seed_spread.py): its arguments, which
populations a seeded build makes and where, the summary and its section of QUALITY.md, on toy
figures (no population is generated: the run itself is a benchmark, `make quality-seeds`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import populations, quality, seed_spread


def test_seeds_argument_names_a_generated_population_and_other_seeds() -> None:
    assert seed_spread.parse_seeds(["fightchurn-tiers=83,84"]) == {"fightchurn-tiers": (83, 84)}
    for bad, why in (("cdnow=1", "NAME one of"), ("simulate-mix", "NAME one of"), ("simulate-mix=2,x", "whole numbers"),
                     ("simulate-mix=3,3", "distinct"), ("simulate-mix=-1", "distinct and >= 0"),
                     ("fightchurn-socialnet7=81,71", "main table's own seed")):
        with pytest.raises(ValueError, match=why):
            seed_spread.parse_seeds([bad])
    # the fixed seeds are other seeds of the generated populations, two each
    assert set(seed_spread.SEEDS) == set(populations.SEEDED)
    assert all(len(s) == 2 and seed_spread.original_seed(n) not in s for n, s in seed_spread.SEEDS.items())


def test_bad_arguments_get_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--seeds", "cdnow=5"], ["--jobs", "0"]):
        with pytest.raises(SystemExit) as exc:
            seed_spread.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("benchmarks.seed_spread: error: ") and "Traceback" not in "".join(err)


def test_a_seeded_build_replaces_only_the_seed_and_leaves_cdnow_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(populations, "_cdnow", lambda folder: calls.append(("cdnow", folder)))
    monkeypatch.setattr(populations, "_fightchurn", lambda name, spec, folder, jobs: calls.append((name, spec, folder)))
    monkeypatch.setattr(populations, "_simulate", lambda folder, seed: calls.append(("simulate-mix", seed, folder)))
    list(populations.build(tmp_path, seed=81))
    assert [c[0] for c in calls] == ["fightchurn-socialnet7", "fightchurn-tiers", "simulate-mix"]
    for name, spec, folder in calls[:2]:
        assert spec == {**populations.FIGHTCHURN_CONFIGS[name], "seed": 81} and folder == tmp_path / f"{name}@seed81"
    assert calls[2][1:] == (81, tmp_path / "simulate-mix@seed81")
    calls.clear()
    list(populations.build(tmp_path))  # the table's own: the same specs and folders as before the option existed
    assert calls[0] == ("cdnow", tmp_path / "cdnow")
    assert calls[1] == ("fightchurn-socialnet7", populations.FIGHTCHURN_CONFIGS["fightchurn-socialnet7"], tmp_path / "fightchurn-socialnet7")
    assert calls[3] == ("simulate-mix", 11, tmp_path / "simulate-mix")


def test_the_stored_table_reproduces_its_verdicts_with_margins() -> None:
    """The summary recomputes the main table's margins from quality.json's figures: they must
    give the verdicts stored beside them, and a margin's sign is its verdict."""
    stored = json.loads(quality.JSON_OUT.read_text())
    for name, pop in stored["populations"].items():
        for key, c in seed_spread._original_checks(name, pop).items():
            strict = key in ("default_beats_baselines", "flap_rate")  # "> best baseline", "< 5%"
            assert c["met"] is None or (c["margin"] > 0 if strict else c["margin"] >= -1e-9) == c["met"]


def _pop(default: float, trained: float, lr: float, precision: float, recall: float, flap: float) -> dict[str, Any]:
    scorers = {"default": {"roc_auc": default, "roc_auc_se": 0.01, "precision": precision, "recall": recall, "flap_rate": flap},
               "trained_labels": {"roc_auc": trained, "roc_auc_se": 0.01}, "trained_no_labels": {"roc_auc": 0.6, "roc_auc_se": 0.01},
               "events_28d": {"roc_auc": 0.6, "roc_auc_se": 0.01}, "days_since_last": {"roc_auc": 0.6, "roc_auc_se": 0.01},
               "logistic_per_type": {"roc_auc": lr, "roc_auc_se": 0.01}}
    pop = {"base_rate": 0.05, "scorers": scorers, "counts": {"users_test": 10, "churners_test": 2}, "rows_judged": 100}
    return {**pop, "checks": quality.checks(pop)}


def test_summary_counts_every_seed_and_the_section_shows_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = {"when": "t0", "model": "shipped default", "machine": "2 cores", "jobs": 2, "seconds": 1.0,
                "populations": {"simulate-mix": _pop(0.70, 0.74, 0.72, 0.20, 0.45, 0.02)}}
    results = {"when": "t1", "model": "shipped default", "machine": "2 cores", "jobs": 2, "seconds": 9.0, "table_run": "t0",
               "table_model": "shipped default", "populations": {"simulate-mix": {
                   "21": _pop(0.74, 0.75, 0.72, 0.10, 0.50, 0.02), "22": _pop(0.69, 0.73, 0.72, 0.15, 0.38, 0.06)}}}
    s = seed_spread.summarise(original, results)["simulate-mix"]
    assert s["default_beats_baselines"]["met"] == {"11": False, "21": True, "22": False}
    assert s["default_beats_baselines"]["met_on"] == 1 and s["default_beats_baselines"]["margin_range"] == [-0.03, 0.02]
    assert s["trained_beats_lr"]["margin_mean"] == pytest.approx(0.0)  # +0.0, +0.01, -0.01: met on two (0 is met)
    assert s["trained_beats_lr"]["met_on"] == 2 and s["trained_beats_lr"]["margin_sd"] == pytest.approx(0.01)
    assert s["alert_precision"]["margin"]["11"] == pytest.approx(0.5) and s["alert_precision"]["met_on"] == 1
    assert s["alert_recall"]["met_on"] == 2 and s["flap_rate"]["met_on"] == 2
    results["summary"] = seed_spread.summarise(original, results)
    monkeypatch.setattr(quality, "MD_OUT", tmp_path / "QUALITY.md")
    monkeypatch.setattr(seed_spread, "JSON_OUT", tmp_path / "quality_seeds.json")
    table = {**original, "populations": {}}  # the main table's own rendering is tested in test_quality.py
    quality.write_markdown(table)  # no seed run yet: the main table alone
    assert (tmp_path / "QUALITY.md").read_text() == quality.render(table)
    seed_spread.JSON_OUT.write_text(json.dumps(results))
    quality.write_markdown(table)
    text = (tmp_path / "QUALITY.md").read_text()
    assert text.startswith(quality.render(table)) and "## The same checks on other seeds" in text
    assert "| simulate-mix | default AUC > best simple baseline's AUC | 1 of 3 | 11 (table): -0.0200, 21: +0.0200, 22: -0.0300 |" in text
    assert text.count("| simulate-mix | 21 |") == len(quality.CHECKS) + 1  # its checks and its AUC row
    assert "| simulate-mix | 22 | default's flap rate < 5% | 0.06 | < 0.05 | **not met** |" in text
