"""What every peer process shares: its command line and the result file the benchmark reads."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["PeerArgs", "Progress", "parse_args"]


@dataclass
class PeerArgs:
    bootstrap: str
    topic: str
    events: int
    out: Path
    group: str
    state_dir: Path


def parse_args(prog: str, argv: list[str] | None = None) -> PeerArgs:
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--events", type=int, required=True, help="stop once this many events were processed")
    ap.add_argument("--out", type=Path, required=True, help="JSON result file")
    ap.add_argument("--group", required=True)
    ap.add_argument("--state-dir", type=Path, required=True)
    a = ap.parse_args(argv)
    return PeerArgs(a.bootstrap, a.topic, a.events, a.out, a.group, a.state_dir)


@dataclass
class Progress:
    """Counts processed events; the first and the last event's wall time give the rate."""

    expected: int
    out: Path
    seen: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    cpu_first_s: float = 0.0  # CPU seconds of the whole process (every thread) at the first event
    cpu_last_s: float = 0.0
    users: set[str] = field(default_factory=set)

    def tick(self, user: str) -> bool:
        """One event done; True once the expected count is reached (the result file is then written)."""
        now = time.time()
        if not self.seen:
            self.first_s, self.cpu_first_s = now, time.process_time()
        self.seen += 1
        self.last_s = now
        self.users.add(user)
        if self.seen == self.expected:
            self.cpu_last_s = time.process_time()
            self.write()
            return True
        return False

    def write(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k not in ("users", "out")}
        data["users"] = len(self.users)
        data["pid"] = os.getpid()
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.out)
