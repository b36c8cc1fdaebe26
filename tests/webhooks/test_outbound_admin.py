"""Admin for outbound webhooks: flagged subscriptions visible, enable/disable, send-test, deliveries with
filters and inline attempts, redeliver."""

from __future__ import annotations

import pytest

from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import outbound
from tests.webhooks import outbound_support
from tests.webhooks.outbound_support import emit

pytestmark = pytest.mark.django_db
receiver = outbound_support.receiver
allow_http = outbound_support.allow_http


def test_flagged_subscriptions_show_and_actions_work(admin_client, workspace, receiver, allow_http):
    receiver.script("/gone", [410])
    flagged, _ = outbound.subscription_create(workspace=workspace, url=receiver.url("/gone"), events=["*"])
    healthy, _ = outbound.subscription_create(workspace=workspace, url=receiver.url("/ok"), events=["*"])
    emit(workspace)
    outbound.events_fan_out()
    outbound.deliver_due()
    flagged.refresh_from_db()
    assert flagged.flagged is True

    page = admin_client.get("/admin/webhooks/webhooksubscription/?flagged__exact=1")
    assert page.status_code == 200
    assert flagged.pk in page.content.decode() and healthy.pk not in page.content.decode()

    receiver.script("/gone", [200])
    url = "/admin/webhooks/webhooksubscription/"
    admin_client.post(url, {"action": "enable", "_selected_action": [flagged.pk]})
    flagged.refresh_from_db()
    assert flagged.enabled is True and flagged.flagged is False
    admin_client.post(url, {"action": "send_test", "_selected_action": [flagged.pk]})
    assert WebhookDelivery.objects.filter(subscription=flagged, event_type="webhook.test",
                                          status="succeeded").count() == 1
    admin_client.post(url, {"action": "disable", "_selected_action": [healthy.pk]})
    assert WebhookSubscription.objects.get(pk=healthy.pk).enabled is False


def test_deliveries_filter_inline_attempts_and_redeliver(admin_client, workspace, receiver, allow_http):
    receiver.script("/x", [500, 200])
    outbound.subscription_create(workspace=workspace, url=receiver.url("/x"), events=["*"])
    emit(workspace)
    outbound.events_fan_out()
    outbound.deliver_due()
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)

    listing = admin_client.get("/admin/webhooks/webhookdelivery/?status__exact=failed")
    assert listing.status_code == 200 and delivery.pk in listing.content.decode()
    assert delivery.pk not in admin_client.get("/admin/webhooks/webhookdelivery/?status__exact=succeeded"
                                               ).content.decode()
    detail = admin_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert detail.status_code == 200 and "HTTP 500" in detail.content.decode()

    admin_client.post("/admin/webhooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]})
    outbound.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 2


def test_the_events_field_offers_the_public_types_and_refuses_star_with_others(admin_client, workspace, receiver,
                                                                              allow_http):
    from apps.core.events import public_event_types

    sub, _ = outbound.subscription_create(workspace=workspace, url=receiver.url("/x"), events=["message.inbound"])
    url = f"/admin/webhooks/webhooksubscription/{sub.pk}/change/"
    page = admin_client.get(url).content.decode()
    for event_type in public_event_types():
        assert f'value="{event_type}"' in page
    assert 'value="conversation.note_added"' not in page  # internal types are not subscribable
    form = {"url": sub.url, "description": "", "events": ["*", "message.read"]}
    response = admin_client.post(url, form)
    assert response.status_code == 200 and "tick it alone" in response.content.decode()
    assert WebhookSubscription.objects.get(pk=sub.pk).events == ["message.inbound"]
