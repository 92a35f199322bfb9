"""What starting a command or a worker imports: neither numpy nor scipy until something needs them.

Why: scipy's import was ~0.5 s and numpy's ~0.1-0.15 s of the start of every command and of
every worker (2026-12-03, docs/SCALING.md), though only a fit (``train``, ``learn``), the array
paths of models.bgnbd and the alerts' partitioner use them: the scoring core, the worker, the
console and the CLI's readers import them no more (each imports them where it uses them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: What the worker, ``score``/``top``/``digest`` (streams.views), the console and ``backtest`` import.
_MODULES = ("models.engine", "models.step", "models.model", "streams.worker.service", "streams.views",
            "streams.console.app", "streams.cli.backtest")


@pytest.mark.parametrize("pure", ["", "1"], ids=["compiled", "pure"])
def test_the_worker_the_console_and_the_readers_import_neither_numpy_nor_scipy(pure: str) -> None:
    code = (f"import sys\nimport {', '.join(_MODULES)}\n"
            "print(' '.join(m for m in ('numpy', 'scipy') if m in sys.modules))")
    env = {**os.environ, "CHURNWATCH_PURE": pure}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


def test_a_fit_still_finds_numpy_and_scipy() -> None:
    """The imports moved into the functions: a fit and an array path import them when called."""
    code = ("import sys\nfrom models import bgnbd, mbgnbd\nimport numpy as np\n"
            "p = bgnbd.BgNbdParams(0.243, 4.414, 0.793, 2.426)\n"
            "print(round(float(bgnbd.p_alive(p, np.array([2.0]), np.array([30.43]), np.array([38.86]))[0]), 4), "
            "bgnbd.p_alive(p, np.int64(2), np.float32(30.43), 38.86) == bgnbd.p_alive(p, 2, float(np.float32(30.43)), 38.86), "
            "mbgnbd.fit([0, 1, 2, 3], [0.0, 5.0, 9.0, 20.0], [30.0, 30.0, 30.0, 30.0]).params.r > 0, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.7266", "True", "True", "True"]
