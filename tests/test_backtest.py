"""The backtest command: same scores as the engine, as-of parsing, metrics, config, labels, errors."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import DEFAULT_TYPE_MAP
from models.model import load_model
from models.scoring import score
from streams.cli.argtypes import parse_as_of
from streams.offline.evaluate import (
    AlertEpisode,
    Labels,
    _panel_collector,
    alert_episodes,
    alert_outcomes,
    covers,
    lead_time_ms,
    lift_table,
    median,
    roc_auc,
    roc_curve,
    top_fraction_lift,
)
from streams.offline.parallel import DateOutput, replay_text, user_ranges
from streams.offline.replay import Progress, ScoreRow, load_type_map, score_row
from streams.timefmt import format_day_or_time
from streams.cli import main
from streams.offline.history import read_events_csv
from streams.offline.simulate import generate, write_events_csv, write_truth_csv

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000
AS_OF = "2026-01-15/2026-03-05/7d"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small simulated population written gzipped and in shuffled order, with its truth."""
    events, truth = generate(seed=5, n_users=90, start_ms=START_MS, days=75)
    folder = tmp_path_factory.mktemp("backtest")
    shuffled = list(events)
    random.Random(0).shuffle(shuffled)
    write_events_csv(folder / "events.csv.gz", shuffled)
    write_truth_csv(folder / "truth.csv", truth)
    return {"dir": folder, "events": folder / "events.csv.gz", "truth": folder / "truth.csv", "truths": truth}


@pytest.fixture(scope="module")
def run_with_labels(sim: dict) -> dict:
    out = sim["dir"] / "scores.csv"
    churners = sorted((t.persona != "decliner", t.user_id) for t in sim["truths"] if t.churned_at_ms)
    decliner = churners[0][1]
    plot = sim["dir"] / "user.png"
    buf_out, buf_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
        code = main(["backtest", "--events", str(sim["events"]), "--as-of", AS_OF, "--out", str(out), "--labels", str(sim["truth"]),
                     "--plot-user", decliner, "--plot-out", str(plot), "--alerts-out", str(sim["dir"] / "alerts.jsonl"),
                     "--no-progress"])
    return {"code": code, "out": out, "stdout": buf_out.getvalue(), "plot": plot, "alerts": sim["dir"] / "alerts.jsonl"}


