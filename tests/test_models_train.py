"""``churnwatch train`` and the shared history reader: labels, snapshots, the model file, and the
calibration of the fitted risk on users of another simulated population."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from models.events import Event, TypeMap
from models.model import load_model
from models.risk import moves_with_silence
from streams import cli
from streams.offline.history import parse_ts_ms, read_events_csv, read_labels_csv
from streams.offline.simulate import generate, write_events_csv, write_truth_csv
from streams.offline.train import DAY_MS, build_snapshots, churn_times, reliability, train

START_MS = 1_767_225_600_000  # 2026-01-01


# ---------------------------------------------------------------------------------------------
# The history reader (streams/offline/history.py)


def test_reader_takes_iso_and_epoch_ms_any_order_header_or_not_and_gzip(tmp_path: Path) -> None:
    rows = "u2,2026-01-03T10:00:00Z,order,12.50\nu1,1767225600000,page_view,\nu1,2026-01-02T00:00:00+01:00,click\n"
    plain = tmp_path / "e.csv"
    plain.write_text("user_id,ts,event_type,amount\n" + rows)
    packed = tmp_path / "e.csv.gz"
    with gzip.open(packed, "wt") as fh:
        fh.write(rows)  # no header
    for path in (plain, packed):
        events = read_events_csv(path)
        assert [(e.user_id, e.type) for e in events] == [("u1", "page_view"), ("u1", "click"), ("u2", "order")]
        assert events[0].ts_ms == START_MS
        assert events[1].ts_ms == parse_ts_ms("2026-01-01T23:00:00Z")
        assert events[2].amount == 12.5 and events[0].amount == 0.0
        assert len({e.event_id for e in events}) == 3


def test_reader_names_file_and_line_of_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user_id,ts,event_type\nu1,2026-01-01,view\nu1,yesterday,view\n")
    with pytest.raises(ValueError, match=r"bad.csv line 3: timestamp 'yesterday'"):
        read_events_csv(path)


def test_reader_applies_the_type_map(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("u1,2026-01-01,video_play\nu1,2026-01-02,watch\n")
    events = read_events_csv(path, TypeMap({"watch": "view"}))
    assert [e.type for e in events] == ["video_play", "view"]


def test_labels_file_keeps_churners_only(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    path.write_text("user_id,persona,signup,churned_at\nu1,steady,2026-01-01,\nu2,quitter,2026-01-01,2026-02-01T00:00:00Z\n")
    assert read_labels_csv(path) == {"u2": parse_ts_ms("2026-02-01")}


# ---------------------------------------------------------------------------------------------
# Labels and snapshots


def test_churn_times_are_the_last_activity_before_a_long_silence_and_cancels() -> None:
    days = [0, 1, 2, 60, 61]
    evs = [Event("u", d * DAY_MS, "view", f"e{d}") for d in days] + [Event("u", 61 * DAY_MS + 5000, "cancel", "c")]
    times = churn_times(evs, 45 * DAY_MS, 200 * DAY_MS)
    assert times == [2 * DAY_MS, 61 * DAY_MS, 61 * DAY_MS + 5000]
    assert churn_times(evs, None, 200 * DAY_MS) == [61 * DAY_MS + 5000]


def test_snapshots_label_churn_within_the_horizon_and_leave_out_the_gone() -> None:
    from models.model import ChurnModel

    evs = [Event("u", d * DAY_MS, "view", f"e{d}") for d in range(0, 50)]
    churned_at = evs[-1].ts_ms
    per_user = {"u": evs}
    dates = [30 * DAY_MS, 40 * DAY_MS, 60 * DAY_MS]
    snaps = build_snapshots(per_user, dates, 15 * DAY_MS, {"u": [churned_at]}, ChurnModel())
    # as of day 30 the churn (day 49) is 19 days ahead: beyond 15 -> 0; as of day 40: 9 days -> 1;
    # as of day 60 the user had already left, unknown to the stream (not yet "churned"): gone, 1.
    assert snaps.as_of_ms == [30 * DAY_MS, 40 * DAY_MS, 60 * DAY_MS]
    assert snaps.y == [0, 1, 1]
    assert snaps.gone == [0, 0, 1]


# ---------------------------------------------------------------------------------------------
# The command, on simulated populations


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sim")
    out = {}
    for seed in (11, 12):
        events, truth = generate(seed=seed, n_users=900, start_ms=START_MS, days=150)
        write_events_csv(root / f"events{seed}.csv.gz", events)
        write_truth_csv(root / f"truth{seed}.csv", truth)
        out[f"events{seed}"] = root / f"events{seed}.csv.gz"
        out[f"truth{seed}"] = root / f"truth{seed}.csv"
    return out


@pytest.fixture(scope="module")
def trained(sim: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.json"
    code = cli.main(["train", "--events", str(sim["events11"]), "--labels", str(sim["truth11"]), "--out", str(out),
                     "--notes", "test population, seed 11"])
    assert code == 0
    return out


def test_train_writes_a_loadable_versioned_model(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = load_model(trained)
    assert model.version.startswith("trained-") and len(model.version) == len("trained-") + 12
    assert model.notes == "test population, seed 11"
    assert set(model.risk_weights) <= set(model.risk_means) | set(model.risk_weights)
    assert "visit_mbgnbd" in model.population and "act_28d" in model.population
    assert model.bgnbd is not None and set(model.bgnbd) == {"r", "alpha", "a", "b"}
    assert all(k in model.population for k in ("rfm_recency_days", "rfm_frequency", "rfm_monetary"))
    # breadth counts the product's kinds: its tracked types, the tracked purchase name once
    assert model.population["kinds"] == list(model.tracked_types) and "purchase" in model.tracked_types
    assert model.compiled.n_kinds == len(model.tracked_types)
    held = model.training["holdout"]
    assert held["rows"] > 0 and len(held["reliability"]) == 10
    assert model.training["holdout_leave_given_alive"]["rows"] > 0
    assert model.alive_calibration["slope"] > 0
    assert 0.0 < model.risk_exit < model.risk_enter < 1.0
    penalty = model.training["penalty"]  # centre and strengths chosen by cross-validation, recorded
    chosen = penalty["cv_log_loss"][penalty["towards"]][f"{penalty['l2']:g}/{penalty['l2_types']:g}"]
    above, se = penalty["cv_above_best"]  # the most default-like within one standard error of the best
    best = min(min(v.values()) for v in penalty["cv_log_loss"].values())
    assert 0.0 <= above <= se and chosen == pytest.approx(best + above, abs=2e-6)


def test_free_signs_may_weigh_silence_below_zero_and_say_so(sim: dict[str, Path], trained: Path, tmp_path: Path) -> None:
    """``--signs free`` (docs/SCORES.md, "The sign bounds"): the fit may weigh a feature that grows
    with silence < 0, the file says ``"signs": "free"`` and loads (models.risk.check_weights), its
    compiled model knows the risk may fall in silence; the bounded file (the default) has no such
    key and no such weight. On this history the free fit weighs some < 0 (measured: ``cooling``,
    ``silence_log``, ``inactive_28d``, ``decline_long`` among them)."""
    free = tmp_path / "free.json"
    assert cli.main(["train", "--events", str(sim["events11"]), "--labels", str(sim["truth11"]), "--out", str(free),
                     "--notes", "test population, seed 11", "--signs", "free"]) == 0
    model, bounded = load_model(free), load_model(trained)
    assert model.training["signs"] == "free" and "signs" not in bounded.training
    silent = {k: w for k, w in model.risk_weights.items() if moves_with_silence(k)}
    assert all(w >= 0 for k, w in bounded.risk_weights.items() if moves_with_silence(k))
    assert any(w < 0 for w in silent.values()), silent
    assert not model.compiled.silence_monotone and bounded.compiled.silence_monotone
    with pytest.raises(SystemExit):
        cli.main(["train", "--events", str(sim["events11"]), "--out", str(tmp_path / "x.json"), "--signs", "loose"])
    with pytest.raises(ValueError, match="signs"):
        train([Event("u", START_MS, "view", "e1")], signs="loose")


def test_same_history_gives_the_same_version(sim: dict[str, Path], trained: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.json"
    assert cli.main(["train", "--events", str(sim["events11"]), "--labels", str(sim["truth11"]), "--out", str(again),
                     "--notes", "test population, seed 11"]) == 0
    assert load_model(again).version == load_model(trained).version
    assert json.loads(again.read_text()) == json.loads(trained.read_text())


def test_risk_is_calibrated_on_another_population(sim: dict[str, Path], trained: Path) -> None:
    """Reliability on users of a different seed, snapshotted by the same code: the risk the
    stream reports against "gone by the end of the horizon" on every user it would score, and
    its logistic part against "leaves within the horizon" on users who in hindsight were there."""
    from models.risk import churn_risk, risk_probability

    model = load_model(trained)
    events = read_events_csv(sim["events12"])
    labels = read_labels_csv(sim["truth12"])
    per_user: dict[str, list[Event]] = {}
    for ev in events:
        per_user.setdefault(ev.user_id, []).append(ev)
    end = events[-1].ts_ms
    horizon = int(model.horizon_days * DAY_MS)
    dates = list(range(START_MS + 28 * DAY_MS, end - horizon + 1, 7 * DAY_MS))
    snaps = build_snapshots(per_user, dates, horizon, {u: [t] for u, t in labels.items()}, model)
    y = np.array(snaps.y, dtype=float)
    risk = np.array([churn_risk(x, p, model) for x, p in zip(snaps.X, snaps.p_alive)])
    assert y.size > 3000
    assert abs(risk.mean() - y.mean()) < 0.03  # calibration in the large
    table = reliability(risk, y, bins=5)
    assert all(abs(b["predicted"] - b["observed"]) < 0.1 for b in table), table
    assert table[-1]["observed"] > 2.0 * table[0]["observed"]  # and it ranks

    alive = np.array(snaps.gone) == 0
    leave = np.array([risk_probability(x, model) for x in snaps.X])[alive]
    assert abs(leave.mean() - y[alive].mean()) < 0.03
    table = reliability(leave, y[alive], bins=5)
    assert all(abs(b["predicted"] - b["observed"]) < 0.08 for b in table), table


def test_inactivity_labels_work_without_a_labels_file(sim: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    # a given penalty (the cross-validated choice is the fixture's): no selection, pulled to the default
    assert cli.main(["train", "--events", str(sim["events11"]), "--churn-after", "30d", "--horizon", "21d", "--l2", "0.1",
                     "--out", str(out)]) == 0
    model = load_model(out)
    assert model.horizon_days == 21.0
    assert model.training["penalty"]["towards"] == "default" and model.training["penalty"]["cv_log_loss"] == {}
    assert model.training["labels"] == "cancel events and inactivity of 30 days"


def test_a_history_too_short_for_the_horizon_is_one_readable_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "short.csv"
    path.write_text("u1,2026-01-01,view\nu1,2026-01-05,view\nu2,2026-01-03,view\n")
    assert cli.main(["train", "--events", str(path), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("churnwatch train: error: history of 4 days has no as-of date") and "\n" not in err


def test_train_function_refuses_one_class(tmp_path: Path) -> None:
    evs = [Event(f"u{i}", START_MS + d * DAY_MS, "view", f"{i}-{d}") for i in range(30) for d in range(0, 120, 2)]
    with pytest.raises(ValueError, match="one class only"):
        train(evs, labels_ms={})


def test_rows_whose_exit_is_closed_are_left_out_of_the_leave_fit() -> None:
    """Annual subscribers paid through the whole history cannot leave within the horizon: their
    snapshots are counted in the report, left out of the leave part's fit, and scored with a leave
    part of 0 (models.risk.exit_open); the others are fitted as before."""
    from models.subscription import Subscription

    evs: list[Event] = []
    labels: dict[str, int] = {}
    N = 24
    for i in range(N):
        last = 40 + 2 * i if i % 4 == 0 else 119
        evs += [Event(f"u{i}", START_MS + d * DAY_MS, "view", f"{i}-{d}") for d in range(0, last + 1, 2)]
        if i % 4 == 0:
            labels[f"u{i}"] = START_MS + (last - last % 2) * DAY_MS
        if i % 4 == 1:  # annual, paid through day 365
            evs.append(Event(f"u{i}", START_MS, "subscription", f"{i}-s", 0.0, "",
                             Subscription("active", "Annual", 9900, 0, START_MS + 365 * DAY_MS)))
    _, report = train(evs, labels_ms=labels, l2=0.1, alert_share=None)
    annual = {f"u{i}" for i in range(N) if i % 4 == 1}
    assert report["snapshots_exit_closed"] == len(annual) * report["as_of"]["count"]
    # the same history without the statements: the annual users' rows are fitted again
    _, plain = train([e for e in evs if e.type != "subscription"], labels_ms=labels, l2=0.1, alert_share=None)
    assert plain["snapshots_exit_closed"] == 0
    assert plain["penalty"]["fit_users"] - report["penalty"]["fit_users"] == len({u for u in annual if not _held_out(u)}) > 0


def test_billing_only_holders_are_not_counted_as_users(caplog: pytest.LogCaptureFixture) -> None:
    """QA4 #10c: ``train`` said "population fitted on 573 users" and wrote ``users`` 573, counting the
    holders of subscription statements alone, whom README says are no users (``models.state.tracked``)."""
    import logging

    from models.subscription import Subscription

    evs: list[Event] = []
    labels: dict[str, int] = {}
    for i in range(24):
        last = 40 + 2 * i if i % 4 == 0 else 119
        evs += [Event(f"u{i}", START_MS + d * DAY_MS, "view", f"{i}-{d}") for d in range(0, last + 1, 2)]
        if i % 4 == 0:
            labels[f"u{i}"] = START_MS + (last - last % 2) * DAY_MS
    evs.append(Event("u3", START_MS + 90 * DAY_MS, "cancel", "c3"))  # a cancellation: a user
    holders = [Event(f"billing{i}", START_MS + i * DAY_MS, "subscription", f"b{i}", 0.0, "acme", Subscription("trial", "Pro", 0))
               for i in range(5)]
    caplog.set_level(logging.INFO, logger="streams.offline.train")
    _, report = train(evs + holders, labels_ms=labels, l2=0.1, alert_share=None)
    assert report["users"] == 24
    assert "population fitted on 24 users" in caplog.text


def _held_out(user: str) -> bool:
    from streams.offline.train import _is_holdout

    return _is_holdout(user, 0.2)


def test_choose_types_never_picks_an_empty_name() -> None:
    """An empty or blank type name (the codec refuses one; events built in code could still carry
    it) is not activity to track: a model tracking "" cannot be loaded (QA3 #3)."""
    from streams.offline.train import choose_types

    base = load_model(None).with_(tracked_types=())
    events = [Event(f"u{i}", 1_767_225_600_000 + i, name, f"e{i}-{name}") for i in range(3) for name in ("", " ", "view")]
    assert choose_types(events, base) == ("view",)
