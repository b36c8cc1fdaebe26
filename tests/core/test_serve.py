"""`manage.py serve` and `daphne reach.asgi:application` as real processes on a free port: HTTP works and
(embedded default, or --with-worker) beat -> broker -> worker really run inside the process: the beat-scheduled
heartbeat task's stamp shows up in /readyz. Then SIGINT stops the process cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from apps.core import services

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    sd = connection.settings_dict
    if settings.IS_POSTGRES:
        return (f"postgres://{sd['USER']}:{sd['PASSWORD'] or ''}@{sd['HOST'] or '127.0.0.1'}:{sd['PORT'] or 5432}/"
                f"{sd['NAME']}")
    return f"sqlite:///{sd['NAME']}"


def _env(tmp_path, *, redis_url: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATABASE_URL=_database_url(), REACH_VAR_DIR=str(tmp_path), BACKGROUND_HEARTBEAT_SECONDS="1",
               DJANGO_SETTINGS_MODULE="reach.settings", PYTHONUNBUFFERED="1")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _interruptible() -> None:
    # Like a terminal's Ctrl-C: a runner that started us in the background (`cmd &`) passes SIGINT down
    # ignored, and Python and Twisted leave an ignored SIGINT alone.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            preexec_fn=_interruptible)


# Deadlines only (a healthy start takes a few seconds): generous for a loaded CI machine.
def _wait_http(base: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early:\n{log.read_text()}")
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # refused while booting, or a read timeout while it is busy
            pass
        time.sleep(0.2)
    pytest.fail(f"server did not answer:\n{log.read_text()}")


def _wait_heartbeat(base: str, log: Path, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    body = {}
    while time.monotonic() < deadline:
        body = requests.get(f"{base}/readyz", timeout=5).json()
        if body["background"]["last_heartbeat_age_seconds"] is not None:
            return body
        time.sleep(0.5)
    pytest.fail(f"no heartbeat from the in-process worker: {body}\n{log.read_text()}")


def _stop(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"server did not stop on SIGINT:\n{log.read_text()}")


def _check_api(base: str, workspace) -> None:
    _, secret = services.api_key_create(workspace=workspace, name="serve", sandbox=True)
    response = requests.get(f"{base}/api/v1/workspace", headers={"Authorization": f"Bearer {secret}"}, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["sandbox"] is True
    assert response.headers["X-Request-Id"].startswith("req_")
    missing = requests.post(f"{base}/api/v1/nowhere", data="x", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert requests.get(f"{base}/admin/login/", timeout=5).status_code == 200


def test_serve_embedded_runs_web_worker_and_beat_in_one_process(tmp_path, workspace):
    port = _free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    proc = _start([sys.executable, "manage.py", "serve", "--port", str(port)], _env(tmp_path), log)
    try:
        _wait_http(base, proc, log)
        _check_api(base, workspace)
        body = _wait_heartbeat(base, log)
        assert body["mode"] == "embedded" and body["status"] == "ready", body
        from django_celery_beat.models import PeriodicTask

        names = set(PeriodicTask.objects.values_list("name", flat=True))
        assert set(settings.CELERY_BEAT_SCHEDULE) <= names  # every registered job reached the DB scheduler
    finally:
        _stop(proc, log)
    assert "background worker and beat: in this process" in log.read_text()
    assert "Traceback" not in log.read_text()


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs a real Redis (REDIS_URL)")
def test_serve_with_redis_runs_the_worker_in_process_only_when_asked(tmp_path, workspace):
    from apps.core.redis import get_redis
    from apps.core.tasks import HEARTBEAT_KEY

    get_redis().delete(HEARTBEAT_KEY)
    port = _free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    proc = _start([sys.executable, "manage.py", "serve", "--port", str(port), "--with-worker"],
                  _env(tmp_path, redis_url=settings.REDIS_URL), log)
    try:
        _wait_http(base, proc, log)
        _check_api(base, workspace)
        body = _wait_heartbeat(base, log)
        assert body["mode"] == "external" and body["checks"]["broker"] == "ok", body
    finally:
        _stop(proc, log)
    assert "background worker and beat: in this process" in log.read_text()


def test_plain_daphne_serves_the_asgi_application(tmp_path, workspace):
    port = _free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "daphne.log"
    proc = _start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "reach.asgi:application"],
                  _env(tmp_path, redis_url=settings.REDIS_URL), log)
    try:
        _wait_http(base, proc, log)
        _check_api(base, workspace)
        # a chunked body (no Content-Length) over the 1 MB JSON limit is cut off with the envelope
        chunks = (b"x" * 65536 for _ in range(40))
        response = requests.post(f"{base}/api/v1/workspace", data=chunks, timeout=10,
                                 headers={"Content-Type": "application/json"})
        assert "Content-Length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    finally:
        _stop(proc, log)
