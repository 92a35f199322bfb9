"""``CHURNWATCH_ALERTS_FROM`` / ``--alerts-from`` (QA14 F9, onboarding a history): read as an ISO
date or time in event time; a value that is not one stops the command with one readable line.
What the worker then publishes: tests/test_pipeline.py and tests/test_stream_backtest_identity.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import main
from streams.settings import Settings, SettingsError

FEB_1_MS = 1_769_904_000_000  # 2026-02-01T00:00:00Z


def test_alerts_from_reads_an_iso_date_or_time_and_is_off_when_unset() -> None:
    assert Settings().alerts_from_ms == 0
    assert Settings.from_env({"CHURNWATCH_ALERTS_FROM": "2026-02-01"}).alerts_from_ms == FEB_1_MS
    assert Settings.from_env({"CHURNWATCH_ALERTS_FROM": "2026-02-01T01:00:00+01:00"}).alerts_from_ms == FEB_1_MS
    assert Settings.from_env({"CHURNWATCH_ALERTS_FROM": "2026-02-01T12:00:00Z"}).alerts_from_ms == FEB_1_MS + 43_200_000


@pytest.mark.parametrize("bad", ["yesterday", "1769904000000", "2026-02-30", "2026-13-01"])
def test_a_bad_alerts_from_is_refused_in_one_line(bad: str) -> None:
    with pytest.raises(SettingsError, match=r"CHURNWATCH_ALERTS_FROM.*must be an ISO date or time") as err:
        Settings.from_env({"CHURNWATCH_ALERTS_FROM": bad})
    assert "\n" not in str(err.value) and repr(bad) in str(err.value)


def test_the_commands_refuse_a_bad_value_in_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    events = tmp_path / "e.csv"
    events.write_text("user_id,ts,event_type\nu1,2026-01-01T00:00:00Z,login\n", encoding="utf-8")
    args = ["backtest", "--events", str(events), "--as-of", "2026-01-02", "--out", str(tmp_path / "s.csv"), "--no-progress"]
    assert main([*args, "--alerts-from", "last week"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("churnwatch backtest: error: alerts_from (CHURNWATCH_ALERTS_FROM, --alerts-from) must be") and "\n" not in err
    assert not (tmp_path / "s.csv").exists()
    monkeypatch.setenv("CHURNWATCH_ALERTS_FROM", "soon")  # the worker reads it at start, as every command does
    assert main(["worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("churnwatch worker: error: alerts_from") and "'soon'" in err and "\n" not in err


def test_backtest_leaves_out_the_alerts_a_worker_withholds_and_says_how_many(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``--alerts-from``: the alerts file is the one without it minus the alerts dated before the
    date (what the worker publishes, tests/test_stream_backtest_identity.py); the scores are the same."""
    import json

    from streams.offline.simulate import generate, write_events_csv

    start_ms, day_ms = 1_767_225_600_000, 86_400_000
    events, _ = generate(seed=7, n_users=60, start_ms=start_ms, days=56)
    write_events_csv(tmp_path / "e.csv", events)
    out = {}
    for name, extra in (("all", []), ("warm", ["--alerts-from", "2026-01-29"])):
        assert main(["backtest", "--events", str(tmp_path / "e.csv"), "--as-of", "2026-01-08/2026-02-26/7d", "--jobs", "2",
                     "--out", str(tmp_path / f"{name}.csv"), "--alerts-out", str(tmp_path / f"{name}.jsonl"), "--no-progress",
                     *extra]) == 0
        out[name] = ([json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()],
                     (tmp_path / f"{name}.csv").read_bytes(), capsys.readouterr().out)
    cutoff_ms = start_ms + 28 * day_ms
    early = [a for a in out["all"][0] if a["event_time_ms"] < cutoff_ms]
    assert early and len(early) < len(out["all"][0]), "alerts on both sides of the date"
    assert out["warm"][0] == [a for a in out["all"][0] if a["event_time_ms"] >= cutoff_ms]
    assert out["warm"][1] == out["all"][1], "the same scores"
    n = sum(a["kind"] == "at_risk" for a in early)
    assert f"(--alerts-from 2026-01-29T00:00:00.000Z: {n} at-risk alert" in out["warm"][2]
    assert "--alerts-from" not in out["all"][2]
