"""``churnwatch score / top / churn-rate`` on the state a real worker built from a simulated population.

Each report is checked against a second, independent reading: the alerts topic (churn count) and
the raw state records in Redis scored directly with ``models.scoring.score`` (top, score).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from models.lifecycle import JUDGED
from models.model import load_model
from models.ranking import save_score, win_back_key
from models.scoring import assess, score
from models.state import STAGES, UserState
from streams.cli import main
from streams.worker.topics import ensure_topics
from streams.publisher import publish_bulk
from streams.settings import Settings
from streams.cli.argtypes import parse_start_ms
from streams.offline.simulate import generate
from streams.timefmt import format_ts
from streams.worker.store import StoreReader, model_id, utc_day
from tests.harness import Worker, dump_state, read_progress, read_topic, wait_progress, wait_reviewed

pytestmark = pytest.mark.integration


@pytest.fixture()
def built(kafka_bootstrap: str, redis_url: str, unique_name: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Settings]:
    """A worker has applied 150 simulated users x 120 days; yields the settings the CLI sees."""
    names = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}", "group": f"g-{unique_name}"}
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, topic_events=names["events"],
                        topic_alerts=names["alerts"], topic_dlq=names["dlq"], group_id=names["group"])
    ensure_topics(settings)
    for key, value in (("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap), ("REDIS_URL", redis_url),
                       ("CHURNWATCH_TOPIC_EVENTS", names["events"]), ("CHURNWATCH_TOPIC_ALERTS", names["alerts"])):
        monkeypatch.setenv(key, value)
    # Nothing applied yet: the reports have no stream time to stand on.
    assert main(["churn-rate"]) == 2
    assert "no progress" in capsys.readouterr().err
    # a caught-up partition borrows the topic's clock after 1 s idle (default 5 s): the same final
    # sweeps (wait_reviewed below), sooner
    worker = Worker(kafka_bootstrap, redis_url, names, tmp_path / "worker.log", env={"CHURNWATCH_IDLE_PARTITION_MS": "1000"}).start()
    try:
        events, _ = generate(seed=21, n_users=150, start_ms=parse_start_ms("2026-01-01"), days=120)
        stats = publish_bulk(settings, events)
        wait_progress(redis_url, names["events"], stats.last_offsets, timeout_s=120, workers=[worker])
        # and the reviews the idle worker sweeps afterwards: else they could change states between
        # the snapshot below and the reports that read Redis again
        wait_reviewed(redis_url, names["events"])
        yield settings
    finally:
        assert worker.stop() == 0, worker.output()[-3000:]


def _alerts(settings: Settings) -> list[dict]:
    return [orjson.loads(rec.value) for rec in read_topic(settings.kafka_bootstrap_servers, settings.topic_alerts, settings.partitions)]


def _stream_time_ms(settings: Settings) -> int:
    with StoreReader(settings) as reader:
        return max(max_ms for _, max_ms in reader.progress(settings.topic_events).values())


def test_reports_agree_with_alerts_and_raw_state(built: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = built
    now_ms = _stream_time_ms(settings)
    model = load_model(None)
    states = {u: UserState.from_bytes(b) for u, b in dump_state(settings.redis_url).items()}
    assert len(states) > 100
    assert read_progress(settings.redis_url, settings.topic_events)

    # churn-rate: the count equals the churn alerts on the topic dated inside the window
    assert main(["churn-rate", "--days", "30", "--json"]) == 0
    churn = orjson.loads(capsys.readouterr().out)
    window = {utc_day(now_ms // 1000 - d * 86_400) for d in range(30)}
    alerts = _alerts(settings)
    unique = {str(a["alert_id"]): a for a in alerts}.values()  # at-least-once: de-duplicate
    churned = [a for a in unique if a["kind"] == "stage_changed" and a["stage"] == "churned"
               and utc_day(int(a["event_time_ms"]) // 1000) in window]  # type: ignore[call-overload]
    assert churn["churned"] == len(churned) > 0
    assert churn["as_of"] == format_ts(now_ms)
    assert churn["active_at_start"] >= churn["churned"]
    assert math.isclose(churn["churn_rate"], round(churn["churned"] / churn["active_at_start"], 4))
    users = [str(a["user_id"]) for a in churned]
    # revenue is each user's revenue when churn was seen: at most what they have spent by now, and
    # exactly that for users who churned once and did not come back
    revenue_now = sum(states[u].revenue for u in users if u in states)
    assert 0 <= churn["churned_revenue"] <= round(revenue_now, 2) + 0.011
    if len(set(users)) == len(users) and all(u in states and STAGES[states[u].stage] == "churned" for u in users):
        assert math.isclose(churn["churned_revenue"], round(revenue_now, 2), abs_tol=0.011)

    # top: open at-risk users still reachable (an open alert stays open while a user lapses) by
    # the savable part of their risk now (models.ranking.save_score), computed from the raw
    # states; with --share the budgeted daily list of every reachable user; --win-back the
    # lapsed users by temperature in whole points, then value, equal keys the last id first (win_back_key)
    opened, save, lapsed = [], [], []
    for user, st in states.items():
        s = score(st, max(now_ms, st.last_seen_s * 1000) // 1000, model)
        reachable = s.stage in ("new", "active", "declining", "reactivated")
        savable = save_score(assess(st, max(now_ms, st.last_seen_s * 1000) // 1000, model))
        if s.stage in JUDGED:  # the save list's stages: not "reactivated" (QA16 F3)
            save.append((-savable, user))
            if st.at_risk_since_s:  # since QA19 F6 (2026-12-05) a reactivated user's alert may stay open: not listed either
                opened.append((-savable, user))
        elif not reachable:  # by the temperature as shown, then value (QA17 F12, QA19 F10)
            t = max(now_ms, st.last_seen_s * 1000) // 1000
            lapsed.append((win_back_key(assess(st, t, model), st, model), user))
    opened.sort()
    save.sort()
    lapsed.sort(reverse=True)
    assert main(["top", "-n", "5", "--json"]) == 0
    top = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [t["user_id"] for t in top] == [u for _, u in opened[:5]]
    assert all(t["at_risk_since"] and t["stage"] != "churned" for t in top)
    with StoreReader(settings) as reader:  # the worker built the save-list index with this model
        assert reader.run(lambda store: store.save_index_model()) == model_id(model)
    for share in (0.02, 0.1, 1.0):  # from the worker's save-list index, as from every state
        assert main(["top", "--share", f"{100 * share:g}%", "--json"]) == 0
        budget = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [t["user_id"] for t in budget] == [u for _, u in save[: math.ceil(share * len(save))]]
    assert main(["top", "--share", "50%", "--win-back", "--json"]) == 0
    back = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [t["user_id"] for t in back] == [u for _, u in lapsed[: math.ceil(0.5 * len(lapsed))]]
    assert main(["top", "-n", "5"]) == 0
    table = capsys.readouterr().out.splitlines()
    if len(top) < 5:  # a shorter list says why (QA11 F9)
        assert table.pop(0).startswith(f"{len(top)} user")
    assert table[0].split()[:3] == ["#", "user", "risk"] and len(table) == 1 + len(top)
    # More asked for than users with an open at-risk alert: the line above the table says so (QA11 F9)
    asked = len(opened) + 3
    assert main(["top", "-n", str(asked)]) == 0
    lines = capsys.readouterr().out.splitlines()
    if opened:
        assert lines[0] == (f"{len(opened)} user{'s' if len(opened) != 1 else ''} to save (fewer than the {asked} asked for: "
                            "no other new, active or declining user has an open at-risk alert)"), lines[0]
        assert lines[1].split()[:3] == ["#", "user", "risk"] and len(lines) == 2 + len(opened)

    # score: the stored state scored at the stream time, with its reasons
    user = top[0]["user_id"] if top else next(iter(states))
    assert main(["score", user, "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    direct = score(states[user], max(now_ms, states[user].last_seen_s * 1000) // 1000, model)
    assert (report["stage"], report["risk"], report["action"], report["reasons"]) == (
        direct.stage, round(direct.risk, 4), direct.action, list(direct.reasons))
    assert report["events"] == states[user].n_events
    assert main(["score", user]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"user {user} as of ") and f"stage {direct.stage}" in text

    assert main(["score", "nobody-by-this-name"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not tracked" in err[0]
