"""The alert path's shortcuts give what they replaced (docs/SCALING.md, "The alert path").

An alert's id, its dict, its reasons' order and the reasons' tests took shorter ways in the
compiled core (a copied empty hash, a copied dict of the keys, a sort by insertion, a count
without a list, a set lookup before a prefix test, a weight read from the compiled model). Each is checked here against the expression it
replaced, in the modules this process runs (compiled where built) and in their pure copies.
"""

from __future__ import annotations

import hashlib
import math

from hypothesis import given
from hypothesis import strategies as st

import models.engine as engine
import models.reasons as reasons
import models.signals as signals
from models import _native
from models.compiled import KINDS_KEY
from models.model import ChurnModel, load_model
from models.risk import SLOT_PREFIXES
from models.scoring import assess
from models.state import UserState
from tests.test_models_properties import DAY_MS, MODEL, histories

PURE = _native.import_pure(["engine", "reasons", "signals"])
ENGINES = [engine, PURE["engine"]]
REASONS = [reasons, PURE["reasons"]]
SIGNALS = [signals, PURE["signals"]]


@given(st.text(), st.sampled_from(["at_risk", "recovered", "stage_changed", "trial_ending"]), st.text(max_size=8),
       st.integers(-(2**70), 2**70))
def test_an_alert_id_is_the_blake2b_of_its_text(user: str, kind: str, detail: str, t: int) -> None:
    """Byte for byte the id consumers de-duplicate on: blake2b of the text, 12 bytes, in hex
    (fails on another digest size, a missing separator, or the prototype hash changed by a call)."""
    want = hashlib.blake2b(f"{user}\x1f{kind}\x1f{detail}\x1f{t}".encode(), digest_size=12).hexdigest()
    for module in ENGINES:
        assert module.alert_id(user, kind, detail, t) == want
        assert module.alert_id(user, kind, detail, t) == want  # the empty hash is copied, never written


def _literal(a: engine.Alert) -> dict[str, object]:
    """``Alert.to_dict`` as it was written before (a dict display)."""
    s = a.scores
    return {
        "schema": engine.ALERT_SCHEMA,
        "delivery": "at-least-once; de-duplicate on alert_id",
        "alert_id": a.alert_id,
        "kind": a.kind,
        "user_id": a.user_id,
        "event_time_ms": a.event_time_ms,
        "risk": engine.round_places(s.risk, 4),
        "health": engine.round_places(s.health, 1),
        "temperature": engine.round_places(s.temperature, 1),
        "stage": s.stage,
        "previous_stage": a.previous_stage,
        "segment": s.segment,
        "action": s.action,
        "reasons": list(s.reasons),
    }


@given(histories(), st.integers(0, 60))
def test_an_alerts_dict_is_the_display_it_replaced(events: list, extra_days: int) -> None:
    """Key for key in order, value for value (the floats by their bits), compiled and pure; a
    dict changed by its caller leaves the next one as it was (each is a copy)."""
    out = engine.advance("u", None, events, events[-1].ts_ms + extra_days * DAY_MS, MODEL)
    for a in out.alerts:
        want = [(k, v.hex() if isinstance(v, float) else v) for k, v in _literal(a).items()]
        for module in ENGINES:
            alert = module.Alert(a.alert_id, a.kind, a.user_id, a.event_time_ms, a.scores, a.previous_stage)
            d = alert.to_dict()
            assert [(k, v.hex() if isinstance(v, float) else v) for k, v in d.items()] == want
            d["schema"], d["reasons"] = "x", None
            assert alert.to_dict()["schema"] == engine.ALERT_SCHEMA


_RANKS = st.sampled_from([0.0, -0.0, 0.05, 0.3, 1.0, -1.0, 5e8, 1e9, -1e9, math.inf, -math.inf, 5e-324])


