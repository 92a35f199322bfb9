"""The quality table's checks on other seeds of its generated populations (``make quality-seeds``).

Why: the issue's checks are judged on one seed per generated population (fightchurn-socialnet7
seed 71, fightchurn-tiers 72, simulate-mix 11), and several verdicts sit within about one
standard error of their target. A verdict that flips with the seed is a verdict about the seed.
This runs the table's own evaluation (``quality.evaluate_population``, every figure by the same
code) on other seeds of the same three configurations: same users, dates, mix and every other
field of their spec, only the seed differs (``populations.build(..., seed=)``). CDNOW is real
data: it has no seed.

Rules, fixed before any measurement (December 2026):

- the seeds are chosen in advance (:data:`SEEDS`) and all reported: none is dropped or replaced
  after its result is seen;
- the issue's verdicts stay on the original populations (QUALITY.md's main table); the other
  seeds go in a section of their own, with each check's figures per seed and, per check, on how
  many of the three seeds (the table's + two) it is met, with the mean and spread of its margin
  (``quality.checks``: measured minus target, in the check's unit, negative when not met, 0 at
  a strict target's tie, which is not met);
- no model, threshold or constant changes for it; nothing is tuned on it. A new seed meeting a
  check the table misses does not make the check met.

Writes ``benchmarks/quality_seeds.json`` and the section "The same checks on other seeds" of
``benchmarks/QUALITY.md`` (the main table re-rendered from ``quality.json``, unchanged). Reads
the table's figures of the original seeds from ``quality.json``: run ``make quality`` first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from benchmarks import populations, quality

__all__ = ["JSON_OUT", "SEEDS", "main", "original_seed", "parse_seeds", "render", "run", "summarise"]

JSON_OUT = Path(__file__).with_name("quality_seeds.json")

#: The other seeds of each generated population, fixed before any of them was measured.
SEEDS: dict[str, tuple[int, ...]] = {
    "fightchurn-socialnet7": (81, 82),
    "fightchurn-tiers": (83, 84),
    "simulate-mix": (21, 22),
}


def original_seed(name: str) -> int:
    """The seed of ``name`` in the main table.

    >>> original_seed("fightchurn-socialnet7"), original_seed("simulate-mix")
    (71, 11)
    """
    if name == "simulate-mix":
        return populations.SIMULATE_SEED
    return int(populations.fightchurn_spec(name)["seed"])


def parse_seeds(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``NAME=S1,S2`` items -> seeds per population; a population not named keeps none.

    >>> parse_seeds(["simulate-mix=21,22", "fightchurn-tiers=83"])
    {'simulate-mix': (21, 22), 'fightchurn-tiers': (83,)}
    """
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or name not in populations.SEEDED:
            raise ValueError(f"--seeds {item!r}: expected NAME=SEED[,SEED...] with NAME one of {', '.join(populations.SEEDED)}")
        try:
            seeds = tuple(int(v) for v in values.split(","))
        except ValueError:
            raise ValueError(f"--seeds {item!r}: seeds must be whole numbers, got {values!r}") from None
        if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"--seeds {item!r}: seeds must be distinct and >= 0")
        if original_seed(name) in seeds:
            raise ValueError(f"--seeds {item!r}: {original_seed(name)} is the main table's own seed of {name}")
        out[name] = seeds
    return out


