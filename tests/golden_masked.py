"""Prove a golden-digest update changes only the fields meant to change (tests/test_models_golden.py).

Run from the root of each tree with that tree's venv, then compare::

    PYTHONPATH=. .venv/bin/python -m tests.golden_masked dump /tmp/old.json   # in the old tree
    PYTHONPATH=. .venv/bin/python -m tests.golden_masked dump /tmp/new.json   # in the new tree
    python3 -m tests.golden_masked compare /tmp/old.json /tmp/new.json action reasons

``compare`` prints, per golden run, whether the alerts and the scores are identical once the named
fields are masked, how many changed in each field, and whether the states are byte-identical;
it exits 1 if anything but the masked fields differs.
"""

from __future__ import annotations

import collections
import json
import sys

__all__ = ["compare", "dump"]


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


def compare(old_path: str, new_path: str, masked: tuple[str, ...]) -> bool:
    """True when the two dumps differ in the ``masked`` fields only (printing what changed)."""
    with open(old_path, encoding="utf-8") as f:
        old = json.load(f)
    with open(new_path, encoding="utf-8") as f:
        new = json.load(f)
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"] and len(sys.argv) == 3:
        dump(sys.argv[2])
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) >= 5:
        sys.exit(0 if compare(sys.argv[2], sys.argv[3], tuple(sys.argv[4:])) else 1)
    else:
        sys.exit(__doc__)
