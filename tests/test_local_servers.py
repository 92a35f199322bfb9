"""``python -m streams.local``: the demo's broker and Redis alone, for one's own history (QA12 F12:
the README said how to use existing servers but not how to start the local ones without the
simulator, and QA wrote a wrapper around ``streams.local``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from streams.cli import main
from streams.kafka_admin import list_topics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _listening(address: str) -> bool:
    host, port = address.removeprefix("redis://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def test_python_m_streams_local_prints_both_exports_serves_the_readme_steps_and_stops_on_sigterm(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env["CHURNWATCH_NO_DOCKER"] = "1"  # the shipped binaries, as on a machine without Docker
    proc = subprocess.Popen([sys.executable, "-m", "streams.local"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline().strip() for _ in range(2)]
        assert lines[0].startswith("export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:"), lines
        assert lines[1].startswith("export REDIS_URL=redis://127.0.0.1:"), lines
        kafka, redis_url = (line.split("=", 1)[1] for line in lines)
        assert "Ctrl-C or SIGTERM stops both" in proc.stderr.readline()
        assert redis.Redis.from_url(redis_url).ping()
        # README's first step with the two exports: the topics on that broker
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka)
        monkeypatch.setenv("REDIS_URL", redis_url)
        assert main(["topics", "--partitions", "2"]) == 0
        capsys.readouterr()
        settings = Settings.from_env()
        assert settings.topic_events in list_topics(settings)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not _listening(kafka) and not _listening(redis_url), "both servers stopped with it"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("argv, code", [(["--help"], 0), (["--port", "9"], 2)])
def test_python_m_streams_local_help_and_arguments_start_nothing(argv: list[str], code: int) -> None:
    """QA23b F8: ``python -m streams.local --help`` started both servers and blocked. Now it says
    what the command does and exits; an argument (it takes none) is the CLI's one line, exit 2."""
    proc = subprocess.run([sys.executable, "-m", "streams.local", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert "export KAFKA_BOOTSTRAP_SERVERS=" not in proc.stdout
    if code == 0:
        assert "Takes no arguments" in proc.stdout
    else:
        assert proc.stderr.strip().splitlines() == ["python -m streams.local: error: unrecognized arguments: --port 9"]
