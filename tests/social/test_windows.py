"""Each channel's reply window and message tags, table-driven: once against the rule itself
(policy.window_is_open over CHANNEL_WINDOWS) and once through POST /api/v1/messages, whose answer must agree
(202, or 422 OUTSIDE_24H_WINDOW naming the field, or 400 for a tag the channel does not take)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations import policy
from apps.conversations.models import Conversation, Message
from apps.conversations.services.social import SocialApplied, social_inbound_receive
from apps.providers.meta_social.webhooks import SocialInbound
from apps.wabas.services import social_account_connect

NEVER = None
# (channel, hours since the customer's last message (None: never wrote), tag, expected)
MATRIX = [
    ("messenger", 1, "", "open"),
    ("messenger", 23.9, "", "open"),
    ("messenger", 24.1, "", "closed:type"),
    ("messenger", 25, "HUMAN_AGENT", "open"),
    ("messenger", 24 * 7 - 0.1, "HUMAN_AGENT", "open"),
    ("messenger", 24 * 7 + 0.1, "HUMAN_AGENT", "closed:tag"),
    ("messenger", 24 * 30, "CONFIRMED_EVENT_UPDATE", "open"),
    ("messenger", 24 * 30, "POST_PURCHASE_UPDATE", "open"),
    ("messenger", 24 * 30, "ACCOUNT_UPDATE", "open"),
    ("messenger", NEVER, "HUMAN_AGENT", "closed:tag"),
    ("messenger", NEVER, "", "closed:type"),
    ("messenger", 1, "MARKETING_BLAST", "invalid"),
    ("instagram", 1, "", "open"),
    ("instagram", 24.1, "", "closed:type"),
    ("instagram", 30, "HUMAN_AGENT", "open"),
    ("instagram", 24 * 7 + 0.1, "HUMAN_AGENT", "closed:tag"),
    ("instagram", 1, "POST_PURCHASE_UPDATE", "invalid"),
    ("instagram", 24 * 30, "ACCOUNT_UPDATE", "invalid"),
]


@pytest.mark.parametrize(("channel", "hours", "tag", "expected"), MATRIX)
def test_the_rule(channel, hours, tag, expected):
    now = timezone.now()
    last = None if hours is None else now - timedelta(hours=hours)
    if expected == "invalid":
        with pytest.raises(Exception) as exc:
            policy.tag_check(channel=channel, tag=tag)
        assert exc.value.code == "VALIDATION_FAILED" and exc.value.details["field"] == "tag"
        return
    policy.tag_check(channel=channel, tag=tag)
    assert policy.window_is_open(channel=channel, last_inbound_at=last, now=now, tag=tag) is (expected == "open")


def test_every_channel_states_its_window_once():
    assert set(policy.CHANNEL_WINDOWS) >= {"whatsapp", "sms", "messenger", "instagram"}
    assert policy.CHANNEL_WINDOWS["sms"] is None
    assert policy.window_is_open(channel="sms", last_inbound_at=None, now=timezone.now())
    assert policy.channel_tags("whatsapp") == () and policy.channel_tags("instagram") == ("HUMAN_AGENT",)


@pytest.fixture
def accounts(workspace):
    messenger, _ = social_account_connect(workspace=workspace, channel="messenger", page_id="104000000000011",
                                          access_token="EAAG-x")
    instagram, _ = social_account_connect(workspace=workspace, channel="instagram", page_id="104000000000012",
                                          ig_user_id="17841400000000012", access_token="EAAG-y")
    return {"messenger": messenger, "instagram": instagram}


def _customer_wrote(account, user_id: str, hours):
    """The customer's message through the receive service; then its time moved `hours` back."""
    if hours is None:
        return
    out = SocialApplied()
    social_inbound_receive(item=SocialInbound(channel=account.channel, account_id=account.meta_account_id,
                                              sender_id=user_id, mid=f"m_{user_id}", timestamp=timezone.now(),
                                              type="text", body="hi", content={"body": "hi"}), out=out)
    assert out.inbound == 1
    Conversation.objects.filter(social_account=account).update(
        last_inbound_at=timezone.now() - timedelta(hours=hours))


@pytest.mark.django_db
@pytest.mark.parametrize(("channel", "hours", "tag", "expected"), MATRIX)
def test_through_the_api(live_api, accounts, channel, hours, tag, expected):
    user_id = "6200000000000042"
    _customer_wrote(accounts[channel], user_id, hours)
    body = {"channel": channel, "recipient": user_id, "text": {"body": "About your order"}}
    if tag:
        body["tag"] = tag
    r = live_api.post("/api/v1/messages", body, format="json")
    outbound = Message.objects.filter(direction="outbound")
    if expected == "open":
        assert r.status_code == 202, r.content
        message = outbound.get()
        assert (message.channel, message.social_tag, message.social_account_id) == (channel, tag,
                                                                                   accounts[channel].pk)
        return
    assert not outbound.exists()
    error = r.json()["error"]
    if expected == "invalid":
        assert r.status_code == 400 and error["code"] == "VALIDATION_FAILED" and error["details"]["field"] == "tag"
        return
    assert r.status_code == 422 and error["code"] == "OUTSIDE_24H_WINDOW"
    assert error["details"]["field"] == expected.split(":")[1]
    assert "HUMAN_AGENT" in error["details"]["allowed_tags"]


@pytest.mark.django_db
def test_a_whatsapp_message_takes_no_tag(live_api):
    r = live_api.post("/api/v1/messages", {"to": "+15551234567", "tag": "HUMAN_AGENT", "text": {"body": "x"}},
                      format="json")
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "tag"


@pytest.mark.django_db
def test_the_window_outlives_a_resolved_thread(live_api, accounts):
    """Resolving the thread does not close the customer's window: the next reply opens a new thread."""
    _customer_wrote(accounts["messenger"], "6200000000000043", 2)
    Conversation.objects.filter(social_account=accounts["messenger"]).update(state="resolved")
    r = live_api.post("/api/v1/messages", {"channel": "messenger", "recipient": "6200000000000043",
                                           "text": {"body": "One more thing"}}, format="json")
    assert r.status_code == 202, r.content
    threads = Conversation.objects.filter(social_account=accounts["messenger"]).order_by("created_at")
    assert [t.state for t in threads] == ["resolved", "open"]
    assert Message.objects.get(pk=r.json()["id"]).conversation_id == threads[1].pk
