"""The fault suite (bench/faults.py) in a short form: its own PostgreSQL and Redis, the web process and the
worker SIGKILLed under load, PostgreSQL restarted, Redis flushed and restarted mid-campaign; every count that
must be 0 is 0. Slow (a few minutes): `pytest -m slow`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def _pg_bin(name: str) -> str | None:
    return shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="runs once, beside the PostgreSQL + Redis suite"),
    pytest.mark.skipif(not (_pg_bin("initdb") and _pg_bin("pg_ctl") and all(
        shutil.which(t) for t in ("redis-server", "redis-cli", "psql"))),
                       reason="needs the PostgreSQL server binaries, psql and redis-server"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def workdir():
    # Not under pytest's tmp_path: the private PostgreSQL runs as the `postgres` user, which must reach it.
    path = Path(tempfile.mkdtemp(prefix="reach-faults-test-"))
    path.chmod(0o755)
    yield path / "run"
    shutil.rmtree(path, ignore_errors=True)


def test_fault_suite_loses_nothing_and_sends_nothing_twice(workdir):
    args = [sys.executable, "bench/faults.py", "--quick", "--json", "--seconds", "15", "--recipients", "60",
            "--settle", "120", "--workdir", str(workdir), "--pg-port", str(_free_port()),
            "--redis-port", str(_free_port()), "--web-port", str(_free_port()), "--meta-port", str(_free_port())]
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, timeout=900)
    assert run.stdout, run.stderr.decode()[-4000:]
    result = json.loads(run.stdout)
    counts = {k: result[k] for k in ("accepted_lost", "sent_to_meta_more_than_once", "webhook_deliveries_lost",
                                     "campaign_doubled", "campaign_skipped")}
    assert counts == dict.fromkeys(counts, 0), (result, run.stderr.decode()[-4000:])
    assert result["api_sends_accepted"] > 0 and result["campaign_status"] == "completed", result
    assert result["campaign_recipients"] == 60 and result["campaign_messages"] == 60, result
    assert run.returncode == 0