@given(st.lists(st.tuples(_RANKS, st.sampled_from(["silence", "tenure", "narrow"])), max_size=12))
def test_the_reasons_order_is_the_keyed_sort(items: list[tuple[float, str]]) -> None:
    """``_by_rank`` orders as ``sort(key=lambda item: -item[0])``: largest first, equal ranks (0.0
    and -0.0 too) in their order (each item numbered: fails on ``<=``, which moves ties)."""
    found = [(rank, key, str(n), key) for n, (rank, key) in enumerate(items)]
    want = sorted(found, key=lambda item: -item[0])
    for module in REASONS:
        got = list(found)
        module._by_rank(got)
        assert [item[2] for item in got] == [item[2] for item in want]


_COUNT = st.one_of(st.floats(), st.sampled_from([0.5, math.nextafter(0.5, 0.0), -0.0, 0.0]))
_KINDS_MODELS = [load_model(), load_model().with_(population={KINDS_KEY: ["kind1", "kind4", "kind9", "purchase"]}),
                 load_model().with_(tracked_types=("view", "click", "purchase"),
                                    population={KINDS_KEY: ["view", "click", "purchase"]})]


@given(st.data(), st.sampled_from(range(len(_KINDS_MODELS))), st.integers(0, 3), st.floats(0.0, 60.0))
def test_the_kinds_used_count_is_the_length_of_the_kinds_used(data: st.DataObject, which: int, n_purchases: int,
                                                               silence: float) -> None:
    """``kinds_used_count`` is ``len(slots) + bought`` of ``kinds_used`` for any counts (NaN,
    infinities, either zero, next to the threshold), every kind or some, with purchases or not."""
    model = _KINDS_MODELS[which]
    for module in SIGNALS:
        sig = assess(UserState(), 0, model).signals
        sig.slot_28d = data.draw(st.lists(_COUNT, min_size=len(sig.slot_28d), max_size=len(sig.slot_28d)))
        sig.n_purchases, sig.purchase_silence_days = n_purchases, silence
        slots, bought = module.kinds_used(sig, model, model.compiled)
        assert module.kinds_used_count(sig, model.compiled) == len(slots) + (1 if bought else 0)


@given(st.text(max_size=12))
def test_a_slot_key_is_a_key_with_a_slot_prefix(key: str) -> None:
    """``_is_slot`` is ``key.startswith(SLOT_PREFIXES)`` on every feature name and key of every
    model, the words' own keys, and any text."""
    model = load_model().with_(tracked_types=("view", "click"))
    keys = [key, *model.compiled.features, *reasons._KEYS, "type_decline", "cancelled", "renewal", "back", "new"]
    for module in REASONS:
        for k in keys:
            assert module._is_slot(k) == k.startswith(SLOT_PREFIXES), k


def test_a_weight_read_from_the_compiled_model_has_the_models_sign() -> None:
    """``_reads_as_it_weighs`` reads the sign ``risk_weights.get(name, 0.0)`` has (from the
    compiled model's table): either sign, zero, an int, absent, for the weights of the facts with
    a reading of their own (a longer tenure reads better, negative feedback and widening gaps
    worse: reasons7)."""
    for value in (-0.25, 0.25, 0.0, -0.0, 2, -1, None):
        for key, name, worse in (("tenure", "tenure_log", False), ("negative", "negative_share", True),
                                 ("gaps", "gap_trend", True)):
            weights = {k: v for k, v in load_model().risk_weights.items() if k != name}
            if value is not None:
                weights[name] = value
            model = ChurnModel(risk_weights=weights)
            want = model.risk_weights.get(name, 0.0)
            for module in REASONS:
                assert module._reads_as_it_weighs(key, model) == (want > 0.0 if worse else want < 0.0), (name, value)


