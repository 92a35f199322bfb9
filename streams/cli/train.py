"""``churnwatch train``: fit a model file on the product's own history (streams.offline.train)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Final, Mapping, Sequence

from models.events import Event, TypeMap
from models.model import ChurnModel, load_model
from models.vocabulary import DEFAULT_SLOTS, MAX_SLOTS
from streams.cli.argtypes import check_output_file, cli_duration_ms, parse_as_of, parse_date_ms, topic_name
from streams.errors import UserError
from streams.offline.history import read_events_csv, read_labels_csv
from streams.offline.late_start import Arrivals, late_start_warning
from streams.offline.replay import VocabularyConfig, load_config
from streams.offline.train import DEPENDS, SIGNS, train, vocabulary_model
from streams.timefmt import DAY_MS, format_day_or_time
from streams.worker.vocabulary_text import ROLE_EFFECTS, vocabulary_lines
from streams.settings import Settings

__all__ = ["add_arguments", "alert_lines", "base_model", "centre_words", "left_line", "read_history", "retention_lines", "run", "unmatched_role_lines", "verdict_line", "vocabulary_report", "with_retention",
           "with_vocabulary"]


def _types(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--types {text!r} is not a whole number of event types") from None
    if not 1 <= n <= MAX_SLOTS:
        raise argparse.ArgumentTypeError(f"--types must be 1 to {MAX_SLOTS} event types, got {n}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", metavar="FILE", help="CSV (optionally .gz): user_id,ts,event_type[,amount]; any order")
    source.add_argument("--from-topic", dest="from_topic", action="store_true",
                        help="read the history the events topic retains: every partition from its earliest offset to its "
                             "highwater at the start, decoded as the worker decodes it (rejected records are counted and skipped)")
    parser.add_argument("--topic", type=topic_name, default=None, metavar="NAME", help="with --from-topic: the topic (default: the events topic, "
                        "CHURNWATCH_TOPIC_EVENTS)")
    parser.add_argument("--until", default=None, metavar="TIME",
                        help="train on events before this time only, such as 2026-06-01 (ISO date or time, UTC unless it says otherwise)")
    parser.add_argument("--out", required=True, metavar="MODEL.json", help="where to write the model file")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--labels", metavar="FILE", help="user_id,churned_at: who churned when (else cancel events + inactivity)")
    how.add_argument("--churn-after", dest="churn_after", default=None, metavar="DURATION",
                     help="inactivity that means churn, such as 45d (default: the model's churned_days)")
    parser.add_argument("--horizon", default=None, metavar="DURATION", help="risk horizon, such as 30d (default: the model's, 30d)")
    parser.add_argument("--retention", default=None, metavar="DURATION",
                        help="how long a churned customer (a purchase on record) is kept after the churn is reported, such as "
                             "400d; one who comes back later is a new user, their history gone: choose more than your longest "
                             "buying cycle, 400d for yearly buyers (default: the base model's, 180d for everyone; users who never "
                             "bought keep its retention_days, or DURATION if shorter)")
    parser.add_argument("--as-of", dest="as_of", default=None, metavar="DATES",
                        help="snapshot dates: ISO dates separated by commas, or START/END/STEP (default: weekly)")
    parser.add_argument("--base-model", dest="base_model", metavar="FILE",
                        help="take thresholds, roles and renames from this model file, and pull the fitted weights "
                             "towards its weights (the default's where it has none) (default: the built-in defaults; with "
                             "--from-topic and no --config, the renames and roles of the model in use that Redis records, "
                             "as the workers and learn read the topic)")
    parser.add_argument("--config", metavar="FILE",
                        help="JSON or TOML with an [event_types] table (name -> the name to use) and/or a [roles] table "
                             "(purchase, cancel, negative, subscription, ignore, recurring -> list of event names, after renaming; a role "
                             "listed replaces its default names); both are written into the model, and every reader of "
                             "events under it (the worker too) applies them")
    parser.add_argument("--types", type=_types, default=DEFAULT_SLOTS,
                        help=f"how many of the product's event types to track one by one (default {DEFAULT_SLOTS}, at most {MAX_SLOTS})")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of users held out for the calibration report (default 0.2)")
    parser.add_argument("--l2", type=float, default=None,
                        help="L2 penalty per example on standardised weights, pulling them towards the default's "
                             "(or --base-model's) (default: the penalty among 0.001, 0.01, 0.1, 1, 10 and where it pulls, "
                             "the default's (or --base-model's) weights or 0, chosen by 5-fold cross-validation by user)")
    parser.add_argument("--signs", choices=SIGNS, default="bounded",
                        help="bounded (default): weights of the features that grow with silence kept >= 0, so risk never "
                             "falls in silence; free: either sign, said in the model file (docs/SCORES.md, \"The sign bounds\")")
    parser.add_argument("--notes", default="", help="free text stored in the model file (where the data came from)")
    parser.add_argument("--version-prefix", dest="version_prefix", default=None,
                        help="the model version is <prefix>-<content hash> (default: trained; with --no-fit, unfitted)")
    parser.add_argument("--no-fit", dest="no_fit", action="store_true",
                        help="fit nothing: the base model (the shipped default) with --config's renames and roles, the "
                             "tracked types picked from the history and the product's levels (typical intervals, RFM "
                             "edges, kinds of activity); risk weights, intercept and alert line stay the base's. For a "
                             "product without labels or with too little history to train on (README, \"The product's vocabulary\")")
    parser.add_argument("--alert-share", dest="alert_share", type=float, default=0.1,
                        help="set risk_enter/risk_exit so about this share of the users an at-risk alert could go to (reachable, "
                             "a day old, not already gone) is flagged in a month (30 days of weekly rows; default 0.1; 0 keeps "
                             "the base model's)")


def read_history(args: argparse.Namespace, settings: Settings, type_map: TypeMap, window_ms: int | None = None) -> list[Event]:
    """The events to train on: a CSV file or the events topic's retained data, before ``--until``
    (from the topic with ``window_ms``: only the last ``window_ms`` of event time is kept while reading)."""
    until_ms = parse_date_ms(args.until, "--until") if args.until else None
    if not args.from_topic:
        if args.topic:
            raise UserError("--topic needs --from-topic (or leave it out and give --events FILE)")
        events_path = Path(args.events)
        if not events_path.exists():
            raise UserError(f"--events {events_path} does not exist")
        if not events_path.is_file():
            raise UserError(f"--events {events_path} is a folder, not a file")
        events = read_events_csv(events_path, type_map, settings.currency)
        if until_ms is not None:
            kept = [ev for ev in events if ev.ts_ms < until_ms]
            print(f"--until: {len(events) - len(kept):,} of {len(events):,} events are at or after it and left out")
            events = kept
    else:
        from streams.worker.retained import read_retained
        from streams.kafka_admin import quiet_kafka_logs

        quiet_kafka_logs()
        topic = args.topic or settings.topic_events
        if not topic.strip():
            raise UserError("--topic must name a topic")
        read = read_retained(settings, topic, until_ms=until_ms, type_map=type_map, window_ms=window_ms)
        print(read.summary(topic))
        events = read.events
    if not events:
        raise UserError("no events to train on" + (" before --until" if until_ms is not None else ""))
    return events


#: What each verdict of ``versus_default`` is called and what the user does about it ({}: the
#: model judged against).
_VERDICT_WORDS = {"better": ("beats", "use it: --model FILE"),
                  "no better": ("is no better than", "keep the {} (churnwatch learn keeps such a model out)"),
                  "worse": ("is worse than", "keep the {}"),
                  DEPENDS: ("is not steadily better than", "keep the {} (churnwatch learn keeps such a model out)")}


def verdict_line(v: dict, against: str = "default") -> str:
    """One verdict on the trained model against the default on held-out users, and what to do:
    the verdict of ``versus_default`` (``evaluate.auc_verdict``, the rule ``churnwatch learn``
    adopts by), never "beats" beside "within noise" (QA6 L1); the as-of dates it judges (from
    90 days into the history: streams.offline.train.judged_dates) and the difference on their
    earlier and later half, and "depends on the dates" when those two disagree beyond noise
    (QA11 F2: "beats ... use it" over every weekly date, "no better" over the backtest's).
    ``against``: what the model judged against is called (``versus_base``: "base model").

    >>> base = {"default_version": "d", "rows": 118, "churning_users": 15, "default_roc_auc": 0.6919}
    >>> print(verdict_line({**base, "trained_roc_auc": 0.6932, "difference_se": 0.049, "verdict": "no better"}))
    held-out users: the trained model is no better than the default (d): ROC AUC 0.6932 vs 0.6919 on 118 rows of 15 churning users at these dates, users already gone included (difference +0.001 +- 0.049, bootstrap over users: within noise, not shown on 15 churning users; more history needed) -- keep the default (churnwatch learn keeps such a model out)
    >>> verdict_line({**base, "trained_roc_auc": 0.80, "difference_se": 0.02, "verdict": "better"}).split(" (d)")[0]
    'held-out users: the trained model beats the default'
    >>> day = 86_400_000
    >>> dates = {"first_ms": 91 * day, "last_ms": 301 * day, "count": 31, "warmup_days": 90.0, "past_warmup": True}
    >>> halves = [{"first_ms": 91 * day, "last_ms": 196 * day, "trained_roc_auc": 0.8, "default_roc_auc": 0.7, "difference_se": 0.02},
    ...           {"first_ms": 203 * day, "last_ms": 301 * day, "trained_roc_auc": 0.7, "default_roc_auc": 0.75, "difference_se": 0.01}]
    >>> print(verdict_line({**base, "trained_roc_auc": 0.75, "difference_se": 0.01, "verdict": "depends on the dates", "as_of": dates, "halves": halves}))
    held-out users at 31 as-of dates 1970-04-02..1970-10-29 (from 90 days into the history on: before, the customers who predate it read as new users): the trained model is not steadily better than the default (d): ROC AUC 0.75 vs 0.6919 on 118 rows of 15 churning users at these dates, users already gone included (difference +0.058 +- 0.010, bootstrap over users: it depends on the dates, the earlier and the later half disagree beyond noise); earlier half of the dates (1970-04-02..1970-07-16) +0.100 +- 0.020, later half (1970-07-23..1970-10-29) -0.050 +- 0.010 -- keep the default (churnwatch learn keeps such a model out)
    """
    verdict = v.get("verdict")
    new, old, se = v.get("trained_roc_auc"), v.get("default_roc_auc"), v.get("difference_se")
    head = f"held-out users{_judged(v.get('as_of'))}: the trained model {{}} the {against} ({v['default_version']}): ROC AUC {new} vs {old} " \
           f"on {v['rows']:,} rows of {v['churning_users']} churning users at these dates, users already gone included"
    if verdict not in _VERDICT_WORDS:  # an AUC unknown: one class held out
        return head.format("cannot be compared with") + f" (one outcome only among them) -- keep the {against}"
    words, todo = _VERDICT_WORDS[verdict]
    todo = todo.format(against)
    spread = "?" if se is None else f"{se:.3f}"
    noise = {"no better": f"within noise, not shown on {v['churning_users']} churning users; more history needed",
             DEPENDS: "it depends on the dates, the earlier and the later half disagree beyond noise"}.get(verdict, "beyond noise")
    return head.format(words) + f" (difference {new - old:+.3f} +- {spread}, bootstrap over users: {noise})" \
        + _halves(v.get("halves") or []) + f" -- {todo}"


def centre_words(pen: Mapping[str, Any], base_given: bool) -> tuple[str, str]:
    """Where the penalty pulled (the report's ``penalty``): the general weights, the per-type ones.

    >>> centre_words({"towards": "default"}, True)
    ("the default weights (--base-model's are the same)", '0')
    >>> centre_words({"towards": "base", "base_version": "trained-1", "base_lacks": ["share:a", "inactive:a"]}, True)
    ("the base model's weights (trained-1)", "the base model's (0 for the 2 features of types it does not track)")
    """
    if pen["towards"] != "base":
        same = " (--base-model's are the same)" if base_given and pen["towards"] == "default" else ""
        return f"the {pen['towards']} weights{same}", "0"
    lacks = len(pen.get("base_lacks") or ())
    return (f"the base model's weights ({pen['base_version']})",
            "the base model's" + (f" (0 for the {lacks} features of types it does not track)" if lacks else ""))


def _judged(dates: Mapping[str, object] | None) -> str:
    """Which as-of dates the verdict judges, and why those (nothing for a report without them)."""
    if not dates:
        return ""
    span = f" at {dates['count']} as-of dates {format_day_or_time(int(dates['first_ms']))}..{format_day_or_time(int(dates['last_ms']))}"  # type: ignore[call-overload]
    warmup = f"{float(dates['warmup_days']):g}"  # type: ignore[arg-type]
    if dates.get("past_warmup"):
        return span + f" (from {warmup} days into the history on: before, the customers who predate it read as new users)"
    return span + (f" (all within the first {warmup} days of the history, where the customers who predate it read as new "
                   f"users: the verdict may not hold on later dates; a longer history judges past them)")


def _halves(halves: Sequence[Mapping[str, object]]) -> str:
    """``; earlier half of the dates (a..b) +0.030 +- 0.020, later half (c..d) -0.010 +- 0.015``."""
    said = []
    for name, h in zip(("earlier half of the dates", "later half"), halves):
        new, old, se = h.get("trained_roc_auc"), h.get("default_roc_auc"), h.get("difference_se")
        gap = "-" if new is None or old is None else f"{float(new) - float(old):+.3f}"  # type: ignore[arg-type]
        span = f"{format_day_or_time(int(h['first_ms']))}..{format_day_or_time(int(h['last_ms']))}"  # type: ignore[call-overload]
        said.append(f"{name} ({span}) {gap} +- {'?' if se is None else f'{float(se):.3f}'}")  # type: ignore[arg-type]
    return "; " + ", ".join(said) if len(said) == 2 else ""


def with_retention(base: ChurnModel, retention_ms: int | None) -> ChurnModel:
    """The base model with ``--retention``: churned customers kept that long, and users who never
    bought no longer than that (their ``retention_days`` lowered to it if above; models.engine.kept_days).
    Set before training, so the model file records it as the stream will apply it (QA17 F1: only a
    hand-edited model file could keep annual gift buyers past 180 days).

    >>> m = with_retention(ChurnModel(), 730 * DAY_MS); (m.customer_retention_days, m.retention_days)
    (730.0, 180.0)
    >>> m = with_retention(ChurnModel(), 90 * DAY_MS); (m.customer_retention_days, m.retention_days)
    (90.0, 90.0)
    >>> with_retention(ChurnModel(), 3_600_000)
    Traceback (most recent call last):
    streams.errors.UserError: --retention 0.0417d: give at least 1d (a churned user's state is kept this long after the churn is reported)
    """
    if retention_ms is None:
        return base
    days = retention_ms / DAY_MS
    if days < 1:
        raise UserError(f"--retention {days:.3g}d: give at least 1d (a churned user's state is kept this long after the churn is reported)")
    return base.with_(customer_retention_days=days, retention_days=min(base.retention_days, days))


def with_vocabulary(base: ChurnModel, config: VocabularyConfig | None) -> ChurnModel:
    """The base model with ``--config``'s vocabulary: its ``[event_types]`` replace the base's
    renames (without the table the base's are kept), each role its ``[roles]`` lists replaces the
    base's names for that role. The trained model carries both, so every reader of events under it
    (the worker too) reads them as training did."""
    if config is None:
        return base
    roles = {**{k: list(v) for k, v in base.roles.items()}, **config.roles}
    aliases = config.event_types if config.event_types is not None else base.event_types
    machine = config.machine if config.machine is not None else base.machine_users
    key = config.key if config.key is not None else base.key_users
    calendar = config.calendar if config.calendar is not None else base.quiet_calendar
    peak = config.peak if config.peak is not None else base.peak_calendar
    try:
        return base.with_(event_types=aliases, roles=roles, machine_users=machine, key_users=key, quiet_calendar=calendar,
                          peak_calendar=peak)
    except ValueError as exc:  # e.g. a config role's name in another role of the base
        raise UserError(f"--config {config.path}: {exc}{_kept_role_fix(base, config.roles)}") from None


def _toml_names(names: Sequence[str]) -> str:
    """Event names as the items of a TOML list, for a line that says what to write in --config.

    >>> _toml_names(["a", "b"])
    '"a", "b"'
    """
    return ", ".join(f'"{n}"' for n in names)


def _kept_role_fix(base: ChurnModel, declared: Mapping[str, Sequence[str]]) -> str:
    """How to fix a declared name that a role the config leaves out keeps from ``base`` (QA10 F12:
    ``cancel = ["uninstall"]`` was refused, "in two roles (cancel, negative)", without saying that
    ``negative`` keeps its default names, ``uninstall`` among them, unless [roles] declares it).

    >>> _kept_role_fix(ChurnModel(), {"cancel": ["uninstall"]})  # doctest: +ELLIPSIS
    '; roles.negative keeps its names unless [roles] declares it: declare roles.negative without it, e.g. negative = ["dislike", ..., "downgrade"]'
    """
    for role, names in declared.items():
        for other, kept in base.roles.items():
            clash = [n for n in names if n in kept]
            if other != role and other not in declared and clash:
                rest = _toml_names([n for n in kept if n not in clash])
                return (f"; roles.{other} keeps its names unless [roles] declares it: declare roles.{other} without "
                        f"{'it' if len(clash) == 1 else 'them'}, e.g. {other} = [{rest}]")
    return ""


def base_model(args: argparse.Namespace, settings: Settings) -> ChurnModel:
    """The model ``train`` starts from: ``--base-model`` (else the built-in defaults) with
    ``--config``'s vocabulary. ``--from-topic`` with neither reads the topic as the workers read it,
    and as ``learn`` does: with the renames and roles of the model in use (Redis, ``cw:meta``); a
    retrain read raw counted a renamed purchase as a plain type and its take-over was refused
    (review 10 A3). Without a model in use to ask, one line says the topic is read without renames."""
    config = load_config(args.config)
    if args.base_model or config is not None or not args.from_topic:
        return with_vocabulary(load_model(args.base_model) if args.base_model else ChurnModel(), config)
    from streams.views import open_reader

    unknown = "reading the topic without renames and with the default roles (--config or --base-model to give them)"
    try:
        with open_reader(settings) as reader:
            found, record, _ = reader.run(lambda store: store.model_record())
    except UserError as exc:
        print(f"the model in use is unknown: {exc}: {unknown}")
        return ChurnModel()
    if not found or record is None:
        print(f"Redis records no model in use: {unknown}" if not found else
              f"Redis records model {found} in use but not its file: {unknown}")
        return ChurnModel()
    renames = ", ".join(f"{k} -> {v}" for k, v in sorted(record.event_types.items())) or "none"
    print(f"reading the topic with the renames ({renames}) and roles of the model in use {found}, as the workers read it "
          f"(--config or --base-model to give others)")
    return ChurnModel().with_(event_types=record.event_types, roles={k: list(v) for k, v in record.roles.items()},
                              machine_users=record.machine_users, key_users=record.key_users,  # its machine and key users and
                              quiet_calendar=record.quiet_calendar,  # calendar too: a retrained model keeps them
                              peak_calendar=record.peak_calendar)


def unmatched_role_lines(matched: Mapping[str, int], model: ChurnModel) -> list[str]:
    """One line per role in :data:`streams.worker.vocabulary_text.ROLE_EFFECTS` that no event of the history played (QA7 M2:
    a product whose purchase is ``checkout_completed`` trained without a word, its purchases
    counted as plain activity): the names looked for and how to declare the product's own.

    >>> for line in unmatched_role_lines({"purchase": 0, "cancel": 3}, ChurnModel(roles={"purchase": ["buy"], "cancel": ["bye"]})):
    ...     print(line)
    no event matched the purchase role (names looked for: buy): no purchase is counted and no purchase model (BG/NBD) is fitted; if the product has purchases, declare their names in --config: [roles] purchase = ["<your name>", ...] (README, "The product's vocabulary")

    A product whose cancellations are all requests at the period end (``cancel_request``) has them ended by those:

    >>> unmatched_role_lines({"purchase": 1, "cancel": 0, "cancel_request": 185}, ChurnModel())
    []
    """
    return [f"no event matched the {role} role (names looked for: {', '.join(model.roles.get(role, ())) or 'none'}): {effect}; "
            f"if the product has {what}, declare their names in --config: [roles] {role} = [\"<your name>\", ...] "
            f"(README, \"The product's vocabulary\")"
            for role, (what, effect) in ROLE_EFFECTS.items()
            if matched.get(role, 0) == 0 and not (role == "cancel" and matched.get("cancel_request", 0))]


def one_time_line(found: Mapping[str, Mapping[str, float]]) -> str:
    """The one-time steps among the types train picked, and those next in line for a slot freed
    by leaving them out (streams.offline.train.one_time_types), in one line: what they are, why
    they add little, and the two ways to leave them out that exist (``[roles] ignore`` in
    ``--config``; ``tracked_types`` declared in a ``--base-model``). All at once (QA19 F11: the
    warning moved to the next one-time step each time it was followed).

    >>> print(one_time_line({"subscription_started": {"users": 642, "once": 1.0}}))
    one-time steps tracked: subscription_started (100% of its 642 users did it once): a step done once is no habit of use: its count tells when the user took that step, not how they use the product, and it takes a slot from a type used again and again; to leave it out, add it to --config's [roles] ignore (e.g. ignore = ["subscription_started"], with the names there already; it then counts nowhere, not even as a visit) or train --base-model with a model file whose tracked_types lists the types to track (README, "The product's vocabulary")
    >>> print(one_time_line({"premium_subscribed": {"users": 830, "once": 1.0, "tracked": 1.0},
    ...                      "premium_cancelled": {"users": 335, "once": 1.0, "tracked": 0.0}})[:194])
    one-time steps tracked: premium_subscribed (100% of its 830 users did it once), and next in line for its slot: premium_cancelled (100% of its 335 users did it once): a step done once is no habit
    """
    def listed(names: list[str]) -> str:
        return ", ".join(f"{n} ({100 * found[n]['once']:.0f}% of its {found[n]['users']:,.0f} users did it once)" for n in names)

    now = [n for n, v in found.items() if v.get("tracked", 1.0)]
    later = [n for n in found if n not in now]
    slot = "its slot" if len(now) == 1 else "their slots"
    steps = listed(now) + (f", and next in line for {slot}: {listed(later)}" if later else "")
    quoted = _toml_names(list(found))
    them = "it" if len(found) == 1 else "them"
    return (f"one-time steps tracked: {steps}: a step done once is no habit of use: its count tells when the user took "
            f"that step, not how they use the product, and it takes a slot from a type used again and again; to leave {them} out, "
            f"add {them} to --config's [roles] ignore (e.g. ignore = [{quoted}], with the names there already; it then counts nowhere, not even as a visit) or train "
            f"--base-model with a model file whose tracked_types lists the types to track (README, \"The product's vocabulary\")")


#: The population's usual interval between purchase days (median over repeat buyers,
#: ``population["purchase_gap_days"]``) under which train says the purchase role's names are a
#: stream of payments, not orders (:func:`payment_stream_line`).
PAYMENT_STREAM_DAYS: Final[float] = 7.0


def payment_stream_line(model: ChurnModel, counts: Mapping[str, int]) -> str | None:
    """One line when the purchase role's names are bought every few days (under
    :data:`PAYMENT_STREAM_DAYS` at the median): a bank's card payments or an app's micro-payments,
    not orders, and the re-order rule then alerts whatever the risk after a few quiet days. QA19 F4:
    ``purchase = ["card_payment"]`` (usual interval 3.2 days) alerted all 3,000 customers, 16,334
    alerts leading with "usual re-order every 2 days, none for 4 days"; train said nothing.

    >>> m = ChurnModel(population={"purchase_gap_days": 3.2}, roles={"purchase": ["card_payment"]})
    >>> print(payment_stream_line(m, {"card_payment": 213058}))
    WARNING: purchases (card_payment) are made every 3.2 days at the median: a stream of payments, not orders; the re-order rule will alert a customer after a few quiet days ("usual re-order every 3 days, none for 6 days"), whatever the risk; if these are card payments, a bank's transactions or in-app micro-payments, declare them as activity (leave them out of --config's [roles] purchase) (README, "The product's vocabulary")
    """
    gap = model.population.get("purchase_gap_days")
    names = [n for n in model.roles.get("purchase", ()) if counts.get(n)]
    if not names or gap is None or not 0.0 < float(gap) < PAYMENT_STREAM_DAYS:
        return None
    return (f"WARNING: purchases ({', '.join(names)}) are made every {float(gap):.1f} days at the median: a stream of payments, "
            f"not orders; the re-order rule will alert a customer after a few quiet days (\"usual re-order every "
            f"{float(gap):.0f} days, none for {model.overdue_factor * float(gap):.0f} days\"), whatever the risk; if these are card payments, a bank's "
            f"transactions or in-app micro-payments, declare them as activity (leave them out of --config's [roles] purchase) "
            f"(README, \"The product's vocabulary\")")


def unconverged_lines(fits: Mapping[str, Mapping[str, object]]) -> list[str]:
    """One line per fit of the training report that did not converge (QA10 F9: the model file said
    ``training.fits.purchase_bgnbd.converged: false``, the report nothing).

    >>> unconverged_lines({"visit_mbgnbd": {"converged": True}, "purchase_bgnbd": {"converged": False, "users": 117, "log_likelihood": -1236.8}})
    ["fit purchase_bgnbd did not converge (117 users, log-likelihood -1236.8): its parameters are the optimiser's last, not a best fit; the model file records it (training.fits.purchase_bgnbd.converged: false)"]
    """
    return [f"fit {name} did not converge ({fit.get('users', '?')} users, log-likelihood {fit.get('log_likelihood', '?')}): "
            f"its parameters are the optimiser's last, not a best fit; the model file records it "
            f"(training.fits.{name}.converged: false)"
            for name, fit in fits.items() if fit.get("converged") is False]


#: What each held-out table is measured on (QA16 F7: its ROC AUC and the verdict's, side by side
#: unlabelled, read as contradictory): the rows, beside the dates and users the line says.
_HELD_ROWS: Final[dict[str, tuple[str, str]]] = {
    "holdout": ("risk", "users already gone left out"),
    "holdout_leave_given_alive": ("leave | still a user", "rows of users still there who could leave"),
}


def holdout_lines(report: Mapping[str, Any]) -> list[str]:
    """The held-out calibration tables, each ROC AUC labelled with what it is measured on: every
    as-of date of the fit, on its rows and users (the verdict against the default, next, ranks
    other rows: :func:`verdict_line`).

    >>> held = {"rows": 4127, "users": 218, "churning_users": 52, "churn_rate": 0.0546, "mean_risk": 0.057, "roc_auc": 0.7016,
    ...         "brier": 0.05017, "max_decile_gap": 0.0253, "reliability": [{"predicted": 0.01, "observed": 0.02}]}
    >>> r = {"holdout": held, "holdout_leave_given_alive": {}, "holdout_already_left": 0,
    ...      "as_of": {"first_ms": 28 * 86_400_000, "last_ms": 203 * 86_400_000, "count": 26}}
    >>> print("\\n".join(holdout_lines(r)))
    held-out users, risk, calibration at every as-of date (26 dates 1970-01-29..1970-07-23, users already gone left out): 4,127 rows of 218 users (52 churning), churn rate 0.055, mean predicted 0.057, ROC AUC 0.7016 on these rows, Brier 0.05017, largest decile gap 0.0253
      reliability by decile (predicted -> observed): 0.01->0.02
    """
    dates = report.get("as_of") or {}
    span = (f"{dates['count']} dates {format_day_or_time(int(dates['first_ms']))}..{format_day_or_time(int(dates['last_ms']))}, "
            if dates else "")
    lines = []
    for key, (label, rows) in _HELD_ROWS.items():
        held = report.get(key)
        if not held:
            continue
        users = f" of {held['users']:,} users ({held['churning_users']:,} churning)" if "users" in held else ""
        lines.append(f"held-out users, {label}, calibration at every as-of date ({span}{rows}): {held['rows']:,} rows{users}, "
                     f"churn rate {held['churn_rate']:.3f}, mean predicted {held['mean_risk']:.3f}, ROC AUC {held['roc_auc']} on "
                     f"these rows, Brier {held['brier']}, largest decile gap {held['max_decile_gap']}")
        lines.append("  reliability by decile (predicted -> observed): "
                     + ", ".join(f"{b['predicted']:.2f}->{b['observed']:.2f}" for b in held["reliability"]))
        if key == "holdout" and report.get("holdout_already_left"):
            lines.append(f"  {left_line(report['holdout_already_left'])}")
    return lines


def left_line(n: int) -> str:
    """What the held-out risk table leaves out (streams.offline.train.Snapshots.left; QA pass 14
    F6: their risk near 1 and no churn to come made its top decile read "1.00->0.00").

    >>> left_line(831)
    "831 held-out rows of users already gone by the labels (their churn time, with a day's grace, before the as-of date) left out of this table: they cannot churn within the horizon and score near 1 (the verdict against the default still counts them)"
    """
    return (f"{n:,} held-out rows of users already gone by the labels (their churn time, with a day's grace, before the as-of "
            f"date) left out of this table: they cannot churn within the horizon and score near 1 (the verdict against the "
            f"default still counts them)")


def alert_lines(a: Mapping[str, object]) -> list[str]:
    """The alert line's report (streams.offline.train.alert_report, on held-out rows an at-risk
    alert could go to: reachable users at least a day old): first what the line was drawn for,
    the share of users flagged in a month (streams.offline.train.alert_line; QA16 F2: a share
    of weekly rows alerted 96.9% of a population over 8 months) and that share on the held-out
    user-months; then per weekly row: a flagged row is not an alert, which stays open over
    several rows and which ``backtest`` judges once (QA11 F2: a row precision of 0.43 against
    backtest's alert precision of 0.095 for the same model), and a WARNING when it flags none of
    their churners: QA10 F2's "precision 1.0" counted users already gone, whom the stream never
    alerts, and the model rolled out flagged 1 of 173 churners before they left.

    >>> a = {"share": 0.1, "risk_enter": 0.41, "risk_exit": 0.3, "holdout_rows": 600, "holdout_judged_rows": 500,
    ...      "holdout_flagged": 0.04, "holdout_flagged_after_churn": 12, "holdout_precision": 0.5, "holdout_base_rate": 0.2,
    ...      "holdout_recall": 0.25, "holdout_churners": 20, "holdout_churners_flagged": 9, "holdout_user_months": 240,
    ...      "holdout_user_months_flagged": 0.0958}
    >>> print("\\n".join(alert_lines(a)))
    at-risk alerts open at risk >= 0.41 and close at <= 0.3, drawn so that 10% of the training users an alert could go to are flagged in a month (a 30-day window of as-of dates, flagged when a row is at or above the line): 9.6% of 240 held-out user-months flagged
    judged per weekly row, not per alert, on held-out rows an alert could go to (reachable, a day old): 4.0% of 500 weekly rows of users still there flagged, row precision 0.5 (base rate 0.2), row recall 0.25 (9 of 20 churning users flagged at least once before leaving); 12 more rows flagged of users already gone (after churn). Not the alert precision: an alert stays open over several weekly rows and churnwatch backtest counts it once
    >>> print("\\n".join(alert_lines({**a, "holdout_precision": 0.0, "holdout_recall": 0.0, "holdout_churners_flagged": 0})[2:]))
    WARNING: this alert line flags none of the 20 held-out churning users an alert could reach before they leave: the stream would raise no useful at-risk alert; retrain with a larger --alert-share (now 0.1)
    """
    flagged = a["holdout_flagged"]
    shown = "-" if flagged is None else f"{100 * float(flagged):.1f}%"  # type: ignore[arg-type]
    months = a.get("holdout_user_months_flagged")
    held = "" if months is None else f": {100 * float(months):.1f}% of {a['holdout_user_months']:,} held-out user-months flagged"  # type: ignore[arg-type]
    lines = [f"at-risk alerts open at risk >= {a['risk_enter']} and close at <= {a['risk_exit']}, drawn so that "
             f"{100 * float(a['share']):g}% of the training users an alert could go to are flagged in a month (a 30-day "  # type: ignore[arg-type]
             f"window of as-of dates, flagged when a row is at or above the line){held}",
             f"judged per weekly row, not per alert, on held-out rows an alert could go to (reachable, a day old): {shown} of "
             f"{a['holdout_judged_rows']:,} weekly rows of users still there flagged, row precision {_dash(a['holdout_precision'])} "
             f"(base rate {_dash(a['holdout_base_rate'])}), row recall {_dash(a['holdout_recall'])} ({a['holdout_churners_flagged']} "
             f"of {a['holdout_churners']} churning users flagged at least once before leaving); "
             f"{a['holdout_flagged_after_churn']:,} more rows flagged of users already gone (after churn). Not the alert "
             f"precision: an alert stays open over several weekly rows and churnwatch backtest counts it once"]
    if a.get("holdout_users"):
        lines.extend(_per_user_lines(a))
    if not a["holdout_churners"]:
        lines.append("no held-out user an alert could reach churned within the horizon: the alert line is not judged "
                     "(more history, or a larger --holdout)")
    elif not a["holdout_churners_flagged"]:
        lines.append(f"WARNING: this alert line flags none of the {a['holdout_churners']} held-out churning users an alert could "
                     f"reach before they leave: the stream would raise no useful at-risk alert; retrain with a larger "
                     f"--alert-share (now {a['share']})")
    return lines


def _per_user_lines(a: Mapping[str, object]) -> list[str]:
    """Per user, what a CRM staffs on (streams.offline.train._per_user; QA pass 14 F2: the per-row
    share was read as per user), and a WARNING when the line flags more than half of the held-out
    users who do not churn.

    >>> a = {"holdout_users": 300, "holdout_users_flagged": 0.62, "holdout_non_churners": 260, "holdout_non_churners_flagged": 0.55,
    ...      "holdout_alerts": 240, "holdout_alerts_per_1000_user_months": 88.4, "holdout_step_days": 7.0, "holdout_dates": 12,
    ...      "share": 0.1}
    >>> print("\\n".join(_per_user_lines(a)))
    per held-out user an alert could go to: 62.0% of 300 flagged at least once over 12 as-of dates (55.0% of the 260 who do not churn); about 88.4 at-risk alerts per 1,000 user-months (240 counted on the rows every 7 days with the two thresholds only; the stream re-scores at every event and keeps a quiet period: churnwatch backtest --model counts its alerts)
    WARNING: this alert line flags 55.0% of the held-out users who do not churn at least once over 12 as-of dates (more than half; --alert-share is a share of users flagged in a month): most alerts would go to users who stay; retrain with a smaller --alert-share (now 0.1) and check with churnwatch backtest
    """
    calm = a["holdout_non_churners_flagged"]
    lines = [f"per held-out user an alert could go to: {100 * float(a['holdout_users_flagged']):.1f}% of "  # type: ignore[arg-type]
             f"{a['holdout_users']:,} flagged at least once over {a.get('holdout_dates', '?')} as-of dates ("
             + (f"{100 * float(calm):.1f}% of the {a['holdout_non_churners']:,} who do not churn" if calm is not None  # type: ignore[arg-type]
                else "all of them churn")
             + f"); about {_dash(a['holdout_alerts_per_1000_user_months'])} at-risk alerts per 1,000 user-months "
             f"({a['holdout_alerts']:,} counted on the rows every {float(a['holdout_step_days']):g} days with the two thresholds only; "  # type: ignore[arg-type]
             f"the stream re-scores at every event and keeps a quiet period: churnwatch backtest --model counts its alerts)"]
    if calm is not None and float(calm) > 0.5:  # type: ignore[arg-type]
        lines.append(f"WARNING: this alert line flags {100 * float(calm):.1f}% of the held-out users who do not churn at least "  # type: ignore[arg-type]
                     f"once over {a.get('holdout_dates', '?')} as-of dates (more than half; --alert-share is a share of users "
                     f"flagged in a month): most alerts would go to users who stay; retrain with a smaller --alert-share (now "
                     f"{a['share']}) and check with churnwatch backtest")
    return lines


def _dash(x: object) -> str:
    return "-" if x is None else str(x)


#: The options only a fit reads (``--no-fit`` refuses them): dest -> the option.
_FIT_OPTIONS: Final[dict[str, str]] = {"labels": "--labels", "churn_after": "--churn-after", "horizon": "--horizon",
                                       "as_of": "--as-of", "l2": "--l2"}


def run_unfitted(args: argparse.Namespace, settings: Settings) -> int:
    """``train --no-fit`` (streams.offline.train.vocabulary_model): the base model told the
    product's vocabulary, no number fitted; the vocabulary lines as train prints them."""
    given = [flag for dest, flag in _FIT_OPTIONS.items() if getattr(args, dest) is not None]
    if given:
        raise UserError(f"--no-fit fits nothing, so {given[0]} has nothing to act on: leave {given[0]} out to keep the "
                        f"base model's weights, or --no-fit out to fit them on your history")
    base = with_retention(base_model(args, settings), cli_duration_ms(args.retention, "--retention") if args.retention else None)
    events = read_history(args, settings, base.type_map)
    model, report = vocabulary_model(events, base=base, n_types=args.types, notes=args.notes,
                                     version_prefix=args.version_prefix or "unfitted")
    model.save(args.out)
    print(f"wrote {model.version} from {report['events']:,} events of {report['users']:,} users: no weight fitted, the risk "
          f"weights, intercept and alert line (risk_enter {model.risk_enter:g}, risk_exit {model.risk_exit:g}) are "
          f"{'--base-model ' + args.base_model if args.base_model else 'the shipped default'}'s; from the history: the tracked "
          f"types and {', '.join(report['levels']) or 'no population level (too few users)'}")
    vocabulary_report(model, events, report)
    for line in retention_lines(model, report):
        print(line)
    print(f"model -> {args.out}")
    return 0


def vocabulary_report(model: ChurnModel, events: Sequence[Event], report: Mapping[str, Any]) -> None:
    """Print what the model makes of the history's names: the tracked types, the roles and their
    counts, a role no event matched, one-time steps tracked and purchases that are a payment stream."""
    counts: dict[str, int] = {}
    for ev in events:
        counts[ev.type] = counts.get(ev.type, 0) + 1
    for line in vocabulary_lines(model, counts) + unmatched_role_lines(report.get("roles_matched", {}), model):
        print(line)
    if report.get("one_time_types"):
        print(f"WARNING: {one_time_line(report['one_time_types'])}")
    stream = payment_stream_line(model, counts)
    if stream:
        print(stream)
    scheduled = cancel_request_line(model, counts)
    if scheduled:
        print(scheduled)
    shared = shared_rhythm_line(model, events)
    if shared:
        print(shared)


#: Event names that say a cancellation was asked for at the end of the paid period (Stripe's
#: ``cancel_at_period_end``), not done now: ``train`` names them when no ``cancel_request`` role
#: holds them (:func:`cancel_request_line`).
CANCEL_REQUEST_NAMES = ("cancel_requested", "cancellation_requested", "cancel_request", "cancellation_scheduled",
                        "cancel_scheduled", "cancel_at_period_end", "subscription_cancel_requested",
                        "subscription_cancellation_scheduled", "scheduled_cancellation")


def cancel_request_line(model: ChurnModel, counts: Mapping[str, int]) -> str:
    """A WARNING naming the history's events that look like a cancellation at the end of the
    paid period (:data:`CANCEL_REQUEST_NAMES`) and that the ``cancel_request`` role does not
    hold, with what they are read as now and the line that declares them (QA23a F5: a fitness
    app's ``cancel_requested``, declared ``cancel``, churned 185 paying users at once with a median
    11 paid days left; undeclared, it counted as a visit). "" when there is none.

    >>> print(cancel_request_line(ChurnModel(), {"cancel_requested": 185, "workout_completed": 9}))
    WARNING: cancel_requested (185) looks like a cancellation at the end of the paid period (Stripe's cancel_at_period_end), read now as activity (a visit); declare it in --config: [roles] cancel_request = ["cancel_requested"]: the user stays a customer until the period ends, with a save alert at the request (README, "The product's vocabulary")
    >>> cancel_request_line(ChurnModel().with_(roles={**ChurnModel().roles, "cancel_request": ["cancel_requested"]}), {"cancel_requested": 185})
    ''
    """
    held = set(model.roles.get("cancel_request", ()))
    found = [n for n in CANCEL_REQUEST_NAMES if counts.get(n) and n not in held]
    if not found:
        return ""
    cancel = set(model.roles.get("cancel", ()))
    played = {n in cancel for n in found}
    now = ("as a cancellation (churned at once)" if played == {True} else "as activity (a visit)" if played == {False}
           else "as a cancellation (churned at once) or as activity")
    listed = ", ".join(f"{n} ({counts[n]:,})" for n in found)
    one = len(found) == 1
    return (f"WARNING: {listed} look{'s' if one else ''} like a cancellation at the end of the paid period "
            f"(Stripe's cancel_at_period_end), read now {now}; declare {'it' if one else 'them'} in --config: "
            f"[roles] cancel_request = [{_toml_names(found)}]"
            f"{' (and out of cancel)' if found[0] in cancel else ''}: the user stays a customer until the period ends, with a "
            f"save alert at the request (README, \"The product's vocabulary\")")


def retention_lines(model: ChurnModel, report: Mapping[str, Any]) -> list[str]:
    """How long the model keeps a churned user, and a WARNING when customers of the history came
    back after a longer silence (``report["long_returns"]``, streams.offline.returns; QA21 F8: 28
    gift buyers, an order in February and the next in October, came back "new" without a word):
    how many, their share of the customers who came back, and the ``--retention`` that keeps them.

    >>> found = {"retention_days": 180.0, "customers": 28, "returned": 230, "returned_after_days": 45.0,
    ...          "suggested_days": 262, "kept": 26}
    >>> for line in retention_lines(ChurnModel(), {"long_returns": found}):
    ...     print(line)
    retention: a churned customer (a purchase on record) is kept 180 days after the churn is reported, a user who never bought 180 days; one back later is a new user (--retention)
    WARNING: 28 customers came back after more than 180 days of silence (yearly buyers?), 12.2% of the 230 customers back after 45 days or more: the state is kept 180 days from the churn, reported 45 days or more into the silence, and a customer back after both is a new user, their history gone; --retention 262d keeps 26 of these 28 (README, "Nothing lost, nothing counted twice", Retention)
    """
    kept = model.compiled.customer_retention_days
    lines = [f"retention: a churned customer (a purchase on record) is kept {kept:g} days after the churn is reported, a user "
             f"who never bought {model.retention_days:g} days; one back later is a new user (--retention)"]
    found = report.get("long_returns")
    if found:
        n, back = found["customers"], found["returned"]
        lines.append(f"WARNING: {n:,} customer{'s' if n != 1 else ''} came back after more than {found['retention_days']:g} days "
                     f"of silence (yearly buyers?), {100 * n / back:.1f}% of the {back:,} customers back after "
                     f"{found['returned_after_days']:g} days or more: the state is kept {found['retention_days']:g} days from the "
                     f"churn, reported {model.churned_days:g} days or more into the silence, and a customer back after both is a "
                     f"new user, their history gone; --retention {found['suggested_days']}d keeps "
                     f"{'all' if found['kept'] == n else found['kept']} of these {n:,} (README, \"Nothing lost, nothing counted twice\", Retention)")
    return lines


def shared_rhythm_line(model: ChurnModel, events: Sequence[Event]) -> str:
    """A WARNING when users of the history have both purchases and events of the ``recurring`` role:
    the state keeps one of the two rhythms (they share the record's bytes, models.state), so a
    buyer's recurring credit opens no alert; '' when none has both.

    >>> m = ChurnModel(roles={"purchase": ["order"], "recurring": ["salary"]})
    >>> print(shared_rhythm_line(m, [Event("a", 1, "order", "1"), Event("a", 2, "salary", "2"), Event("b", 3, "salary", "3")]))
    WARNING: 1 user has both purchases (order) and recurring events (salary): a user with a purchase on record keeps no recurring rhythm (the two share the state's bytes), so a late recurring event opens no alert for them; declare the recurring role where customers do not also buy (README, "The product's vocabulary")
    """
    recurring, purchase = set(model.roles.get("recurring", ())), set(model.roles.get("purchase", ()))
    if not recurring or not purchase:
        return ""
    bought = {ev.user_id for ev in events if ev.type in purchase}
    both = len(bought & {ev.user_id for ev in events if ev.type in recurring})
    if not both:
        return ""
    seen = {ev.type for ev in events if ev.type in purchase or ev.type in recurring}
    return (f"WARNING: {both:,} user{'s have' if both != 1 else ' has'} both purchases ({', '.join(sorted(purchase & seen))}) and "
            f"recurring events ({', '.join(sorted(recurring & seen))}): a user with a purchase on record keeps no recurring rhythm "
            f"(the two share the state's bytes), so a late recurring event opens no alert for them; declare the recurring "
            f"role where customers do not also buy (README, \"The product's vocabulary\")")


def lifetime_line(lifetime: Mapping[str, Any]) -> str:
    """How the model weighs the lifetime volumes and why (the report's ``lifetime_volumes``,
    streams.offline.train.choose_lifetime): the way kept and both ways' out-of-fold figures.

    >>> print(lifetime_line({"rows": 900, "rows_to_renewal": 300, "chosen": "to_renewal",
    ...     "penalty": {"since_first_seen": "default 0.001/0.01", "to_renewal": "default 0.001/0.1"},
    ...     "cv_log_loss": {"since_first_seen": 0.1101, "to_renewal": 0.1095}, "cv_auc": {"since_first_seen": 0.771, "to_renewal": 0.779},
    ...     "difference": [-0.0006, 0.0002]}))
    lifetime volumes: a subscriber's carried to the renewal at their rate so far (chosen by out-of-fold log-loss over the 900 rows fitted, 300 with a paid period ending after the last activity: carried to the renewal 0.1095, ROC AUC 0.7790, penalty default 0.001/0.1; counted since first seen 0.1101, ROC AUC 0.7710, penalty default 0.001/0.01; difference -0.0006 +- 0.0002)
    """
    words = {"since_first_seen": "counted since first seen", "to_renewal": "carried to the renewal"}
    kept = "a subscriber's carried to the renewal at their rate so far" if lifetime["chosen"] == "to_renewal" else "counted since first seen"
    head = (f"lifetime volumes: {kept} (chosen by out-of-fold log-loss over the {lifetime['rows']:,} rows fitted, "
            f"{lifetime['rows_to_renewal']:,} with a paid period ending after the last activity")
    if "cv_log_loss" not in lifetime:
        return head + ": no fold could be fitted, the count since first seen kept)"
    auc = lifetime["cv_auc"]
    ways = "; ".join(f"{words[w]} {lifetime['cv_log_loss'][w]:.4f}"
                     + (f", ROC AUC {auc[w]:.4f}" if auc.get(w) is not None else "") + f", penalty {lifetime['penalty'][w]}"
                     for w in sorted(words, key=lambda w: w != lifetime["chosen"]))
    diff, se = lifetime["difference"]
    return f"{head}: {ways}; difference {diff:+.4f} +- {se:.4f})"


def run(args: argparse.Namespace, settings: "Settings") -> int:
    check_output_file("--out", args.out)  # before the work, not after it
    if args.no_fit:
        return run_unfitted(args, settings)
    horizon = cli_duration_ms(args.horizon, "--horizon") if args.horizon else None  # the arguments too
    churn_after = cli_duration_ms(args.churn_after, "--churn-after") if args.churn_after else None
    retention = cli_duration_ms(args.retention, "--retention") if args.retention else None
    as_of = parse_as_of(args.as_of) if args.as_of else None
    base = with_retention(base_model(args, settings), retention)
    events = read_history(args, settings, base.type_map)
    labels = read_labels_csv(args.labels) if args.labels else None
    t0 = time.monotonic()
    model, report = train(events, base=base, horizon_ms=horizon, labels_ms=labels, churn_after_ms=churn_after,
                          as_of_ms=as_of, holdout=args.holdout, l2=args.l2, notes=args.notes,
                          alert_share=args.alert_share or None, version_prefix=args.version_prefix or "trained", n_types=args.types,
                          signs=args.signs, towards=base if args.base_model else None)
    model.save(args.out)
    held = report["holdout"]
    print(f"trained {model.version} on {report['events']:,} events of {report['users']:,} users: "
          f"{report['snapshots']:,} snapshots at {report['as_of']['count']} dates, labels from {report['labels']} "
          f"({time.monotonic() - t0:.1f} s)")
    late_start = late_start_warning(Arrivals.of_events(events, events[-1].ts_ms), "topic" if args.from_topic else "file")
    if late_start:  # users new at the history's start (QA10 F16, QA23a F6)
        print(f"WARNING: {late_start}")
    if report.get("held_growing"):  # the same cut: tenure and the like measure the date (QA18 F2)
        held = [n for n in report["held_growing"] if ":" not in n] + (["the lifetime volumes"] if any(":" in n for n in report["held_growing"]) else [])
        whose = "the base model's" if report["penalty"]["towards"] == "base" else "the default's"
        print(f"  so {', '.join(held)} were not fitted: they keep {whose} weights (in such a history they count "
              f"from its first day and measure the date, not the user)")
    vocabulary_report(model, events, report)
    for line in unconverged_lines(report.get("fits", {})):
        print(line)
    if report.get("snapshots_exit_closed"):
        print(f"{report['snapshots_exit_closed']:,} snapshots left out of the leave part's fit: a known end of the paid "
              f"period beyond the {report['horizon_days']:g}-day horizon (no exit to learn from; their leave part is 0)")
    pen = report["penalty"]
    by_auc = pen.get("criterion") == "auc"
    cv = pen["cv_auc"] if by_auc else pen["cv_log_loss"]
    above, se = pen.get("cv_above_best", (0.0, 0.0))
    tried = sorted({float(x) for v in cv.values() for key in v for x in key.split("/")})
    how = ("cross-validated by user over " + " and ".join(cv) + f" x penalties {tried[0]:g}-{tried[-1]:g}; best out-of-fold "
           + ("ROC AUC " if by_auc else "log-loss ")
           + ", ".join(f"{c} {(max if by_auc else min)(v.values()):.4f}" for c, v in cv.items() if v)
           + f"; the choice is {above:.4f} +- {se:.4f} {'below' if by_auc else 'above'} the best ({pen['cv_best']}), "
           + f"the most {'base-model' if 'base' in cv else 'default'}-like within one error") if tried else "given"
    general, per_type = centre_words(pen, bool(args.base_model))
    print(f"penalty l2 {pen['l2']:g} towards {general}, l2 {pen['l2_types']:g} on the per-type weights towards {per_type} "
          f"({how}; {pen['fit_churners']} churning of {pen['fit_users']} users fitted)")
    if report.get("lifetime_volumes"):
        print(lifetime_line(report["lifetime_volumes"]))
    for line in holdout_lines(report):
        print(line)
    if "versus_default" in report:
        print(verdict_line(report["versus_default"]))
    if "versus_base" in report:
        print(verdict_line(report["versus_base"], "base model"))
    if "alerts" in report:
        for line in alert_lines(report["alerts"]):
            print(line)
    for line in retention_lines(model, report):
        print(line)
    print(f"model -> {args.out}")
    return 0
