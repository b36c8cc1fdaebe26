"""Idempotency-Key per API.md: replay, 422 on a different body, 409 in flight, 24 h retention, scoping."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import idempotency
from apps.core.models import AuditLog, IdempotencyRecord
from apps.core.tasks import idempotency_records_purge
from tests.core import urls

pytestmark = [pytest.mark.urls("tests.core.urls")]


@pytest.fixture(autouse=True)
def _reset_executions():
    urls.EXECUTIONS.clear()
    yield
    urls.EXECUTIONS.clear()


def _post(client, body, key, path="/api/v1/_test/echo"):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_replay_identical_request_returns_the_stored_response(live_api):
    first = _post(live_api, {"name": "a"}, "key-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    second = _post(live_api, {"name": "a"}, "key-1")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert second.json() == {"name": "a", "run": 1}
    assert second["Content-Type"] == "application/json"
    assert urls.EXECUTIONS == ["a"]
    assert second["X-RateLimit-Limit"]  # a replay still counts and reports the rate limit


@pytest.mark.django_db
def test_quoted_key_is_the_same_key(live_api):
    _post(live_api, {"name": "a"}, "key-q")
    assert _post(live_api, {"name": "a"}, '"key-q"')["Idempotent-Replayed"] == "true"
    assert urls.EXECUTIONS == ["a"]


@pytest.mark.django_db
def test_same_key_different_body_is_422(live_api):
    assert _post(live_api, {"name": "a"}, "key-2").status_code == 201
    response = _post(live_api, {"name": "b"}, "key-2")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert urls.EXECUTIONS == ["a"]


@pytest.mark.django_db
def test_same_key_other_path_is_422(live_api):
    assert _post(live_api, {"name": "a"}, "key-3").status_code == 201
    response = live_api.post("/api/v1/_test/echo?x=1", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="key-3")
    assert response.status_code == 422


@pytest.mark.django_db
def test_validation_errors_are_replayed_too(live_api):
    first = _post(live_api, {"name": ""}, "key-4")
    assert first.status_code == 400
    second = _post(live_api, {"name": ""}, "key-4")
    assert second.status_code == 400 and second["Idempotent-Replayed"] == "true"
    assert second.json()["error"]["code"] == "VALIDATION_FAILED"


@pytest.mark.django_db
def test_server_error_releases_the_key(live_api):
    assert _post(live_api, {}, "key-5", path="/api/v1/_test/boom").status_code == 500
    assert not IdempotencyRecord.objects.filter(key="key-5").exists()
    assert _post(live_api, {}, "key-5", path="/api/v1/_test/boom").status_code == 500


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "  ", "x" * 256, "caf\u00e9", "tab\there", '""'])
def test_invalid_idempotency_key_is_400(live_api, bad):
    response = _post(live_api, {"name": "a"}, bad)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert error["details"]["field"] == "Idempotency-Key"
    assert urls.EXECUTIONS == []


@pytest.mark.django_db
def test_longest_valid_key_is_accepted(live_api):
    assert _post(live_api, {"name": "a"}, "k" * 255).status_code == 201


@pytest.mark.django_db
def test_keys_are_scoped_per_workspace_and_sandbox(workspace, other_workspace, api_client_for):
    clients = [api_client_for(workspace), api_client_for(workspace, sandbox=True), api_client_for(other_workspace)]
    for client in clients:
        response = _post(client, {"name": "same"}, "shared-key")
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response
    assert urls.EXECUTIONS == ["same", "same", "same"]
    assert IdempotencyRecord.objects.filter(key="shared-key").count() == 3


@pytest.mark.django_db
def test_get_ignores_the_header(live_api):
    assert live_api.get("/api/v1/_test/echo", HTTP_IDEMPOTENCY_KEY="bad key \u00e9").status_code == 200


@pytest.mark.django_db
def test_records_expire_after_24h_and_are_purged(workspace, live_api):
    assert _post(live_api, {"name": "a"}, "old-key").status_code == 201
    IdempotencyRecord.objects.filter(key="old-key").update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert _post(live_api, {"name": "b"}, "kept-key").status_code == 201
    # an expired key is free again, even with a different body
    assert _post(live_api, {"name": "c"}, "old-key").status_code == 201
    IdempotencyRecord.objects.filter(key="old-key").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["kept-key"]


def test_purge_job_is_registered_with_beat():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["core.idempotency_purge"]
    assert entry["task"] == "apps.core.tasks.idempotency_records_purge"
    assert entry["schedule"] == timedelta(hours=1)


@pytest.mark.django_db
def test_stale_in_flight_claim_is_taken_over(workspace):
    record = idempotency.idempotency_begin(workspace=workspace, key="k", fingerprint="f")
    assert isinstance(record, IdempotencyRecord)
    from apps.core.errors import IdempotencyConflict

    with pytest.raises(IdempotencyConflict):
        idempotency.idempotency_begin(workspace=workspace, key="k", fingerprint="f")
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    again = idempotency.idempotency_begin(workspace=workspace, key="k", fingerprint="f")
    assert isinstance(again, IdempotencyRecord) and again.pk != record.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_execute_once(workspace, make_key):
    """Real threads, real database: one request runs; the other gets 409 (in flight) or the replay."""
    secret = make_key(workspace)
    n = 4
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def call(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        barrier.wait()
        try:
            results[i] = client.post("/api/v1/_test/echo?sleep=0.5", {"name": "once"}, format="json",
                                     HTTP_IDEMPOTENCY_KEY="race-key")
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in results)
    assert urls.EXECUTIONS == ["once"]
    assert statuses.count(201) >= 1
    winners = [r for r in results if r.status_code == 201 and "Idempotent-Replayed" not in r]
    assert len(winners) == 1
    for r in results:
        if r is winners[0]:
            continue
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
        else:
            assert r.status_code == 201 and r["Idempotent-Replayed"] == "true"
            assert r.json() == winners[0].json()
    if connection.vendor == "postgresql":
        # With a 0.5 s handler the others arrive while it is in flight. (SQLite has one writer: the others wait
        # for the winner's transaction, which holds its stored answer, and get the replay.)
        assert 409 in statuses
    after = _post_with(secret, {"name": "once"}, "race-key")
    assert after["Idempotent-Replayed"] == "true" and after.json() == {"name": "once", "run": 1}
    assert AuditLog.objects.filter(target_type="echo", target_id="once", status_code=201).count() == 1


def _post_with(secret, body, key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.post("/api/v1/_test/echo?sleep=0.5", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_request_that_dies_before_storing_its_answer_wrote_nothing(workspace, api_client_for, settings,
                                                                     monkeypatch):
    """The answer commits with the writes: the database lost (or the process killed) between a send's insert
    and storing its answer leaves no message behind a key that looks in flight, so the client's retry
    (once the in-flight lease ran out) is the only send, not a second one."""
    from django.db import OperationalError

    from apps.conversations.models import Message
    from apps.core.api import base
    from tests.conversations.send_support import template

    api = api_client_for(workspace, sandbox=True)
    api.raise_request_exception = False
    sandbox = workspace.sandbox
    template(sandbox, sandbox.phone_numbers.get().waba)
    body = {"to": "+15557654321", "template": {"name": "order_update", "language": "en", "variables": ["A", "1"]}}
    real = base.idempotency_complete

    def lost(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(base, "idempotency_complete", lost)
    assert api.post("/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="k-lost").status_code == 500
    assert Message.objects.filter(workspace=sandbox).count() == 0
    assert IdempotencyRecord.objects.get(key="k-lost").state == IdempotencyRecord.State.IN_FLIGHT
    assert api.post("/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="k-lost").status_code == 409
    monkeypatch.setattr(base, "idempotency_complete", real)
    settings.IDEMPOTENCY_IN_FLIGHT_SECONDS = 0  # the lease of the dead request ran out
    retry = api.post("/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="k-lost")
    assert retry.status_code == 202
    assert list(Message.objects.filter(workspace=sandbox).values_list("pk", flat=True)) == [retry.json()["id"]]
    replay = api.post("/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="k-lost")
    assert replay["Idempotent-Replayed"] == "true" and replay.json()["id"] == retry.json()["id"]