def run(seeds: Mapping[str, Sequence[int]] = SEEDS, work: Path | None = None, jobs: int = 2, model: str | None = None,
        write: bool = True) -> dict[str, Any]:
    """Build each population with each seed, evaluate it as the table does, summarise against the
    original seeds' figures of ``quality.json``; write quality_seeds.json and QUALITY.md."""
    from benchmarks.observe import load_average

    original = json.loads(quality.JSON_OUT.read_text())
    work = work or quality.ROOT / ".churnwatch" / "quality"
    started, load_before = time.perf_counter(), load_average()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": model or "shipped default",
        "machine": f"{os.cpu_count()} cores", "jobs": jobs, "table_run": original["when"], "table_model": original["model"],
        "seeds": {name: [original_seed(name), *chosen] for name, chosen in seeds.items()}, "populations": {}}
    for name, chosen in seeds.items():
        for seed in chosen:
            t0 = time.perf_counter()
            for pop, facts, test_rows in populations.build(work, jobs, [name], seed=seed):
                print(f"seed_spread: {name} seed {seed}: {pop.counts}", flush=True)
                folder = populations.seeded_folder(work, name, seed) / "run"
                results["populations"].setdefault(name, {})[str(seed)] = quality.evaluate_population(pop, facts, test_rows, folder, model)
            print(f"seed_spread: {name} seed {seed} done in {time.perf_counter() - t0:.0f} s", flush=True)
    results["summary"] = summarise(original, results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average"] = f"{load_before} -> {load_average()}"
    if write:
        JSON_OUT.write_text(json.dumps(results, indent=2, default=str) + "\n")
        quality.write_markdown(original)
    return results


def _original_checks(name: str, pop: Mapping[str, Any]) -> dict[str, Any]:
    """The main table's checks of ``name``, with their margins, recomputed by ``quality.checks``
    from its stored figures; refused if they differ from the verdicts stored beside them."""
    recomputed = quality.checks(pop)
    for key, stored in pop["checks"].items():
        if any(stored[f] != recomputed[key][f] for f in ("measured", "target", "met")):
            raise RuntimeError(f"quality.json's {name} {key} check differs from quality.checks on its figures: re-run make quality")
    return recomputed


def summarise(original: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    """Per population and check, over the table's seed and the others: the verdicts, on how many
    seeds it is met (of those where it is measurable) and the mean, standard deviation
    (n - 1) and range of its margin."""
    out: dict[str, Any] = {}
    for name, by_seed in results["populations"].items():
        runs = {str(original_seed(name)): _original_checks(name, original["populations"][name]),
                **{seed: r["checks"] for seed, r in by_seed.items()}}
        out[name] = {}
        for key, _ in quality.CHECKS:
            margins = [c[key]["margin"] for c in runs.values() if c[key]["met"] is not None]
            out[name][key] = {
                "seeds": list(runs), "met": {s: c[key]["met"] for s, c in runs.items()},
                "margin": {s: c[key]["margin"] for s, c in runs.items()},
                "met_on": sum(1 for c in runs.values() if c[key]["met"]), "measurable_on": len(margins),
                "margin_mean": round(statistics.fmean(margins), 4) if margins else None,
                "margin_sd": round(statistics.stdev(margins), 4) if len(margins) > 1 else None,
                "margin_range": [min(margins), max(margins)] if margins else None,
            }
    return out


#: Each check's margin unit, for the summary's reader.
UNITS = {"default_beats_baselines": "AUC", "trained_beats_lr": "AUC over LR + 0.02", "alert_precision": "x base rate over 3.5",
         "alert_recall": "recall over 0.4", "flap_rate": "under 0.05"}


def _m(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def render(seeds: Mapping[str, Any]) -> list[str]:
    """QUALITY.md's section "The same checks on other seeds" from quality_seeds.json's contents."""
    words = dict(quality.CHECKS)
    lines = [
        "## The same checks on other seeds", "",
        f"Written by `make quality-seeds` (`python -m benchmarks.seed_spread`, started {seeds['when']}, model: {seeds['model']}, "
        f"{seeds['machine']}, {seeds['jobs']} processes, {seeds['seconds']:.0f} s, load average {seeds.get('load_average', '?')}), "
        f"against the main table's run of {seeds['table_run']} (model: {seeds['table_model']}). The verdicts of the issue are "
        "the main table's, on the original populations; this section only says how much of each verdict is the seed.", "",
        "Each generated population was built again with other seeds, every other field of its spec the same (users, dates, "
        "mix, configuration), and evaluated by the same code as the main table (`quality.evaluate_population`). Rules fixed "
        "before any measurement: the seeds were chosen in advance and are all reported (none dropped or replaced after its "
        "result); no model, threshold or constant was changed; a new seed meeting a check the main table misses does not "
        "make the check met. Margin = measured minus target in the check's unit (negative: not met). CDNOW is real data: "
        "no seed.", "",
        "### Summary per check (the main table's seed + the others)", "",
        "| population | check | met on | margin per seed | mean | sd | range | unit |", "|---|---|---|---|---|---|---|---|"]
    for name, checks in seeds["summary"].items():
        for key, s in checks.items():
            per_seed = ", ".join(f"{seed}{' (table)' if i == 0 else ''}: {_m(s['margin'][seed])}" for i, seed in enumerate(s["seeds"]))
            rng = "-" if s["margin_range"] is None else f"{_m(s['margin_range'][0])} .. {_m(s['margin_range'][1])}"
            sd = "-" if s["margin_sd"] is None else f"{s['margin_sd']:.4f}"
            met = f"{s['met_on']} of {len(s['seeds'])}"
            if s["measurable_on"] != len(s["seeds"]):
                met += f" ({s['measurable_on']} measurable)"
            lines.append(f"| {name} | {words[key]} | {met} | {per_seed} | {_m(s['margin_mean'])} | {sd} | {rng} | {UNITS[key]} |")
    lines += ["", "### Every check on every other seed", "",
              "| population | seed | check | measured | target | verdict |", "|---|---|---|---|---|---|"]
    for name, by_seed in seeds["populations"].items():
        for seed, pop in by_seed.items():
            for key, words_ in quality.CHECKS:
                c = pop["checks"][key]
                lines.append(f"| {name} | {seed} | {words_} | {c['measured']} | {c['target']} | {quality.verdict(c['met'])} |")
    lines += ["", "Per seed, the populations' sizes and ROC AUCs (every scorer on the same rows, +- bootstrap standard error):", "",
              "| population | seed | judged users (churn) | rows (base rate) | default | trained, --labels | trained, --churn-after | "
              "regression per type | oracle from the events at d |", "|---|---|---|---|---|---|---|---|---|"]
    for name, by_seed in seeds["populations"].items():
        for seed, pop in by_seed.items():
            c, s = pop["counts"], pop["scorers"]

            def auc(k: str) -> str:
                return "-" if k not in s or s[k]["roc_auc"] is None else f"{s[k]['roc_auc']:.4f} +- {s[k]['roc_auc_se']:.3f}"

            lines.append(f"| {name} | {seed} | {c.get('users_test')} ({c.get('churners_test')}) | {pop['rows_judged']:,} "
                         f"({pop['base_rate']}) | {auc('default')} | {auc('trained_labels')} | {auc('trained_no_labels')} | "
                         f"{auc('logistic_per_type')} | {auc('oracle_events_at_d')} |")
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.seed_spread", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", action="append", default=[], metavar="NAME=S1,S2",
                    help=f"other seeds of one population (repeatable; default: {'; '.join(f'{k}={v[0]},{v[1]}' for k, v in SEEDS.items())})")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the fightchurn simulation (default 2)")
    ap.add_argument("--model", default=None, help="model file to judge as the default (default: the shipped one, as the main table)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--render", action="store_true", help="only re-render QUALITY.md from quality.json and quality_seeds.json")
    args = ap.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds) if args.seeds else SEEDS
    except ValueError as exc:
        ap.error(str(exc))
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1 process, got {args.jobs}")
    if args.render:
        quality.write_markdown(json.loads(quality.JSON_OUT.read_text()))
        return 0
    results = run(seeds, jobs=args.jobs, model=args.model, write=not args.no_write)
    print("\n".join(render(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
