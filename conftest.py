"""Doctests of the compiled scoring core run on its pure Python (tests/test_models_native.py).

Where ``models/<name>.py`` runs compiled, pytest's doctest collection would import the extension
module in place of the file and stop with "import file mismatch"; those files' doctests are run
by tests/test_models_native.py on fresh pure-Python copies instead.
"""

from __future__ import annotations

from pathlib import Path

from models._native import COMPILED_MODULES, active


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if collection_path.suffix == ".py" and collection_path.parent.name == "models" \
            and collection_path.stem in COMPILED_MODULES and active() == "compiled":
        return True
    return None
