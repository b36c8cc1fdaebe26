"""The runner's HTTP process (httpside.py): a crash of either side loses nothing. The database is the
truth: what a dead HTTP process held is claimed again after its lease, the same row and webhook-id,
and recorded exactly once; a dead parent's HTTP process exits on its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.webhooks.models import WebhookAttempt, WebhookDelivery
from apps.webhooks.services import outbound
from tests.webhooks import outbound_support
from tests.webhooks.outbound_support import emit
from tests.webhooks.test_delivery_durability import _spawn_worker, _wait_for

receiver = outbound_support.receiver
allow_http = outbound_support.allow_http
needs_postgres = pytest.mark.skipif(
    not settings.IS_POSTGRES or not settings.REDIS_URL,
    reason="the HTTP process runs only on PostgreSQL outside a transaction (set DATABASE_URL and REDIS_URL)",
)


def _gone(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # ours: reap it; not ours (a worker's child): nothing
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


@pytest.mark.django_db
def test_inside_a_transaction_the_runner_keeps_http_on_a_thread(workspace):
    with outbound.DeliveryRunner(concurrency=4) as runner:
        assert runner.http is None and runner.loop is not None


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_http_process_is_replaced_and_every_delivery_is_recorded_once(workspace, receiver, allow_http):
    allow_http.WEBHOOK_TIMEOUT_SECONDS = 10.0
    allow_http.WEBHOOK_LEASE_SECONDS = 2.0
    sub, _ = outbound.subscription_create(workspace=workspace, url=receiver.url("/k"), events=["*"])
    # Every request of the first claim hangs, so all sixteen are in flight when it dies, whatever the
    # machine's load (with some answered at once, how many of those outcomes got back before the kill
    # was a race).
    receiver.script("/k", [("hang", 1.5)] * 16 + [200])
    events = [emit(workspace) for i in range(60)]
    outbound.events_fan_out()

    def all_succeeded() -> bool:
        return WebhookDelivery.objects.filter(subscription=sub, status="succeeded").count() == 60

    with outbound.DeliveryRunner(concurrency=16) as runner:
        assert runner.http is not None  # PostgreSQL, no transaction: the forked HTTP process sends
        first = runner.http.pid
        assert runner.claim() == 16
        assert _wait_for(lambda: len(receiver.for_path("/k")) >= 16, 20)
        runner.http.kill()  # mid-batch: sixteen requests in flight, their outcomes never come back
        start = time.monotonic()
        runner.run(until_idle=False, stop=lambda: all_succeeded() or time.monotonic() - start > 60)
        assert runner.http.pid != first and len(runner.http_restarts) == 1
    assert _gone(first)
    assert all_succeeded()
    deliveries = {d.event_id: d for d in WebhookDelivery.objects.filter(subscription=sub)}
    assert WebhookDelivery.objects.filter(claimed_until__isnull=False).count() == 0  # nothing stuck in flight
    # In the database's view each was attempted once: the dead process's attempts were never recorded...
    assert {d.attempt_count for d in deliveries.values()} == {1}
    assert WebhookAttempt.objects.filter(delivery__subscription=sub).count() == 60
    # ...while the receiver saw the sixteen lost ones twice, under the same webhook-id both times.
    received: dict[str, list[str]] = {}
    for req in receiver.for_path("/k"):
        received.setdefault(json.loads(req.body)["id"], []).append(req.headers["webhook-id"])
    assert set(received) == {e.id for e in events}
    assert all(set(ids) == {deliveries[eid].id} for eid, ids in received.items())
    assert sum(len(ids) for ids in received.values()) == 76


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_the_http_process_of_a_sigkilled_worker_exits(workspace, receiver, allow_http):
    outbound.subscription_create(workspace=workspace, url=receiver.url("/orphan"), events=["*"])
    receiver.script("/orphan", [("hang", 30)])
    for _ in range(5):
        emit(workspace)
    worker = _spawn_worker("--concurrency", "8", timeout=60)
    try:
        assert _wait_for(lambda: len(receiver.for_path("/orphan")) >= 5, 30), worker.stderr.read1(4000)
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
        if not children.exists():
            pytest.skip("no /proc/<pid>/task/<tid>/children on this kernel")
        [child] = [int(pid) for pid in children.read_text().split()]
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    # Its socket closed with the parent: the HTTP process drops its (leased) requests and exits, instead
    # of lingering as an orphan holding connections.
    assert _wait_for(lambda: _gone(child), 10)


def test_each_forked_http_process_draws_its_own_request_ids():
    from apps.webhooks.services.outbound.sender import _request_random

    read, write = os.pipe()
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, f"{_request_random.getrandbits(80)}\n".encode())
            os._exit(0)
        os.waitpid(pid, 0)
    os.close(write)
    with os.fdopen(read) as stream:
        first, second = stream.read().split()
    assert first != second  # reseeded after the fork, not the parent's copied sequence
