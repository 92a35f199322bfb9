"""Valkey's instructions (callgrind) replaying a ``benchmarks.redis_write --capture``, with the
scripts of the tree that runs this.

Why: ``benchmarks.redis_replay`` compares Redis CPU seconds, which still move with the shared
box's load; an instruction count does not. The server runs under ``valgrind --tool=callgrind
--toggle-collect=processCommand``: every command a client sends is counted (the scripts' own
``redis.call``s inside it), not the reading of requests nor the writing of replies, which the
two captures share. The server has the deployment's listpack settings (streams.local
``REDIS_TUNING``). Used for the due index in slots and the flagged records of formats 7 and 8
(docs/SCALING.md, "Redis memory").

``python -m benchmarks.redis_callgrind CAPTURE.pkl --rounds N --out /tmp/vk.out``: the first N
round trips (a realistic cycle is 5: 4 reads and the write; review-heavy 13), then the commands
run (``INFO commandstats``) and the instructions (callgrind's ``totals``).
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import time

import redis as redis_lib

__all__ = ["replay_counted"]


def replay_counted(capture_path: str, rounds: int, out: str) -> tuple[int, dict[str, int]]:
    """Instructions valkey spent on the capture's first ``rounds`` round trips, and the calls by command."""
    from streams.local import REDIS_TUNING, free_port, valkey_binary
    from streams.worker.store import _script_source  # the scripts of the tree that runs this

    with open(capture_path, "rb") as f:
        capture = pickle.load(f)
    port = free_port()
    tuning = [x for k, v in REDIS_TUNING.items() for x in (f"--{k}", v)]
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--toggle-collect=processCommand",
                             valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             *tuning], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis_lib.Redis(port=port, socket_timeout=None)
        for _ in range(600):  # valgrind starts the server slowly
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                time.sleep(0.2)
        todo = capture["rounds"][:rounds]
        sha = {name: client.script_load(_script_source(name))
               for name in {c[1] for _, cmds in todo for c in cmds if c[0] == "EVALSHA"}}
        for b in range(capture["buckets"]):
            client.hset(f"{capture.get('prefix', 'cw')}:{{{b}}}:off", "|inc", capture["incarnation"])
        client.config_resetstat()
        for _, cmds in todo:
            pipe = client.pipeline(transaction=False)
            for c in cmds:
                pipe.execute_command(*((c[0], sha[c[1]], *c[2:]) if c[0] == "EVALSHA" else c))
            pipe.execute()
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}
        try:
            client.shutdown(nosave=True)
        except redis_lib.ConnectionError:
            pass  # the server went before replying: what SHUTDOWN does
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    with open(out, encoding="utf-8") as f:
        totals = next(int(line.split()[1]) for line in f if line.startswith("totals:"))
    return totals, calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--rounds", type=int, default=10 ** 9, help="the first N round trips (default: all)")
    ap.add_argument("--out", required=True, help="callgrind's output file")
    args = ap.parse_args()
    totals, calls = replay_counted(args.capture, args.rounds, args.out)
    print(f"instructions: {totals:,}")
    print("calls:", ", ".join(f"{k} {v}" for k, v in sorted(calls.items())))


if __name__ == "__main__":
    main()
