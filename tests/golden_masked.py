r"""Prove a golden-digest update changes only the fields meant to change (tests/test_models_golden.py).

Run from the root of each tree with that tree's venv, then compare::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked dump /tmp/old.json   # in the old tree
    PYTHONPATH=. .venv/bin/python -m tests.golden_masked dump /tmp/new.json   # in the new tree
    python3 -m tests.golden_masked compare /tmp/old.json /tmp/new.json action reasons

``compare`` prints, per golden run, whether the alerts and the scores are identical once the named
fields are masked, how many changed in each field, and whether the states are byte-identical;
it exits 1 if anything but the masked fields differs.

A change that moves alerts in time (an alert rule) changes whole users, not fields. ``users``
takes the users who, in the old dump, got an alert of the given kind in one of the given stages
(the alerts the rule targets) and proves that every *other* user's alerts, scores and state are
identical; for the targeted ones it counts the alerts removed and added by kind and stage, and
checks that none of the targeted alerts is left::

    python3 -m tests.golden_masked users /tmp/old.json /tmp/new.json recovered declining,dormant,churned

A stage written ``a>b`` takes the ``kind`` alerts from stage ``a`` to ``b`` (2026-12-05: a return
from dormant is "reactivated", no longer "declining", "active" or "new")::

    python3 -m tests.golden_masked users /tmp/old.json /tmp/new.json stage_changed 'dormant>declining,dormant>active,dormant>new'

``returns`` is that, allowing another user's score rows scored before their stored dormant state's
last review to say "reactivated" (the dump scores final states at fixed past times; run it with
the venv: it reads the states)::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked returns /tmp/old.json /tmp/new.json

A change to the lifecycle that removes a stage users passed through (QA pass 4: one-day users went
``new -> active -> declining`` within minutes) is proved on those passes: ``passes`` takes the users
whose old stage changes include ``a -> b`` directly followed by ``b -> c``, checks that each such pair
either is unchanged or became the one alert ``a -> c`` (the old ``b -> c`` alert with
``previous_stage`` ``a``, nothing else changed), that their other alerts, scores and states are
identical and that every other user is identical; it prints how many passes went and how long
their ``b`` stage had lasted, against the shortest one kept::

    python3 -m tests.golden_masked passes /tmp/old.json /tmp/new.json new,active,declining

A change aimed at the users whose cancellation stands (the temperature of a cancelled user, QA
2026-12) is proved on those rows alone: ``cancelled`` checks that every alert or score that
changed is one of a standing cancellation (a score whose signals say ``cancelled=True``; an alert
whose first reason is the cancellation), that only ``fields`` changed in them, and that the states
are byte-identical; it prints the new values of the first field and the reasons removed::

    python3 -m tests.golden_masked cancelled /tmp/old.json /tmp/new.json temperature reasons

A change to what one kind of stage change says (2026-12-03: ``new -> active`` alerts with nothing
to say got the fact that ended "new") is proved on those alerts alone: ``changes`` checks that every
alert that changed is a ``kind`` alert from stage ``a`` to ``b``, only in ``fields``, that no alert
came or went and that the scores and states are identical; it prints how many changed, how many
of them had no reasons before, and the reasons now shown in those::

    python3 -m tests.golden_masked changes /tmp/old.json /tmp/new.json stage_changed new,active reasons

``*`` for ``a`` takes the changes to ``b`` from any stage (2026-12-04: every change to declining
names the lifecycle's cause first): ``changes OLD NEW stage_changed '*,declining' reasons``.
``*`` for ``b`` too takes every alert of ``kind`` (QA20a F7, 2026-12-05: every ``recovered`` alert
says ``none``): ``changes OLD NEW recovered '*,*' action``.

A change to how a state is written, not to what it holds (2026-12-05: a flagged record is format 7
or 8, the flags in byte 2, no longer format 6) is proved on the records: ``recoded`` checks that
every alert and score is identical, that each user's new record reads (with the tree that runs it)
to the very state its old one does, that the records which changed are exactly those of the
``versions`` named (old format numbers) and prints how many changed and the bytes they lost::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked recoded /tmp/old.json /tmp/new.json 6

A change that stops giving one reason (QA6 M2: "uses 2 kinds of activity in 4 weeks" against the
user where the model does not know the product's kinds) is proved on the reasons themselves:
``dropped`` checks that every alert and score that changed had a reason matching ``pattern`` (a
regular expression), changed only in ``reasons``, has none matching it now, and lists the others
it had in their order (so nothing but that reason went; whatever was 4th moved up, or a fallback
took the empty place, before a stage's own story that always comes last); no alert came or went,
states byte-identical. It prints how many changed per kind and what took the place, numbers masked::

    python3 -m tests.golden_masked dropped /tmp/old.json /tmp/new.json '^uses \d+ kinds? of activity in 4 weeks$'

A change to the words of one reason is proved the same way: ``reworded`` checks that every alert
and score that changed differs only in ``reasons``, in reasons matching ``before`` that now match
``after``, at the same places, every other reason unchanged::

    python3 -m tests.golden_masked reworded /tmp/old.json /tmp/new.json '^active on a single day' '^a user for less than a day'

A change to how active days are counted (QA pass 10 F10: a visit across midnight UTC is one active
day) changes whole users: ``midnight`` takes the users of the golden histories with a visit that
crosses midnight UTC (an activity event on a later UTC day within the 30-minute session timeout of
the one before), proves that every other user's alerts, scores and state are identical, and counts
what changed for them (run it with the venv: it replays the histories to find those users)::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked midnight /tmp/old.json /tmp/new.json

A change to who an at-risk alert opens for among repeat buyers (QA12 F2, 2026-12-04: a buyer with a
re-order rhythm is at risk once the re-order is late, not before, and is not lapsed before) is proved
on those buyers from their third purchase day: ``reorder`` proves that every other user's alerts,
scores and state are identical and that the buyers' alerts before that day are, and prints what moved
and how many at-risk alerts now give the re-order reason first (run it with the venv: it replays
the histories)::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked reorder /tmp/old.json /tmp/new.json

A last argument takes the buyers from another purchase day: ``reorder OLD NEW 1`` from their first
(2026-12-05: every buyer's lapse gap is the interval their next order is due at)::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked reorder /tmp/old.json /tmp/new.json 1

A change that holds one kind of stage change back (QA10 F14: ``active -> declining`` told only once
it has lasted ``hold`` seconds, models.engine.STAGE_HOLD_DAYS) is proved against the old alerts
themselves: ``held`` derives the expected new ``stage_changed`` alerts from the old ones (a spell
that ended within the hold is not told, nor its return to ``a``, and the change that ended it
otherwise says ``previous_stage`` ``a``; a longer one is told at its start + ``hold``, the stage and
previous stage as before), checks that the new alerts are exactly those (the held ones matched on
user, stages and time; the rest whole), every other alert, every score and every state identical,
and prints the stage changes before and after by transition::

    python3 -m tests.golden_masked held /tmp/old.json /tmp/new.json active,declining 172800

A change to when an at-risk alert may open for some users (QA12: a repeat buyer's order is due at
the longer of their own mean interval and the shrunk estimate; no at-risk alert opens while a user
is "reactivated", just back from churned) is proved on those users from the moment the rule can
first act for them: ``opens`` takes the users of the golden histories whose own mean interval
between purchase days exceeds the model's ``purchase_gap_days`` prior at some purchase (from then
on the due time moves) and the users with an old ``stage_changed`` alert to ``reactivated`` (from
the first), proves that every other user's alerts, scores and state are identical and that each
targeted user's alerts before that moment are identical; it counts the at-risk alerts removed that
the rules forbid (before the own mean interval, in stage reactivated), the other alerts that moved
after the moment (the state went another way from there), and checks that no new at-risk alert
breaks either rule (run it with the venv: it replays the histories' purchases)::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked opens /tmp/old.json /tmp/new.json
A change to the recommended action of a repeat buyer on schedule (QA12 F7: one whose next order
is not overdue by their own rhythm both uses and pays, models.actions ``on_schedule``) is proved on
the rows themselves: ``actions`` checks that the alerts and scores are identical with ``action``
masked (the same alert ids, times, scores, stages, risks, reasons) and the states byte-identical,
and that every row whose action changed is of a repeat buyer on schedule at its time (a score
from its signals; an alert from the history's purchases, models.signals.order_due_s's rule
replayed), now ``none`` or ``check_in``; it prints the changes by old -> new action and kind
(run it with the venv: it replays the histories' purchases)::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked actions /tmp/old.json /tmp/new.json
A change to how long a churned user's state is kept (QA17 F1, 2026-12-04: a customer, a purchase
on record, kept ``customer_retention_days`` after the churn is reported instead of
``retention_days``) changes no alert and no score in histories shorter than the retention; it
moves the one review left of a churned customer, its expiry (``next_review_s``): ``retention``
checks that the alerts and scores are identical, that each state that changed is a churned
user's with a purchase, differing only in ``next_review_s``, now ``stage_since_s`` + ``days``
(its old one ``stage_since_s`` + the old retention) and that every other state is byte-identical::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked retention /tmp/old.json /tmp/new.json 400

A change to what the alerts for the better say (QA19 F6, 2026-12-05: a recovered alert never gives
the tenure, and says first that the user's activity is back at their own baseline) is proved on
those alerts alone: ``better`` checks that every row that changed is a ``recovered`` alert or a
stage change to active or reactivated, only in ``reasons``, that reasons matching ``gone`` went and
only reasons matching ``added`` came, the others in their order (one list a prefix of the other: a
reason added takes the last place shown, one gone lets the next in), no alert came or went, scores
and states identical::

    python3 -m tests.golden_masked better /tmp/old.json /tmp/new.json '^active over \d+ days? \(first' '^activity back at the user.s usual level'

A change to when an at-risk alert closes (QA19 F6: only once the user has come back,
models.engine._came_back: their activity back at their own level and the risk still at the exit
line after their usual interval in silence) is proved on the alerts it holds back: ``comeback``
replays the golden histories with ``_came_back`` answering yes (the rule before) and notes where
its real answer is no; it takes the users with an old ``recovered`` alert at such a moment, proves
that every other user's alerts, scores and state are identical and that each targeted user's
alerts before that alert are, that every new ``recovered`` alert says ``fact``, and prints what
moved (run it with the venv: it replays the histories; OLD a dump that already says the fact,
``better`` above)::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked comeback /tmp/old.json /tmp/new.json '^activity back at the user.s usual level'
"""

