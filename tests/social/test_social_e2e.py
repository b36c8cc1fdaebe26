"""Messenger and Instagram end to end over real sockets: the API connects the account; fakemeta posts the
customer's message as a signed `page` / `instagram` webhook to the live server's /webhooks/meta; the reply
goes through POST /api/v1/messages -> the policy -> the one writer -> the social drain -> the Send API client
-> fakemeta, whose delivery / read webhooks move it to `read`; every step leaves the same events as WhatsApp
(with `channel`), and the thread shows in the inbox list under its channel."""

from __future__ import annotations

import pytest

from apps.contacts.models import SocialIdentity
from apps.conversations.models import Conversation, Message
from apps.core.models import Event
from tests.social.conftest import IG_PAGE_ID, IG_TOKEN, IG_USER_ID, PAGE_ID, PAGE_TOKEN, connect, pump_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHANNELS = [
    pytest.param("messenger", {"page_id": PAGE_ID, "access_token": PAGE_TOKEN}, PAGE_ID, id="messenger"),
    pytest.param("instagram", {"page_id": IG_PAGE_ID, "ig_user_id": IG_USER_ID, "access_token": IG_TOKEN},
                 IG_USER_ID, id="instagram"),
]


def _events(type_: str, **match) -> list[dict]:
    return [e.data for e in Event.objects.filter(type=type_).order_by("sequence")
            if all(e.data.get(k) == v for k, v in match.items())]


@pytest.mark.parametrize(("channel", "connect_body", "meta_id"), CHANNELS)
def test_send_receipts_inbound_inbox_and_events(live, fake, channel, connect_body, meta_id):
    workspace, api = live
    account = connect(api, channel=channel, name=f"Acme {channel}", **connect_body)
    assert account["channel"] == channel and account["simulated"] is False

    # Nobody wrote yet: the window is closed, nothing is stored, nothing reaches the fake.
    refused = api.post(f"{api.base}/api/v1/messages",
                       json={"channel": channel, "recipient": "6200000000000001", "text": {"body": "hi?"}}, timeout=10)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "OUTSIDE_24H_WINDOW"
    assert not Message.objects.filter(direction="outbound").exists()

    # The customer writes: a signed webhook to /webhooks/meta, stored, processed.
    wrote = fake.social_inbound(account_id=meta_id, text="Do you have it in blue?")
    user_id, mid = wrote["user_id"], wrote["mid"]
    assert pump_until(lambda: Message.objects.filter(provider_message_id=mid).exists())
    inbound_msg = Message.objects.get(provider_message_id=mid)
    assert (inbound_msg.channel, inbound_msg.direction, inbound_msg.body) == (channel, "inbound",
                                                                             "Do you have it in blue?")
    conversation = inbound_msg.conversation
    assert conversation.channel_kind == channel and conversation.social_account_id == account["id"]
    assert conversation.phone_number_id is None and conversation.last_inbound_at is not None
    assert SocialIdentity.objects.get(account_id=account["id"], user_id=user_id).contact_id == inbound_msg.contact_id
    [event] = _events("message.inbound", message_id=inbound_msg.pk)
    assert event["channel"] == channel and event["from"] == user_id
    assert event["social_account_id"] == account["id"]

    # Inbox: the thread is listed under its channel, and only there.
    listed = api.get(f"{api.base}/api/v1/conversations", params={"channel_kind": channel}, timeout=10).json()["data"]
    assert [c["id"] for c in listed] == [conversation.pk] and listed[0]["channel_kind"] == channel
    assert listed[0]["window_expires_at"] is not None
    other = "instagram" if channel == "messenger" else "messenger"
    assert api.get(f"{api.base}/api/v1/conversations", params={"channel_kind": other},
                   timeout=10).json()["data"] == []

    # Reply inside the window: 202, then sent -> delivered (Messenger) -> read, from the fake's webhooks.
    accepted = api.post(f"{api.base}/api/v1/messages", json={
        "channel": channel, "recipient": user_id,
        "interactive": {"kind": "buttons", "body": "Which size?",
                        "buttons": [{"id": "size_s", "title": "S"}, {"id": "size_m", "title": "M"}]}}, timeout=10)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["channel"] == channel and body["recipient"] == user_id and body["to"] is None
    message_id = body["id"]
    assert pump_until(lambda: Message.objects.get(pk=message_id).status == "read", account_id=account["id"]), \
        Message.objects.get(pk=message_id).status
    message = Message.objects.get(pk=message_id)
    assert message.conversation_id == conversation.pk and message.provider_message_id
    assert message.sent_at and message.read_at
    if channel == "messenger":
        assert message.delivered_at is not None
    [sent] = [s for s in fake.call(lambda: list(fake.server.social.sent)) if s["mid"] == message.provider_message_id]
    assert sent["account_id"] == meta_id
    assert sent["body"]["recipient"] == {"id": user_id} and sent["body"]["messaging_type"] == "RESPONSE"
    assert sent["body"]["message"]["quick_replies"] == [
        {"content_type": "text", "title": "S", "payload": "size_s"},
        {"content_type": "text", "title": "M", "payload": "size_m"}]
    for type_ in ("message.sent", "message.read") + (("message.delivered",) if channel == "messenger" else ()):
        [data] = _events(type_, message_id=message_id)
        assert data["channel"] == channel and data["conversation_id"] == conversation.pk
    got = api.get(f"{api.base}/api/v1/messages/{message_id}", timeout=10).json()
    assert got["status"] == "read" and got["social_account_id"] == account["id"]

    # The customer taps a quick reply: it comes back with its payload, in the same thread.
    tapped = fake.social_inbound(account_id=meta_id, user_id=user_id, text="M", quick_reply="size_m")
    assert pump_until(lambda: Message.objects.filter(provider_message_id=tapped["mid"]).exists())
    reply = Message.objects.get(provider_message_id=tapped["mid"])
    assert reply.type == "button" and reply.content["quick_reply"] == {"payload": "size_m"}
    assert reply.conversation_id == conversation.pk
    assert Conversation.objects.filter(workspace=workspace, channel_kind=channel).count() == 1

    # Meta redelivers: no second row, no second event.
    from apps.webhooks.models import InboundWebhook
    from apps.webhooks.services import inbound

    before = Event.objects.count()
    for row in InboundWebhook.objects.all():
        inbound.inbound_webhook_reprocess(webhook_id=row.pk)
    assert Event.objects.count() == before
    assert Message.objects.filter(provider_message_id=mid).count() == 1


