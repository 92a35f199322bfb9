"""Write deploy/grafana/dashboards/churnwatch.json, the Grafana dashboard, from the panel list below.

Why a generator: a dashboard is ~1,000 lines of JSON where ids, grid positions and datasource
references must be consistent; the panels themselves (title, PromQL, unit) fit in a screen here.
Run ``python deploy/tools/build_dashboard.py`` after editing; tests/test_deploy.py fails when the
JSON and this file disagree, and checks that every metric in the PromQL is one the workers expose.

Aggregation rules (see deploy/prometheus/rules.yml): per-partition gauges use ``max by
(partition)`` (a rebalance can overlap two owners briefly); business gauges are the same value
on every worker (read from Redis), so they use ``max``, never ``sum``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Panel", "PANELS", "dashboard", "main"]

OUT = Path(__file__).resolve().parents[1] / "grafana" / "dashboards" / "churnwatch.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Panel:
    """One panel: ``targets`` are (legend, PromQL) pairs; ``width`` in grid units of 24."""

    title: str
    targets: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat", "row"
    width: int = 12
    height: int = 8
    description: str = ""
    stacked: bool = False
    thresholds: tuple[tuple[float, str], ...] = field(default=())


def _q(p: float, metric: str, by: str = "le") -> str:
    return f"histogram_quantile({p}, sum by ({by}) (rate({metric}_bucket[{RATE}])))"


PANELS: tuple[Panel, ...] = (
    Panel("Stream", (), kind="row"),
    Panel(
        "Throughput",
        (
            ("taken", f"sum(rate(churnwatch_events_consumed_total[{RATE}]))"),
            ("applied", f"sum(rate(churnwatch_events_processed_total[{RATE}]))"),
            ("rejected (DLQ)", f"sum(rate(churnwatch_events_rejected_total[{RATE}]))"),
            ("of erased users (dropped)", f"sum(rate(churnwatch_events_erased_total[{RATE}]))"),
        ),
        unit="ops",
        description="Records per second taken from the events topic (each offset once, when its cycle is applied: "
                    "a worker retrying a batch shows 0), events applied to user state, sent to the DLQ, and dropped "
                    "unapplied as events of users `churnwatch erase` erased.",
    ),
    Panel(
        "Consumer lag",
        (
            ("total", "sum(max by (partition) (churnwatch_consumer_lag_events))"),
            ("partition {{partition}}", "max by (partition) (churnwatch_consumer_lag_events)"),
        ),
        description="Records not read yet (highwater - position), per partition and in total.",
    ),
    Panel(
        "Batch latency",
        (
            ("p50", _q(0.5, "churnwatch_batch_seconds")),
            ("p95", _q(0.95, "churnwatch_batch_seconds")),
            ("p99", _q(0.99, "churnwatch_batch_seconds")),
        ),
        unit="s",
        description="Wall time of one worker cycle, decode to progress write (percentiles over all workers).",
    ),
    Panel(
        "Batch size",
        (
            ("p50", _q(0.5, "churnwatch_batch_size_events")),
            ("p95", _q(0.95, "churnwatch_batch_size_events")),
            ("cycles/s", f"sum(rate(churnwatch_batch_size_events_count[{RATE}]))"),
            ("cap {{instance}}", "churnwatch_batch_cap_records"),
        ),
        description="Records per cycle; small batches at high throughput mean per-cycle overhead dominates. "
                    "Cap: what a worker asks for near the log's end (CHURNWATCH_BATCH_TARGET_MS).",
    ),
    Panel(
        "Redis latency p99 by operation",
        (("{{op}}", _q(0.99, "churnwatch_redis_seconds", "le, op")),),
        unit="s",
        description="One pipelined round trip: read (one chunk of a batch's states, sent while the previous chunk is scored, so it includes that wait), write (states + offsets), progress.",
    ),
    Panel(
        "Cycle time by phase (mean)",
        ((
            "{{phase}}",
            f"sum by (phase) (rate(churnwatch_cycle_phase_seconds_sum[{RATE}])) / sum by (phase) (rate(churnwatch_cycle_phase_seconds_count[{RATE}]))",
        ),),
        unit="s",
        stacked=True,
        description="Where a cycle's wall time goes: decode, read (Redis), advance (scoring), produce (alert acks), write (Redis), progress.",
    ),
    Panel(
        "Redis errors",
        (("{{instance}}", f"sum by (instance) (rate(churnwatch_redis_errors_total[{RATE}]))"),),
        unit="ops",
        description="Failed Redis calls per second (the worker retries them).",
    ),
    Panel(
        "Watermark lag",
        (("partition {{partition}}", "max by (partition) (churnwatch_watermark_lag_seconds)"),),
        unit="s",
        description="Wall clock minus each partition's review clock; it includes allowed lateness. A line rising at 1 s/s is a stalled clock.",
    ),
    Panel(
        "Account watermark lag",
        (("partition {{partition}}", "max by (partition) (churnwatch_account_watermark_lag_seconds)"),),
        unit="s",
        description="Wall clock minus the watermark of each partition's accounts (the slowest producing partition's cutoff, "
                    "at most CHURNWATCH_ACCOUNT_GRACE_MS behind the fastest): account alerts wait this long.",
    ),
    Panel(
        "Account copies held, released, behind",
        (("held", f"sum(rate(churnwatch_account_copies_held_total[{RATE}]))"),
         ("released ({{how}})", f"sum by (how) (rate(churnwatch_account_copies_released_total[{RATE}]))"),
         ("behind", f"sum(rate(churnwatch_account_copies_behind_total[{RATE}]))")),
        unit="ops",
        description="Account copies held for the watermark and applied when it passed them (or at the per-account bound); "
                    "behind: applied after their account had moved past them (a partition beyond the grace).",
    ),
    Panel(
        "Account alerts judged late, aligned reading",
        (("judged late ({{kind}})", f"sum by (kind) (rate(churnwatch_account_alerts_judged_late_total[{RATE}]))"),
         ("cuts", f"sum(rate(churnwatch_align_cuts_total[{RATE}]))"),
         ("records put back", f"sum(rate(churnwatch_align_records_put_back_total[{RATE}]))")),
        unit="ops",
        description="Account alerts sent marked judged_late (decided from copies out of event order); a backlog's "
                    "partitions cut at the aligned-reading limit and the fetched records kept for a later batch (docs/REVENUE.md).",
    ),
    Panel(
        "Subscription statements applied, late",
        (("applied", f"sum(rate(churnwatch_subscriptions_applied_total[{RATE}]))"),
         ("applied late", f"sum(rate(churnwatch_subscription_applied_late_total[{RATE}]))"),
         ("late", f"sum(rate(churnwatch_subscription_late_total[{RATE}]))")),
        unit="ops",
        description="Subscription statements applied to the accounts' revenue state; applied late: later than the allowed "
                    "lateness for their user partition (within CHURNWATCH_BILLING_LATENESS_MS), applied as their account's "
                    "newest change; late: older than their account's latest settled change, or dead-lettered, not applied, "
                    "so the live MRR figures miss them (alert ChurnwatchSubscriptionsLate).",
    ),
    Panel(
        "DLQ by reason",
        (("{{reason}}", f"sum by (reason) (rate(churnwatch_events_rejected_total[{RATE}]))"),),
        unit="ops",
        stacked=True,
        description="Rejected records per second by reason (see the DLQ topic for the originals).",
    ),
    Panel(
        "Input and state faults",
        (
            ("without event_id", f"sum(rate(churnwatch_events_derived_id_total[{RATE}]))"),
            ("type the model does not track", f"sum(rate(churnwatch_events_untracked_type_total[{RATE}]))"),
            ("type the map renames to other", f"sum(rate(churnwatch_events_unknown_type_total[{RATE}]))"),
            ("not keyed by user id ({{reason}})", f"sum by (reason) (rate(churnwatch_events_rerouted_total[{RATE}]))"),
            ("second copies dropped", f"sum(rate(churnwatch_rerouted_duplicates_total[{RATE}]))"),
            ("topic replaced ({{reason}})", f"sum by (reason) (rate(churnwatch_topic_resets_total[{RATE}]))"),
            ("Redis lost its data", f"sum(rate(churnwatch_redis_data_lost_total[{RATE}]))"),
            ("Redis went back in time", f"sum(rate(churnwatch_redis_rollbacks_total[{RATE}]))"),
            # each Redis node's count since it started (rate: a restart is a reset), every worker reports it
            ("Redis evicted keys", f"sum(max by (node) (rate(churnwatch_redis_evicted_keys[{RATE}])))"),
            ("unreadable user states", f"sum(rate(churnwatch_states_unreadable_total[{RATE}]))"),
            ("stream time jumped ahead", f"sum(rate(churnwatch_stream_time_jumps_total[{RATE}]))"),
            ("late, a week or more behind", f"sum(rate(churnwatch_events_far_behind_total[{RATE}]))"),
        ),
        unit="ops",
        description="Per second: events without event_id (id derived), events of a type the model in use neither tracks "
                    "nor gives a role (counted only in the total: a renamed or new event name, README 'The product's vocabulary'), "
                    "events of a type the configured map renames to other, events not keyed by user id (re-routed), second "
                    "copies dropped, partitions applied again from offset 0 (topic replaced), rebuilds after Redis lost "
                    "its data, resumes after Redis lost its last writes (went back in time), keys Redis evicted (ChurnwatchRedisEvicting), stored user states that could not be read (started afresh), "
                    "events that moved their partition's stream time ahead by more than the allowed lateness plus a week (with late rejections: ChurnwatchStreamTimeJumped), "
                    "late events that far behind their partition's stream time (a history read after live events). Each line but the two type lines is a fault with a runbook entry.",
    ),
    Panel(
        "Since a worker's last stream-time jump",
        (("{{instance}}", "time() - (churnwatch_stream_time_last_jump_timestamp_seconds > 0)"),),
        unit="s",
        description="Wall time since each worker last counted a stream-time jump (none since it started: no line). "
                    "ChurnwatchStreamTimeJumped fires while this is under a day and the same worker rejects events as late.",
    ),
    Panel(
        "Layout, history and model",
        (
            ("history incomplete (partitions)", "sum(max by (partition) (churnwatch_history_incomplete))"),
            ("workers on model {{model}}", "count by (model) (churnwatch_model_info == 1)"),
            ("topic partitions", "max(churnwatch_topic_partitions)"),
            ("state laid out for partitions", "max(churnwatch_state_partitions)"),
            ("workers stopped: partition count changed", "sum(churnwatch_partition_layout_changed)"),
        ),
        description="Partitions whose history is incomplete, workers per model file, the topic's partition count "
                    "against the one the state is laid out for, workers stopped because it changed.",
    ),
    Panel(
        "Online learning (churnwatch learn)",
        (
            ("held-out ROC AUC, {{model}}", "max by (model) (churnwatch_learn_roc_auc)"),
            ("last successor adopted (1) or kept out (0)", "max(churnwatch_learn_adopted)"),
            ("switches to a learned successor, 1 h", "sum(increase(churnwatch_model_switches_total[1h]))"),
        ),
        description="The learner's last comparison on held-out users (the model in use against its successor), whether "
                    "the successor passed the guard, and the workers' switches to an adopted successor (docs/OPERATE.md, "
                    "\"Learned successors\").",
    ),
    Panel(
        "Workers up",
        (("up", 'sum(up{job="churnwatch"})'),),
        kind="stat",
        width=4,
        height=4,
        thresholds=((0, "red"), (1, "green")),
    ),
    Panel(
        "Workers ready",
        (("ready", "sum(churnwatch_ready)"),),
        kind="stat",
        width=4,
        height=4,
        thresholds=((0, "red"), (1, "green")),
    ),
    Panel(
        "Redis keeps keys",
        (("policy safe", "min(churnwatch_redis_eviction_policy_safe == 0) or min(churnwatch_redis_eviction_policy_safe)"),),
        kind="stat",
        width=4,
        height=4,
        thresholds=((0, "red"), (1, "green")),
        description="1: Redis's maxmemory-policy never evicts churnwatch's keys (noeviction, volatile-*); 0: allkeys-* "
                    "(ChurnwatchRedisEvicting, on any worker); -1: unknown (not read yet, Redis unreachable, INFO refused "
                    "or without maxmemory_policy).",
    ),
    Panel(
        "Partitions assigned",
        (("{{instance}}", "sum by (instance) (churnwatch_partitions_assigned)"),),
        kind="stat",
        width=6,
        height=4,
        description="Partitions owned by each worker; workers beyond the partition count own none (idle spares).",
    ),
    Panel(
        "Rebalances (10 min)",
        (("{{instance}}", "sum by (instance) (increase(churnwatch_rebalances_total[10m]))"),),
        kind="stat",
        width=6,
        height=4,
        thresholds=((0, "green"), (7, "red")),
        description="Times each worker's partitions were taken from it in the last 10 minutes: a deploy makes a few; "
                    "more than 6 for 10 minutes is ChurnwatchRebalancing (starved heartbeats, a crash loop).",
    ),
    Panel(
        "Kafka answered (s ago)",
        (("{{instance}}", "max by (instance) (churnwatch_kafka_fetch_reply_age_seconds)"),),
        kind="stat",
        width=6,
        height=4,
        unit="s",
        thresholds=((0, "green"), (30, "orange"), (120, "red")),
        description="Seconds since the broker last answered a fetch of each worker (an empty long poll counts: under "
                    "a second while Kafka is reachable). Grows while the broker is down or unreachable, which readiness "
                    "and the lag do not show (ChurnwatchBrokerUnreachable). Empty for a spare that owns nothing.",
    ),
    Panel("Customers", (), kind="row"),
    Panel(
        "Alerts by kind",
        (("{{kind}}", f"sum by (kind) (rate(churnwatch_alerts_total[{RATE}])) * 3600"),
         ("sent again (same ids)", f"sum(rate(churnwatch_alerts_resent_total[{RATE}])) * 3600"),
         ("withheld {{kind}}", f"sum by (kind) (rate(churnwatch_alerts_withheld_total[{RATE}])) * 3600"),
         ("members' {{kind}}", f"sum by (kind) (rate(churnwatch_member_alerts_routed_total[{RATE}])) * 3600")),
        unit="short",
        stacked=True,
        description="Alerts published to the at-risk topic, per hour, by kind; user alerts sent again with "
                    "the same ids after a failed cycle (ids beyond the 100,000 a worker keeps); alerts (users' and accounts') "
                    "withheld, not published, for an event time before CHURNWATCH_ALERTS_FROM (onboarding a history); and "
                    "account members' user alerts kept off the alerts topic by CHURNWATCH_MEMBER_ALERTS (on their own topic, "
                    "also in the first series, or not published).",
    ),
    Panel(
        "Users by lifecycle stage",
        (("{{stage}}", "max by (stage) (churnwatch_users_by_stage)"),),
        stacked=True,
        description="Tracked users per stage: new, active, declining, dormant, churned, reactivated.",
    ),
    Panel("Users tracked", (("users", "max(churnwatch_users_tracked)"),), kind="stat", width=4, height=5),
    Panel(
        "At-risk users",
        (("at risk", "max(churnwatch_users_at_risk)"),),
        kind="stat",
        width=4,
        height=5,
        description="Users with an open at-risk alert, lapsed (dormant, churned) ones included: "
                    "`churnwatch top` lists the reachable ones, `top --win-back` the lapsed.",
        thresholds=((0, "green"), (1000, "orange")),
    ),
    Panel(
        "At-risk share",
        (("at risk", "max(churnwatch_users_at_risk) / max(churnwatch_users_tracked)"),),
        kind="stat",
        unit="percentunit",
        width=4,
        height=5,
    ),
    Panel(
        "Churned users (30 d)",
        (("churned", "max(churnwatch_churned_users_30d)"),),
        kind="stat",
        width=4,
        height=5,
        description="Users who churned in the last 30 days of event time.",
    ),
    Panel(
        "Churn rate (30 d)",
        (("churn rate", "max(churnwatch_churn_rate_30d_ratio)"),),
        kind="stat",
        unit="percentunit",
        width=4,
        height=5,
        description="Churned in 30 days / users active at the start of the 30 days.",
        thresholds=((0, "green"), (0.05, "orange"), (0.1, "red")),
    ),
    Panel(
        "Churned revenue (30 d)",
        (("revenue", "max(churnwatch_churned_revenue_30d)"),),
        kind="stat",
        width=4,
        height=5,
        description="Revenue (purchase amounts, in the events' currency) of the users who churned in 30 days.",
    ),
    Panel(
        "At-risk users over time",
        (("at risk", "max(churnwatch_users_at_risk)"),),
        description="Users with an open at-risk alert, lapsed (dormant, churned) ones included.",
    ),
    Panel(
        "Churn rate over time (30 d window)",
        (("churn rate", "max(churnwatch_churn_rate_30d_ratio)"),),
        unit="percentunit",
        description="Churn rate over the trailing 30 days of event time, as it evolved.",
    ),
    Panel(
        "Churned users over time (30 d window)",
        (("churned users", "max(churnwatch_churned_users_30d)"),),
    ),
    Panel(
        "Churned revenue over time (30 d window)",
        (("revenue", "max(churnwatch_churned_revenue_30d)"),),
    ),
)


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, object]:
    grid = {"h": 1 if panel.kind == "row" else panel.height, "w": 24 if panel.kind == "row" else panel.width, "x": x, "y": y}
    if panel.kind == "row":
        return {"type": "row", "id": pid, "title": panel.title, "collapsed": False, "gridPos": grid, "panels": []}
    steps = [{"color": color, "value": None if i == 0 else value} for i, (value, color) in enumerate(panel.thresholds)]
    defaults: dict[str, object] = {"unit": panel.unit}
    if steps:
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        defaults["color"] = {"mode": "thresholds"}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if panel.stacked else 0,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "showPoints": "never",
        }
    options: dict[str, object]
    if panel.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value",
                   "graphMode": "area", "textMode": "auto"}
    else:
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    return {
        "type": panel.kind,
        "id": pid,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "range": True}
            for i, (legend, expr) in enumerate(panel.targets)
        ],
    }


def dashboard() -> dict[str, object]:
    """The whole dashboard; panels flow left to right, wrapping at 24 grid units."""
    panels = []
    x = y = row_h = 0
    for pid, panel in enumerate(PANELS, start=1):
        w = 24 if panel.kind == "row" else panel.width
        h = 1 if panel.kind == "row" else panel.height
        if x + w > 24 or panel.kind == "row":
            x, y, row_h = 0, y + row_h, 0
        panels.append(_panel_json(panel, pid, x, y))
        x, row_h = x + w, max(row_h, h)
        if panel.kind == "row":
            x, y, row_h = 0, y + 1, 0
    return {
        "uid": "churnwatch-overview",
        "title": "churnwatch",
        "description": "Stream health and customer churn (docs/OPERATE.md).",
        "tags": ["churnwatch"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "options": [],
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