from __future__ import annotations

import collections
import json
import re
import sys
from typing import Any, Iterator

__all__ = ["actions", "better", "cancelled", "changes", "comeback", "compare", "dropped", "dump", "held", "midnight", "midnight_users", "opens", "passes",
           "reorder", "retention", "returns", "reworded", "users"]


def dump(path: str) -> None:
    """The golden replays' alerts, scores (every field but the signals' repr as JSON) and states."""
    from models.model import ChurnModel, load_model
    from models.scoring import score
    from tests.test_models_golden import AS_OF_MS, SEEDS, histories, replay_all_at_once, replay_batched

    def run(states: dict, alerts: list, model: ChurnModel) -> dict[str, object]:
        scored = []
        for u in sorted(states):
            for t in AS_OF_MS:
                s = score(states[u], t // 1000, model)
                scored.append(json.dumps({"u": u, "t": t, "health": s.health, "temperature": s.temperature, "risk": s.risk,
                                          "stage": s.stage, "segment": s.segment, "signals": repr(s.signals),
                                          "action": s.action, "reasons": list(s.reasons)}, sort_keys=True))
        return {"alerts": sorted(json.dumps(a, sort_keys=True) for a in alerts), "scores": scored,
                "states": {u: states[u].to_bytes().hex() for u in states}}

    model = load_model()
    out = {}
    for seed in SEEDS:
        per_user = histories(seed)
        out[f"seed{seed}/batched"] = run(*replay_batched(per_user, model), model)
        out[f"seed{seed}/all_at_once"] = run(*replay_all_at_once(per_user, model), model)
        if seed == SEEDS[0]:
            prior = ChurnModel()
            out[f"seed{seed}/prior_model"] = run(*replay_all_at_once(per_user, prior), prior)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f)


