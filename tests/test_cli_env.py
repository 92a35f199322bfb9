"""The command's process settings: one BLAS thread unless the operator sets another count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PRINT = "import os, sys, streams.cli; assert 'numpy' not in sys.modules; print(os.environ['OPENBLAS_NUM_THREADS'])"


def _threads_seen(setting: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if setting is not None:
        env["OPENBLAS_NUM_THREADS"] = setting
    done = subprocess.run([sys.executable, "-c", _PRINT], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_command_uses_one_blas_thread_unless_the_operator_sets_it() -> None:
    assert _threads_seen(None) == "1"
    assert _threads_seen("4") == "4"
