"""The worker's Prometheus metrics, names exactly as in docs/ARCHITECTURE.md; no user ids in labels.

They live in the process-wide default registry so ``/metrics`` is ``generate_latest()``; one
worker per process, so module-level objects are the simplest correct thing.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from models.revenue import MOVEMENT_KINDS
from streams.worker.codec import REASONS

__all__ = [
    "CONTENT_TYPE_LATEST",
    "EVENTS_CONSUMED",
    "EVENTS_PROCESSED",
    "STATES_UNREADABLE",
    "EVENTS_REJECTED",
    "EVENTS_ERASED",
    "EVENTS_UNKNOWN_TYPE",
    "EVENTS_UNTRACKED_TYPE",
    "EVENTS_DERIVED_ID",
    "EVENTS_REROUTED",
    "REROUTED_DUPLICATES",
    "BATCH_SIZE",
    "BATCH_CAP",
    "BATCH_SECONDS",
    "REDIS_SECONDS",
    "REDIS_ERRORS",
    "ALERTS",
    "MEMBER_ALERTS_ROUTED",
    "ACCOUNT_ALERTS_JUDGED_LATE",
    "ALIGN_CUTS",
    "ALIGN_RECORDS_PUT_BACK",
    "ALERTS_RESENT",
    "WATERMARK_LAG",
    "CONSUMER_LAG",
    "PARTITIONS_ASSIGNED",
    "TOPIC_RESETS",
    "REDIS_DATA_LOST",
    "REDIS_ROLLBACKS",
    "HISTORY_INCOMPLETE",
    "MODEL_INFO",
    "MODEL_SWITCHES",
    "LEARN_ROC_AUC",
    "LEARN_ADOPTED",
    "TOPIC_PARTITIONS",
    "STATE_PARTITIONS",
    "LAYOUT_CHANGED",
    "READY",
    "USERS_TRACKED",
    "USERS_BY_STAGE",
    "USERS_AT_RISK",
    "CHURNED_30D",
    "CHURN_RATE_30D",
    "CHURNED_REVENUE_30D",
    "MRR_MOVEMENTS",
    "MRR_MOVEMENT_CENTS",
    "MRR_MOVEMENTS_RETRACTED",
    "MRR_MOVEMENT_CENTS_RETRACTED",
    "SUBSCRIPTIONS_APPLIED",
    "SUBSCRIPTION_LATE",
    "SUBSCRIPTION_APPLIED_LATE",
    "STREAM_TIME_JUMPS",
    "ACCOUNT_COPIES_HELD",
    "ACCOUNT_COPIES_RELEASED",
    "ACCOUNT_COPIES_BEHIND",
    "ACCOUNT_WATERMARK_LAG",
    "MRR",
    "PAYING_ACCOUNTS",
    "TOPIC_RESET_REASONS",
    "REROUTE_REASONS",
    "render",
]

#: ``churnwatch_topic_resets_total`` reasons (streams/worker/consumer.py ``_restart``).
TOPIC_RESET_REASONS: tuple[str, ...] = ("beyond_log_end", "replaced")
#: ``churnwatch_events_rerouted_total`` reasons (streams/worker/routing.py ``key_problem``).
REROUTE_REASONS: tuple[str, ...] = ("null_key", "other_key")
#: ``churnwatch_alerts_total`` kinds: users' and accounts' (streams/cli/alerts.py lists the same).
ALERT_KINDS: tuple[str, ...] = (
    "at_risk", "recovered", "stage_changed", "account_at_risk", "account_recovered", "account_churned", "trial_ending",
)
#: The users' alert kinds (the rest of ``ALERT_KINDS`` are the accounts').
USER_ALERT_KINDS: tuple[str, ...] = ALERT_KINDS[:3]

EVENTS_CONSUMED = Counter("churnwatch_events_consumed_total",
                          "Records taken from the events topic, each once: counted when the cycle that took them is "
                          "applied (a batch read again after a failed cycle is not counted again)")
EVENTS_PROCESSED = Counter("churnwatch_events_processed_total", "Events applied to user state")
STATES_UNREADABLE = Counter(
    "churnwatch_states_unreadable_total",
    "Stored user states that could not be read, by outcome: restarted (afresh from the batch's events) or dropped "
    "(a due review with no events); either way the user's history, alert list and counters went with the state",
    ["outcome"],
)
for _outcome in ("restarted", "dropped"):  # both at 0 from the start: a rate over a series that appears is no rate
    STATES_UNREADABLE.labels(_outcome)
EVENTS_REJECTED = Counter("churnwatch_events_rejected_total", "Records sent to the DLQ, by reason", ["reason"])
EVENTS_ERASED = Counter(
    "churnwatch_events_erased_total",
    "Events of users erased by `churnwatch erase`, dropped unapplied (no id in any label or log line)"
)
EVENTS_UNKNOWN_TYPE = Counter(
    "churnwatch_events_unknown_type_total",
    "Events whose type name a configured type map renames to 'other' (0 without one: every name is the product's own)"
)
EVENTS_UNTRACKED_TYPE = Counter(
    "churnwatch_events_untracked_type_total",
    "Events accepted whose type name (after the model's renames) the model in use neither tracks nor gives a role, so they "
    "count only in the total: a renamed or new event name (0 under a model that tracks no names: it hashes every name)"
)
EVENTS_DERIVED_ID = Counter(
    "churnwatch_events_derived_id_total", "Events accepted without an event_id (id derived from the event's content)"
)
EVENTS_REROUTED = Counter(
    "churnwatch_events_rerouted_total",
    "Records whose Kafka key is not their user id, produced again keyed by the user id (reason null_key, other_key)",
    ["reason"],
)
REROUTED_DUPLICATES = Counter(
    "churnwatch_rerouted_duplicates_total", "Re-routed copies dropped because their origin record was applied already"
)
BATCH_SIZE = Histogram(
    "churnwatch_batch_size_events",
    "Records per worker cycle",
    buckets=(1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000),
)
BATCH_CAP = Gauge(
    "churnwatch_batch_cap_records",
    "Records the worker asks for per cycle near the log's end (CHURNWATCH_BATCH_TARGET_MS / head seconds per record; batch_max_records when off)",
)
BATCH_SECONDS = Histogram(
    "churnwatch_batch_seconds",
    "Wall time of one worker cycle (decode to progress write)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CYCLE_PHASE_SECONDS = Histogram(
    "churnwatch_cycle_phase_seconds",
    "Wall time of each phase of a worker cycle: decode, read (waiting for Redis's replies to the "
    "cycle's chunked read), advance (scoring), produce (alerts and DLQ acknowledged), write (Redis "
    "states), progress (Redis)",
    ["phase"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REDIS_SECONDS = Histogram(
    "churnwatch_redis_seconds",
    "Wall time of one pipelined Redis round trip; op=read is one chunk of a cycle's read, sent "
    "while the previous chunk is scored, so it includes the reply's wait for that scoring",
    ["op"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REDIS_ERRORS = Counter("churnwatch_redis_errors_total", "Redis calls that failed (connection, timeout, script)")
ALERTS = Counter("churnwatch_alerts_total", "Alerts produced", ["kind"])
ALERTS_WITHHELD = Counter("churnwatch_alerts_withheld_total",
                          "Alerts (users' and accounts') applied to the state but not published: event time before "
                          "CHURNWATCH_ALERTS_FROM (onboarding a history)", ["kind"])
MEMBER_ALERTS_ROUTED = Counter("churnwatch_member_alerts_routed_total",
                               "User alerts of account members kept off the alerts topic (CHURNWATCH_MEMBER_ALERTS): "
                               "published on CHURNWATCH_TOPIC_MEMBER_ALERTS (also counted in churnwatch_alerts_total) "
                               "or, with 'none', not published", ["kind"])
ALERTS_RESENT = Counter("churnwatch_alerts_resent_total",
                        "User alerts the broker acknowledged in a cycle that then failed whose ids the worker could "
                        "not keep (over 100,000 waiting): the retry sends them again (same ids)")
WATERMARK_LAG = Gauge("churnwatch_watermark_lag_seconds", "Wall clock minus the partition's review clock", ["partition"])
CONSUMER_LAG = Gauge(
    "churnwatch_consumer_lag_events", "Records in the partition not applied to Redis yet (highwater minus next offset to apply)", ["partition"]
)
TOPIC_RESETS = Counter(
    "churnwatch_topic_resets_total",
    "Partitions whose log was replaced (stored progress beyond the log end, or another record at the stored offset): "
    "applied again from offset 0",
    ["reason"],
)
REDIS_DATA_LOST = Counter(
    "churnwatch_redis_data_lost_total", "Times this worker found Redis without its data (incarnation marker gone) and rebuilt"
)
REDIS_EVICTION_SAFE = Gauge(
    "churnwatch_redis_eviction_policy_safe",
    "1 when every Redis node's maxmemory-policy keeps churnwatch's keys (noeviction, volatile-*), 0 when one evicts "
    "any key (allkeys-*), -1 unknown: not read yet, Redis unreachable, INFO refused or without maxmemory_policy",
)
REDIS_EVICTION_SAFE.set(-1)  # never 0 before a read: 0 pages (ChurnwatchRedisEvicting)
REDIS_EVICTED_KEYS = Gauge(
    "churnwatch_redis_evicted_keys",
    "Keys the Redis node evicted since it started (INFO stats evicted_keys; a counter Redis resets when it restarts: "
    "use increase()). Exported only once read: no sample before, nor while INFO is unreadable",
    ["node"],
)
REDIS_ROLLBACKS = Counter(
    "churnwatch_redis_rollbacks_total",
    "Times this worker found Redis holding older offsets or tokens than writes of its own Redis had acknowledged "
    "(writes lost: a crash with AOF everysec, a failover to a replica behind) and resumed its partitions from Redis",
)
HISTORY_INCOMPLETE = Gauge(
    "churnwatch_history_incomplete",
    "1 when a partition's state was built from scratch but its log no longer holds the whole history: it no longer "
    "starts at offset 0 (retention), or it holds a gap mark (the topic was made again after a reset)",
    ["partition"],
)
MODEL_INFO = Gauge("churnwatch_model_info", "1 for the model this worker scores with (<version>@<digest>)", ["model"])
MODEL_SWITCHES = Counter(
    "churnwatch_model_switches_total", "Learned successors this worker switched to at a cycle boundary (churnwatch learn)"
)
LEARN_ROC_AUC = Gauge(
    "churnwatch_learn_roc_auc",
    "The learner's last held-out comparison (all workers, from Redis): ROC AUC of the model in use and of its successor",
    ["model"],
)
LEARN_ADOPTED = Gauge("churnwatch_learn_adopted", "1 if the learner's last successor passed the guard and was adopted, 0 if kept out")
TOPIC_PARTITIONS = Gauge("churnwatch_topic_partitions", "Partitions of the events topic (broker metadata, at assignment)")
STATE_PARTITIONS = Gauge("churnwatch_state_partitions", "Partition count the state in Redis is laid out for")
LAYOUT_CHANGED = Gauge(
    "churnwatch_partition_layout_changed", "1 when this worker stopped taking work because the partition count changed"
)
PARTITIONS_ASSIGNED = Gauge("churnwatch_partitions_assigned", "Partitions of the events topic owned by this worker")
REBALANCES = Counter(
    "churnwatch_rebalances_total",
    "Group rebalances that took partitions of the events topic from this worker (each drains its cycles in flight and "
    "re-reads what they had not applied; ChurnwatchRebalancing)",
)
KAFKA_FETCH_REPLY_AGE = Gauge(
    "churnwatch_kafka_fetch_reply_age_seconds",
    "Seconds since the broker last answered a fetch for any partition this worker owns (an empty long poll counts); "
    "grows while the broker is unreachable; NaN while nothing is owned or nothing answered yet",
)
KAFKA_FETCH_REPLY_AGE.set(float("nan"))  # not 0 ("answered just now") before the first refresh
READY = Gauge("churnwatch_ready", "1 when partitions are assigned and Redis answers")
USERS_TRACKED = Gauge("churnwatch_users_tracked", "Users with state in Redis (all workers)")
USERS_BY_STAGE = Gauge("churnwatch_users_by_stage", "Users per lifecycle stage (all workers)", ["stage"])
#: Every user whose at-risk alert is open, lapsed ones (dormant, churned) included: a user who
#: lapses while at risk keeps the alert open (no new at-risk alert comes, nothing closes it until a
#: recovery), so this counts ``top -n`` and ``top --win-back -n`` together (QA12 F13: 631 against
#: 3 on ``top -n``). Not split by reachable/lapsed: the store's counters keep the open alerts and
#: the save list's size apart, not their intersection (the console splits it from the at-risk
#: index's lapsed range: ``streams.console.data.at_risk_split``, QA14 F8).
USERS_AT_RISK = Gauge("churnwatch_users_at_risk",
                      "Users with an open at-risk alert, lapsed users (dormant, churned) included; `churnwatch top` "
                      "lists the reachable ones, `top --win-back` the lapsed (all workers)")
CHURNED_30D = Gauge("churnwatch_churned_users_30d", "Users who churned in the last 30 days of event time")
CHURN_RATE_30D = Gauge(
    "churnwatch_churn_rate_30d_ratio", "Churned in 30 d / users active at the start of the 30 d"
)
# Revenue (docs/REVENUE.md): totals only, labelled by movement kind, never by account. A
# movement re-measured at the same instant is retracted (counted apart: counters only grow).
MRR_MOVEMENTS = Counter("churnwatch_mrr_movements_total", "MRR movements recorded, by kind", ["kind"])
MRR_MOVEMENT_CENTS = Counter("churnwatch_mrr_movement_cents_total", "MRR moved, in cents, by kind", ["kind"])
MRR_MOVEMENTS_RETRACTED = Counter(
    "churnwatch_mrr_movements_retracted_total", "MRR movements retracted (re-measured at the same time), by kind", ["kind"]
)
MRR_MOVEMENT_CENTS_RETRACTED = Counter(
    "churnwatch_mrr_movement_cents_retracted_total", "MRR of retracted movements, in cents, by kind", ["kind"]
)
SUBSCRIPTIONS_APPLIED = Counter("churnwatch_subscriptions_applied_total", "Subscription statements applied to accounts")
SUBSCRIPTION_LATE = Counter(
    "churnwatch_subscription_late_total",
    "Subscription statements not applied to the live MRR figures: behind a later statement of their account that its "
    "watermark had passed, or dead-lettered as late by their user partition (more than CHURNWATCH_BILLING_LATENESS_MS "
    "behind it)",
)
SUBSCRIPTION_APPLIED_LATE = Counter(
    "churnwatch_subscription_applied_late_total",
    "Subscription statements later than the allowed lateness for their user partition (within "
    "CHURNWATCH_BILLING_LATENESS_MS) that their account applied to the live MRR figures",
)
STREAM_TIME_JUMPS = Counter(
    "churnwatch_stream_time_jumps_total",
    "Accepted events that moved their partition's stream time ahead by more than the allowed lateness plus a week "
    "(the partition's older events read after one are late: a history published beside live producers)",
)
STREAM_TIME_LAST_JUMP = Gauge(
    "churnwatch_stream_time_last_jump_timestamp_seconds",
    "Wall time (Unix seconds) at which this worker last counted a stream-time jump (0: none since it started); "
    "ChurnwatchStreamTimeJumped alerts on it, so a jump counted before the first scrape is not missed",
)
EVENTS_FAR_BEHIND = Counter(
    "churnwatch_events_far_behind_total",
    "Events rejected as late (also in churnwatch_events_rejected_total) more than the allowed lateness plus a week behind "
    "their partition's stream time: a history published after live producers started",
)
ACCOUNT_COPIES_HELD = Counter(
    "churnwatch_account_copies_held_total", "Account copies held for the watermark over the producing partitions"
)
ACCOUNT_COPIES_RELEASED = Counter(
    "churnwatch_account_copies_released_total",
    "Held account copies applied: how = watermark (it passed them), bound (the account held the most it may)", ["how"]
)
ACCOUNT_COPIES_BEHIND = Counter(
    "churnwatch_account_copies_behind_total", "Account copies applied behind their account's time (arrived after the watermark passed them)"
)
ACCOUNT_ALERTS_JUDGED_LATE = Counter(
    "churnwatch_account_alerts_judged_late_total",
    "Account alerts judged out of event order (marked judged_late: true): at a time past the account's watermark "
    "(copies released by the bound) or just after a copy behind the account's time", ["kind"]
)
ALIGN_CUTS = Counter(
    "churnwatch_align_cuts_total",
    "Times a partition's fetched records were cut at the aligned-reading limit and the partition held back (streams/worker/align.py)"
)
ALIGN_RECORDS_PUT_BACK = Counter(
    "churnwatch_align_records_put_back_total", "Fetched records a cut left for a later batch (kept in order, taken once the others catch up)"
)
ACCOUNT_WATERMARK_LAG = Gauge(
    "churnwatch_account_watermark_lag_seconds", "Wall clock minus the watermark of the partition's accounts", ["partition"]
)
MRR = Gauge("churnwatch_mrr_cents", "MRR of all accounts now, in cents (all workers)")
PAYING_ACCOUNTS = Gauge("churnwatch_paying_accounts", "Accounts with MRR > 0 now (all workers)")
CHURNED_REVENUE_30D = Gauge("churnwatch_churned_revenue_30d",
                            "Purchases of the users who churned in 30 d (their purchase amounts up to the churn; not subscription MRR)")


def _start_series() -> None:
    """Every known series of the labelled counters at 0 from the worker's start.

    Why: a labelled series appears only at its first ``inc``, and Prometheus reads a series whose
    first sample is already 3 as an ``increase()`` of 0; ChurnwatchTopicReset, ChurnwatchDlqRateHigh,
    ChurnwatchEventsMiskeyed and the at-risk alert volume would miss the first occurrence, which is
    the one that matters in an incident. The prometheus-client practice: ``.labels(...)`` at start.
    """
    starts = (
        (EVENTS_REJECTED, REASONS),
        (TOPIC_RESETS, TOPIC_RESET_REASONS),
        (EVENTS_REROUTED, REROUTE_REASONS),
        (ALERTS, ALERT_KINDS),
        (ALERTS_WITHHELD, ALERT_KINDS),
        (MEMBER_ALERTS_ROUTED, USER_ALERT_KINDS),
        (MRR_MOVEMENTS, MOVEMENT_KINDS),
        (MRR_MOVEMENT_CENTS, MOVEMENT_KINDS),
        (MRR_MOVEMENTS_RETRACTED, MOVEMENT_KINDS),
        (MRR_MOVEMENT_CENTS_RETRACTED, MOVEMENT_KINDS),
        (ACCOUNT_COPIES_RELEASED, ("watermark", "bound")),
        (ACCOUNT_ALERTS_JUDGED_LATE, ALERT_KINDS[3:]),
    )
    for counter, values in starts:
        for value in values:
            counter.labels(value)


_start_series()


def render() -> bytes:
    """The text exposition of every metric in this process."""
    return generate_latest(REGISTRY)
