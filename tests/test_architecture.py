"""The tree shows the architecture, and imports keep to it.

``models`` (pure scoring) imports nothing from ``streams``; inside ``streams`` the worker runtime
and the offline tools never import each other or the command line; the commands are thin and
only the one being run is imported (so ``churnwatch alerts --help`` does not load numpy).
Function-level imports count as much as module-level ones: a sideways import hidden inside a
function is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> packages it must never import (prefix match on dotted names)
RULES: dict[str, tuple[str, ...]] = {
    "models": ("streams",),
    "streams.worker": ("streams.cli", "streams.offline"),
    "streams.offline": ("streams.cli", "streams.worker"),
    "streams.console": ("streams.cli", "streams.offline"),  # reads the store; the CLI only starts it
    "streams.forward": ("streams.cli", "streams.offline", "streams.worker", "streams.console"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth, as (line, dotted name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _forbidden(imported: str, banned: tuple[str, ...]) -> bool:
    return any(imported == b or imported.startswith(b + ".") for b in banned)


@pytest.mark.parametrize("package", sorted(RULES))
def test_imports_follow_the_direction_of_the_layers(package: str) -> None:
    folder = ROOT.joinpath(*package.split("."))
    offenders = [
        f"{_module_name(p)}:{line} imports {name}"
        for p in sorted(folder.rglob("*.py"))
        for line, name in _imports(p)
        if _forbidden(name, RULES[package])
    ]
    assert len(list(folder.rglob("*.py"))) >= 3
    assert offenders == []


def test_the_import_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("import os\n\ndef f():\n    from streams.cli import main\n    return main\n")
    assert (4, "streams.cli.main") in _imports(src)
    assert _forbidden("streams.cli.main", ("streams.cli",)) and not _forbidden("streams.client", ("streams.cli",))


def test_streams_keeps_few_modules_at_its_top_level() -> None:
    """Roles live in sub-packages (worker, offline, cli); the root keeps what all of them share."""
    top = sorted(p.name for p in (ROOT / "streams").glob("*.py") if p.name != "__init__.py")
    roles = sorted(p.name for p in (ROOT / "streams").iterdir() if (p / "__init__.py").exists())
    assert len(top) <= 9, top  # 9: records.py, the event record and derived id the worker, publish and offline share (QA4 #2)
    assert {"worker", "offline", "cli"} <= set(roles)


def test_every_command_is_a_module_of_the_cli_package() -> None:
    from streams.cli import COMMANDS

    assert all(module.startswith("streams.cli.") for module, _ in COMMANDS.values())


@pytest.mark.parametrize("command", ["alerts", "topics", "publish", "simulate", "worker", "score", "top", "churn-rate",
                                     "report", "accounts", "console", "forward", "dlq"])
def test_help_of_a_light_command_loads_no_numerical_library(command: str) -> None:
    """Only the chosen command's module is imported, and light commands stay light."""
    code = (
        "import sys\nfrom streams.cli import main\n"
        "try:\n    main([%r, '--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED:' + ','.join(sorted(m for m in ('numpy', 'scipy', 'faust', 'matplotlib') if m in sys.modules)))\n"
    ) % command
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "LOADED:", out.stdout[-300:]
