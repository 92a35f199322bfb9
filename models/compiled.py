"""The model file's numbers in the form the hot path reads them, worked out once per model.

``ChurnModel`` builds its :class:`CompiledModel` when it is constructed (so when a model file is
loaded): parsing the BG/NBD mappings, the calibration and the weight table per scored user would
cost more than the formulas themselves. One object per model, no module-level cache: two models
in one process (a test, ``train`` comparing a fitted model with its base) never see each other's
numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Mapping, Sequence

from models.bgnbd import BgNbdParams
from models.health import ACT_QUANTILES
from models.risk import COOLING, FEATURES, moves_with_silence, reference, slot_features
from models.signals import DEFAULT_PURCHASE_GAP_DAYS, DEFAULT_VISIT_GAP_DAYS
from models.vocabulary import PURCHASE, Vocabulary

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = ["CAPS_KEY", "CompiledModel", "DEFAULT_VISIT_PARAMS", "KINDS_KEY", "PURCHASE_KIND", "VISIT_KEY", "compile_model", "product_kinds", "risk_caps", "slot_labels"]

VISIT_KEY: Final[str] = "visit_mbgnbd"
#: ``population["kinds"]``: the product's kinds of activity (slot labels, :func:`slot_labels`, and
#: :data:`PURCHASE_KIND` when the product has purchases), which breadth of use counts against
#: (models.signals.breadth); ``train`` writes the kinds its history used. Absent: every slot and
#: purchases, all the model can tell apart.
KINDS_KEY: Final[str] = "kinds"
PURCHASE_KIND: Final[str] = "purchase"
#: ``population["risk_caps"]``: feature name -> the largest value the training rows had, for the
#: features that only grow with time (``train`` writes them: models.risk.grows_with_time). The risk reads
#: such a feature at most at its cap: a trained weight says what it saw within its history, and a
#: tenure of a year weighed by a history of six months is an extrapolation (QA18 F2: a positive
#: ``tenure_log`` weight learned on a cut history raised every stayer's risk past the alert line
#: within months). Absent (the shipped default, files written before): no cap.
CAPS_KEY: Final[str] = "risk_caps"
#: Visit rhythm population used until ``train`` fits one (days): mean rate r/alpha = 1 visit
#: every 3 days, heterogeneous (r = 1); a 1-in-7 chance (a / (a + b)) of dropping out after any active day.
DEFAULT_VISIT_PARAMS: Final[BgNbdParams] = BgNbdParams(r=1.0, alpha=3.0, a=0.5, b=3.0)


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """What models.temperature and models.risk read per scoring, parsed from one ``ChurnModel``."""

    visits: BgNbdParams  # MBG/NBD on active days (fitted, or DEFAULT_VISIT_PARAMS)
    purchases: BgNbdParams | None  # BG/NBD on purchases, None when the model has none
    calibration: tuple[float, float] | None  # (slope, intercept) of P(alive) on the log-odds
    # (feature index, weight, moves with silence) of the non-zero risk weights, in FEATURES
    # order. Skipping a zero weight leaves the log-odds bit-identical (z + 0.0 * v == z for a
    # finite v, up to the sign of a zero z, which the sigmoid ignores).
    terms: tuple[tuple[int, float, bool], ...]
    vocabulary: Vocabulary  # slots and roles of the product's event names
    features: tuple[str, ...]  # names of models.risk.feature_vector's values, in order
    # By feature index: the weight (0.0 where the model has none) and the value that contributes
    # nothing (models.risk.reference), which models.reasons ranks an alert's factors by.
    weights: tuple[float, ...]
    references: tuple[float, ...]
    # By feature index: the largest value the risk reads (CAPS_KEY; +inf where none), and whether
    # any is finite: the loops over ``terms`` test ``capped`` alone for a model without caps.
    caps: tuple[float, ...]
    capped: bool
    # expm1 of the ``tenure_log`` reference: the reference user's tenure in days, which an alert's
    # reasons compare the user's with (models.reasons; a generic expm1 call up to three times an alert)
    typical_tenure_days: float
    # The product's kinds of activity (KINDS_KEY): slot indices, whether purchases are one, and
    # how many kinds that makes (breadth's denominator, the M of the reasons' "N of M kinds").
    kinds: tuple[int, ...]
    purchase_kind: bool
    n_kinds: int
    # Whether ``kinds`` is every slot in slot order (no ``kinds`` declared, or all of them): the
    # breadth then walks the slot list itself (models.signals._breadth), not an index per kind.
    kinds_all: bool
    # Whether the logistic part weighs ``cooling`` (1 - P(alive)): the only feature that reads
    # P(alive). Without it P(leaves | alive) needs no P(alive), and the save-list bound, which
    # asks only for that part at the next review (models.ranking), skips the BG/NBD evaluations.
    reads_alive: bool
    # Whether no feature that grows with silence is weighed < 0 (models.risk.moves_with_silence):
    # the risk then never falls in silence, which the engine's crossing search and the save-list
    # bound rely on. False only for a file of ``churnwatch train --signs free``
    # (models.risk.check_weights): the engine then looks at a silent user daily (models.engine).
    silence_monotone: bool
    # ChurnModel's numbers that every review reads, copied here: the model is a Python dataclass,
    # so each of its attributes costs the compiled core a generic attribute lookup and an unboxing
    # (a tenth of a review's instructions under callgrind), this class's a load from its struct.
    # The lifecycle's thresholds (models.lifecycle), the risk's intercept (models.risk), and the
    # visit rhythm's MBG/NBD parameters (``visits``' r, alpha, a, b: models.temperature).
    new_days: float
    dormant_days: float
    churned_days: float
    dormant_factor: float
    churned_factor: float
    overdue_factor: float
    decline_ratio: float
    risk_intercept: float
    visit_r: float
    visit_alpha: float
    visit_a: float
    visit_b: float
    # The population's usual intervals between active days and between purchases (the priors of
    # models.signals; its defaults until ``train`` measures them): a dict lookup per scoring saved.
    visit_gap_days: float
    purchase_gap_days: float
    # The product's first-return interval (models.signals.first_return_due_s): train measures it;
    # 0.0 until then, and the one-day user's own usual interval stands in (a file without it reads as before).
    first_return_days: float
    # The engine's thresholds and durations (models.engine: each review reads a few of them, and
    # the risk's exit gate the horizon), copied here for the same reason as the lifecycle's.
    horizon_days: float
    risk_enter: float
    risk_exit: float
    material_rise: float
    quiet_days: float
    review_interval_days: float
    # The product's declared quiet periods (``ChurnModel.quiet_calendar``, ``[calendar] quiet``) as
    # sorted occurrences, first second and the second after the last day, over 1970-2199 (the
    # stream's years): models.signals.calendar_hold_s finds the one of a moment by bisection. Empty: none.
    calendar_starts: tuple[int, ...]
    calendar_ends: tuple[int, ...]
    calendar_names: tuple[str, ...]  # each occurrence's range as declared ("07-01..08-31"), for the reasons
    # The product's declared peak seasons (``ChurnModel.peak_calendar``, ``[calendar] peak``), the same
    # way: their seconds do not count in the 3-month baseline (models.state.peak_s). Empty: none.
    peak_starts: tuple[int, ...]
    peak_ends: tuple[int, ...]
    retention_days: float
    customer_retention_days: float  # max(retention_days, the model's customer_retention_days)
    # Whether the model knows the product's kinds of activity (models.reasons._kinds_known: its
    # population names them, or it tracks the product's own event names), worked out here: an
    # alert's reasons asked it through two generic attribute lookups and a dict test, twice.
    kinds_known: bool
    # The population's quantiles of the 4-week activity (``population["act_28d"]``, models.health;
    # None without them), the very object the population holds: health and the reasons' "low"
    # read them once an alert each, a generic attribute lookup and a ``Mapping.get`` call each time.
    act_edges: Sequence[float] | None
    # The action's thresholds (models.actions.recommend, once an alert), as the model holds them.
    action_health: float
    action_temperature: float
    # Whether a subscriber's ``lifetime:`` volumes are carried to the renewal (ChurnModel
    # lifetime_to_renewal: models.signals.compute_signals fills Signals.renewal_days only then).
    lifetime_to_renewal: bool
    # models.reasons' verdict per reason key, whether this model weighs the key's fact the way its
    # words read (models.reasons._reads_as_it_weighs: a function of the key and this model alone),
    # filled there on first use: worked out per alert, it was ~0.6k instructions a call, four or
    # more an alert (callgrind, docs/SCALING.md). Not part of the model's value.
    verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)


def calendar_occurrences(quiet: Sequence[str], what: str = "quiet") -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    """The occurrences of the product's quiet periods (``ChurnModel.quiet_calendar``, ranges
    ``MM-DD..MM-DD`` as models.quiet_period reads an account's) in seconds, 1970-2199, sorted:
    (first seconds, seconds after their last days, their ranges); ((), (), ()) without any.
    ``what`` "peak": the product's peak seasons (``ChurnModel.peak_calendar``), read the same way.

    >>> starts, ends, names = calendar_occurrences(["12-20..01-04"]); (len(starts), (ends[0] - starts[0]) // 86_400, names[0])
    (230, 16, '12-20..01-04')
    """
    if not quiet:
        return (), (), ()
    from models.quiet_period import parse_quiet  # here: models.quiet_period reads the account rules, which read this module

    spans: list[tuple[int, int, str]] = []
    for p in parse_quiet(";".join(quiet), what):
        for y in range(1970, 2200):
            start, end = p.occurrence(y)
            spans.append((start, end, str(p)))
    spans.sort()
    return tuple(a // 1000 for a, _, _ in spans), tuple(b // 1000 for _, b, _ in spans), tuple(n for _, _, n in spans)


def compile_model(model: "ChurnModel") -> CompiledModel:
    """The compiled form of ``model`` (called by ``ChurnModel.__post_init__``)."""
    visit: Mapping[str, float] | None = model.population.get(VISIT_KEY)
    cal = model.alive_calibration
    vocabulary = Vocabulary(tuple(model.tracked_types), {k: tuple(v) for k, v in model.roles.items()})
    features = FEATURES + slot_features(slot_labels(vocabulary))
    unknown = set(model.risk_weights) - set(features)
    if unknown:
        raise ValueError(f"risk_weights name features {sorted(unknown)} that this model's tracked_types do not have")
    weights = tuple(float(model.risk_weights.get(name, 0.0)) for name in features)
    references = tuple(reference(name, model) for name in features)
    caps = risk_caps(model.population.get(CAPS_KEY), features)
    kinds, purchase_kind = product_kinds(model.population.get(KINDS_KEY), vocabulary)
    visits = BgNbdParams.from_mapping(visit) if visit else DEFAULT_VISIT_PARAMS
    calendar = calendar_occurrences(model.quiet_calendar)
    peak = calendar_occurrences(model.peak_calendar, "peak")
    return CompiledModel(
        visits=visits,
        purchases=BgNbdParams.from_mapping(model.bgnbd) if model.bgnbd else None,
        calibration=(float(cal["slope"]), float(cal["intercept"])) if cal else None,
        terms=tuple((i, w, moves_with_silence(features[i])) for i, w in enumerate(weights) if w != 0.0),
        vocabulary=vocabulary,
        features=features,
        weights=weights,
        references=references,
        caps=caps,
        capped=any(v != math.inf for v in caps),
        typical_tenure_days=math.expm1(references[FEATURES.index("tenure_log")]),
        kinds=kinds,
        purchase_kind=purchase_kind,
        n_kinds=len(kinds) + (1 if purchase_kind else 0),
        kinds_all=kinds == tuple(range(len(kinds))),
        reads_alive=weights[COOLING] != 0.0,
        silence_monotone=all(w >= 0.0 for i, w in enumerate(weights) if moves_with_silence(features[i])),
        new_days=float(model.new_days),
        dormant_days=float(model.dormant_days),
        churned_days=float(model.churned_days),
        dormant_factor=float(model.dormant_factor),
        churned_factor=float(model.churned_factor),
        overdue_factor=float(model.overdue_factor),
        decline_ratio=float(model.decline_ratio),
        risk_intercept=float(model.risk_intercept),
        visit_r=float(visits.r),
        visit_alpha=float(visits.alpha),
        visit_a=float(visits.a),
        visit_b=float(visits.b),
        visit_gap_days=float(model.population.get("visit_gap_days", DEFAULT_VISIT_GAP_DAYS)),
        purchase_gap_days=float(model.population.get("purchase_gap_days", DEFAULT_PURCHASE_GAP_DAYS)),
        first_return_days=float(model.population.get("first_return_days", 0.0)),
        horizon_days=float(model.horizon_days),
        risk_enter=float(model.risk_enter),
        risk_exit=float(model.risk_exit),
        material_rise=float(model.material_rise),
        quiet_days=float(model.quiet_days),
        review_interval_days=float(model.review_interval_days),
        calendar_starts=calendar[0],
        calendar_ends=calendar[1],
        calendar_names=calendar[2],
        peak_starts=peak[0],
        peak_ends=peak[1],
        retention_days=float(model.retention_days),
        customer_retention_days=float(max(model.retention_days, model.customer_retention_days)),
        kinds_known=KINDS_KEY in model.population or bool(vocabulary.tracked),
        act_edges=model.population.get(ACT_QUANTILES),
        action_health=float(model.action_health),
        action_temperature=float(model.action_temperature),
        lifetime_to_renewal=bool(model.lifetime_to_renewal),
    )


def risk_caps(declared: object, features: Sequence[str]) -> tuple[float, ...]:
    """The caps by feature index of ``declared`` (CAPS_KEY: feature name -> finite cap; None: no
    cap), +inf for a feature it does not name. ValueError on a name the model has no feature of,
    or a cap that is not a finite number.

    >>> risk_caps({"tenure_log": 4.5}, ("silence_log", "tenure_log")), risk_caps(None, ("a",))
    ((inf, 4.5), (inf,))
    """
    if declared is None:
        return tuple(math.inf for _ in features)
    if not isinstance(declared, Mapping):
        raise ValueError(f"population {CAPS_KEY} must be a table of feature name -> cap, got {declared!r}")
    bad = {k: v for k, v in declared.items()
           if k not in features or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)}
    if bad:
        raise ValueError(f"population {CAPS_KEY} must give this model's features finite caps, got {bad}")
    return tuple(float(declared[name]) if name in declared else math.inf for name in features)


def product_kinds(declared: object, vocabulary: Vocabulary) -> tuple[tuple[int, ...], bool]:
    """(slot indices, purchases a kind) of the product's kinds of activity ``declared``
    (``population["kinds"]``: slot labels as :func:`slot_labels` names them, :data:`PURCHASE_KIND`,
    or event names, which count as the slot or role the vocabulary gives them, so a product can
    declare ``["view", "click", "message", "purchase"]`` without knowing where the default hashes
    each name); None: every slot and purchases, as before the kinds were known (so model files
    written before score as they did). A tracked purchase name is that kind once, by its slot.
    ValueError on an entry that names no slot nor purchases, or on no kind at all.

    >>> v = Vocabulary(("post", "like"))
    >>> product_kinds(["like"], v), product_kinds(None, v), product_kinds(["purchase", "post"], v)
    (((1,), False), ((0, 1), True), ((0,), True))
    >>> product_kinds(["order", "purchase"], Vocabulary(("order", "view")))  # "order" is a purchase name
    ((0,), False)
    >>> product_kinds(["click", "kind0", "checkout"], Vocabulary()) == ((Vocabulary().lookup("click")[0],), True)
    True
    """
    labels = slot_labels(vocabulary)
    if declared is None:
        return tuple(range(len(labels))), True
    if not isinstance(declared, (list, tuple)) or not declared or not all(isinstance(k, str) for k in declared):
        raise ValueError(f"population {KINDS_KEY} must be a non-empty list of kinds of activity (slot or event names, "
                         f"{PURCHASE_KIND!r}), got {declared!r}")
    slots: set[int] = set()
    purchases = False
    unknown: list[str] = []
    for name in declared:
        if name in labels:
            slots.add(labels.index(name))
        elif name == PURCHASE_KIND:
            purchases = True
        else:
            slot, role = vocabulary.lookup(name)
            if slot >= 0:
                slots.add(slot)
            elif role == PURCHASE:
                purchases = True
            else:
                unknown.append(name)
    if unknown:
        raise ValueError(f"population {KINDS_KEY} names {sorted(unknown)}, which this model's vocabulary has no slot for; slots: {list(labels)}")
    carried = any(vocabulary.lookup(labels[i])[1] == PURCHASE for i in slots) if vocabulary.tracked else False
    return tuple(sorted(slots)), purchases and not carried


def slot_labels(vocabulary: Vocabulary) -> tuple[str, ...]:
    """What the slots are called in feature names and reasons: the tracked event names, or
    ``kind<i>`` for hashed slots."""
    return tuple(vocabulary.slot_name(i) or f"kind{i}" for i in range(vocabulary.n_slots))
