"""Breadth of use counted against the product's own kinds of activity (``population["kinds"]``):
one denominator for the risk's narrowness, health and the reasons' "uses N of M kinds"."""

from __future__ import annotations

import math
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from models.compiled import KINDS_KEY, PURCHASE_KIND
from models.engine import advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.reasons import _kinds_used
from models.scoring import score
from models.signals import _breadth, compute_signals, kinds_used
from models.state import DAY_S, UserState
from models.vocabulary import Vocabulary
from streams.offline.train import KIND_MIN_USERS, product_kinds_used

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = DAY_S * 1000
#: simulate-mix's product seen by the hashed default: view, click and message, and purchases
TYPES = ("view", "click", "message")


def _kinds_of(names: tuple[str, ...], model: ChurnModel) -> list[str]:
    v = model.compiled.vocabulary
    return sorted({f"kind{v.lookup(n)[0]}" for n in names})


def _user(model: ChurnModel, names: tuple[str, ...], buys: bool = False) -> UserState:
    """A user active every day for 4 weeks with each of ``names`` (and an order a week)."""
    evs = [Event("u", START_MS + d * DAY_MS + j * 60_000, n, f"{d}-{j}") for d in range(28) for j, n in enumerate(names)]
    if buys:
        evs += [Event("u", START_MS + d * DAY_MS + 3_600_000, "purchase", f"p{d}", 20.0) for d in range(0, 28, 7)]
    return advance("u", None, sorted(evs, key=lambda e: e.ts_ms), START_MS + 28 * DAY_MS, model).state


@settings(max_examples=200, deadline=None)
@given(hs.lists(hs.floats(0.0, 50.0), min_size=8, max_size=8), hs.integers(0, 5), hs.floats(0.0, 200.0))
def test_a_model_without_kinds_counts_every_slot_and_purchases_as_before(slots: list[float], n_p: int, silence: float) -> None:
    """No ``kinds`` (the shipped default, model files written before): the formula of before, bit
    for bit, so their scores do not move."""
    before = sum(n / (1.0 + n) for n in slots if n > 0.0)
    if n_p > 0:
        before += math.exp(-silence / 28.0)
    assert _breadth(slots, 1.0, n_p, silence, load_model().compiled) == before / 9


def test_breadth_and_the_reason_count_the_products_kinds() -> None:
    default = load_model()
    kinds = [*_kinds_of(TYPES, default), PURCHASE_KIND]
    product = default.with_(population={KINDS_KEY: kinds})
    assert product.compiled.n_kinds == 4 and default.compiled.n_kinds == 9
    st = _user(product, TYPES, buys=True)
    sig, sig0 = compute_signals(st, st.last_seen_s, product), compute_signals(st, st.last_seen_s, default)
    assert sig.breadth > 0.9 > 0.45 > sig0.breadth, (sig.breadth, sig0.breadth)  # a user of everything the product has
    slots, bought = kinds_used(sig, product)
    assert len(slots) == 3 and bought
    # one narrow user: the reason names the same M as the breadth's denominator
    narrow = _user(product, ("view",))
    why = score(narrow, narrow.last_seen_s, product).reasons
    assert "uses 1 of 4 kinds of activity in 4 weeks" in why, why
    nsig = compute_signals(narrow, narrow.last_seen_s, product)
    n = nsig.slot_28d[product.compiled.vocabulary.lookup("view")[0]]
    assert nsig.breadth == n / (1.0 + n) / 4
    # risk and health: the user of every kind is not narrow any more; silence still never lowers risk
    s, s0 = score(st, st.last_seen_s, product), score(st, st.last_seen_s, default)
    assert s.risk < s0.risk and s.health > s0.health
    assert score(st, st.last_seen_s + 20 * DAY_S, product).risk >= s.risk


def test_tracked_names_say_which_kinds_and_a_tracked_purchase_counts_once() -> None:
    model = load_model().with_(tracked_types=("view", "click", "purchase"), population={KINDS_KEY: ["view", "click", "purchase"]})
    c = model.compiled
    assert (c.kinds, c.purchase_kind, c.n_kinds) == ((0, 1, 2), False, 3)  # the slot "purchase" is that kind
    st = _user(model, ("view",), buys=True)
    sig = compute_signals(st, st.last_seen_s, model)
    assert _kinds_used(sig, model) == "uses 2 of the 3 main kinds of activity in 4 weeks (view, purchase)"
    assert sig.breadth < 2 / 3


def test_a_model_file_without_kinds_names_a_tracked_purchase_once() -> None:
    """Without ``kinds`` the breadth keeps its old formula (the purchase slot and the purchases
    term both count); the words name that kind once."""
    model = load_model().with_(tracked_types=("view", "click", "purchase"))
    assert (model.compiled.purchase_kind, model.compiled.n_kinds) == (True, 4)
    st = _user(model, ("view",), buys=True)
    sig = compute_signals(st, st.last_seen_s, model)
    assert _kinds_used(sig, model) == "uses 2 of the 3 main kinds of activity in 4 weeks (view, purchase)"


@pytest.mark.parametrize("kinds, match", [
    ([], "non-empty list"), ("view", "non-empty list"), (["kind1"], r"\['kind1'\].*no slot"), (["view", "post", "order"], r"\['post'\]"),
])
def test_kinds_naming_no_slot_are_refused(kinds: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ChurnModel(tracked_types=("view",), population={KINDS_KEY: kinds})


def test_a_product_declares_its_kinds_by_event_name() -> None:
    """By hand, with the product's own names: the default finds the hashed kind of each."""
    default = load_model()
    by_name = default.with_(population={KINDS_KEY: [*TYPES, "checkout"]}).compiled
    by_slot = default.with_(population={KINDS_KEY: [*_kinds_of(TYPES, default), PURCHASE_KIND]}).compiled
    assert (by_name.kinds, by_name.purchase_kind, by_name.n_kinds) == (by_slot.kinds, True, 4)


def test_train_lists_the_kinds_a_share_of_users_used() -> None:
    model = load_model()
    users = [_user(model, TYPES[: 1 + i % 3], buys=i % 2 == 0) for i in range(6)]
    v = model.compiled.vocabulary
    assert product_kinds_used(users, model) == [*_kinds_of(TYPES, model), PURCHASE_KIND]
    # one user in more than 1/KIND_MIN_USERS is not enough to make a kind the product's
    rare = [UserState()] * int(1 / KIND_MIN_USERS) + [_user(model, ("view",))]
    assert product_kinds_used(rare, model) == list(f"kind{i}" for i in range(v.n_slots)), "none qualifies: every slot"
    assert product_kinds_used(rare[-2:] * 2, model) == [f"kind{v.lookup('view')[0]}"]
    assert Vocabulary(("view",)).n_slots == 1


def test_train_on_a_base_with_declared_kinds_writes_the_kinds_of_its_own_vocabulary() -> None:
    """The base's kinds name the base's slots; train picks tracked types and lists their kinds."""
    from streams.offline.simulate import generate
    from streams.offline.train import train

    events, truth = generate(5, 120, START_MS, 70)
    labels = {t.user_id: t.churned_at_ms for t in truth if t.churned_at_ms is not None}
    base = load_model().with_(population={KINDS_KEY: [*_kinds_of(TYPES, load_model()), "purchase"]})  # hashed kinds
    model = train(events, base=base, labels_ms=labels, l2=0.01, alert_share=None)[0]
    assert model.tracked_types and model.population[KINDS_KEY] == list(model.tracked_types)