def _read_scores(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------


def test_cli_scores_equal_the_engine_run_from_scratch(sim: dict, run_with_labels: dict) -> None:
    """Every row equals advance(all events before the date) + score at the date, computed here
    in one go per (user, date): the incremental replay gives the stream's own numbers."""
    assert run_with_labels["code"] == 0
    rows = _read_scores(run_with_labels["out"])
    events = read_events_csv(sim["events"])
    model = load_model()
    expected = []
    for date_ms in parse_as_of(AS_OF):
        before: dict[str, list] = {}
        for ev in events:
            if ev.ts_ms < date_ms:
                before.setdefault(ev.user_id, []).append(ev)
        for user in sorted(before):
            out = advance(user, None, before[user], date_ms, model)
            if not out.expire:
                expected.append(score_row(user, date_ms, score(out.state, date_ms // 1000, model)).as_csv())
    got = [[r[c] for c in ("user_id", "as_of", "risk", "health", "temperature", "stage", "segment", "action", "reason")] for r in rows]
    assert len(got) > 100
    assert sorted(got) == sorted(expected)


def test_cli_alerts_are_the_engines_alerts(sim: dict, run_with_labels: dict) -> None:
    """--alerts-out holds exactly the alerts advance() raises over the whole history up to the
    last as-of date, each once, as the stream would publish them."""
    got = [json.loads(line) for line in run_with_labels["alerts"].read_text().splitlines()]
    last_ms = parse_as_of(AS_OF)[-1]
    model = load_model()
    per_user: dict[str, list] = {}
    for ev in read_events_csv(sim["events"]):
        if ev.ts_ms < last_ms:
            per_user.setdefault(ev.user_id, []).append(ev)
    expected = [a.to_dict() for user in sorted(per_user) for a in advance(user, None, per_user[user], last_ms, model).alerts]
    assert any(a["kind"] == "at_risk" for a in expected)
    assert sorted(got, key=lambda a: a["alert_id"]) == sorted(expected, key=lambda a: a["alert_id"])


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_output_does_not_depend_on_the_number_of_jobs(sim: dict, run_with_labels: dict, tmp_path: Path, jobs: str) -> None:
    """Users replayed in one process or in forked shards: the same scores, alerts and metrics, byte for byte."""
    out = tmp_path / "scores.csv"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["backtest", "--events", str(sim["events"]), "--as-of", AS_OF, "--out", str(out), "--labels", str(sim["truth"]),
                     "--alerts-out", str(tmp_path / "alerts.jsonl"), "--no-progress", "--jobs", jobs])
    assert code == 0
    assert out.read_bytes() == run_with_labels["out"].read_bytes()
    assert (tmp_path / "alerts.jsonl").read_bytes() == run_with_labels["alerts"].read_bytes()
    ours, theirs = (json.loads(p.with_name("scores.metrics.json").read_text()) for p in (out, run_with_labels["out"]))
    for report in (ours, theirs):
        for key in ("jobs", "seconds_read", "seconds_replay", "events_per_s", "events_per_s_replay_only", "processes"):
            report.pop(key)
    assert ours == theirs


def test_cli_writes_metrics_json_and_charts(run_with_labels: dict) -> None:
    out: Path = run_with_labels["out"]
    metrics = json.loads(out.with_name("scores.metrics.json").read_text())
    det = metrics["detection"]
    assert metrics["events"] > 0 and metrics["rows"] == len(_read_scores(out))
    assert 0.0 <= det["roc_auc"] <= 1.0
    assert det["rows_judged"] + det["rows_excluded_reported_churned"] + det["rows_excluded_horizon_past_data_end"] == metrics["rows"]
    ahead = det["churn_ahead"]
    assert ahead["rows_judged"] + ahead["rows_excluded_already_churned"] + det["rows_excluded_horizon_past_data_end"] == metrics["rows"]
    assert ahead["rows_judged"] + det["rows_already_gone"] == det["rows_judged"]
    assert det["lift_by_decile"][-1]["captured"] == pytest.approx(1.0)
    assert det["churners_flagged_before_churn"] <= det["churners_in_window"]
    for name in ("scores.roc.png", "scores.lift.png"):
        assert out.with_name(name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run_with_labels["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ROC AUC" in run_with_labels["stdout"] and "recall" in run_with_labels["stdout"]


def test_user_plot_legends_cover_no_data(sim: dict) -> None:
    """QA 2026-12: the risk panel's legend (upper left, inside the axes) hid the first alert's
    marker. Every legend now sits outside every panel, and every alert's marker is drawn whole."""
    from streams.offline import plots
    from streams.offline.replay import timeline

    user = sorted((t.persona != "decliner", t.user_id) for t in sim["truths"] if t.churned_at_ms)[0][1]  # run_with_labels' user
    mine = sorted((e for e in read_events_csv(sim["events"]) if e.user_id == user), key=lambda e: e.ts_ms)
    start = mine[0].ts_ms // DAY_MS * DAY_MS + DAY_MS
    model = load_model()
    rows, alerts = timeline(user, mine, model, start, START_MS + 75 * DAY_MS)
    assert any(a.kind == "at_risk" for a in alerts)
    fig = plots._timeline_figure(rows, alerts, [e.ts_ms for e in mine], "", None, model.risk_enter, model.risk_exit)
    fig.canvas.draw()
    panels = [ax.get_window_extent() for ax in fig.axes]
    legends = [ax.get_legend().get_window_extent() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 3 and not any(leg.overlaps(panel) for leg in legends for panel in panels)
    markers = [line for line in fig.axes[2].get_lines() if line.get_marker() in ("v", "^")]
    assert len(markers) == sum(a.kind in ("at_risk", "recovered") for a in alerts)
    assert all(not line.get_clip_on() for line in markers)  # an alert on the first day is not cut in half by the edge


def test_labels_persona_splits_recall(run_with_labels: dict) -> None:
    det = json.loads(run_with_labels["out"].with_name("scores.metrics.json").read_text())["detection"]
    per = det["by_persona"]
    assert per, "the simulator's truth has a persona column"
    assert sum(p["churners"] for p in per.values()) == det["churners_in_window"]
    assert sum(p["flagged"] for p in per.values()) == det["churners_flagged_before_churn"]


def test_one_date_prints_no_python_none_and_a_date_past_the_data_is_said(sim: dict, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str],
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """QA3 #16: one as-of date with --labels printed "precision None ... None at-risk alerts per
    user-month", "recall None"; an as-of date after the data's end gave rows and no word of it."""
    out = tmp_path / "s.csv"
    assert main(["backtest", "--events", str(sim["events"]), "--as-of", "2026-02-01", "--out", str(out),
                 "--labels", str(sim["truth"]), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "None" not in printed, printed
    assert not [r for r in caplog.records if "after the data's last event" in r.getMessage()]
    assert main(["backtest", "--events", str(sim["events"]), "--as-of", "2026-02-01,2026-04-01", "--out", str(out),
                 "--no-progress"]) == 0
    said = [r.getMessage() for r in caplog.records if "after the data's last event" in r.getMessage()]
    assert said and said[0].startswith("1 as-of date from 2026-04-01 is after the data's last event"), said


def test_gzipped_output(sim: dict, tmp_path: Path) -> None:
    out = tmp_path / "s.csv.gz"
    assert main(["backtest", "--events", str(sim["events"]), "--as-of", "2026-02-20", "--out", str(out), "--no-progress"]) == 0
    rows = _read_scores(out)
    assert rows and {r["as_of"] for r in rows} == {"2026-02-20"}
    assert (tmp_path / "s.metrics.json").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _history(names: tuple[str, str]) -> str:
    """One user visiting daily for 20 days, then a last event of another kind."""
    lines = ["user_id,ts,event_type"]
    for d in range(20):
        lines.append(f"u1,{START_MS + d * DAY_MS + 3_600_000},{names[0]}")
    lines.append(f"u1,{START_MS + 20 * DAY_MS},{names[1]}")
    return "\n".join(lines) + "\n"


def test_config_maps_event_names(tmp_path: Path) -> None:
    """``bye`` only means cancel because the TOML file says so; unnamed types count as "other"."""
    events = _write(tmp_path / "e.csv", _history(("visit", "bye")))
    config = _write(tmp_path / "types.toml", '[event_types]\nvisit = "view"\nbye = "cancel"\n')
    assert main(["backtest", "--events", str(events), "--as-of", "2026-01-25", "--out", str(tmp_path / "a.csv"),
                 "--config", str(config), "--no-progress"]) == 0
    assert main(["backtest", "--events", str(events), "--as-of", "2026-01-25", "--out", str(tmp_path / "b.csv"), "--no-progress"]) == 0
    mapped, = _read_scores(tmp_path / "a.csv")
    unmapped, = _read_scores(tmp_path / "b.csv")
    assert mapped["stage"] == "churned"
    assert unmapped["stage"] != "churned"


def test_load_type_map_json_and_toml(tmp_path: Path) -> None:
    j = load_type_map(_write(tmp_path / "t.json", json.dumps({"event_types": {"Buy": "purchase"}})))
    t = load_type_map(_write(tmp_path / "t.toml", '[event_types]\nBuy = "purchase"\n'))
    for type_map in (j, t):
        assert type_map.canonical("Buy") == "purchase"
        assert type_map.canonical("Order") == "order"  # names it does not list keep the product's spelling
    with pytest.raises(ValueError, match="event_types"):
        load_type_map(_write(tmp_path / "bad.json", json.dumps({"types": {}})))
    with pytest.raises(ValueError, match="not a non-empty event name"):
        load_type_map(_write(tmp_path / "bad2.json", json.dumps({"event_types": {"x": " "}})))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--as-of", "2026-13-01"], "2026-13-01"),
        (["--as-of", "2026-03-01/2026-02-01/7d"], "before it starts"),
        (["--as-of", "2026-02-01/2026-03-01/0d"], "positive"),
        (["--as-of", "2026-02-01/2026-03-01/soon"], "duration"),
        (["--as-of", "2026-02-01", "--horizon", "a month"], "duration"),
    ],
)
def test_bad_arguments_give_one_readable_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str) -> None:
    events = _write(tmp_path / "e.csv", _history(("view", "view")))
    code = main(["backtest", "--events", str(events), "--out", str(tmp_path / "o.csv"), "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("churnwatch backtest: error:") and "\n" not in err and fragment in err


@pytest.mark.parametrize(("jobs", "fragment"), [("0", "must be at least 1 process,"), ("many", "whole number of processes")])
def test_bad_jobs_give_one_readable_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str, fragment: str) -> None:
    events = _write(tmp_path / "e.csv", _history(("view", "view")))
    with pytest.raises(SystemExit) as exc:
        main(["backtest", "--events", str(events), "--out", str(tmp_path / "o.csv"), "--as-of", "2026-02-01", "--jobs", jobs])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert err[-1].startswith("churnwatch backtest: error: argument --jobs:") and fragment in err[-1]


def test_missing_column_gives_one_readable_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _write(tmp_path / "e.csv", "user_id,when,event_type\nu1,2026-01-02,view\n")
    code = main(["backtest", "--events", str(events), "--as-of", "2026-02-01", "--out", str(tmp_path / "o.csv"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "ts" in err


def test_bad_labels_give_one_readable_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _write(tmp_path / "e.csv", _history(("view", "view")))
    labels = _write(tmp_path / "l.csv", "user_id,churned\nu1,2026-01-21\n")
    code = main(["backtest", "--events", str(events), "--as-of", "2026-02-01", "--out", str(tmp_path / "o.csv"),
                 "--labels", str(labels), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "churned_at" in err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_every_bad_line_is_reported_once_in_line_order_whatever_the_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                             jobs: str) -> None:
    """Each process reads its own users' rows: the error still names the file's bad lines in line
    order, each once (an empty user id too, which no range holds), and no output is written. QA23a
    F9: only the first was said, one rerun per bad line."""
    rows = [f"u{k:02d},2026-01-0{1 + k % 5}T00:00:00Z,view" for k in range(40)]
    rows[30] = "u05,later,view"  # a user of the first shard
    rows[25] = "u39,soon,view"  # an earlier line, of a user of the last shard
    rows[35] = ",2026-01-02T00:00:00Z,view"
    events = _write(tmp_path / "e.csv", "user_id,ts,event_type\n" + "\n".join(rows) + "\n")
    code = main(["backtest", "--events", str(events), "--as-of", "2026-02-01", "--out", str(tmp_path / "o.csv"), "--no-progress",
                 "--jobs", jobs])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["churnwatch backtest: error: e.csv line 27: timestamp 'soon' is neither ISO-8601 nor epoch milliseconds",
                                 "churnwatch backtest: error: e.csv line 32: timestamp 'later' is neither ISO-8601 nor epoch milliseconds",
                                 "churnwatch backtest: error: e.csv line 37: empty user_id",
                                 "churnwatch backtest: error: e.csv: 3 bad lines"], err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("jobs", [2, 5])
def test_shards_of_any_size_give_the_one_process_output(jobs: int) -> None:
    """More processes than users, a user on a range boundary, empty ranges: the same output as one process."""
    text = "user_id,ts,event_type\n" + "".join(f"u{d % 3},2026-01-{d:02d}T10:00:00Z,view\n" for d in range(1, 29))
    dates = parse_as_of("2026-01-05/2026-02-20/7d")
    model = load_model()

    def run(n: int) -> tuple[list[str], list[str], int]:
        parts: list[DateOutput] = []
        result = replay_text(text, "e.csv", DEFAULT_TYPE_MAP, dates, model, lambda summary: None, parts.append, jobs=n,
                             want_alerts=True)
        return ["".join(p.rows_csv for p in parts)], ["".join(p.alerts_jsonl for p in parts)], result.n_rows

    assert run(jobs) == run(1)
    ranges = user_ranges(text, 3)
    assert ranges == [("", "u1"), ("u1", "u1"), ("u1", None)]  # quantiles of 9 u0, 10 u1, 9 u2: one range is empty


def test_missing_plot_user_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _write(tmp_path / "e.csv", _history(("view", "view")))
    code = main(["backtest", "--events", str(events), "--as-of", "2026-02-01", "--out", str(tmp_path / "o.csv"),
                 "--plot-user", "nobody", "--no-progress"])
    assert code == 2 and "nobody" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# As-of dates
# ---------------------------------------------------------------------------------------------


def test_parse_as_of_range_includes_the_end_on_a_step() -> None:
    assert [format_day_or_time(t) for t in parse_as_of("2026-02-01/2026-02-15/7d")] == ["2026-02-01", "2026-02-08", "2026-02-15"]
    assert [format_day_or_time(t) for t in parse_as_of("2026-02-01/2026-02-14/7d")] == ["2026-02-01", "2026-02-08"]
    assert len(parse_as_of("2026-02-01/2026-02-02/6h")) == 5


def test_parse_as_of_list_is_sorted_and_unique() -> None:
    got = parse_as_of("2026-03-01, 2026-02-01T12:00:00Z,2026-03-01")
    assert [format_day_or_time(t) for t in got] == ["2026-02-01T12:00:00Z", "2026-03-01"]
    assert got[1] - got[0] == 28 * DAY_MS - DAY_MS // 2


@pytest.mark.parametrize("text", ["", "  ", ",", "yesterday", "2026-02-01/2026-03-01", "2026-02-30"])
def test_parse_as_of_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_as_of(text)


# ---------------------------------------------------------------------------------------------
# Metrics against hand-computed cases and brute force
# ---------------------------------------------------------------------------------------------


def test_roc_auc_hand_cases() -> None:
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered right
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half
    assert roc_auc([0.9, 0.1], [True, False]) == 1.0
    assert roc_auc([0.9, 0.1], [False, True]) == 0.0
    assert roc_auc([0.3, 0.2], [True, True]) is None


scores_and_labels = st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]), st.booleans()), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(scores_and_labels)
def test_roc_auc_is_the_share_of_correctly_ordered_pairs(pairs: list[tuple[float, bool]]) -> None:
    scores = [s for s, _ in pairs]
    labels = [y for _, y in pairs]
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    auc = roc_auc(scores, labels)
    if not pos or not neg:
        assert auc is None
        return
    brute = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))
    assert auc == pytest.approx(brute)
    fpr, tpr = roc_curve(scores, labels)
    trapezoid = sum((fpr[i + 1] - fpr[i]) * (tpr[i + 1] + tpr[i]) / 2 for i in range(len(fpr) - 1))
    assert trapezoid == pytest.approx(brute)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)


def test_roc_curve_hand_case() -> None:
    assert roc_curve([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0])


def test_top_decile_lift_hand_cases() -> None:
    # 5 users, 2 churn (base 0.4); top 20% = the 0.9 user, who churns: lift 1 / 0.4 = 2.5
    assert top_fraction_lift([0.9, 0.8, 0.3, 0.2, 0.1], [True, False, True, False, False], 0.2) == 2.5
    # 20 users, 4 churn; the top 2 hold 1 churner: (1/2) / (4/20) = 2.5
    scores = [1.0 - i / 20 for i in range(20)]
    labels = [i in (1, 5, 9, 15) for i in range(20)]
    assert top_fraction_lift(scores, labels, 0.1) == pytest.approx(2.5)
    # a constant score ranks nobody: ties at the cut are split pro rata, lift exactly 1
    assert top_fraction_lift([0.5] * 10, [True, False] * 5, 0.1) == pytest.approx(1.0)
    assert top_fraction_lift([0.5, 0.4], [False, False]) is None
    with pytest.raises(ValueError):
        top_fraction_lift([0.5], [True], 0.0)


@settings(max_examples=150, deadline=None)
@given(scores_and_labels, st.sampled_from([0.1, 0.25, 0.5, 1.0]))
def test_top_lift_matches_a_plain_count(pairs: list[tuple[float, bool]], fraction: float) -> None:
    """Against a direct count: positives strictly above the cut, plus the tied ones pro rata."""
    scores = [s for s, _ in pairs]
    labels = [y for _, y in pairs]
    n, positives = len(pairs), sum(labels)
    lift = top_fraction_lift(scores, labels, fraction)
    if positives == 0:
        assert lift is None
        return
    k = max(1, math.ceil(round(n * fraction, 9)))  # round: 30 x 0.1 is 3.0000000000000004 in floats
    cut = sorted(scores, reverse=True)[k - 1]
    above = [y for s, y in pairs if s > cut]
    tied = [y for s, y in pairs if s == cut]
    expected = sum(above) + (k - len(above)) * sum(tied) / len(tied)
    assert lift == pytest.approx((expected / k) / (positives / n))


def test_lift_table_hand_case() -> None:
    # 4 users, 2 bins; the top half holds both churners: lift 2 then 0, all captured by the top half
    rows = lift_table([0.9, 0.8, 0.2, 0.1], [True, True, False, False], bins=2)
    assert [(r["share"], r["lift"], r["cumulative_lift"], r["captured"]) for r in rows] == [(0.5, 2.0, 2.0, 1.0), (1.0, 0.0, 1.0, 1.0)]
    assert lift_table([0.1], [False]) == []


def test_two_views_of_which_rows_to_judge() -> None:
    """Hand case: as of day 100, horizon 30 days, data until day 200."""
    as_of = 100 * DAY_MS
    labels = Labels({"soon": as_of + 10 * DAY_MS, "gone": as_of - 5 * DAY_MS, "cancelled": as_of - DAY_MS, "later": as_of + 40 * DAY_MS})
    panels, collect = _panel_collector(labels, 30 * DAY_MS, 200 * DAY_MS)
    for user, risk, stage in [("soon", 0.7, "declining"), ("gone", 0.9, "dormant"), ("cancelled", 1.0, "churned"),
                              ("later", 0.2, "active"), ("stays", 0.1, "active")]:
        collect(ScoreRow(user, as_of, risk, 50.0, 50.0, stage, "", "none", ""))
    collect(ScoreRow("stays", 190 * DAY_MS, 0.1, 50.0, 50.0, "active", "", "none", ""))  # horizon past the data
    # churn ahead: "gone" and "cancelled" already left and are not judged; only "soon" churns within 30 days
    assert (panels.ahead.risk, panels.ahead.churns) == ([0.7, 0.2, 0.1], [True, False, False])
    assert (panels.ahead.excluded_churned, panels.ahead.excluded_unobserved) == (2, 1)
    # open users: everyone the engine has not reported churned; "gone" left unnoticed and counts as churn
    assert (panels.open.risk, panels.open.churns) == ([0.7, 0.9, 0.2, 0.1], [True, True, False, False])
    assert (panels.open.excluded_churned, panels.open.already_gone) == (1, 1)


def test_median() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([]) is None


def test_alert_episodes_pair_at_risk_with_recovered() -> None:
    alerts = [("at_risk", 10), ("at_risk", 12), ("recovered", 20), ("recovered", 25), ("at_risk", 30)]
    assert alert_episodes(alerts) == [AlertEpisode(10, 20), AlertEpisode(30, None)]
    assert alert_episodes([]) == []


def test_covers_and_lead_time_hand_cases() -> None:
    horizon = 30
    assert covers(AlertEpisode(10, 80), 100, horizon)  # recovered 20 before churn: inside the horizon
    assert not covers(AlertEpisode(10, 70), 100, horizon)  # recovered exactly a horizon before: not flagged then
    assert covers(AlertEpisode(10, None), 100, horizon)  # still standing
    assert not covers(AlertEpisode(100, None), 100, horizon)  # raised at the churn, not before
    # the run-up's first alert counts: the 50 episode covers, the 10 one ended too early
    assert lead_time_ms([AlertEpisode(10, 20), AlertEpisode(50, 80), AlertEpisode(90, None)], 100, horizon) == 50
    assert lead_time_ms([AlertEpisode(10, 20)], 100, horizon) is None


def test_alert_outcomes_hand_cases() -> None:
    h = 30
    # churn at 60: the 0-5 alert is settled wrong, the 50 alert right, one after churn is ignored
    assert alert_outcomes([AlertEpisode(0, 5), AlertEpisode(50, None), AlertEpisode(70, None)], 60, h, 100) == (1, 1, 0)
    # no churn, data until 100: recovered at 60 + 30 <= 100 -> wrong; open since 90 -> not known yet
    assert alert_outcomes([AlertEpisode(50, 60), AlertEpisode(90, None)], None, h, 100) == (0, 1, 1)
    # no churn: recovered at 80, horizon reaches 110 > 100 -> not known yet
    assert alert_outcomes([AlertEpisode(50, 80)], None, h, 100) == (0, 0, 1)


# ---------------------------------------------------------------------------------------------
# Progress bar
# ---------------------------------------------------------------------------------------------


def test_progress_bar_draws_only_when_enabled() -> None:
    shown, hidden = io.StringIO(), io.StringIO()
    for stream, enabled in ((shown, True), (hidden, False)):
        bar = Progress("backtest", stream=stream, after_s=0.0, enabled=enabled)
        bar.update(0.25)
        bar.close()
    lines = shown.getvalue().splitlines()
    assert lines[0].startswith("backtest [") and "25.0%" in lines[0]
    assert "100.0%" in lines[-1]
    assert hidden.getvalue() == ""
