"""Which scoring core runs: the pure Python of ``models/``, or the same files compiled by mypyc.

Why a compiled core: the worker spends over half its CPU in ``models/`` (plain float math over a
fixed record), and mypyc turns the *same* typed source into C (no second implementation to keep
in step): about 2x less CPU per event (benchmarks/models_hotpath.py). ``make .venv/.installed``
builds it (setup.py); the pure Python stays the reference, and tests/test_models_native.py checks
on random inputs that both give the same state bytes, alerts and scores, bit for bit.

The compiled modules (``models/<name>.cpython-*.so`` beside ``<name>.py``) are used only when
all of them are there, ``CHURNWATCH_PURE`` is not ``1``, librt (mypyc's runtime library, whose
C the compiled state record calls: models/state.py) imports, and each ``.py`` is the very source
they were built from (sha256 recorded at build time in :data:`SOURCES_FILE`): an edited or
checked-out ``.py`` never runs stale compiled code, it runs as Python until the next build.
Otherwise an import hook loads the ``.py`` files (Python prefers an extension module of the
same name).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Mapping, Sequence

__all__ = ["COMPILED_MODULES", "PURE_ENV", "SOURCES_FILE", "active", "import_pure", "init_args", "install", "source_digests", "why_pure"]

logger = logging.getLogger(__name__)

#: The hot path (benchmarks/models_hotpath.py, py-spy): what ``advance`` and ``score`` run per
#: event and per review. Everything else in models/ (fits, revenue, accounts) stays Python.
COMPILED_MODULES: Final[tuple[str, ...]] = (
    "events", "vocabulary", "state", "signals", "mbgnbd", "temperature", "risk", "health", "lifecycle", "intake",
    "scoring", "engine", "reasons", "actions", "rfm", "compiled", "ranking", "weekly", "step",
)
#: ``CHURNWATCH_PURE=1`` runs the pure Python even where the compiled core is built.
PURE_ENV: Final[str] = "CHURNWATCH_PURE"
#: Written by setup.py after a successful build: {module: sha256 of the source it compiled}.
SOURCES_FILE: Final[str] = "_native_sources.json"
_HERE: Final[Path] = Path(__file__).resolve().parent
_NAMES: Final[frozenset[str]] = frozenset(f"models.{m}" for m in COMPILED_MODULES)


def source_digests(directory: Path = _HERE) -> dict[str, str]:
    """sha256 of each compiled module's ``.py`` in ``directory`` (what setup.py records)."""
    return {m: hashlib.sha256((directory / f"{m}.py").read_bytes()).hexdigest() for m in COMPILED_MODULES}


def _built_modules(directory: Path) -> set[str]:
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return {p.name.split(".", 1)[0] for p in directory.iterdir() if p.name.endswith(suffixes)}


def why_pure(directory: Path = _HERE, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the pure Python runs (None: the compiled core can run) for the package in ``directory``."""
    if environ.get(PURE_ENV) == "1":
        return f"{PURE_ENV}=1"
    # Every module's shim and mypyc's shared library, which each shim loads.
    missing = [m for m in (*COMPILED_MODULES, "_native_core__mypyc") if m not in _built_modules(directory)]
    if missing:
        return f"not built ({', '.join(missing)} missing)"
    try:
        recorded = json.loads((directory / SOURCES_FILE).read_text())
    except (OSError, ValueError):
        return f"no {SOURCES_FILE} (build record)"
    stale = [m for m, digest in source_digests(directory).items() if recorded.get(m) != digest]
    if stale:
        return f"stale: {', '.join(stale)}.py changed since the build (make .venv/.installed rebuilds)"
    return _librt_missing()


def _librt_missing() -> str | None:
    """Why librt.strings cannot serve the compiled core (None: it can). The compiled models.state
    binds librt's C API when it loads (the headers come with the pinned mypy, the library is pinned to
    the matching librt at run time): an absent librt, or one of another ABI ("ABI version conflict"),
    would stop the import of the whole core, so the pure Python runs instead."""
    try:
        import librt.strings  # noqa: F401
    except (ImportError, ValueError) as exc:
        return f"librt (mypyc's runtime library) cannot load: {exc}: the compiled core cannot run"
    return None


class _PureFinder(importlib.abc.MetaPathFinder):
    """Loads the ``.py`` of a compiled module while ``pure`` is set (else leaves it to Python)."""

    def __init__(self, pure: bool) -> None:
        self.pure = pure

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not self.pure or fullname not in _NAMES:
            return None
        return importlib.util.spec_from_file_location(fullname, _HERE / f"{fullname.rsplit('.', 1)[1]}.py")


_finder: _PureFinder | None = None


def install() -> None:
    """Decide once per process (at ``import models``) which core runs; idempotent."""
    global _finder
    if _finder is not None:
        return
    reason = why_pure()
    _finder = _PureFinder(reason is not None)
    sys.meta_path.insert(0, _finder)
    if reason is not None and not reason.startswith(("not built", PURE_ENV)):
        logger.warning("models: running the pure Python scoring core: %s", reason)


def active() -> str:
    """``"compiled"`` or ``"pure"``: the core this process runs (for logs and benchmark rows)."""
    install()
    assert _finder is not None
    return "pure" if _finder.pure else "compiled"


def import_pure(names: Sequence[str]) -> dict[str, ModuleType]:
    """Fresh pure-Python copies of ``models.<name>`` modules, beside whatever this process runs
    (for the compiled == pure tests): the ``models.*`` modules are imported again from their
    ``.py`` files, then ``sys.modules`` is put back as it was. The copies import one another
    (their own classes), never the compiled ones."""
    install()
    assert _finder is not None
    package = sys.modules["models"]
    own = __name__  # this module stays: one finder, one decision per process
    saved = {k: v for k, v in sys.modules.items() if k.startswith("models.") and k != own}
    saved_attrs = {k.split(".", 1)[1]: getattr(package, k.split(".", 1)[1], None) for k in saved}
    was_pure = _finder.pure
    for k in saved:
        del sys.modules[k]
    _finder.pure = True
    try:
        return {n: importlib.import_module(f"models.{n}") for n in names}
    finally:
        _finder.pure = was_pure
        for k in [k for k in sys.modules if k.startswith("models.") and k != own]:
            del sys.modules[k]
        sys.modules.update(saved)
        for attr, mod in saved_attrs.items():
            if mod is not None:
                setattr(package, attr, mod)


def init_args(obj: Any) -> tuple[type, tuple[object, ...]]:
    """``__reduce__`` of a dataclass whose ``__init__`` is written out for mypyc: pickle (the
    backtest's ``--jobs`` sends alerts between processes) must rebuild a compiled object by
    calling the class with its fields, not build an empty one first."""
    return type(obj), tuple(getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init)
