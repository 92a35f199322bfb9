"""The versioned model file: every number the scoring uses, so stream and backtest agree.

A worker and a backtest given the same ``ChurnModel`` produce the same scores for the same
events; ``churnwatch train`` writes a new file, workers load it at start.

The file's format is ``churnwatch-model/1``; fields added since are optional and written only
when they say something, so older files load and an unchanged model keeps its id:
``event_types`` (the renames the model was trained with, ``train --config``: every reader of
events under the model applies them), ``machine_users`` (``[users] machine``), ``key_users``
(``[users] key``), ``quiet_calendar`` (``[calendar] quiet``), ``peak_calendar`` (``[calendar] peak``)
and ``lifetime_to_renewal`` (chosen
by ``train``) are left out when empty or false, and a reader from before it refuses
a file that has it (an unknown field) rather than run the model on names it was not trained on.
The risk model (``risk_weights``, ``risk_intercept``) must be in the file: without it a file ran
the default's weights without a word (QA7 L1).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from models.compiled import CompiledModel, compile_model
from models.events import SUBSCRIPTION_TYPE, TypeMap, type_aliases
from models.vocabulary import DEFAULT_ROLES, GRIEVANCE_ROLE, ROLES
from models.risk import FREE_SIGNS, PRIOR_INTERCEPT, PRIOR_WEIGHTS, check_weights
from models.quiet_period import periods_overlap, parse_quiet
from models.subscription import a_type

__all__ = ["ChurnModel", "DEFAULT_MODEL_PATH", "LEARNED_KEY", "ORDERED_ROLES", "REQUIRED_FIELDS", "free_signs", "learned_root", "load_model", "role_names",
           "same_vocabulary", "vocabulary_key"]

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.json")
MODEL_FORMAT = "churnwatch-model/1"
#: Where a learned successor's file says what it came from (``training["learned"]``, written by
#: ``churnwatch learn``): ``base`` (the model id it succeeds), ``root`` (the model id of the file
#: the chain started from), ``data_end_ms`` (the latest event it saw), ``comparison`` (the guard's figures).
LEARNED_KEY = "learned"
#: Fields a model file must have (module docstring): every other field has a documented default.
REQUIRED_FIELDS = ("risk_weights", "risk_intercept")
#: Fields that are tables (JSON objects) in a file; ``bgnbd`` may also be null (not fitted).
_TABLES = ("risk_weights", "risk_means", "roles", "event_types", "bgnbd", "alive_calibration", "population", "training")
#: Roles whose names' order means something: a ``negative`` name's position is its bit in the
#: state's mask of names used (models.vocabulary, models.state). Every other role is a set: an
#: event name plays it or not, whatever the order it is listed in (review 10 A4).
ORDERED_ROLES = ("negative",)


@dataclass(frozen=True, slots=True)
class ChurnModel:
    """Parameters of the scores. Durations are in days here because people set them."""

    version: str = "builtin-1"
    horizon_days: float = 30.0  # churn risk is P(churn within this horizon)
    # Hysteresis on risk: an at-risk alert opens above ``risk_enter`` and closes below ``risk_exit``.
    risk_enter: float = 0.6
    risk_exit: float = 0.4
    # Lifecycle thresholds (models.lifecycle). Silence thresholds are personal: a user is dormant
    # after max(dormant_days, dormant_factor x their usual interval between active days), churned
    # after max(churned_days, churned_factor x that interval); "new" and "reactivated" (back from dormant
    # or churned) last new_days.
    new_days: float = 14.0
    dormant_days: float = 21.0
    churned_days: float = 45.0
    dormant_factor: float = 3.0
    churned_factor: float = 6.0
    overdue_factor: float = 2.0  # "declining" once silence exceeds this many usual intervals
    decline_ratio: float = 0.5  # "declining" once the 7-day rate is below this share of the 4-week rate
    # How long a churned user's state is kept after the churn is reported (models.engine.kept_days),
    # then dropped: a user back after that is a new user, their history gone. A customer (a
    # purchase on record) is kept ``customer_retention_days`` (at least ``retention_days``): 180
    # by default, as everyone; a shop with yearly buyers (a gift each November) sets it past a
    # year (``train --retention 400d``) so they come back "reactivated" with their spend, not "new"
    # (QA17 F1). Not 400 by default: kept, a one-time buyer of long ago holds BG/NBD's P(alive) 1 and
    # ranks above customers silent for less (the CDNOW 39-week check 0.7726 -> 0.7666, below 0.77).
    retention_days: float = 180.0
    customer_retention_days: float = 180.0
    # Longest gap between two looks at a silent user. Reviews are scheduled at the next moment a
    # stage or the at-risk flag can change (models.engine); this cap is only a safety net.
    review_interval_days: float = 7.0
    # Recommended action quadrant (models.actions): "using" = health >= action_health,
    # "paying" = a purchaser with temperature >= action_temperature; a repeat buyer on schedule
    # (models.signals.order_due_s) both uses and pays.
    action_health: float = 50.0
    action_temperature: float = 50.0
    # Logistic risk model: weight per feature name (models.risk.FEATURES), plus intercept, and the
    # training mean of each feature (reasons rank features by weight x (value - mean)).
    risk_weights: Mapping[str, float] = field(default_factory=lambda: dict(PRIOR_WEIGHTS))
    risk_intercept: float = PRIOR_INTERCEPT
    risk_means: Mapping[str, float] = field(default_factory=dict)
    # The product's vocabulary (models.vocabulary): event names tracked one by one (at most 16;
    # empty = hashed kinds) and the names that play a role (purchase, cancel, ...).
    tracked_types: Sequence[str] = ()
    roles: Mapping[str, Sequence[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_ROLES.items()})
    # Renames of the product's event names (``--config``'s ``[event_types]``, written by ``train``):
    # the names above are the renamed ones, so every reader of events under this model (the
    # worker's decoder, backtest, train --from-topic, learn) applies them (``type_map``): the model
    # and the names it was trained on travel together. Empty: every name is kept (trimmed, lower-cased).
    event_types: Mapping[str, str] = field(default_factory=dict)
    # Machine users (``--config``'s ``[users] machine``, written by ``train``): shell-style patterns of
    # user ids (``svc_*``) whose events are an account's usage but who are not its users: never
    # counted, silent or named as its most active user, no at-risk alert of their own
    # (models.account_health.machine_user; QA23b F2). Empty: every user is a person.
    machine_users: Sequence[str] = ()
    # Key users (``--config``'s ``[users] key``, written by ``train``): shell-style patterns of user
    # ids (``teacher_*``, ``*_t1``) of the people an account stands on, the champion, the admin:
    # such a user silent past their own rhythm puts the account at risk on their own, whatever their
    # share of its activity (models.account_health.key_user; QA24b F1). Empty: none declared.
    key_users: Sequence[str] = ()
    # The product's quiet periods (``--config``'s ``[calendar] quiet``, written by ``train``): yearly
    # ranges ``MM-DD..MM-DD`` (UTC, both days included, e.g. a school's summer ``07-01..08-31``)
    # in which the users' silence and decline are no news (models.signals.calendar_hold_s, read as
    # a pause), as an account's declared ``quiet`` is for its account (models.quiet_period: the same
    # ranges, the same error lines). Empty: none (the file leaves it out).
    quiet_calendar: Sequence[str] = ()
    # The product's peak seasons (``--config``'s ``[calendar] peak``, written by ``train``): yearly
    # ranges ``MM-DD..MM-DD`` (a marketplace's ``11-15..12-31``) whose days do not count in a user's
    # 3-month baseline (``act_90d``: models.state.peak_s), so the fall after the peak is measured
    # against the level outside it (QA25b F2). Empty: none (the file leaves it out; every figure as before).
    peak_calendar: Sequence[str] = ()
    # Whether a subscriber's ``lifetime:`` volumes are weighed as carried on to the end of the paid
    # period at the user's own rate so far (models.risk.by_renewal) rather than as counted since
    # first seen: a learned setting, chosen by ``train`` per product by out-of-fold log-loss
    # (streams.offline.train.choose_projection; docs/SCORES.md "Lifetime volume by the renewal").
    # False (the default, and every file without it): the count since first seen.
    lifetime_to_renewal: bool = False
    # Alerts worth a call (models.engine): a closed at-risk alert re-opens only after
    # ``quiet_days`` or on a rise of ``material_rise`` above the risk it opened at; at-risk opens
    # only for reachable users (not dormant or churned: those are the win-back list).
    quiet_days: float = 21.0
    material_rise: float = 0.2
    # BG/NBD population parameters (r, alpha, a, b), alpha in days; None until fitted.
    bgnbd: Mapping[str, float] | None = None
    # Calibration of P(alive) (models.temperature): p -> sigmoid(slope x logit(p) + intercept),
    # fitted by ``train`` against who in hindsight had left; empty = the models' own P(alive).
    alive_calibration: Mapping[str, float] = field(default_factory=dict)
    # Population reference points (quantiles, typical intervals, visit BG/NBD, RFM edges, the
    # product's kinds of activity that breadth counts against: models.compiled); filled by ``train``.
    population: Mapping[str, Any] = field(default_factory=dict)
    # Free text on where the numbers come from, and training figures (sizes, held-out calibration).
    notes: str = ""
    training: Mapping[str, Any] = field(default_factory=dict)
    # The numbers above as the hot path reads them, built once here (models.compiled).
    compiled: CompiledModel = field(init=False, repr=False, compare=False)
    # ``event_types`` as the readers of events apply it (models.events.TypeMap).
    type_map: TypeMap = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.risk_exit < self.risk_enter < 1.0:
            raise ValueError(
                f"need 0 < risk_exit < risk_enter < 1, got risk_exit={self.risk_exit}, risk_enter={self.risk_enter}"
            )
        if not 0.0 <= self.material_rise < 1.0 or self.quiet_days < 0:
            raise ValueError(f"need quiet_days >= 0 days and material_rise in [0, 1), got {self.quiet_days}, {self.material_rise}")
        for name in ("horizon_days", "new_days", "dormant_days", "churned_days", "retention_days", "customer_retention_days",
                     "review_interval_days"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 days, got {getattr(self, name)}")
        if self.dormant_days >= self.churned_days:
            raise ValueError(f"dormant_days ({self.dormant_days}) must be below churned_days ({self.churned_days})")
        for name in ("dormant_factor", "churned_factor", "overdue_factor"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 (multiples of the usual interval), got {getattr(self, name)}")
        if self.dormant_factor >= self.churned_factor:
            raise ValueError(f"dormant_factor ({self.dormant_factor}) must be below churned_factor ({self.churned_factor})")
        if not 0.0 < self.decline_ratio < 1.0:
            raise ValueError(f"decline_ratio must be a share in (0, 1), got {self.decline_ratio}")
        for name in ("action_health", "action_temperature"):
            if not 0.0 <= getattr(self, name) <= 100.0:
                raise ValueError(f"{name} must be on the 0-100 score scale, got {getattr(self, name)}")
        check_weights(self.risk_weights, self.risk_intercept, free_signs=free_signs(self.training))
        if self.alive_calibration:
            slope, intercept = self.alive_calibration.get("slope"), self.alive_calibration.get("intercept")
            if set(self.alive_calibration) != {"slope", "intercept"} or not (
                isinstance(slope, (int, float)) and isinstance(intercept, (int, float)) and 0 < slope < 1e6 and abs(intercept) < 1e6
            ):
                raise ValueError(f"alive_calibration must be {{slope > 0, intercept}} (log-odds), got {dict(self.alive_calibration)}")
        _check_roles(self.roles)
        if isinstance(self.tracked_types, (str, bytes)) or not isinstance(self.tracked_types, (list, tuple)):
            raise ValueError(f"tracked_types must be a list of event names, got {a_type(self.tracked_types)}")
        _check_names("tracked_types", self.tracked_types)
        object.__setattr__(self, "tracked_types", tuple(self.tracked_types))  # a JSON list reads back equal
        _check_patterns(self.machine_users)
        if not isinstance(self.lifetime_to_renewal, bool):
            raise ValueError(f"lifetime_to_renewal must be true or false, got {a_type(self.lifetime_to_renewal)}")
        object.__setattr__(self, "machine_users", tuple(self.machine_users))
        _check_patterns(self.key_users, "key", "teacher_*")
        object.__setattr__(self, "key_users", tuple(self.key_users))
        object.__setattr__(self, "quiet_calendar", _calendar(self.quiet_calendar))
        object.__setattr__(self, "peak_calendar", _calendar(self.peak_calendar, "peak", self.quiet_calendar))
        object.__setattr__(self, "event_types", type_aliases(self.event_types))  # as the readers apply it
        object.__setattr__(self, "type_map", TypeMap(dict(self.event_types)))
        object.__setattr__(self, "compiled", compile_model(self))  # frozen: set once, at construction

    def to_json(self) -> str:
        data = asdict(self)
        del data["compiled"], data["type_map"]  # derived, not part of the file
        if not data["event_types"]:
            del data["event_types"]  # optional (module docstring): a model without renames keeps its file and id
        for optional in ("machine_users", "key_users", "quiet_calendar", "peak_calendar", "lifetime_to_renewal"):
            if not data[optional]:
                del data[optional]  # optional, as event_types
        return json.dumps({"format": MODEL_FORMAT, **_finite(data)}, indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "ChurnModel":
        data = json.loads(text)
        if data.pop("format", None) != MODEL_FORMAT:
            raise ValueError(f"not a {MODEL_FORMAT} model file")
        known = {f.name for f in fields(cls) if f.init}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model file has unknown fields: {sorted(unknown)}")
        tables = [name for name in _TABLES if name in data and not isinstance(data[name], dict)
                  and not (name == "bgnbd" and data[name] is None)]
        if tables:
            raise ValueError(f"{tables[0]} must be a table (a JSON object), got {type(data[tables[0]]).__name__}")
        missing = [name for name in REQUIRED_FIELDS if name not in data]
        if missing:
            raise ValueError(f"model file has no {' or '.join(missing)}: the risk model is part of the file (the shipped "
                             f"default's are in models/{DEFAULT_MODEL_PATH.name}; an empty table weighs nothing)")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    def with_(self, **changes: Any) -> "ChurnModel":
        return replace(self, **changes)


def free_signs(training: Mapping[str, Any]) -> bool:
    """Whether a model file's ``training`` says its fit had free signs (``churnwatch train --signs
    free`` writes ``"signs": "free"``, models.risk.FREE_SIGNS): its weights on the features that
    grow with silence may be < 0 (models.risk.check_weights). The shipped default has no
    ``training``: bounded."""
    return isinstance(training, Mapping) and training.get("signs") == FREE_SIGNS


def learned_root(model: ChurnModel) -> str | None:
    """The model id of the file a chain of learned successors started from; None for a model
    that was not learned online (a file of ``train`` or the shipped default)."""
    learned = model.training.get(LEARNED_KEY) if isinstance(model.training, Mapping) else None
    root = learned.get("root") if isinstance(learned, Mapping) else None
    return str(root) if root else None


def same_vocabulary(a: ChurnModel, b: ChurnModel) -> bool:
    """Same tracked types (state slots), roles and renames: a state written under ``a`` means the
    same under ``b``, and the events are read the same way, so a running worker may swap one for the other.

    >>> same_vocabulary(ChurnModel(), ChurnModel(risk_intercept=-2.0)), same_vocabulary(ChurnModel(), ChurnModel(tracked_types=("view",)))
    (True, False)
    >>> same_vocabulary(ChurnModel(), ChurnModel(event_types={"checkout_completed": "purchase"}))
    False
    """
    return vocabulary_key(a.tracked_types, a.roles, a.event_types) == vocabulary_key(b.tracked_types, b.roles, b.event_types)


def role_names(role: str, names: Sequence[str]) -> tuple[str, ...] | frozenset[str]:
    """A role's event names as they mean something: in order for :data:`ORDERED_ROLES`, a set for
    the others (``purchase``, ``cancel`` and ``subscription`` re-ordered in a retrain's config read
    every event the same way: no rebuild, no refused ``backtest --config``).

    >>> role_names("purchase", ["buy", "order"]) == role_names("purchase", ("order", "buy"))
    True
    >>> role_names("negative", ["dislike", "block"]) == role_names("negative", ["block", "dislike"])
    False
    """
    return tuple(names) if role in ORDERED_ROLES else frozenset(names)


def vocabulary_key(tracked_types: Sequence[str], roles: Mapping[str, Sequence[str]], event_types: Mapping[str, str]) -> tuple[object, ...]:
    """What :func:`same_vocabulary` compares, from a model's fields or a model record read without
    a model file's checks (streams.worker.model_record.record_vocabulary): the tracked types in
    order (slot i is the i-th name), each role's names (:func:`role_names`; a role without names
    is no role) and the renames.

    >>> vocabulary_key(["view"], {"purchase": ["buy", "order"], "cancel": []}, {}) == vocabulary_key(("view",), {"purchase": ("order", "buy")}, {})
    True
    """
    return (tuple(tracked_types), frozenset((role, role_names(role, names)) for role, names in roles.items() if names),
            frozenset(dict(event_types).items()))


def _check_roles(roles: object) -> None:
    """ValueError unless ``roles`` is a table of known role -> list of event names as events carry
    them (trimmed, lower-case), each name in one role at most (QA7 L1: a list gave a traceback, a
    string was read letter by letter, a name in two roles played the first one found).

    >>> _check_roles({"purchase": "checkout_completed"})
    Traceback (most recent call last):
    ...
    ValueError: roles.purchase must be a list of event names, got a str ('checkout_completed')
    >>> _check_roles({"purchase": ["post"], "cancel": ["post"]})
    Traceback (most recent call last):
    ...
    ValueError: event name 'post' is in two roles (purchase, cancel): each name plays one role
    >>> _check_roles({"subscription": ["billing"]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: roles.subscription is ['billing']: only 'subscription' plays it ...

    ``subscription`` is played by ``subscription`` only (review 10 A2): the statement's status,
    plan and MRR are read under that name alone (models.events.type_aliases), so ``billing`` playing
    it carried no statement, and ``subscription`` statements, left without their role, counted as
    usage (an unused trial holder scored as a user).
    """
    if not isinstance(roles, Mapping):
        raise ValueError(f"roles must be a table of role -> list of event names (roles: {', '.join(ROLES)}), "
                         f"got {a_type(roles)}")
    seen: dict[str, str] = {}
    for role, names in roles.items():
        if role not in ROLES and role != GRIEVANCE_ROLE:
            raise ValueError(f"roles name unknown role {role!r}; known: {sorted([*ROLES, GRIEVANCE_ROLE])}")
        if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
            raise ValueError(f"roles.{role} must be a list of event names, got {a_type(names)} ({names!r})")
        _check_names(f"roles.{role}", names)
        if role == GRIEVANCE_ROLE:  # names of the negative role (models.vocabulary), not a role of their own
            continue
        for name in names:
            if name in seen and seen[name] != role:
                raise ValueError(f"event name {name!r} is in two roles ({seen[name]}, {role}): each name plays one role")
            seen[name] = role
    if "subscription" in roles and list(roles["subscription"]) != [SUBSCRIPTION_TYPE]:
        raise ValueError(f"roles.subscription is {list(roles['subscription'])}: only '{SUBSCRIPTION_TYPE}' plays it (a billing "
                         f"statement's record is read under that name only: send billing statements as type '{SUBSCRIPTION_TYPE}'); "
                         f"leave the role out of [roles]")


def _calendar(ranges: object, what: str = "quiet", quiet: Sequence[str] = ()) -> tuple[str, ...]:
    """``quiet_calendar`` (``peak_calendar``: ``what`` "peak") as the file keeps it (each range as
    models.quiet_period writes it); ValueError in models.quiet_period's one line (``calendar.quiet``
    names where it is). A peak may not share a day with a ``quiet`` range: a day is busy or slow.

    >>> _calendar(["07-01..08-31", " 12-20..01-04"])
    ('07-01..08-31', '12-20..01-04')
    >>> for bad, what in (("07-01..08-31", "quiet"), (["07-01..08-31", "08-15..09-10"], "quiet"), (["summer"], "quiet"), (["12-01..13-01"], "peak")):
    ...     try:
    ...         _calendar(bad, what)
    ...     except ValueError as exc:
    ...         print(exc)
    calendar.quiet must be a list of ranges MM-DD..MM-DD (e.g. ["07-01..08-31", "12-20..01-04"]), got a str
    calendar.quiet: quiet 08-15..09-10 overlaps 07-01..08-31
    calendar.quiet: quiet 'summer' is not a range MM-DD..MM-DD (e.g. 08-01..08-31; several separated by ';')
    calendar.peak: peak 12-01..13-01: '13-01' is no day of the year (MM-DD)
    >>> _calendar(["11-15..12-31"], "peak", ("01-01..01-31",)), _calendar(["11-15..01-05"], "peak", ("01-01..01-31",))
    Traceback (most recent call last):
    ...
    ValueError: calendar.peak: peak 11-15..01-05 overlaps quiet 01-01..01-31
    """
    if isinstance(ranges, (str, bytes)) or not isinstance(ranges, (list, tuple)) or not all(isinstance(r, str) for r in ranges):
        raise ValueError(f'calendar.{what} must be a list of ranges MM-DD..MM-DD (e.g. ["07-01..08-31", "12-20..01-04"]), got {a_type(ranges)}')
    try:
        periods = parse_quiet(";".join(ranges), what)
        clash = next(((p, q) for p in periods for q in parse_quiet(";".join(quiet)) if periods_overlap(p, q, 0)), None)
        if clash is not None:
            raise ValueError(f"{what} {clash[0]} overlaps quiet {clash[1]}")
        return tuple(str(p) for p in periods)
    except ValueError as exc:
        raise ValueError(f"calendar.{what}: {exc}") from None


def _check_patterns(patterns: object, kind: str = "machine", example: str = "svc_*") -> None:
    """ValueError unless ``patterns`` (``machine_users``, ``key_users``) is a list of non-empty user id patterns.

    >>> _check_patterns("svc_*")
    Traceback (most recent call last):
    ...
    ValueError: users.machine must be a list of user id patterns (svc_*), got a str ('svc_*')
    """
    if isinstance(patterns, (str, bytes)) or not isinstance(patterns, (list, tuple)) or not all(
            isinstance(p, str) and p.strip() for p in patterns):
        raise ValueError(f"users.{kind} must be a list of user id patterns ({example}), got {a_type(patterns)} ({patterns!r})")


def _check_names(field_name: str, names: Sequence[str]) -> None:
    """ValueError unless every name is one events can carry: non-empty, trimmed, lower-case (review
    10 A7: a hand-written ``Page_View`` in ``tracked_types`` never matched an event, without a word).

    >>> _check_names("tracked_types", ["view", "Page_View"])
    Traceback (most recent call last):
    ...
    ValueError: tracked_types names 'Page_View': event names are non-empty, trimmed and lower-case (events are read that way: Page_View is page_view)
    """
    for name in names:
        if not isinstance(name, str) or not name or name != name.strip().lower():
            raise ValueError(f"{field_name} names {name!r}: event names are non-empty, trimmed and lower-case "
                             f"(events are read that way: Page_View is page_view)")


def load_model(path: str | Path | None = None) -> ChurnModel:
    """The model at ``path``, else the shipped default, else built-in defaults."""
    target = Path(path) if path else DEFAULT_MODEL_PATH
    if target.is_dir():
        raise ValueError(f"model file {target} is a folder")
    if target.exists():
        try:
            return ChurnModel.from_json(target.read_text(encoding="utf-8"))
        except (ValueError, TypeError) as exc:  # a CSV given as the model said only "Expecting value: line 1 column 1"
            raise ValueError(f"model file {target}: not a churnwatch model ({exc})") from exc
    if path:
        raise FileNotFoundError(f"model file {target} does not exist")
    return ChurnModel()


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None: the file is strict JSON (other readers
    refuse ``NaN``), and a report figure that cannot be computed (an AUC error with one class
    held out) reads as unknown. Weights never get here non-finite (``check_weights``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