def test_meta_refusing_outside_its_window_fails_the_message_with_the_event(live, fake):
    """Our record says the customer wrote (a message Meta never told fakemeta about); Meta answers code 10 /
    2018278: the message fails as OUTSIDE_24H_WINDOW, not retried, with message.failed carrying the channel."""
    from django.db import transaction
    from django.utils import timezone

    from apps.conversations.services.social import SocialApplied, social_inbound_receive
    from apps.providers.meta_social.webhooks import SocialInbound

    workspace, api = live
    account = connect(api, channel="messenger", page_id=PAGE_ID, access_token=PAGE_TOKEN)
    with transaction.atomic():  # the receive road's transaction
        social_inbound_receive(item=SocialInbound(
            channel="messenger", account_id=PAGE_ID, sender_id="6200000000000777", mid="m_local",
            timestamp=timezone.now(), type="text", body="hi", content={"body": "hi"}), out=SocialApplied())
    r = api.post(f"{api.base}/api/v1/messages", json={"channel": "messenger", "recipient": "6200000000000777",
                                                       "text": {"body": "hello"}}, timeout=10)
    assert r.status_code == 202, r.text
    assert pump_until(lambda: Message.objects.get(pk=r.json()["id"]).status == "failed", account_id=account["id"])
    message = Message.objects.get(pk=r.json()["id"])
    assert (message.error_code, message.upstream_code, message.attempts) == ("OUTSIDE_24H_WINDOW", 10, 1)
    [failed] = _events("message.failed", message_id=message.pk)
    assert failed["channel"] == "messenger" and failed["error"]["code"] == "OUTSIDE_24H_WINDOW"


def test_a_wrong_page_token_is_refused_by_meta(live, fake):
    workspace, api = live
    account = connect(api, channel="messenger", page_id=PAGE_ID, access_token="EAAG-revoked")
    wrote = fake.social_inbound(account_id=PAGE_ID, text="hi")
    assert pump_until(lambda: Message.objects.filter(provider_message_id=wrote["mid"]).exists())
    r = api.post(f"{api.base}/api/v1/messages", json={"channel": "messenger", "recipient": wrote["user_id"],
                                                       "text": {"body": "hello"}}, timeout=10)
    assert pump_until(lambda: Message.objects.get(pk=r.json()["id"]).status == "failed", account_id=account["id"])
    assert Message.objects.get(pk=r.json()["id"]).upstream_code == 190
