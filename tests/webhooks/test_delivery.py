"""Outbound delivery against a real local HTTP receiver: signatures, the retry schedule on a frozen
clock, Retry-After, timeouts, closed connections, redirects, 410, leases, fairness."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

from apps.core.events import event_type_get
from apps.core.models import Event
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from apps.webhooks.services import outbound
from apps.webhooks.services.outbound.signing import secret_key_bytes
from tests.webhooks import outbound_support
from tests.webhooks.outbound_support import emit

pytestmark = pytest.mark.django_db
receiver = outbound_support.receiver
allow_http = outbound_support.allow_http
T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def _sub(workspace, url, events=("*",), **kw):
    return outbound.subscription_create(workspace=workspace, url=url, events=list(events), **kw)


def test_a_200_delivers_once_signed_both_ways(workspace, receiver, allow_http):
    sub, secret = _sub(workspace, receiver.url("/ok"))
    event = emit(workspace, "message.inbound")

    assert outbound.events_fan_out() == 1
    outbound.deliver_due()

    [req] = receiver.for_path("/ok")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempt_count == 1 and delivery.last_status_code == 200
    body = json.loads(req.body)
    assert body == {"id": event.id, "type": "message.inbound", "created_at": body["created_at"],
                    "workspace_id": workspace.pk, "sandbox": False, "sequence": event.sequence,
                    "data": event_type_get("message.inbound").example}
    assert body["created_at"].endswith("Z")
    # The Standard Webhooks library verifies the headers unchanged.
    assert Webhook(secret).verify(req.body, req.headers) == body
    assert req.headers["webhook-id"] == delivery.id
    expected = hmac.new(secret_key_bytes(secret), req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-reach-signature"] == f"sha256={expected}"
    [attempt] = WebhookAttempt.objects.all()
    assert attempt.succeeded and attempt.status_code == 200 and attempt.request_id.startswith("req_")
    assert req.headers["x-request-id"] == attempt.request_id
    assert attempt.response_excerpt == '{"ok":true}'
    sub.refresh_from_db()
    assert sub.last_success_at is not None and sub.failing_since is None
    # Nothing left to do: a second run sends nothing more.
    assert outbound.events_fan_out() == 0
    outbound.deliver_due()
    assert len(receiver.for_path("/ok")) == 1


def test_500_follows_the_schedule_on_a_frozen_clock_then_fails(workspace, receiver, allow_http):
    receiver.script("/fail", [500])
    with time_machine.travel(T0, tick=False) as clock:
        _sub(workspace, receiver.url("/fail"))
        emit(workspace)
        outbound.events_fan_out()
        expected_times = [T0]
        for delay in [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]:
            expected_times.append(expected_times[-1] + timedelta(seconds=delay))
        for when in expected_times:
            clock.move_to(when - timedelta(seconds=1))
            outbound.deliver_due()  # not due yet: nothing is sent a second early
            clock.move_to(when)
            outbound.deliver_due()
        clock.move_to(expected_times[-1] + timedelta(days=30))
        outbound.deliver_due()

    delivery = WebhookDelivery.objects.get()
    attempts = list(delivery.attempts.order_by("number"))
    assert [a.started_at for a in attempts] == expected_times
    assert [a.number for a in attempts] == list(range(1, 11))
    assert all(a.status_code == 500 and a.error == "HTTP 500" for a in attempts)
    assert len(attempts[0].response_excerpt) == 4096  # the 10,000-byte answer read up to the cap
    assert delivery.status == "failed" and delivery.next_attempt_at is None and delivery.attempt_count == 10
    assert len(receiver.for_path("/fail")) == 10
    assert len({r.headers["webhook-id"] for r in receiver.for_path("/fail")}) == 1


def test_jitter_stays_within_twenty_percent(settings):
    settings.WEBHOOK_RETRY_JITTER = 0.2
    delays = [outbound.retry_delay_seconds(cycle_attempts=2) for _ in range(300)]
    assert all(240 <= d <= 360 for d in delays)
    assert max(delays) - min(delays) > 30
    assert outbound.retry_delay_seconds(cycle_attempts=10) is None


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_is_honoured(workspace, receiver, allow_http, code):
    receiver.script("/busy", [("status", code, {"Retry-After": "120"}), 200])
    with time_machine.travel(T0, tick=False) as clock:
        _sub(workspace, receiver.url("/busy"))
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
        delivery = WebhookDelivery.objects.get()
        assert delivery.next_attempt_at == T0 + timedelta(seconds=120)  # not the 5 s of the schedule
        clock.move_to(T0 + timedelta(seconds=119))
        outbound.deliver_due()
        assert len(receiver.for_path("/busy")) == 1
        clock.move_to(T0 + timedelta(seconds=120))
        outbound.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [code, 200]


def test_a_hanging_endpoint_times_out_and_is_retried(workspace, receiver, allow_http):
    receiver.script("/hang", [("hang", 1.5), 200])
    with time_machine.travel(T0, tick=False) as clock:
        _sub(workspace, receiver.url("/hang"))
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
        delivery = WebhookDelivery.objects.get()
        [first] = delivery.attempts.all()
        assert first.status_code is None and first.error == "timeout after 0.5s"
        assert 450 <= first.latency_ms < 3000
        assert delivery.status == "pending" and delivery.next_attempt_at == T0 + timedelta(seconds=5)
        clock.move_to(T0 + timedelta(seconds=5))
        outbound.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 2


def test_a_closed_connection_is_a_failure(workspace, receiver, allow_http):
    receiver.script("/close", [("close",)])
    _sub(workspace, receiver.url("/close"))
    emit(workspace)
    outbound.events_fan_out()
    outbound.deliver_due()
    delivery = WebhookDelivery.objects.get()
    [attempt] = delivery.attempts.all()
    assert attempt.status_code is None and not attempt.succeeded
    assert attempt.error  # e.g. "connection closed by the server before a response"
    assert delivery.status == "pending" and delivery.cycle_attempts == 1


def test_redirects_are_not_followed(workspace, receiver, allow_http):
    receiver.script("/moved", [("status", 302, {"Location": receiver.url("/target")})])
    _sub(workspace, receiver.url("/moved"))
    emit(workspace)
    outbound.events_fan_out()
    outbound.deliver_due()
    delivery = WebhookDelivery.objects.get()
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 302 and not attempt.succeeded
    assert attempt.error.startswith("redirect not followed (Location: http://127.0.0.1:")
    assert receiver.for_path("/target") == []
    assert delivery.status == "pending"


def test_410_disables_the_subscription_at_once(workspace, receiver, allow_http):
    receiver.script("/gone", [410])
    sub, _ = _sub(workspace, receiver.url("/gone"))
    emit(workspace)
    emit(workspace)
    outbound.events_fan_out()
    outbound.deliver_due(concurrency=1)
    sub.refresh_from_db()
    assert sub.enabled is False and sub.disabled_reason == "gone" and sub.flagged is True
    statuses = sorted(WebhookDelivery.objects.values_list("status", flat=True))
    # The first got 410 and failed; the second waits (not sent to a disabled endpoint).
    assert statuses == ["failed", "pending"]
    assert len(receiver.for_path("/gone")) == 1
    # New events are not fanned out to a disabled subscription.
    emit(workspace)
    outbound.events_fan_out()
    assert WebhookDelivery.objects.count() == 2


def test_no_success_for_five_days_disables_and_flags(workspace, receiver, allow_http):
    receiver.script("/down", [500])
    with time_machine.travel(T0, tick=False) as clock:
        sub, _ = _sub(workspace, receiver.url("/down"))
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
        sub.refresh_from_db()
        assert sub.failing_since == T0 and sub.enabled
        clock.move_to(T0 + timedelta(days=4, hours=23))
        outbound.deliver_due()
        sub.refresh_from_db()
        assert sub.enabled
        clock.move_to(T0 + timedelta(days=5, seconds=1))
        assert outbound.subscriptions_disable_failing() == 1
    sub.refresh_from_db()
    assert sub.enabled is False and sub.flagged is True and sub.disabled_reason == "failing"


def test_a_success_resets_the_failing_clock(workspace, receiver, allow_http):
    receiver.script("/flaky", [500, 200])
    with time_machine.travel(T0, tick=False) as clock:
        sub, _ = _sub(workspace, receiver.url("/flaky"))
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
        clock.move_to(T0 + timedelta(seconds=5))
        outbound.deliver_due()
        clock.move_to(T0 + timedelta(days=6))
        assert outbound.subscriptions_disable_failing() == 0
    sub.refresh_from_db()
    assert sub.enabled and sub.failing_since is None and sub.last_success_at == T0 + timedelta(seconds=5)


def test_rotation_signs_with_both_secrets_for_24_hours(workspace, receiver, allow_http):
    with time_machine.travel(T0, tick=False) as clock:
        sub, old = _sub(workspace, receiver.url("/rot"))
        new = outbound.subscription_rotate_secret(subscription=sub)
        assert new != old and new.startswith("whsec_") and len(base64.b64decode(new[6:])) == 32
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
        [req] = receiver.for_path("/rot")
        assert len(req.headers["webhook-signature"].split(" ")) == 2
        Webhook(new).verify(req.body, req.headers)
        Webhook(old).verify(req.body, req.headers)  # receivers not yet updated keep verifying
        clock.move_to(T0 + timedelta(hours=24, seconds=1))
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
        later = receiver.for_path("/rot")[1]
        assert len(later.headers["webhook-signature"].split(" ")) == 1
        Webhook(new).verify(later.body, later.headers)
        with pytest.raises(Exception):
            Webhook(old).verify(later.body, later.headers)


def test_event_filters_and_sandbox_separation(workspace, receiver, allow_http):
    sandbox = workspace.sandbox
    _sub(workspace, receiver.url("/all"))
    _sub(workspace, receiver.url("/optout"), events=["contact.opted_out"])
    _sub(sandbox, receiver.url("/sandbox"))
    emit(workspace, "message.inbound")
    emit(workspace, "contact.opted_out")
    emit(workspace, "conversation.note_added")  # internal, not an API.md type: never delivered
    emit(sandbox, "message.sent")
    outbound.events_fan_out()
    outbound.deliver_due()
    assert sorted(json.loads(r.body)["type"] for r in receiver.for_path("/all")) == [
        "contact.opted_out", "message.inbound"]
    assert [json.loads(r.body)["type"] for r in receiver.for_path("/optout")] == ["contact.opted_out"]
    [sandboxed] = receiver.for_path("/sandbox")
    body = json.loads(sandboxed.body)
    assert body["sandbox"] is True and body["workspace_id"] == workspace.pk and body["type"] == "message.sent"


def test_a_new_subscription_starts_at_the_present(workspace, receiver, allow_http):
    emit(workspace)
    _sub(workspace, receiver.url("/new"))
    outbound.events_fan_out()
    assert WebhookDelivery.objects.count() == 0
    emit(workspace)
    assert outbound.events_fan_out() == 1


def test_one_delivery_per_event_and_subscription_however_often_fanned_out(workspace, receiver, allow_http):
    sub1, _ = _sub(workspace, receiver.url("/a"))
    sub2, _ = _sub(workspace, receiver.url("/b"))
    for _ in range(30):
        emit(workspace)
    assert outbound.events_fan_out(batch=7) == 60
    # Even a dispatcher whose cursor went back (a crash before commit) cannot double a delivery.
    WebhookSubscription.objects.update(event_cursor=0)
    assert outbound.events_fan_out() == 60  # attempted, ignored by the unique constraint
    assert WebhookDelivery.objects.count() == 60
    assert WebhookDelivery.objects.filter(subscription=sub1).count() == 30
    events = list(Event.objects.filter(workspace=workspace).order_by("sequence").values_list("id", flat=True))
    assert list(WebhookDelivery.objects.filter(subscription=sub2).order_by("event_sequence")
                .values_list("event_id", flat=True)) == events


def test_deliveries_of_one_subscription_go_in_event_order(workspace, receiver, allow_http):
    _sub(workspace, receiver.url("/order"))
    events = [emit(workspace) for i in range(20)]
    outbound.events_fan_out()
    outbound.deliver_due(concurrency=1)
    assert [json.loads(r.body)["id"] for r in receiver.for_path("/order")] == [e.id for e in events]


def test_a_hanging_endpoint_does_not_block_another_subscription(workspace, receiver, allow_http, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0
    receiver.script("/slow", [("hang", 4.0)])
    _sub(workspace, receiver.url("/slow"))
    _sub(workspace, receiver.url("/fast"))
    for _ in range(40):
        emit(workspace)
    outbound.events_fan_out()
    with outbound.DeliveryRunner(concurrency=16, per_subscription=4) as runner:
        start = datetime.now(UTC)
        while len(receiver.for_path("/fast")) < 40 and datetime.now(UTC) - start < timedelta(seconds=10):
            runner.claim()
            runner.pump(wait=0.01)
        fast_done = datetime.now(UTC) - start
        slow_so_far = len(receiver.for_path("/slow"))
    assert len(receiver.for_path("/fast")) == 40
    assert fast_done < timedelta(seconds=3.5)  # all 40 done while the slow endpoint still hangs
    assert slow_so_far <= 4  # the slow one held at most its per-subscription share


def test_a_killed_worker_is_taken_over_after_its_lease_never_twice_at_once(workspace, receiver, allow_http):
    with time_machine.travel(T0, tick=False) as clock:
        _sub(workspace, receiver.url("/lease"))
        emit(workspace)
        outbound.events_fan_out()
        # Worker A claims, and dies before recording anything.
        [claimed_a] = outbound.deliveries_claim_due(limit=10)
        assert outbound.deliveries_claim_due(limit=10) == []  # nobody else may take it while leased
        clock.move_to(T0 + timedelta(seconds=59))
        assert outbound.deliveries_claim_due(limit=10) == []
        clock.move_to(T0 + timedelta(seconds=61))
        outbound.deliver_due()  # worker B, after the lease
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "succeeded" and delivery.claimed_until is None
        # A comes back from the dead with a stale result: logged, but it moves nothing.
        stale = outbound.AttemptOutcome(claimed=claimed_a, request_id="req_stale", started_at=T0,
                                        finished_at=T0, status_code=500, error="HTTP 500")
        outbound.attempts_record(outcomes=[stale])
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 1
    assert [r.headers["webhook-id"] for r in receiver.for_path("/lease")] == [delivery.id]


def test_purge_drops_old_payloads_only(workspace, receiver, allow_http):
    with time_machine.travel(T0, tick=False) as clock:
        _sub(workspace, receiver.url("/p"))
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
        emit(workspace)  # stays pending: never purged
        receiver.script("/p", [500])
        outbound.events_fan_out()
        clock.move_to(T0 + timedelta(days=29))
        assert outbound.payloads_purge() == 0
        clock.move_to(T0 + timedelta(days=31))
        assert outbound.payloads_purge() == 1
    done = WebhookDelivery.objects.get(status="succeeded")
    assert done.payload == "" and done.payload_purged_at is not None
    assert done.attempts.count() == 1  # the log stays
    assert WebhookDelivery.objects.get(status="pending").payload != ""


def test_one_record_of_a_success_and_a_failure_moves_each_delivery_its_way(workspace, receiver, allow_http):
    # A batch with a failure in it takes the general path on every backend (an all-success batch has its own
    # statement on PostgreSQL): the successes' bulk update runs there, on both sides of its vendor fork.
    with time_machine.travel(T0, tick=False):
        ok_sub, _ = _sub(workspace, receiver.url("/ok"))
        bad_sub, _ = _sub(workspace, receiver.url("/bad"))
        emit(workspace)
        assert outbound.events_fan_out() == 2
        claimed = {c.subscription_id: c for c in outbound.deliveries_claim_due(limit=10)}
        assert set(claimed) == {ok_sub.pk, bad_sub.pk}
        outbound.attempts_record(outcomes=[
            outbound.AttemptOutcome(claimed=claimed[ok_sub.pk], request_id="req_ok", started_at=T0,
                                    finished_at=T0, status_code=200),
            outbound.AttemptOutcome(claimed=claimed[bad_sub.pk], request_id="req_bad", started_at=T0,
                                    finished_at=T0, status_code=500, error="HTTP 500"),
        ])

    ok = WebhookDelivery.objects.get(subscription=ok_sub)
    bad = WebhookDelivery.objects.get(subscription=bad_sub)
    assert (ok.status, ok.attempt_count, ok.cycle_attempts, ok.last_status_code, ok.last_error) == \
        ("succeeded", 1, 1, 200, "")
    assert (ok.succeeded_at, ok.next_attempt_at, ok.claimed_until, ok.claim_token) == (T0, None, None, "")
    assert (bad.status, bad.attempt_count, bad.cycle_attempts, bad.last_status_code, bad.last_error) == \
        ("pending", 1, 1, 500, "HTTP 500")
    assert (bad.succeeded_at, bad.claimed_until, bad.claim_token) == (None, None, "")
    assert T0 + timedelta(seconds=4) <= bad.next_attempt_at <= T0 + timedelta(seconds=6)  # 5 s ± 20%
    assert sorted(WebhookAttempt.objects.values_list("delivery_id", "number", "status_code", "succeeded")) == \
        sorted([(ok.pk, 1, 200, True), (bad.pk, 1, 500, False)])
    ok_sub.refresh_from_db()
    bad_sub.refresh_from_db()
    assert (ok_sub.last_success_at, ok_sub.failing_since, ok_sub.enabled) == (T0, None, True)
    assert (bad_sub.last_success_at, bad_sub.failing_since, bad_sub.enabled) == (None, T0, True)
    assert receiver.for_path("/ok") == [] and receiver.for_path("/bad") == []  # recorded, nothing sent
