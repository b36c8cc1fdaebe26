"""SIGTERM under load, real processes: `manage.py serve`, plain `daphne` and `celery worker` stop accepting,
let what is in flight finish (bounded), and exit 0. Before: request threads waited forever on the stopped
event loop (ApiErrorMiddleware -> AsyncToSync) and the interpreter joined them at exit; a worker's dispatch
drain held the warm shutdown for its whole budget."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests
from django.conf import settings

from apps.core import services
from tests.core.test_serve import _env, _free_port, _start, _wait_http

pytestmark = pytest.mark.django_db(transaction=True)
EXIT_WITHIN = 25  # SHUTDOWN_GRACE_SECONDS (10) + the in-process worker's stop + a loaded machine's slack


def _sigterm_under_load(proc: subprocess.Popen, base: str, secret: str, log) -> tuple[int, float, Counter]:
    results: list = []
    stop = threading.Event()

    def load() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.get(f"{base}/api/v1/workspace", headers={"Authorization": f"Bearer {secret}"},
                                timeout=30)
                results.append(r.status_code)
            except requests.ConnectionError:  # refused once the port is closed, or a closed keep-alive
                results.append("refused")
            except requests.RequestException as exc:
                results.append(type(exc).__name__)

    threads = [threading.Thread(target=load) for _ in range(12)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while results.count(200) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=EXIT_WITHIN + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"no exit after SIGTERM under load:\n{log.read_text()[-3000:]}")
        took = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    return code, took, Counter(results)


def _check(code, took, counts, log) -> None:
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert took < EXIT_WITHIN, (took, text[-3000:])
    assert counts[200] >= 50
    # Every answer is a success, or 503 for a request that arrived on a kept-alive connection while draining;
    # nothing timed out and nothing failed with a 5xx of ours.
    assert set(counts) <= {200, 503, "refused"}, counts
    assert "shutting down: no new connections" in text
    assert "Traceback" not in text


def test_serve_sigterm_under_load_drains_and_exits_0(tmp_path, workspace):
    _, secret = services.api_key_create(workspace=workspace, name="load", sandbox=True)
    port = _free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    args = [sys.executable, "manage.py", "serve", "--port", str(port)]
    if settings.REDIS_URL:
        args.append("--with-worker")
    proc = _start(args, _env(tmp_path, redis_url=settings.REDIS_URL), log)
    _wait_http(base, proc, log)
    _check(*_sigterm_under_load(proc, base, secret, log), log)


@pytest.mark.slow
def test_daphne_sigterm_under_load_drains_and_exits_0(tmp_path, workspace):
    _, secret = services.api_key_create(workspace=workspace, name="load", sandbox=True)
    port = _free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "daphne.log"
    proc = _start([sys.executable, "-m", "daphne", "-v", "1", "-b", "127.0.0.1", "-p", str(port),
                   "reach.asgi:application"], _env(tmp_path, redis_url=settings.REDIS_URL), log)
    _wait_http(base, proc, log)
    _check(*_sigterm_under_load(proc, base, secret, log), log)


@pytest.mark.slow
@pytest.mark.skipif(not settings.REDIS_URL, reason="a celery worker process needs a real broker (REDIS_URL)")
def test_celery_worker_sigterm_mid_drain_exits_0_and_leaves_the_rest_queued(tmp_path, workspace):
    from apps.conversations.models import Message
    from apps.conversations.services.dispatch import kicks
    from apps.conversations.services.sending import message_send_internal
    from apps.wabas.models import PhoneNumber
    from tests.conversations.send_support import contact, redis_keys_clear

    redis_keys_clear()
    sandbox = workspace.sandbox
    number = sandbox.phone_numbers.get()
    PhoneNumber.objects.filter(pk=number.pk).update(throughput_mps=4)  # 120 messages: a 30 s drain
    number.refresh_from_db()
    ids = [message_send_internal(workspace=sandbox, phone_number=number, message_type="text", sent_by="api",
                                 contact=contact(sandbox, f"+1555200{i:04d}"), content={"body": f"hi {i}"}).pk
           for i in range(120)]
    log = tmp_path / "worker.log"
    env = _env(tmp_path, redis_url=settings.REDIS_URL)
    proc = _start([sys.executable, "-m", "celery", "-A", "reach", "worker", "--pool", "threads", "-c", "2",
                   "--without-mingle", "--without-gossip", "-l", "info"], env, log)
    try:
        kicks._enqueue(number.pk)
        deadline = time.monotonic() + 60
        while not Message.objects.filter(pk__in=ids, status="sent").exists():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    # Not the drain's 30 s budget: it finishes only the batches already on the wire (two of 10 messages at 4 mps,
    # about 5 s) before Celery's own warm shutdown. Measured 8.2 s alone and 10.3 s beside the embedded suite
    # in CI, where a 10 s bound failed once; a drain that ran out its budget would take about 30 s.
    assert took < 20, (took, text[-3000:])
    statuses = Counter(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses["sending"] == 0  # every claim recorded before exit
    assert statuses["sent"] + statuses["delivered"] + statuses["read"] + statuses["queued"] == 120, statuses
    assert statuses["queued"] > 0, statuses  # the rest stays queued for the next worker