def _dumps(old_path: str, new_path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two dumps a comparison reads (``dump``'s JSON files)."""
    with open(old_path, encoding="utf-8") as f:
        old = json.load(f)
    with open(new_path, encoding="utf-8") as f:
        new = json.load(f)
    return old, new


Rows = dict[tuple[object, ...], dict[str, Any]]  # a part's rows by their identity (``_parts``)


def _parts(old: dict[str, Any], new: dict[str, Any]) -> Iterator[tuple[str, str, Rows, Rows, bool, bool]]:
    """Per golden run and part, what the row-by-row checks (``cancelled``, ``dropped``,
    ``reworded``) compare: ``(run, part, old rows, new rows, rows_ok, states_ok)``, the alerts by
    ``alert_id`` and the scores by user and time; ``rows_ok``: the same rows, none come, gone or
    twice; ``states_ok``: the run's states byte-identical, printed after its parts."""
    for key in old:
        same_states = old[key]["states"] == new[key]["states"]
        for part, ident in (("alerts", ("alert_id",)), ("scores", ("u", "t"))):
            o = {tuple(d[k] for k in ident): d for d in map(json.loads, old[key][part])}
            n = {tuple(d[k] for k in ident): d for d in map(json.loads, new[key][part])}
            rows_ok = sorted(o) == sorted(n) and len(o) == len(old[key][part]) and len(n) == len(new[key][part])
            yield key, part, o, n, rows_ok, same_states
        print(f"{key} states byte-identical: {same_states}")


def compare(old_path: str, new_path: str, masked: tuple[str, ...]) -> bool:
    """True when the two dumps differ in the ``masked`` fields only (printing what changed)."""
    old, new = _dumps(old_path, new_path)
    ok = True

    def keyed(rows: list[str]) -> dict[str, dict[str, object]]:
        out = {}
        for r in rows:
            d = json.loads(r)
            out[json.dumps({k: v for k, v in d.items() if k not in masked}, sort_keys=True)] = d
        return out

    for key in old:
        same_states = old[key]["states"] == new[key]["states"]
        ok &= same_states
        for part in ("alerts", "scores"):
            o, n = keyed(old[key][part]), keyed(new[key][part])
            same = sorted(o) == sorted(n) and len(old[key][part]) == len(new[key][part])
            ok &= same
            changed = collections.Counter(f for k in o if k in n for f in masked if o[k][f] != n[k][f])
            print(f"{key} {part}: {len(o)} rows, identical with {'+'.join(masked)} masked: {same}; changed: {dict(changed)}")
        print(f"{key} states byte-identical: {same_states}")
    return ok


def recoded(old_path: str, new_path: str, versions: tuple[int, ...]) -> bool:
    """True when only the records of old format ``versions`` changed, each to one that reads to the
    same state (module docstring), every alert and score identical."""
    from models.state import UserState

    old, new = _dumps(old_path, new_path)
    ok = True
    for key in old:
        same_rows = all(old[key][part] == new[key][part] for part in ("alerts", "scores"))
        o, n = old[key]["states"], new[key]["states"]
        changed = [u for u in o if o[u] != n.get(u)]
        wrong = [u for u in changed if u not in n or bytes.fromhex(o[u])[0] not in versions
                 or UserState.from_bytes(bytes.fromhex(o[u])) != UserState.from_bytes(bytes.fromhex(n[u]))]
        saved = collections.Counter(len(o[u]) // 2 - len(n[u]) // 2 for u in changed if u not in wrong)
        ok &= same_rows and not wrong and sorted(o) == sorted(n)
        print(f"{key}: alerts and scores identical: {same_rows}; {len(changed)} of {len(o)} records changed, "
              f"all of format {'/'.join(map(str, versions))} reading to the same state: {not wrong}; bytes saved: {dict(saved)}")
    return ok


def by_user(rows: list[str]) -> dict[str, list[str]]:
    """A dump's JSON rows per user (``user_id``, or ``u`` in score rows), each re-spelt with sorted keys."""
    out: dict[str, list[str]] = collections.defaultdict(list)
    for r in rows:
        d = json.loads(r)
        out[str(d.get("user_id", d.get("u")))].append(json.dumps(d, sort_keys=True))
    return out


def users(old_path: str, new_path: str, kind: str, stages: tuple[str, ...], scores_may=None) -> bool:  # type: ignore[no-untyped-def]
    """True when only the users with an old ``kind`` alert in one of ``stages`` changed, and no such
    alert is left (printing what moved for them). ``scores_may(user, old run, new run, old score
    rows, new score rows)``: whether another user whose alerts are identical may differ in scores
    (:func:`returns`)."""
    old, new = _dumps(old_path, new_path)
    ok = True

    def hit(row: str) -> bool:  # a stage "a>b": a change from a to b (previous_stage a)
        d = json.loads(row)
        return d["kind"] == kind and any(d["stage"] == s if ">" not in s else f"{d.get('previous_stage')}>{d['stage']}" == s
                                         for s in stages)

    for key in old:
        o, n = old[key], new[key]
        oa, na, os_, ns = by_user(o["alerts"]), by_user(n["alerts"]), by_user(o["scores"]), by_user(n["scores"])
        everyone = set(o["states"]) | set(n["states"])
        targeted = {u for u, rows in oa.items() if any(hit(r) for r in rows)}
        differ = [u for u in everyone - targeted
                  if oa.get(u) != na.get(u) or os_.get(u) != ns.get(u) or o["states"].get(u) != n["states"].get(u)]
        allowed = [u for u in differ if scores_may and oa.get(u) == na.get(u) and scores_may(u, o, n, os_.get(u, []), ns.get(u, []))]
        others = [u for u in differ if u not in allowed]
        left = sum(hit(r) for rows in na.values() for r in rows)
        ok &= not others and not left
        moved: collections.Counter[str] = collections.Counter()
        for u in targeted:
            before, after = set(oa[u]), set(na.get(u, ()))
            for sign, rows in (("-", before - after), ("+", after - before)):
                for r in rows:
                    d = json.loads(r)
                    moved[f"{sign}{d['kind']}/{d['stage']}"] += 1
        changed = {part: sum((src.get(u) != dst.get(u)) for u in targeted)
                   for part, src, dst in (("alerts", oa, na), ("scores", os_, ns), ("states", o["states"], n["states"]))}
        print(f"{key}: {len(everyone)} users, {len(targeted)} with a {kind} alert in {'/'.join(stages)} "
              f"({sum(hit(r) for rows in oa.values() for r in rows)} such alerts before, {left} after); "
              f"every other user identical (alerts, scores, state): {not others} ({len(others)} differ"
              f"{f', {len(allowed)} more in scores only as allowed' if allowed else ''}); "
              f"alerts {len(o['alerts'])} -> {len(n['alerts'])}; targeted users changed: {changed}; "
              f"moved: {', '.join(f'{k} {v}' for k, v in sorted(moved.items()))}")
    return ok


def returns(old_path: str, new_path: str) -> bool:
    """A return from dormant made "reactivated" (models.lifecycle rule 3, 2026-12-05): ``users``
    on the ``dormant>declining/active/new`` stage changes, except that a user it does not target
    may differ in score rows scored at an as-of time before their final state's last review whose
    stored stage is dormant (the dump scores final states at fixed past times, where the silence is
    shorter than the stored stage's: the stage is now found "reactivated", as for a stored churned
    state), in their stage, reasons, action and segment only; alerts and states identical."""
    from models.state import STAGES, UserState

    def scored_before(u: str, o: dict[str, Any], n: dict[str, Any], os_: list[str], ns: list[str]) -> bool:
        st = UserState.from_bytes(bytes.fromhex(o["states"][u]))
        if o["states"][u] != n["states"].get(u) or len(os_) != len(ns) or STAGES[st.stage] != "dormant":
            return False
        for x, y in zip(os_, ns):
            dx, dy = json.loads(x), json.loads(y)
            if x != y and not (dx["t"] // 1000 < st.last_review_s and dy["stage"] == "reactivated"
                               and {f for f in dx if dx[f] != dy.get(f)} <= {"stage", "reasons", "action", "segment"}):
                return False
        return True

    return users(old_path, new_path, "stage_changed", ("dormant>declining", "dormant>active", "dormant>new"), scored_before)


def _stage_passes(rows: list[str], a: str, b: str, c: str) -> list[tuple[str, str]]:
    """The ``(a -> b, b -> c)`` stage-change pairs among one user's alerts (JSON rows), the second
    directly after the first among the user's stage changes."""
    changes = sorted((d for d in map(json.loads, rows) if d["kind"] == "stage_changed"), key=lambda d: d["event_time_ms"])
    return [(json.dumps(x, sort_keys=True), json.dumps(y, sort_keys=True)) for x, y in zip(changes, changes[1:])
            if (x["previous_stage"], x["stage"], y["previous_stage"], y["stage"]) == (a, b, b, c)]


def passes(old_path: str, new_path: str, a: str, b: str, c: str) -> bool:
    """True when the only change is some old ``a -> b -> c`` passes becoming one ``a -> c`` alert
    each (printing how many, and how long the ``b`` stage of the removed and of the kept ones lasted)."""
    old, new = _dumps(old_path, new_path)
    ok = True

    def hours(x: str, y: str) -> float:
        return (json.loads(y)["event_time_ms"] - json.loads(x)["event_time_ms"]) / 3_600_000

    for key in old:
        o, n = old[key], new[key]
        oa, na, os_, ns = by_user(o["alerts"]), by_user(n["alerts"]), by_user(o["scores"]), by_user(n["scores"])
        everyone = set(o["states"]) | set(n["states"])
        pairs = {u: _stage_passes(rows, a, b, c) for u, rows in oa.items()}
        targeted = {u for u, p in pairs.items() if p}
        others = [u for u in everyone - targeted
                  if oa.get(u) != na.get(u) or os_.get(u) != ns.get(u) or o["states"].get(u) != n["states"].get(u)]
        wrong, removed, kept = [], [], []
        for u in targeted:
            now_rows, expected = set(na.get(u, ())), set(oa[u])
            for x, y in pairs[u]:
                merged = json.dumps({**json.loads(y), "previous_stage": a}, sort_keys=True)
                if x not in now_rows and y not in now_rows and merged in now_rows:
                    expected = (expected - {x, y}) | {merged}
                    removed.append(hours(x, y))
                else:
                    kept.append(hours(x, y))
            if expected != now_rows or len(na.get(u, ())) != len(expected) or os_.get(u) != ns.get(u) \
                    or o["states"].get(u) != n["states"].get(u):
                wrong.append(u)
        ok &= not others and not wrong
        print(f"{key}: {len(everyone)} users, {len(targeted)} with {len(removed) + len(kept)} {a} -> {b} -> {c} passes; "
              f"{len(removed)} became one {a} -> {c} alert ({b} had lasted at most {max(removed, default=0):.2f} h), "
              f"{len(kept)} kept ({b} lasting at least {min(kept, default=0):.2f} h); anything else changed for "
              f"{len(wrong)} of them; every other user identical (alerts, scores, state): {not others} "
              f"({len(others)} differ); alerts {len(o['alerts'])} -> {len(n['alerts'])}")
    return ok


def cancelled(old_path: str, new_path: str, fields: tuple[str, ...]) -> bool:
    """True when only rows of a standing cancellation changed, and only in ``fields`` (printing what moved)."""
    old, new = _dumps(old_path, new_path)
    ok = True

    def is_cancelled(part: str, d: dict[str, object]) -> bool:
        if part == "scores":
            return "cancelled=True" in str(d["signals"])
        reasons = d["reasons"]
        return bool(reasons) and str(reasons[0]).startswith("cancelled ")  # type: ignore[index]

    for key, part, o, n, rows_ok, same_states in _parts(old, new):
        changed = [(o[k], n[k]) for k in o if k in n and o[k] != n[k]]
        targeted = sum(is_cancelled(part, d) for d in o.values())
        outside = sum(not is_cancelled(part, a) for a, _ in changed)
        other = collections.Counter(f for a, b in changed for f in a if f not in fields and a[f] != b[f])
        ok &= same_states and rows_ok and not outside and not other
        values = collections.Counter(b[fields[0]] for a, b in changed)
        removed = collections.Counter(str(r).split(":")[0] for a, b in changed for r in a["reasons"] if r not in b["reasons"])
        print(f"{key} {part}: {len(o)} rows, {targeted} of a standing cancellation; changed {len(changed)}, "
              f"outside them {outside}, in other fields than {'+'.join(fields)}: {dict(other)}; new {fields[0]}: "
              f"{dict(values)}; reasons removed: {dict(removed)}")
    return ok


def changes(old_path: str, new_path: str, kind: str, a: str, b: str, fields: tuple[str, ...]) -> bool:
    """True when only ``kind`` alerts from stage ``a`` (``*``: any) to ``b`` changed, only in ``fields``, and the
    scores and states are identical (printing how many changed and what they say now)."""
    old, new = _dumps(old_path, new_path)
    ok = True
    for key in old:
        o = {d["alert_id"]: d for d in map(json.loads, old[key]["alerts"])}
        n = {d["alert_id"]: d for d in map(json.loads, new[key]["alerts"])}
        same_rest = (sorted(o) == sorted(n) and len(o) == len(old[key]["alerts"]) == len(new[key]["alerts"])
                     and old[key]["scores"] == new[key]["scores"] and old[key]["states"] == new[key]["states"])
        changed = [(o[k], n[k]) for k in o if k in n and o[k] != n[k]]
        def aimed(d: dict[str, Any]) -> bool:
            return d["kind"] == kind and a in ("*", d["previous_stage"]) and b in ("*", d["stage"])

        targeted = [d for d in o.values() if aimed(d)]
        outside = sum(not aimed(x) for x, _ in changed)
        other = collections.Counter(f for x, y in changed for f in x if f not in fields and x[f] != y[f])
        ok &= same_rest and not outside and not other
        was_empty = sum(not x["reasons"] for x, _ in changed)
        now = collections.Counter(" | ".join(re.sub(r"\d+", "N", str(r)) for r in y["reasons"]) for _, y in changed)
        print(f"{key}: {len(o)} alerts, {len(targeted)} {kind} {a} -> {b}; changed {len(changed)} ({was_empty} had no "
              f"reasons before), outside them {outside}, in other fields than {'+'.join(fields)}: {dict(other)}; "
              f"same alert ids, scores and states: {same_rest}; now saying: {dict(now)}")
    return ok


def dropped(old_path: str, new_path: str, pattern: str) -> bool:
    """True when only rows that had a reason matching ``pattern`` changed, only in ``reasons``, each
    without it now and with its other reasons first, in their order (printing what took the place)."""
    old, new = _dumps(old_path, new_path)
    rx = re.compile(pattern)
    ok = True
    for key, part, o, n, rows_ok, same_states in _parts(old, new):
        had = {k for k, d in o.items() if any(rx.search(str(r)) for r in d["reasons"])}
        changed = [k for k in o if k in n and o[k] != n[k]]
        wrong = inserted = 0
        took: collections.Counter[str] = collections.Counter()
        per_kind: collections.Counter[str] = collections.Counter()
        for k in changed:
            a, b = o[k], n[k]
            kept = [r for r in a["reasons"] if not rx.search(str(r))]
            other = [f for f in a if f != "reasons" and a[f] != b[f]]
            if k not in had or other or any(rx.search(str(r)) for r in b["reasons"]) \
                    or [r for r in b["reasons"] if r in kept] != kept:
                wrong += 1
                continue
            per_kind[str(a.get("kind", "score"))] += 1
            inserted += b["reasons"][:len(kept)] != kept
            for r in [r for r in b["reasons"] if r not in kept] or ["(nothing)"]:
                took[re.sub(r"\d+(\.\d+)?", "N", str(r))] += 1
        left = sum(any(rx.search(str(r)) for r in d["reasons"]) for d in n.values())
        ok &= same_states and rows_ok and not wrong and not left
        print(f"{key} {part}: {len(o)} rows, {len(had)} with the reason; changed {len(changed)} {dict(per_kind)}, "
              f"otherwise {wrong}; a reason put before a kept one {inserted}; left {left}; rows identical: {rows_ok}; in its place: {dict(took.most_common())}")
    return ok


def reworded(old_path: str, new_path: str, before: str, after: str) -> bool:
    """True when the only change is reasons matching ``before`` now matching ``after``, in place."""
    old, new = _dumps(old_path, new_path)
    rb, ra = re.compile(before), re.compile(after)
    ok = True
    for key, part, o, n, rows_ok, same_states in _parts(old, new):
        changed = [(o[k], n[k]) for k in o if k in n and o[k] != n[k]]
        wrong = 0
        kinds: collections.Counter[str] = collections.Counter()
        now: collections.Counter[str] = collections.Counter()
        for a, b in changed:
            moved = [(x, y) for x, y in zip(a["reasons"], b["reasons"]) if x != y]
            if any(f != "reasons" and a[f] != b[f] for f in a) or len(a["reasons"]) != len(b["reasons"]) \
                    or not all(rb.search(str(x)) and ra.search(str(y)) for x, y in moved):
                wrong += 1
            kinds[str(a.get("kind", "score"))] += 1
            now.update(re.sub(r"\d+", "N", str(y)) for _, y in moved)
        ok &= same_states and rows_ok and not wrong
        print(f"{key} {part}: {len(o)} rows; changed {len(changed)} {dict(kinds)}, otherwise {wrong}; "
              f"rows identical: {rows_ok}; now saying: {dict(now)}")
    return ok


def midnight_users(seed: int) -> tuple[set[str], dict[str, int]]:
    """The golden histories' users whose visits cross midnight UTC (an activity event on a later
    UTC day than the user's previous one, within models.state.SESSION_S of it: the only users
    whose active days the visit-day rule can change), and how many such crossings each has."""
    from models.model import load_model
    from models.state import DAY_S, SESSION_S
    from models.vocabulary import CANCEL, SUBSCRIPTION
    from tests.test_models_golden import histories

    vocabulary = load_model().compiled.vocabulary
    crossings: dict[str, int] = {}
    for user, evs in histories(seed).items():
        last = -1
        for ev in evs:
            if vocabulary.lookup(ev.type)[1] in (CANCEL, SUBSCRIPTION):
                continue
            ts = ev.ts_ms // 1000
            if last >= 0 and ts // DAY_S > last // DAY_S and ts - last <= SESSION_S:
                crossings[user] = crossings.get(user, 0) + 1
            last = max(last, ts)
    return set(crossings), crossings


def midnight(old_path: str, new_path: str) -> bool:
    """True when only the users whose visits cross midnight UTC (:func:`midnight_users`) changed
    (printing how many of them changed in alerts, scores and state, and the alerts moved by kind)."""
    old, new = _dumps(old_path, new_path)
    ok = True
    for key in old:
        targeted, crossings = midnight_users(int(key.split("/")[0][len("seed"):]))
        o, n = old[key], new[key]
        oa, na, os_, ns = by_user(o["alerts"]), by_user(n["alerts"]), by_user(o["scores"]), by_user(n["scores"])
        everyone = set(o["states"]) | set(n["states"])
        others = [u for u in everyone - targeted
                  if oa.get(u) != na.get(u) or os_.get(u) != ns.get(u) or o["states"].get(u) != n["states"].get(u)]
        ok &= not others
        moved: collections.Counter[str] = collections.Counter()
        for u in targeted:
            before, after = collections.Counter(oa.get(u, ())), collections.Counter(na.get(u, ()))
            for sign, rows in (("-", before - after), ("+", after - before)):
                for r in rows.elements():
                    d = json.loads(r)
                    moved[f"{sign}{d['kind']}"] += 1
        changed = {part: sum((src.get(u) != dst.get(u)) for u in targeted)
                   for part, src, dst in (("alerts", oa, na), ("scores", os_, ns), ("states", o["states"], n["states"]))}
        score_rows = sum(a != b for u in targeted for a, b in zip(os_.get(u, ()), ns.get(u, ())))
        print(f"{key}: {len(everyone)} users, {len(targeted)} with a visit across midnight UTC "
              f"({sum(crossings.values())} crossings); every other user identical (alerts, scores, state): "
              f"{not others} ({len(others)} differ); alerts {len(o['alerts'])} -> {len(n['alerts'])}; "
              f"those users changed: {changed}, score rows changed {score_rows}; "
              f"alerts moved: {', '.join(f'{k} {v}' for k, v in sorted(moved.items()))}")
    return ok


def _same(d: dict[str, Any], e: dict[str, Any], previous: str | None = None) -> bool:
    """``e`` is ``d`` (with ``previous_stage`` ``previous`` where given)."""
    return e == (d if previous is None else {**d, "previous_stage": previous})


def _walk_held(old: list[dict[str, Any]], new: list[dict[str, Any]], a: str, b: str, hold_ms: int,
               tally: collections.Counter[str], late: list[float]) -> bool:
    """Whether one user's new ``stage_changed`` alerts are the old ones (both in time order) with
    each ``a -> b`` held ``hold_ms`` (module docstring, ``held``), counting in ``tally`` how each
    ended and in ``late`` the days each told after its hold's end waited."""
    i = k = 0
    while i < len(old):
        d = old[i]
        if (d["previous_stage"], d["stage"]) != (a, b):
            if k == len(new) or not _same(d, new[k]):
                return False
            i, k = i + 1, k + 1
            continue
        end = d["event_time_ms"] + hold_ms
        nxt = old[i + 1] if i + 1 < len(old) else None
        e = new[k] if k < len(new) else None
        if (nxt is None or nxt["event_time_ms"] >= end) and e is not None and (e["previous_stage"], e["stage"]) == (a, b) \
                and end <= e["event_time_ms"] and (nxt is None or e["event_time_ms"] < nxt["event_time_ms"]):
            tally["told at the hold's end" if e["event_time_ms"] == end else "told at the first review past it"] += 1
            if e["event_time_ms"] > end:
                late.append((e["event_time_ms"] - end) / 86_400_000)
            i, k = i + 1, k + 1
            continue
        if nxt is None:  # a held change never told: only while the replay's last hold had not ended
            tally["held when the replay ended"] += 1
            i += 1
            continue
        tally["not told: back within the hold" if nxt["event_time_ms"] < end else "not told: back at the first review past it"] += 1
        if nxt["stage"] != a:  # the change that ended the hold, told as one from `a`
            if k == len(new) or not _same(nxt, new[k], a):
                return False
            k += 1
        i += 2
    return k == len(new)


def held(old_path: str, new_path: str, a: str, b: str, hold_ms: int) -> bool:
    """True when the new dump is the old one with its ``a -> b`` stage changes held ``hold_ms``
    and nothing else changed (printing the changes by transition and how each held one ended).

    Each old ``a -> b`` change is told at its start + ``hold_ms``, or, where the user had visits
    since their last review, at the first review past that which still finds them in ``b``
    (models.engine._hold_ends_s), the stages as before; or not at all when the next change came
    first (before the hold's end, or at that review), nor that next change if it is back to ``a``
    (else it is told with ``previous_stage`` ``a``). Every other alert, every score and every state
    identical, but a state may carry the hold's flag (models.state.STAGE_HELD) when its hold had
    not ended when the replay did."""
    from models.state import STAGE_HELD, STAGES, UserState

    old, new = _dumps(old_path, new_path)
    ok = True
    for key in old:
        o, n = old[key], new[key]
        oa = [json.loads(r) for r in o["alerts"]]
        na = [json.loads(r) for r in n["alerts"]]
        same_rest = sorted(json.dumps(d, sort_keys=True) for d in oa if d["kind"] != "stage_changed") == sorted(
            json.dumps(d, sort_keys=True) for d in na if d["kind"] != "stage_changed")
        old_sc: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        new_sc: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for src, dst in ((oa, old_sc), (na, new_sc)):
            for d in sorted(src, key=lambda d: (d["event_time_ms"], d["alert_id"])):
                if d["kind"] == "stage_changed":
                    dst[d["user_id"]].append({k: v for k, v in d.items() if k != "alert_id" or d["stage"] != b})
        tally: collections.Counter[str] = collections.Counter()
        late: list[float] = []
        bad = sum(not _walk_held(old_sc.get(u, []), new_sc.get(u, []), a, b, hold_ms, tally, late)
                  for u in set(old_sc) | set(new_sc))
        states_ok = set(o["states"]) == set(n["states"])
        for u, raw in o["states"].items():
            if n["states"].get(u, raw) != raw:
                st = UserState.from_bytes(bytes.fromhex(n["states"][u]))
                held_at_end = st.flags & STAGE_HELD and STAGES[st.stage] == b
                st.flags &= ~STAGE_HELD
                states_ok &= bool(held_at_end) and st.to_bytes().hex() == raw
        same_scores = o["scores"] == n["scores"]
        ok &= same_rest and same_scores and states_ok and not bad
        before = collections.Counter(f"{d['previous_stage']}->{d['stage']}" for rows in old_sc.values() for d in rows)
        after = collections.Counter(f"{d['previous_stage']}->{d['stage']}" for rows in new_sc.values() for d in rows)
        waited = f" (waited {min(late):.2f}-{max(late):.2f} d, median {sorted(late)[len(late) // 2]:.2f})" if late else ""
        print(f"{key}: stage_changed {sum(before.values())} -> {sum(after.values())}; users not as described: {bad}; "
              f"other alerts identical: {same_rest}, scores identical: {same_scores}, states identical but for holds "
              f"not ended: {states_ok}")
        print(f"   {a}->{b} {before[f'{a}->{b}']}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())) + waited)
        print("   by transition: " + ", ".join(f"{k} {before[k]}->{after[k]}" for k in sorted(before | after)))
    return ok


def _purchase_days(seed: int) -> tuple[dict[str, list[int]], float]:
    """Per user of the golden histories, the seconds of their purchases in event order, and the
    model's prior interval between purchases in days (models.signals ``purchase_gap_days``)."""
    from models.model import load_model
    from models.vocabulary import PURCHASE
    from tests.test_models_golden import histories

    c = load_model().compiled
    out: dict[str, list[int]] = {}
    for user, evs in histories(seed).items():
        out[user] = [ev.ts_ms // 1000 for ev in evs if c.vocabulary.lookup(ev.type)[1] == PURCHASE]
    return out, c.purchase_gap_days


def _own_interval(purchases: list[int], t_s: int) -> tuple[float, int]:
    """(own mean interval in days, last purchase second) of the purchases up to ``t_s``, as
    models.state.purchase_summary counts them in event order (distinct UTC days); (0, 0) under two days."""
    from models.state import DAY_S

    p = [x for x in purchases if x <= t_s]
    days = len({x // DAY_S for x in p})
    if days < 2:
        return 0.0, 0
    return (max(p) - p[0]) / DAY_S / (days - 1), max(p)


def opens(old_path: str, new_path: str) -> bool:
    """True when only the users an at-risk opening rule of QA12 can touch changed, each only from
    the moment it can first act for them, and no new at-risk alert breaks the rules (module
    docstring, ``opens``; printing what moved)."""
    old, new = _dumps(old_path, new_path)
    ok = True
    for key in old:
        seed = int(key.split("/")[0][len("seed"):])
        purchases, prior = _purchase_days(seed)
        o, n = old[key], new[key]
        oa, na, os_, ns = by_user(o["alerts"]), by_user(n["alerts"]), by_user(o["scores"]), by_user(n["scores"])
        start: dict[str, int] = {}  # user -> first second the rules can act (ms)
        for u, ps in purchases.items():
            for t in ps:
                own, _ = _own_interval(ps, t)
                if own > prior:
                    start[u] = t * 1000
                    break
        for u, rows in oa.items():
            first = min((json.loads(r)["event_time_ms"] for r in rows if json.loads(r)["stage"] == "reactivated"
                         and json.loads(r)["kind"] == "stage_changed"), default=None)
            if first is not None:
                start[u] = min(start.get(u, first), first)
        everyone = set(o["states"]) | set(n["states"])
        others = [u for u in everyone - set(start)
                  if oa.get(u) != na.get(u) or os_.get(u) != ns.get(u) or o["states"].get(u) != n["states"].get(u)]

        def early(u: str, d: dict[str, Any]) -> str:
            """Which rule the at-risk alert ``d`` breaks ("" none)."""
            t = d["event_time_ms"] // 1000
            own, last = _own_interval(purchases.get(u, []), t)
            if own > 0 and t - last < own * 86400:
                return "order not due"
            if d["stage"] == "reactivated":
                return "just back from churned"
            return ""

        before_differs, removed, moved, broken = [], collections.Counter(), collections.Counter(), collections.Counter()
        for u, t0 in start.items():
            old_rows = {r for r in oa.get(u, ()) if json.loads(r)["event_time_ms"] < t0}
            new_rows = {r for r in na.get(u, ()) if json.loads(r)["event_time_ms"] < t0}
            if old_rows != new_rows:
                before_differs.append(u)
            gone, came = set(oa.get(u, ())) - set(na.get(u, ())), set(na.get(u, ())) - set(oa.get(u, ()))
            for r in gone:
                d = json.loads(r)
                why = early(u, d) if d["kind"] == "at_risk" else ""
                if why:
                    removed[why] += 1
                else:
                    moved[f"-{d['kind']}"] += 1
            for r in came:
                d = json.loads(r)
                moved[f"+{d['kind']}"] += 1
            for r in na.get(u, ()):
                d = json.loads(r)
                if d["kind"] == "at_risk" and early(u, d):
                    broken[early(u, d)] += 1
        ok &= not others and not before_differs and not broken
        changed = {part: sum((src.get(u) != dst.get(u)) for u in start)
                   for part, src, dst in (("alerts", oa, na), ("scores", os_, ns), ("states", o["states"], n["states"]))}
        old_broken = collections.Counter(early(u, json.loads(r)) for u, rows in oa.items() for r in rows
                                         if json.loads(r)["kind"] == "at_risk" and early(u, json.loads(r)))
        print(f"{key}: {len(everyone)} users, {len(start)} the rules can touch; every other user identical (alerts, "
              f"scores, state): {not others} ({len(others)} differ); their alerts before the rules can act identical: "
              f"{not before_differs} ({len(before_differs)} differ); alerts {len(o['alerts'])} -> {len(n['alerts'])}; "
              f"at-risk alerts the rules forbid, old: {dict(old_broken)}, removed: {dict(removed)}, left: {dict(broken)}; "
              f"other alerts moved after the rules acted: {dict(sorted(moved.items()))}; targeted users changed: {changed}")
    return ok


def _on_schedule(purchases: list[int], prior: float, t_s: int) -> bool:
    """Whether a user with purchases at ``purchases`` (seconds, event order) is a repeat buyer whose
    next order is not overdue at ``t_s``: models.signals.order_due_s's rule on models.state's
    purchase summary, replayed from the history."""
    from models.state import DAY_S

    p = [x for x in purchases if x <= t_s]
    if not p:
        return False
    first, last = p[0], max(p)
    x = min(len(p) - 1, last // DAY_S - first // DAY_S)
    if x < 1:
        return False
    t_x = (last - first) / DAY_S
    due = max(t_x / x, (t_x + prior) / (x + 1), 1.0)
    return (t_s - last) / DAY_S < due


def _signals_on_schedule(signals: str) -> bool:
    """The same from a score's ``repr`` of its signals (purchase_x, purchase_t_x, silence, gap)."""
    v = {k: float(x) for k, x in re.findall(r"(purchase_x|purchase_t_x|purchase_silence_days|purchase_gap_days)=([-0-9.e+]+)", signals)}
    if v["purchase_x"] < 1:
        return False
    return v["purchase_silence_days"] < max(v["purchase_t_x"] / v["purchase_x"], v["purchase_gap_days"])


def actions(old_path: str, new_path: str) -> bool:
    """True when only ``action`` changed, and only in rows of a repeat buyer on schedule, now
    ``none`` or ``check_in`` (module docstring, ``actions``; printing what changed)."""
    old, new = _dumps(old_path, new_path)
    ok = True
    purchases: dict[int, tuple[dict[str, list[int]], float]] = {}
    for key, part, o, n, rows_ok, states_ok in _parts(old, new):
        seed = int(key.split("/")[0][len("seed"):])
        if seed not in purchases:
            purchases[seed] = _purchase_days(seed)
        bought, prior = purchases[seed]
        if key.endswith("prior_model"):
            from models.model import ChurnModel
            prior = ChurnModel().compiled.purchase_gap_days
        masked_same = rows_ok and all({**o[k], "action": None} == {**n[k], "action": None} for k in o)
        tally: collections.Counter[str] = collections.Counter()
        off_target, users = [], set()
        for k in o:
            if k not in n or o[k]["action"] == n[k]["action"]:
                continue
            d, e = o[k], n[k]
            user = str(d.get("user_id", d.get("u")))
            users.add(user)
            tally[f"{d.get('kind', 'score')} {d['action']}->{e['action']}"] += 1
            aimed = (_signals_on_schedule(d["signals"]) if part == "scores"
                     else _on_schedule(bought.get(user, []), prior, d["event_time_ms"] // 1000))
            if not aimed or e["action"] not in ("none", "check_in"):
                off_target.append((user, k, d["action"], e["action"]))
        ok &= masked_same and states_ok and not off_target
        print(f"{key} {part}: {len(o)} rows, identical with action masked: {masked_same}; changed {sum(tally.values())} "
              f"rows of {len(users)} users, all repeat buyers on schedule now none/check_in: {not off_target} "
              f"{off_target[:5]}; {dict(sorted(tally.items()))}")
    return ok


def _from_moments(o: dict[str, Any], n: dict[str, Any], start: dict[str, int]) -> tuple[list[str], list[str], collections.Counter[str], dict[str, int]]:
    """What changed for a run whose change may act on the users of ``start`` (user -> first ms it
    can act) only: (the other users that differ in alerts, scores or state; the targeted users
    whose alerts before their moment differ; the alerts removed and added for the targeted users,
    by "-kind/stage" and "+kind/stage"; how many of them changed in alerts, scores and states)."""
    oa, na, os_, ns = by_user(o["alerts"]), by_user(n["alerts"]), by_user(o["scores"]), by_user(n["scores"])
    everyone = set(o["states"]) | set(n["states"])
    others = [u for u in everyone - set(start)
              if oa.get(u) != na.get(u) or os_.get(u) != ns.get(u) or o["states"].get(u) != n["states"].get(u)]
    before_differs = [u for u, t0 in start.items()
                      if {r for r in oa.get(u, ()) if json.loads(r)["event_time_ms"] < t0}
                      != {r for r in na.get(u, ()) if json.loads(r)["event_time_ms"] < t0}]
    moved: collections.Counter[str] = collections.Counter()
    for u in start:
        for sign, rows in (("-", set(oa.get(u, ())) - set(na.get(u, ()))), ("+", set(na.get(u, ())) - set(oa.get(u, ())))):
            for r in rows:
                d = json.loads(r)
                moved[f"{sign}{d['kind']}/{d['stage']}"] += 1
    changed = {part: sum((src.get(u) != dst.get(u)) for u in start)
               for part, src, dst in (("alerts", oa, na), ("scores", os_, ns), ("states", o["states"], n["states"]))}
    return others, before_differs, moved, changed


def reorder(old_path: str, new_path: str, from_day: int = 3) -> bool:
    """True when only the buyers QA12 F2's rules can touch changed, each only from their third
    purchase day (a re-order rhythm, models.signals.REORDER_MIN_INTERVALS: the re-order alert, the
    lapse gap of models.lifecycle.lapse_gap_days, the re-order reason first), and their alerts
    before it are identical (module docstring, ``reorder``; printing what moved). Only alerts are
    compared before that day: a dump's scores score the *final* state at the as-of times, so a
    targeted user's scores may differ at any of them. ``from_day`` 1 (``reorder OLD NEW 1``): every
    buyer from their first purchase day (2026-12-05: the lapse gap of every buyer)."""
    from models.state import DAY_S

    old, new = _dumps(old_path, new_path)
    ok = True
    for key in old:
        seed = int(key.split("/")[0][len("seed"):])
        purchases, _ = _purchase_days(seed)
        o, n = old[key], new[key]
        na = by_user(n["alerts"])
        start: dict[str, int] = {}  # user -> first ms the rules can act (their third purchase day)
        for u, ps in purchases.items():
            days: set[int] = set()
            for t in ps:
                days.add(t // DAY_S)
                if len(days) == from_day:
                    start[u] = t * 1000
                    break
        everyone = set(o["states"]) | set(n["states"])
        others, before_differs, moved, changed = _from_moments(o, n, start)
        reorder_alerts = sum(1 for u in start for r in na.get(u, ()) if json.loads(r)["kind"] == "at_risk"
                             and json.loads(r)["reasons"][:1] and json.loads(r)["reasons"][0].startswith("usual re-order"))
        ok &= not others and not before_differs
        print(f"{key}: {len(everyone)} users, {len(start)} with {from_day} purchase days or more; every other user identical "
              f"(alerts, scores, state): {not others} ({len(others)} differ {others[:3]}); their alerts before their purchase "
              f"day {from_day} identical: {not before_differs} ({len(before_differs)} differ); alerts {len(o['alerts'])} -> "
              f"{len(n['alerts'])}; at-risk alerts with the re-order reason first: {reorder_alerts}; those users changed: {changed}")
        print(f"   moved: {dict(sorted(moved.items()))}")
    return ok


def retention(old_path: str, new_path: str, days: float) -> bool:
    """True when only churned customers' ``next_review_s`` changed, to ``stage_since_s`` + ``days``
    (module docstring, ``retention``; printing how many states moved per run)."""
    import math

    from models.state import DAY_S, STAGES, UserState

    old, new = _dumps(old_path, new_path)
    ok = True
    for key in old:
        same_rows = all(old[key][part] == new[key][part] for part in ("alerts", "scores"))
        moved, wrong = collections.Counter(), []
        for u, blob in old[key]["states"].items():
            if new[key]["states"].get(u) == blob:
                continue
            o, n = UserState.from_bytes(bytes.fromhex(blob)), UserState.from_bytes(bytes.fromhex(new[key]["states"][u]))
            expiry = o.stage_since_s + int(math.ceil(days * DAY_S))
            n_back = UserState.from_bytes(n.to_bytes())
            n_back.next_review_s = o.next_review_s
            if STAGES[o.stage] != "churned" or not o.n_purchases or n.next_review_s != expiry or n_back.to_bytes() != o.to_bytes():
                wrong.append(u)
            moved[round((o.next_review_s - o.stage_since_s) / DAY_S)] += 1
        churned_buyers = sum(1 for b in old[key]["states"].values()
                             if (st := UserState.from_bytes(bytes.fromhex(b))).n_purchases and STAGES[st.stage] == "churned")
        ok &= same_rows and not wrong and set(old[key]["states"]) == set(new[key]["states"])
        print(f"{key}: alerts and scores identical: {same_rows}; {sum(moved.values())} states changed of "
              f"{len(old[key]['states'])} ({churned_buyers} churned customers), only next_review_s to stage_since + {days:g} d: "
              f"{not wrong} ({len(wrong)} otherwise {wrong[:3]}); their old expiry in days after the churn: {dict(moved)}")
    return ok


def better(old_path: str, new_path: str, gone: str, added: str) -> bool:
    """True when only the alerts for the better (``recovered``, a stage change to active or
    reactivated) changed, only in ``reasons``: reasons matching ``gone`` went, reasons matching
    ``added`` came, and the others kept their order (one list a prefix of the other: an added
    reason takes the last place shown, a reason gone lets the next one in); no alert came or went,
    scores and states identical (printing how many went and came, per kind, and how many rows still
    have a reason matching ``gone``: 0 for a reason that is never said any more)."""
    old, new = _dumps(old_path, new_path)
    rg, ra = re.compile(gone), re.compile(added)
    ok = True
    for key, part, o, n, rows_ok, same_states in _parts(old, new):
        tally: collections.Counter[str] = collections.Counter()  # "kind -gone +added", or "wrong"
        for k, a in o.items():
            b = n.get(k, a)
            if a == b:
                continue
            kind = str(a.get("kind", "score"))
            better = kind == "recovered" or (kind == "stage_changed" and a["stage"] in ("active", "reactivated"))
            kept_old = [r for r in a["reasons"] if not rg.search(str(r))]
            kept_new = [r for r in b["reasons"] if not ra.search(str(r))]
            shorter = min(len(kept_old), len(kept_new))
            same_rest = all(a[f] == b[f] for f in a if f != "reasons")
            tally["wrong" if not (better and same_rest and kept_old[:shorter] == kept_new[:shorter])
                  else f"{kind} -{len(a['reasons']) - len(kept_old)} +{len(b['reasons']) - len(kept_new)}"] += 1
        wrong = tally.pop("wrong", 0)
        changed = sum(tally.values()) + wrong
        ok &= same_states and rows_ok and not wrong and (part == "alerts" or not changed)
        kept = sum(any(rg.search(str(r)) for r in d["reasons"]) for d in n.values())
        print(f"{key} {part}: {len(o)} rows; changed {changed}, otherwise {wrong}; rows identical: {rows_ok}; "
              f"with a reason matching gone still (kept as it was): {kept}; (kind, reasons gone, added): {dict(sorted(tally.items()))}")
    return ok


def _held_back(seed: int, prior: bool) -> dict[str, list[int]]:
    """Per user of the golden histories, the event seconds at which the close rule before QA19 F6
    let an open at-risk alert close and models.engine._came_back does not: the histories replayed
    with ``_came_back`` answering yes (the rule before), each of its real answers noted."""
    from models import engine
    from models.model import ChurnModel, load_model
    from tests.test_models_golden import FINAL_MS, histories

    model = ChurnModel() if prior else load_model()
    real = engine._came_back
    held: dict[str, list[int]] = collections.defaultdict(list)
    user = ""

    def before(a, now_s, model_, c):  # type: ignore[no-untyped-def]
        if not real(a, now_s, model_, c):
            held[user].append(now_s)
        return True

    engine._came_back = before  # type: ignore[assignment]
    try:
        for user, evs in histories(seed).items():
            engine.advance(user, None, evs, FINAL_MS, model)
    finally:
        engine._came_back = real  # type: ignore[assignment]
    return held


def comeback(old_path: str, new_path: str, fact: str) -> bool:
    """True when only the users with an old ``recovered`` alert the new rule holds back
    (:func:`_held_back`) changed, each only from that alert on, and every new ``recovered`` alert
    says ``fact`` (module docstring, ``comeback``; printing what moved for them)."""
    old, new = _dumps(old_path, new_path)
    rx = re.compile(fact)
    ok = True
    for key in old:
        seed = int(key.split("/")[0][len("seed"):])
        held = _held_back(seed, key.endswith("prior_model"))
        o, n = old[key], new[key]
        oa, na = by_user(o["alerts"]), by_user(n["alerts"])
        start: dict[str, int] = {}
        for u, rows in oa.items():
            times = [d["event_time_ms"] for d in map(json.loads, rows)
                     if d["kind"] == "recovered" and d["event_time_ms"] // 1000 in held.get(u, ())]
            if times:
                start[u] = min(times)
        everyone = set(o["states"]) | set(n["states"])
        others, before_differs, moved, changed = _from_moments(o, n, start)
        silent = sum(1 for rows in na.values() for r in rows
                     if json.loads(r)["kind"] == "recovered" and not any(rx.search(str(x)) for x in json.loads(r)["reasons"]))
        n_held = sum(1 for u, rows in oa.items() for d in map(json.loads, rows)
                     if d["kind"] == "recovered" and d["event_time_ms"] // 1000 in held.get(u, ()))
        ok &= not others and not before_differs and not silent
        print(f"{key}: {len(everyone)} users, {len(start)} with a recovered alert the new rule holds back ({n_held} such "
              f"alerts); every other user identical (alerts, scores, state): {not others} ({len(others)} differ); their alerts "
              f"before it identical: {not before_differs} ({len(before_differs)} differ); new recovered alerts not saying the "
              f"return: {silent}; alerts {len(o['alerts'])} -> {len(n['alerts'])}; those users changed: {changed}")
        print(f"   moved: {dict(sorted(moved.items()))}")
    return ok


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"] and len(sys.argv) == 3:
        dump(sys.argv[2])
    elif sys.argv[1:2] == ["users"] and len(sys.argv) == 6:
        sys.exit(0 if users(sys.argv[2], sys.argv[3], sys.argv[4], tuple(sys.argv[5].split(","))) else 1)
    elif sys.argv[1:2] == ["returns"] and len(sys.argv) == 4:
        sys.exit(0 if returns(sys.argv[2], sys.argv[3]) else 1)
    elif sys.argv[1:2] == ["passes"] and len(sys.argv) == 5 and len(sys.argv[4].split(",")) == 3:
        sys.exit(0 if passes(sys.argv[2], sys.argv[3], *sys.argv[4].split(",")) else 1)
    elif sys.argv[1:2] == ["changes"] and len(sys.argv) >= 7 and len(sys.argv[5].split(",")) == 2:
        sys.exit(0 if changes(sys.argv[2], sys.argv[3], sys.argv[4], *sys.argv[5].split(","), tuple(sys.argv[6:])) else 1)
    elif sys.argv[1:2] == ["dropped"] and len(sys.argv) == 5:
        sys.exit(0 if dropped(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    elif sys.argv[1:2] == ["reworded"] and len(sys.argv) == 6:
        sys.exit(0 if reworded(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]) else 1)
    elif sys.argv[1:2] == ["cancelled"] and len(sys.argv) >= 5:
        sys.exit(0 if cancelled(sys.argv[2], sys.argv[3], tuple(sys.argv[4:])) else 1)
    elif sys.argv[1:2] == ["midnight"] and len(sys.argv) == 4:
        sys.exit(0 if midnight(sys.argv[2], sys.argv[3]) else 1)
    elif sys.argv[1:2] == ["held"] and len(sys.argv) == 6 and len(sys.argv[4].split(",")) == 2:
        sys.exit(0 if held(sys.argv[2], sys.argv[3], *sys.argv[4].split(","), int(sys.argv[5]) * 1000) else 1)
    elif sys.argv[1:2] == ["actions"] and len(sys.argv) == 4:
        sys.exit(0 if actions(sys.argv[2], sys.argv[3]) else 1)
    elif sys.argv[1:2] == ["reorder"] and len(sys.argv) in (4, 5):
        sys.exit(0 if reorder(sys.argv[2], sys.argv[3], *(int(v) for v in sys.argv[4:])) else 1)
    elif sys.argv[1:2] == ["opens"] and len(sys.argv) == 4:
        sys.exit(0 if opens(sys.argv[2], sys.argv[3]) else 1)
    elif sys.argv[1:2] == ["retention"] and len(sys.argv) == 5:
        sys.exit(0 if retention(sys.argv[2], sys.argv[3], float(sys.argv[4])) else 1)
    elif sys.argv[1:2] == ["better"] and len(sys.argv) == 6:
        sys.exit(0 if better(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]) else 1)
    elif sys.argv[1:2] == ["comeback"] and len(sys.argv) == 5:
        sys.exit(0 if comeback(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    elif sys.argv[1:2] == ["recoded"] and len(sys.argv) == 5:
        sys.exit(0 if recoded(sys.argv[2], sys.argv[3], tuple(int(v) for v in sys.argv[4].split(","))) else 1)
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) >= 5:
        sys.exit(0 if compare(sys.argv[2], sys.argv[3], tuple(sys.argv[4:])) else 1)
    else:
        sys.exit(__doc__)
