"""Instructions per event of the compiled step (callgrind), on cycles captured from the cycle benchmark.

Why: docs/SCALING.md quotes "instructions per event (callgrind, cycles 46-50)" for the per-user
step (``models.step.advance_stored`` and each alert's ``Alert.to_dict``); on a shared box an
instruction count is the figure the neighbours cannot move. ``capture`` runs
``benchmarks.review_cycle``'s workload through the worker's pipeline (real valkey and Tansu) and
pickles the step's arguments of cycles ``--first`` to ``--last`` (the stored records as Redis
gave them, so the states after the earlier cycles); ``replay`` runs those calls again in one
process, and callgrind, collecting only inside the compiled step and ``to_dict`` (their mypyc
entry points), counts only them. The same capture replays on any tree whose record format is
the same (run the replay from that tree, ``PYTHONPATH`` set to it).

``.venv/bin/python -m benchmarks.step_callgrind capture --workload review_heavy --out /tmp/rh.pkl``
``valgrind --tool=callgrind --toggle-collect=CPyPy_step___advance_stored --toggle-collect=CPyPy_engine___Alert___to_dict .venv/bin/python -m benchmarks.step_callgrind replay /tmp/rh.pkl``
(the replay prints the events it stepped; valgrind's "Collected" over them is the figure,
``callgrind_annotate --inclusive=yes`` the functions).

``digest /tmp/rh.pkl``: the same steps, uncounted, and one sha256 over everything each gave (the
record written, due second, index scores, the open alert's risk, the console's points, every
alert's ``to_dict`` with its revenue, the expire/skip flags and the error; floats by their hex):
two trees that print the same digest gave the same results for the capture, bit for bit (a
change of the step's cost is checked this way; run it on the other tree with ``PYTHONPATH`` set
to it).

``replay --encode``: each alert goes through the worker's own hand-off instead of ``to_dict``
alone (``models.step.queue_alerts``, ``streams.worker.phases._queue_alerts`` in a tree before
it: ``to_dict``, the alerts topic's bytes, the console list's entry), called through ``operator.call``: collect ``_operator_call`` instead of
``to_dict`` to count the whole alert path, step and shell (an alert's cost is step + encode).
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import pickle
import sys
from typing import Any

__all__ = ["capture", "replay"]


def capture(workload: str, events: int, users: int, batch: int, first: int, last: int, out: str) -> None:
    """Pickle each ``advance_stored`` call of cycles ``first``..``last`` (1-based); the model is
    the shipped default (``load_model(None)``, as the benchmark's pipeline loads it)."""
    from streams.local import services
    from streams.worker import phases, pipeline as pipeline_mod

    calls: list[tuple[Any, ...]] = []
    cycle = [0]
    real_step = getattr(phases, "advance_stored", None)  # None: the step is called by the compiled advance_bucket
    real_process = pipeline_mod.Pipeline.process

    def step(uid, blob, events, until, has_until, model, history, unchanged, period=0, marks=None):  # noqa: ANN001
        if first <= cycle[0] <= last:
            calls.append((uid, blob, list(events), until, has_until, history, unchanged, period, marks is not None))
        return real_step(uid, blob, events, until, has_until, model, history, unchanged, period, marks)

    async def process(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        cycle[0] += 1
        return await real_process(self, *args, **kwargs)

    phases.advance_stored = step  # a tree whose shell calls the step from Python
    real_bucket = getattr(phases, "advance_bucket", None)
    if real_bucket is not None:  # the compiled per-user loop calls the step natively: its calls taken from its todo

        def bucket(todo, bkt, clocks, fields, member_of, model, history, unchanged, *rest):  # noqa: ANN001, ANN002
            if first <= cycle[0] <= last:
                period = rest[1]
                for uid, (_, p, blob, events) in todo.items():
                    until, member = clocks[p], bool(member_of and events and uid in member_of)
                    calls.append((uid, blob, list(events), until or 0, until is not None, history, unchanged,
                                  period if member else 0, member))
            return real_bucket(todo, bkt, clocks, fields, member_of, model, history, unchanged, *rest)

        phases.advance_bucket = bucket
    pipeline_mod.Pipeline.process = process
    from benchmarks.review_cycle import measure

    with services(use_env=False) as svc:
        res = measure(svc.kafka.address, svc.redis.address, events, users, batch, workload)
    n_events = sum(len(c[2]) for c in calls)
    with open(out, "wb") as f:
        pickle.dump({"calls": calls, "events": n_events, "workload": workload,
                     "cycles": (first, last)}, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{len(calls)} steps, {n_events} events of cycles {first}-{last} ({res['core']}) -> {out}", file=sys.stderr)


def _replay(model: Any, calls: list[tuple[Any, ...]], encode: bool = False) -> int:
    """The captured steps, then each alert's dict (``encode``: the worker's whole hand-off of
    the step's alerts, through ``operator.call``): what the count covers (toggle-collect)."""
    from models.step import advance_stored
    from streams.worker.phases import Advanced, CycleResult
    from streams.worker.store import BucketWrite

    try:
        import orjson

        from models.step import queue_alerts
        from streams.worker.alert_log import KINDS_LOGGED, STAGES_LOGGED

        counts = CycleResult()  # (made once: the count covers the hand-off, not this)

        def hand_off(uid: str, alerts: list[Any]) -> None:
            queue_alerts(uid, 0, alerts, False, -1, 0, KINDS_LOGGED, STAGES_LOGGED, [], [], counts.alerts,
                         counts.withheld, orjson.dumps)
    except ImportError:  # a tree before it
        from streams.worker.phases import _queue_alerts  # type: ignore[attr-defined]

        def hand_off(uid: str, alerts: list[Any]) -> None:
            _queue_alerts(uid, 0, alerts, False, BucketWrite(0, []), Advanced(), CycleResult())

    alerts = 0
    for uid, blob, events, until, has_until, history, unchanged, period, marked in calls:
        res = advance_stored(uid, blob, events, until, has_until, model, history, unchanged, period,
                             [] if marked else None)
        if encode and res[8]:
            operator.call(hand_off, uid, res[8])
            alerts += len(res[8])
            continue
        for a in res[8]:
            a.to_dict()
            alerts += 1
    return alerts


def _canonical(x: Any) -> str:
    """``x`` as text for the digest: floats by ``float.hex`` (every bit), containers item by item."""
    if isinstance(x, float):
        return x.hex()
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(_canonical(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ",".join(f"{k!r}:{_canonical(v)}" for k, v in x.items()) + "}"
    return repr(x)


def digest(path: str) -> str:
    """sha256 of every captured step's result (module docstring, ``digest``), as hex."""
    import hashlib

    from models._native import active
    from models.model import load_model
    from models.step import advance_stored

    with open(path, "rb") as f:
        data = pickle.load(f)
    model = load_model(None)
    h = hashlib.sha256()
    for uid, blob, events, until, has_until, history, unchanged, period, marked in data["calls"]:
        marks: list[Any] | None = [] if marked else None
        _old, _st, out, due_s, risk, reach, alert_risk, points, alerts, expire, skip, error = advance_stored(
            uid, blob, events, until, has_until, model, history, unchanged, period, marks)
        row = [uid, out, due_s, risk, reach, alert_risk, points, expire, skip, error,
               [[a.to_dict(), a.revenue] for a in alerts], len(marks) if marks is not None else -1]
        h.update(_canonical(row).encode())
        h.update(b"\n")
    print(f"{active()}: {len(data['calls'])} steps", file=sys.stderr)
    return h.hexdigest()


def replay(path: str, encode: bool = False) -> None:
    """Load a capture and step it once (the count is over :func:`_replay` alone)."""
    from models._native import active
    from models.model import load_model

    with open(path, "rb") as f:
        data = pickle.load(f)
    alerts = _replay(load_model(None), data["calls"], encode)
    print(f"{active()}: {len(data['calls'])} steps, {data['events']} events, {alerts} alerts", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--workload", default="review_heavy")
    c.add_argument("--events", type=int, default=500_000)
    c.add_argument("--users", type=int, default=100_000)
    c.add_argument("--batch", type=int, default=10_000)
    c.add_argument("--first", type=int, default=46)
    c.add_argument("--last", type=int, default=50)
    c.add_argument("--out", required=True)
    r = sub.add_parser("replay")
    r.add_argument("path")
    r.add_argument("--encode", action="store_true", help="each alert through the worker's _queue_alerts")
    d = sub.add_parser("digest")
    d.add_argument("path")
    args = parser.parse_args()
    if args.cmd == "capture":
        capture(args.workload, args.events, args.users, args.batch, args.first, args.last, args.out)
    elif args.cmd == "digest":
        print(digest(args.path))
    else:
        replay(args.path, args.encode)


if __name__ == "__main__":
    main()