def test_a_silence_weight_below_zero_is_read_from_the_compiled_model() -> None:
    """``_reads_as_it_weighs`` of the facts that grow with silence (silence and overdue, the
    declines, low activity, narrowness, the temperature: docs/SCORES.md, "The sign bounds"): as
    weighed unless a feature of the fact is weighed < 0, which only a file of a fit with free
    signs may do (``training["signs"]``); either sign, zero, an int, absent, each feature of a
    group of two (silence: ``silence_log`` and ``visit_overdue_log``), compiled and pure."""
    groups = {"silence": ("silence_log", "visit_overdue_log"), "purchase": ("purchase_overdue_log",), "decline": ("decline",),
              "decline_long": ("decline_long",), "low": ("inactive_28d",), "narrow": ("narrowness",), "cooling": ("cooling",)}
    for value in (-0.25, 0.25, 0.0, -0.0, 2, -1, None):
        for key, names in groups.items():
            for name in names:
                weights = {k: v for k, v in load_model().risk_weights.items() if k != name}
                if value is not None:
                    weights[name] = value
                model = ChurnModel(risk_weights=weights, training={"signs": "free"})
                want = all(model.risk_weights.get(n, 0.0) >= 0.0 for n in names)
                for module in REASONS:
                    assert module._reads_as_it_weighs(key, model) == want, (key, name, value)


def _verdict_models() -> list[ChurnModel]:
    """Models whose verdicts differ: the default, one with tracked types (per-slot keys), one
    weighing tenure the other way, a free-sign fit weighing silence below zero."""
    base = load_model()
    free = {k: v for k, v in base.risk_weights.items() if k != "silence_log"}
    return [base, base.with_(tracked_types=("view", "click", "unfriend"), roles={"negative": ["unfriend"]}),
            ChurnModel(risk_weights={**base.risk_weights, "tenure_log": 0.25}),
            ChurnModel(risk_weights={**free, "silence_log": -0.25}, training={"signs": "free"})]


def test_a_verdict_is_remembered_per_model_as_worked_out() -> None:
    """``_reads_as_it_weighs`` remembers its answer per key on the compiled model
    (``CompiledModel.verdicts``, filled on first use): asked first or again, it gives what
    ``_weighed_as_read`` works out afresh, compiled and pure (each module on models of its own,
    so neither reads what the other remembered), and two models keep their own answers (the
    tenure verdict flips with the weight's sign; fails with one cache shared by all models)."""
    for module in REASONS:
        models = _verdict_models()
        for model in models:
            c = model.compiled
            keys = [*reasons._KEYS, *c.features[len(reasons.FEATURES):]]
            for key in keys * 2:
                want = PURE["reasons"]._weighed_as_read(key, model, c)
                assert module._weighed_as_read(key, model, c) == want, key
                assert module._reads_as_it_weighs(key, model) == want, key
                assert c.verdicts[key] == want, key
        assert models[0].compiled.verdicts["tenure"] is True and models[2].compiled.verdicts["tenure"] is False
        assert models[3].compiled.verdicts["silence"] is False and models[0].compiled.verdicts["silence"] is True


def test_the_compiled_copies_of_the_population_and_thresholds() -> None:
    """What the alert path reads from the compiled model instead of the Python one: whether the
    product's kinds are known (``KINDS_KEY`` in the population or tracked types), the population's
    ``act_28d`` quantiles (the very object) and the action's thresholds; and health from those
    quantiles equals health from the population (a model with quantiles and one without)."""
    from models.health import ACT_QUANTILES, health, health_of
    from models.signals import compute_signals

    edges = [0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0]
    models = [load_model(), load_model().with_(population={**load_model().population, ACT_QUANTILES: edges}),
              load_model().with_(population={**load_model().population, KINDS_KEY: ["kind0", "purchase"]}),
              load_model().with_(tracked_types=("view",), action_health=40, action_temperature=70.5)]
    for model in models:
        c = model.compiled
        assert c.kinds_known == (KINDS_KEY in model.population or bool(model.tracked_types))
        assert c.act_edges is model.population.get(ACT_QUANTILES)
        assert (c.action_health, c.action_temperature) == (model.action_health, model.action_temperature)
        for act in (0.0, 0.7, 4.0, 50.0):
            st = UserState(n_events=3, active_days=2, act_7d=act / 3, act_28d=act, act_90d=act * 2,
                           first_seen_s=1_700_000_000, last_seen_s=1_700_200_000)
            sig = compute_signals(st, 1_700_300_000, model)
            assert health_of(sig, c.act_edges) == health(sig, model.population)
    assert [m.compiled.kinds_known for m in models] == [False, False, True, True]
