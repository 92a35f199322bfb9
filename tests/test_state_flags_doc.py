"""models/state.py's module header lists every bit of ``UserState.flags`` with its value: its
"Flags (...)" sentence named two of them (PAYS_SUBSCRIPTION and ACCOUNT_MEMBER) after
VISIT_CONTINUED and STAGE_HELD were added. The flags are read from the code (each constant
documented as ``UserState.flags``), so a fifth one cannot be left out. Pure: no I/O but the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import models.state

SOURCE = (Path(__file__).resolve().parents[1] / "models" / "state.py").read_text(encoding="utf-8")  # not the compiled module's


def _flags() -> dict[str, int]:
    """name -> bit of each constant whose ``#:`` comment starts "``UserState.flags``"."""
    found = re.findall(r"^#: ``UserState\.flags``:[^\n]*\n(?:#:[^\n]*\n)*(\w+): Final\[int\] = (\d+)$", SOURCE, re.M)
    return {name: int(value) for name, value in found}


def test_the_module_header_lists_every_flag_with_its_bit() -> None:
    flags = _flags()
    assert flags == {"PAYS_SUBSCRIPTION": 1, "ACCOUNT_MEMBER": 2, "VISIT_CONTINUED": 4, "STAGE_HELD": 8, "LONG_PERIOD": 16,
                     "GRIEVANCE": 32, "GRIEVANCE_LATEST": 64, "TRIAL": 256, "TRIAL_LOST": 512,
                     "EVER_PAID": 1024}
    assert all(getattr(models.state, name) == bit for name, bit in flags.items())
    doc = ast.get_docstring(ast.parse(SOURCE)) or ""
    header = doc[doc.index("Flags ("):].split("\n\n", 1)[0]  # the "Flags (...)" sentence
    listed = dict((name, int(bit)) for name, bit in re.findall(r":data:`(\w+)` \((\d+)\)", header))
    assert listed == flags, header
    described = doc[doc.index("Flags ("):].split("\n\nThe flags are", 1)[0]  # the header, then what each means
    assert all(f":data:`{name}`: " in described for name in flags), described
