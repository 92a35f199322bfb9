"""The ``ignore`` role (models.vocabulary; QA pass 15 F1): events that name a user but are not use
of the product (a billing system's invoices under the billing contact's id) change nothing in the
user's state nor its alerts, wherever they fall in the history."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import EVENT_ORDER, Event
from models.model import ChurnModel
from models.vocabulary import IGNORE, Vocabulary
from tests.test_models_properties import DAY_MS, MODELS, histories

ROLES = {"ignore": ["invoice_paid", "subscription_renewed"]}


def _with_ignore(model: ChurnModel) -> ChurnModel:
    return replace(model, roles={**{k: list(v) for k, v in model.roles.items()}, **ROLES})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(max_events=30, span_days=90, renewals=True, members=True),
       st.lists(st.tuples(st.integers(-5 * DAY_MS, 120 * DAY_MS), st.sampled_from(sorted(ROLES["ignore"])), st.booleans()),
                min_size=1, max_size=8),
       st.integers(0, 60), st.sampled_from(MODELS))
def test_ignored_events_change_no_state_and_no_alert(events: list[Event], extra: list[tuple[int, str, bool]], days_after: int,
                                                     model: ChurnModel) -> None:
    model = _with_ignore(model)
    t0 = events[0].ts_ms
    ignored = [Event("u", max(1, t0 + dt), kind, f"i{i:03d}", 0.0, "acme" if account else "")
               for i, (dt, kind, account) in enumerate(extra)]
    until = max(e.ts_ms for e in events + ignored) + days_after * DAY_MS
    plain = advance("u", None, events, until, model)
    mixed = advance("u", None, sorted(events + ignored, key=EVENT_ORDER), until, model)
    assert mixed.state.to_bytes() == plain.state.to_bytes()
    assert [a.to_dict() for a in mixed.alerts] == [a.to_dict() for a in plain.alerts]


def test_a_user_with_only_ignored_events_has_no_activity() -> None:
    model = _with_ignore(ChurnModel())
    out = advance("u", None, [Event("u", 1_767_225_600_000, "invoice_paid", "i1")], 1_767_225_600_000 + DAY_MS, model)
    assert (out.state.n_events, out.state.active_days, out.alerts) == (0, 0, [])


def test_a_name_both_tracked_and_ignored_is_refused() -> None:
    assert Vocabulary((), ROLES).lookup("invoice_paid") == (-1, IGNORE)
    with pytest.raises(ValueError, match=r"roles.ignore names \['invoice_paid'\], which tracked_types tracks as use"):
        Vocabulary(("view", "invoice_paid"), ROLES)
