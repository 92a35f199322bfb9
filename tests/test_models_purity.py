"""models/ is pure: importing it pulls in no Kafka, Redis or Faust client, and its source reads
no clock (event time comes in as an argument)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "models"
FORBIDDEN_MODULES = ("kafka", "aiokafka", "redis", "faust", "confluent_kafka", "streams", "orjson")
# Wall-clock and sleeping calls, however imported.
CLOCK = re.compile(
    r"\b(time\.(time|time_ns|monotonic|perf_counter|sleep)|datetime\.(now|utcnow|today)|date\.today)\s*\("
    r"|from\s+time\s+import|import\s+time\b"
)


def test_importing_every_model_module_loads_no_io_client() -> None:
    names = sorted(p.stem for p in MODELS.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        + "".join(f"import models.{n}\n" for n in names)
        + f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_MODULES!r})\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=MODELS.parent, capture_output=True, text=True, check=True)
    assert len(names) >= 10  # the scoring modules are all there
    assert out.stdout.strip() == ""


def test_model_source_reads_no_clock() -> None:
    offenders = []
    for path in sorted(MODELS.glob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if CLOCK.search(code):
                offenders.append(f"{path.name}:{lineno}: {line.strip()}")
    assert offenders == []


def test_the_clock_pattern_catches_what_it_should() -> None:
    assert CLOCK.search("now = time.time()")
    assert CLOCK.search("from time import monotonic")
    assert CLOCK.search("t = datetime.now(timezone.utc)")
    assert not CLOCK.search("now_s: int  # event time, never time.time")
