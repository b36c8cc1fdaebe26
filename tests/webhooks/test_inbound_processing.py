"""Processing the stored-webhook queue: account/template updates, the sweeper behind a lost enqueue,
leases, retries and the admin's reprocess."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts.models import ConsentRecord, Contact
from apps.conversations.models import Message
from apps.core.models import Event
from apps.message_templates.models import MessageTemplate
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import (
    META_WABA_ID,
    body_of,
    connect_number,
    deliver,
    fixture,
    text_payload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(workspace):
    return connect_number(workspace)


def _template(workspace, number, **kw):
    defaults = {"name": "abandoned_cart", "language": "en", "category": "MARKETING", "status": "PENDING",
                "meta_template_id": "1689556908129835"}
    defaults.update(kw)
    return MessageTemplate.objects.create(workspace=workspace, waba=number.waba, **defaults)


def test_template_rejected_updates_row_and_emits_one_event(workspace, number):
    template = _template(workspace, number)
    outcome = deliver(fixture("template_rejected.json"))
    assert outcome.status == "processed", outcome.error
    template.refresh_from_db()
    assert template.status == "REJECTED"
    assert Event.objects.filter(type="template.status_changed").count() == 1
    # Meta redelivers: the second copy changes nothing and emits nothing.
    again = copy.deepcopy(fixture("template_rejected.json"))
    again["entry"][0]["time"] = 1751247999
    assert deliver(again).status == "processed"
    assert Event.objects.filter(type="template.status_changed").count() == 1


def test_template_approved_event(workspace, number):
    template = _template(workspace, number)
    payload = copy.deepcopy(fixture("template_rejected.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value.update({"event": "APPROVED", "reason": "NONE"})
    value.pop("rejection_info")
    deliver(payload)
    template.refresh_from_db()
    assert template.status == "APPROVED"
    event = Event.objects.get(type="template.status_changed")
    assert event.workspace == workspace


def test_phone_number_quality_update_updates_row_and_emits_one_event(workspace, number):
    payload = {"object": "whatsapp_business_account", "entry": [{"id": META_WABA_ID, "changes": [{
        "field": "phone_number_quality_update",
        "value": {"display_phone_number": "15550783881", "event": "THROUGHPUT_UPGRADE",
                  "current_limit": "TIER_10K", "old_limit": "TIER_1K"}}]}]}
    outcome = deliver(payload)
    assert outcome.status == "processed", outcome.error
    number.refresh_from_db()
    assert number.messaging_tier == "TIER_10K"
    assert Event.objects.filter(type="phone_number.quality_changed").count() == 1
    assert outcome.summary == {"phone_number_quality": 1}


def test_management_batch_applies_what_it_knows_and_ignores_the_rest(workspace, number):
    _template(workspace, number, name="promo", language="en_US", meta_template_id="1689556908129836",
              status="APPROVED")
    outcome = deliver(fixture("management_updates.json"))
    assert outcome.status == "processed", outcome.error
    assert MessageTemplate.objects.get(name="promo").status == "PAUSED"
    assert outcome.summary["template_status"] == 1
    assert outcome.summary["phone_number_quality"] == 1
    assert outcome.summary["user_preferences"] == 1
    assert outcome.summary["ignored_count"] >= 1  # order_update's template is unknown here
    contact = Contact.objects.get(workspace=workspace)
    assert contact.opted_in is False
    assert ConsentRecord.objects.get(contact=contact).source == "meta_user_preferences"


def test_quality_for_unknown_number_is_ignored_not_failed(workspace, number):
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "404", "changes": [{
        "field": "phone_number_quality_update",
        "value": {"display_phone_number": "15550000000", "event": "ONBOARDING", "current_limit": "TIER_250"}}]}]}
    outcome = deliver(payload)
    assert outcome.status == "processed"
    assert outcome.summary["ignored"][0]["kind"] == "phone_number_quality"
    assert Event.objects.filter(type="phone_number.quality_changed").count() == 0


def test_sweeper_processes_a_row_whose_enqueue_was_lost(workspace, number, monkeypatch,
                                                        django_capture_on_commit_callbacks):
    from apps.webhooks.tasks.inbound import inbound_webhooks_drain_task

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    inbound._kick_release()
    monkeypatch.setattr(inbound_webhooks_drain_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_id = inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.LOST")))
    assert InboundWebhook.objects.get(pk=webhook_id).processed_at is None
    assert Message.objects.count() == 0
    assert inbound.inbound_webhooks_sweep() == 1
    row = InboundWebhook.objects.get(pk=webhook_id)
    assert row.processed_at is not None
    assert row.attempts == 1
    assert Message.objects.get().provider_message_id == "wamid.LOST"
    assert inbound.inbound_webhooks_sweep() == 0


def test_sweeper_waits_for_available_at(workspace, number):
    inbound.inbound_sink(payload=text_payload(wamid="wamid.LATER"), delay_seconds=60)
    assert inbound.inbound_webhooks_sweep() == 0
    InboundWebhook.objects.update(available_at=timezone.now() - timedelta(seconds=1))
    assert inbound.inbound_webhooks_sweep() == 1
    assert Message.objects.count() == 1


def test_a_leased_row_is_not_taken_twice_until_the_lease_expires(workspace, number):
    webhook_id = inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.LEASE")))
    claimed = inbound.inbound_webhook_claim(webhook_id=webhook_id)
    assert claimed is not None
    assert inbound.inbound_webhook_claim(webhook_id=webhook_id) is None
    assert inbound.inbound_webhooks_sweep() == 0
    # The worker died holding the lease: once it runs out, the row is taken again.
    InboundWebhook.objects.filter(pk=webhook_id).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert inbound.inbound_webhooks_sweep() == 1
    row = InboundWebhook.objects.get(pk=webhook_id)
    assert row.attempts == 2
    assert Message.objects.count() == 1


def test_rows_out_of_attempts_stop_being_retried(workspace, number, settings):
    settings.INBOUND_WEBHOOK_MAX_ATTEMPTS = 2
    webhook_id = inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.MAX")))
    InboundWebhook.objects.filter(pk=webhook_id).update(attempts=2)
    assert inbound.inbound_webhooks_sweep() == 0
    assert inbound.inbound_webhook_reprocess(webhook_id=webhook_id).status == "processed"
    assert Message.objects.count() == 1


def test_reprocess_of_a_processed_row_changes_nothing(workspace, number):
    deliver(text_payload(wamid="wamid.RE"))
    row = InboundWebhook.objects.get()
    outcome = inbound.inbound_webhook_reprocess(webhook_id=row.pk)
    assert outcome.status == "processed"
    assert outcome.summary == {"duplicate_messages": 1}
    assert Message.objects.count() == 1
    assert Event.objects.filter(type="message.inbound").count() == 1


def test_admin_lists_and_reprocesses(workspace, number, admin_client):
    deliver(text_payload(wamid="wamid.ADM"))
    row = InboundWebhook.objects.get()
    listing = admin_client.get("/admin/webhooks/inboundwebhook/")
    assert listing.status_code == 200
    assert row.pk.encode() in listing.content
    response = admin_client.post("/admin/webhooks/inboundwebhook/",
                                 {"action": "reprocess", "_selected_action": [row.pk]}, follow=True)
    assert response.status_code == 200
    assert b"Reprocessed: 1 processed." in response.content
    assert admin_client.get(f"/admin/webhooks/inboundwebhook/{row.pk}/change/").status_code == 200


def test_unparseable_change_types_are_skipped(workspace, number):
    outcome = deliver(fixture("oas_group_create_message.json"))
    assert outcome.status == "processed"
    assert Message.objects.count() == 0


def test_a_burst_rings_the_doorbell_once_and_the_drain_processes_all(workspace, number, monkeypatch,
                                                                     django_capture_on_commit_callbacks):
    from apps.webhooks.tasks.inbound import inbound_webhooks_drain_task

    published: list[int] = []
    monkeypatch.setattr(inbound_webhooks_drain_task, "delay", lambda *slot: published.append(slot))
    inbound._kick_release()
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(5):
            inbound.inbound_webhook_store(body=body_of(text_payload(wamid=f"wamid.BURST{i}")))
    assert published == [()]
    assert inbound.inbound_webhooks_drain() == 5
    assert Message.objects.count() == 5
    # The doorbell is free again: the next webhook queues a new drain.
    with django_capture_on_commit_callbacks(execute=True):
        inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.AFTER")))
    assert published == [(), ()]
    inbound._kick_release()


def test_purge_deletes_only_old_processed_rows(workspace, number):
    deliver(text_payload(wamid="wamid.OLD"))
    pending = inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.PENDING")))
    old = InboundWebhook.objects.get(processed_at__isnull=False)
    InboundWebhook.objects.filter(pk=old.pk).update(processed_at=timezone.now() - timedelta(days=31))
    InboundWebhook.objects.filter(pk=pending).update(received_at=timezone.now() - timedelta(days=40))
    assert inbound.inbound_webhooks_purge(older_than_days=30) == 1
    assert list(InboundWebhook.objects.values_list("pk", flat=True)) == [pending]
    assert Message.objects.count() == 1  # the messages stay; only the raw bodies go


def test_a_backlog_fans_out_to_helper_drainers(workspace, number, monkeypatch, settings):
    from apps.webhooks.tasks.inbound import inbound_webhooks_drain_task

    settings.INBOUND_WEBHOOK_DRAIN_BATCH = 2
    settings.INBOUND_WEBHOOK_DRAINERS = 3
    published: list[tuple] = []
    monkeypatch.setattr(inbound_webhooks_drain_task, "delay", lambda *slot: published.append(slot))
    for s in range(3):
        inbound._kick_release(s)
    for i in range(5):
        inbound.inbound_webhook_store(body=body_of(text_payload(wamid=f"wamid.FAN{i}")))
    assert inbound._kick_acquire(0)
    assert inbound.inbound_webhooks_drain(slot=0) == 5
    assert published == [(1,), (2,)]  # two full batches: both helper slots started, no more
    assert Message.objects.count() == 5
    assert inbound.inbound_webhooks_drain(slot=1) == 0
    for s in range(3):
        inbound._kick_release(s)


def _outbound(workspace, number, wamid: str) -> Message:
    return Message.objects.create(workspace=workspace, phone_number=number, type="text", direction="outbound",
                                  status="sent", provider_message_id=wamid, to_phone="+16505551234")


def _status_body(wamid: str, st: str, ts: int) -> bytes:
    from tests.webhooks.inbound_support import status, status_payload

    return body_of(status_payload([status(wamid, st, ts)]))


def test_claimed_rows_share_one_transaction_and_one_status_pass(workspace, number, django_assert_max_num_queries):
    outs = [_outbound(workspace, number, f"wamid.BT{i}") for i in range(10)]
    ids = [inbound.inbound_webhook_store(body=_status_body(f"wamid.BT{i}", "delivered", 1750263700 + i))
           for i in range(10)]
    ids.append(inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.BTIN"))))
    claimed = inbound.inbound_webhooks_claim_due(limit=50)
    assert sorted(claimed) == sorted(ids)
    with django_assert_max_num_queries(40):
        assert inbound.inbound_webhooks_process_claimed(webhook_ids=claimed) == 11
    assert Message.objects.filter(pk__in=[m.pk for m in outs], status="delivered").count() == 10
    assert Message.objects.filter(provider_message_id="wamid.BTIN", direction="inbound").count() == 1
    assert InboundWebhook.objects.filter(processed_at__isnull=True).count() == 0
    from apps.core.models import Event

    assert Event.objects.filter(type="message.delivered").count() == 10


def test_a_bad_row_in_a_batch_does_not_hold_up_the_others(workspace, number, monkeypatch, settings):
    _outbound(workspace, number, "wamid.OK1")
    settings.INBOUND_STATUS_ORPHAN_GRACE_SECONDS = 120
    good = inbound.inbound_webhook_store(body=_status_body("wamid.OK1", "read", 1750263700))
    orphan = inbound.inbound_webhook_store(body=_status_body("wamid.NOT-YET", "sent", 1750263700))
    text = inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.OKTXT")))
    claimed = inbound.inbound_webhooks_claim_due(limit=50)
    assert inbound.inbound_webhooks_process_claimed(webhook_ids=claimed) == 2
    assert Message.objects.get(provider_message_id="wamid.OK1").status == "read"
    assert Message.objects.filter(provider_message_id="wamid.OKTXT").count() == 1
    assert InboundWebhook.objects.get(pk=good).processed_at is not None
    assert InboundWebhook.objects.get(pk=text).processed_at is not None
    waiting = InboundWebhook.objects.get(pk=orphan)
    assert waiting.processed_at is None
    assert waiting.last_error.startswith("deferred")


# --- the cost of one inbound message (pinned: the receive road's throughput and latency depend on it) ---


def _drain_one_text(wamid: str, django_capture_on_commit_callbacks):
    inbound.inbound_webhook_store(body=body_of(text_payload(wamid=wamid)))
    with django_capture_on_commit_callbacks(execute=True):  # listeners included (inbox, outbound, auto-reply)
        return inbound.inbound_webhooks_drain(slot=1)


def test_one_inbound_text_drains_within_a_pinned_query_budget(number, django_assert_max_num_queries,
                                                              django_capture_on_commit_callbacks):
    from django.db import connection

    # Warm: the contact and its conversation exist (the common case: a customer writing again).
    assert _drain_one_text("wamid.warm", django_capture_on_commit_callbacks) == 1
    # PostgreSQL: one-statement claim (bodies returned), no row reload, no contact re-lock, auto-reply
    # skipped with one EXISTS when the workspace has no rules. SQLite claims through the ORM.
    budget = 21 if connection.vendor == "postgresql" else 27  # the store included
    with django_assert_max_num_queries(budget):
        assert _drain_one_text("wamid.pinned", django_capture_on_commit_callbacks) == 1
    message = Message.objects.get(provider_message_id="wamid.pinned")
    assert (message.direction, message.body) == ("inbound", "hello")
    assert InboundWebhook.objects.filter(processed_at__isnull=True).count() == 0
    assert Event.objects.filter(workspace=number.workspace, type="message.inbound").count() == 2


def test_auto_reply_hook_is_skipped_without_rules_and_called_with_one(number, monkeypatch,
                                                                      django_capture_on_commit_callbacks):
    from apps.conversations.models import AutoReplyRule
    from apps.conversations.services import autoreplies

    calls: list[str] = []
    monkeypatch.setattr(autoreplies, "auto_reply_for_inbound", lambda **kw: calls.append(kw["message_id"]))
    _drain_one_text("wamid.norules", django_capture_on_commit_callbacks)
    assert calls == []
    AutoReplyRule.objects.create(workspace=number.workspace, kind="welcome", name="hi", reply_text="Hello!")
    _drain_one_text("wamid.withrule", django_capture_on_commit_callbacks)
    assert calls == [Message.objects.get(provider_message_id="wamid.withrule").pk]
