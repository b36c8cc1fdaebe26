"""The account operations, another tenant's ids, malformed input (API and webhooks), and the sandbox's
Messenger: connect with a test key (simulated), a simulated customer message, the reply sent and read."""

from __future__ import annotations

import json

import pytest

from apps.conversations.models import Conversation, Message
from apps.core.models import Event
from apps.wabas.models import SocialAccount
from apps.wabas.services import social_access_token, social_account_connect
from apps.webhooks.services import inbound

pytestmark = pytest.mark.django_db

PAGE = "104000000000021"


def test_connect_list_get_remove(live_api):
    r = live_api.post("/api/v1/social-accounts", {"channel": "messenger", "page_id": PAGE,
                                                  "access_token": "EAAG-secret", "name": "Acme"}, format="json")
    assert r.status_code == 201, r.content
    account = r.json()
    assert account["id"].startswith("sac_") and "access_token" not in account
    stored = SocialAccount.objects.get(pk=account["id"])
    assert "EAAG-secret" not in stored.access_token_encrypted and social_access_token(stored) == "EAAG-secret"
    again = live_api.post("/api/v1/social-accounts", {"channel": "messenger", "page_id": PAGE,
                                                      "access_token": "EAAG-new"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == account["id"]
    assert social_access_token(SocialAccount.objects.get(pk=account["id"])) == "EAAG-new"
    assert [a["id"] for a in live_api.get("/api/v1/social-accounts").json()["data"]] == [account["id"]]
    assert live_api.get(f"/api/v1/social-accounts/{account['id']}").json()["page_id"] == PAGE
    assert live_api.delete(f"/api/v1/social-accounts/{account['id']}").status_code == 204
    assert not SocialAccount.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"channel": "telegram", "page_id": PAGE, "access_token": "t"}, "channel"),
    ({"channel": "messenger", "access_token": "t"}, "page_id"),
    ({"channel": "messenger", "page_id": "../../evil.example/x", "access_token": "t"}, "page_id"),
    ({"channel": "messenger", "page_id": PAGE}, "access_token"),
    ({"channel": "instagram", "page_id": PAGE, "access_token": "t"}, "ig_user_id"),
    ({"channel": "messenger", "page_id": PAGE, "access_token": "t", "waba_id": "waba_nope"}, "waba_id"),
])
def test_connect_refuses_malformed_input(live_api, body, field):
    r = live_api.post("/api/v1/social-accounts", body, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "VALIDATION_FAILED" and r.json()["error"]["details"]["field"] == field
    assert not SocialAccount.objects.exists()


def test_another_workspace_sees_nothing_and_cannot_take_the_page(live_api, workspace, other_workspace,
                                                                  api_client_for):
    mine, _ = social_account_connect(workspace=workspace, channel="messenger", page_id=PAGE, access_token="t")
    theirs = api_client_for(other_workspace)
    assert theirs.get(f"/api/v1/social-accounts/{mine.pk}").status_code == 404
    assert theirs.delete(f"/api/v1/social-accounts/{mine.pk}").status_code == 404
    assert theirs.get("/api/v1/social-accounts").json()["data"] == []
    taken = theirs.post("/api/v1/social-accounts", {"channel": "messenger", "page_id": PAGE, "access_token": "x"},
                        format="json")
    assert taken.status_code == 409 and taken.json()["error"]["details"]["field"] == "page_id"
    assert social_access_token(SocialAccount.objects.get(pk=mine.pk)) == "t"
    # Their sends cannot use my Page, by our id or by Meta's.
    for pin in (mine.pk, PAGE):
        r = theirs.post("/api/v1/messages", {"channel": "messenger", "recipient": "6200000000000001",
                                             "account_id": pin, "text": {"body": "x"}}, format="json")
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "account_id"
    # A sandbox key of my own workspace does not see the live Page either.
    sandbox = api_client_for(workspace, sandbox=True)
    assert sandbox.get(f"/api/v1/social-accounts/{mine.pk}").status_code == 404


def test_a_waba_bound_key_sees_only_accounts_of_its_waba(workspace, api_client_for):
    from apps.wabas.services import waba_connect

    number = waba_connect(workspace=workspace, meta_waba_id="880000000000031", phone_number_id="990000000000031",
                          display_phone_number="+15550783831", access_token="t")
    beside, _ = social_account_connect(workspace=workspace, channel="messenger", page_id=PAGE, access_token="t",
                                       waba=number.waba)
    loose, _ = social_account_connect(workspace=workspace, channel="messenger", page_id="104000000000099",
                                      access_token="t")
    bound = api_client_for(workspace, waba_id=number.waba_id)
    assert [a["id"] for a in bound.get("/api/v1/social-accounts").json()["data"]] == [beside.pk]
    assert bound.get(f"/api/v1/social-accounts/{loose.pk}").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"channel": "messenger", "to": "+15551234567", "text": {"body": "x"}}, "to"),
    ({"channel": "messenger", "recipient": "abc", "text": {"body": "x"}}, "recipient"),
    ({"channel": "instagram", "recipient": "1", "text": {"body": "x" * 1001}}, "text.body"),
    ({"channel": "messenger", "recipient": "1", "template": {"name": "t", "language": "en"}}, "type"),
    ({"channel": "messenger", "recipient": "1", "image": {"media_id": "med_x"}}, "image.link"),
    ({"channel": "messenger", "recipient": "1", "interactive": {"kind": "list", "body": "b", "button": "Go",
      "sections": [{"title": "s", "rows": [{"id": "a", "title": "A"}]}]}}, "interactive.kind"),
    ({"channel": "messenger", "recipient": "1", "phone_number_id": "pn_x", "text": {"body": "x"}},
     "phone_number_id"),
    ({"channel": "messenger", "recipient": "1", "text": {"body": "x"},
      "fallback": {"sms": {"text": "x"}}}, "fallback"),
    ({"to": "+15551234567", "account_id": "sac_x", "text": {"body": "x"}}, "account_id"),
    ({"channel": "pigeon", "to": "+15551234567", "text": {"body": "x"}}, "channel"),
])
def test_send_refuses_malformed_input(live_api, body, field):
    r = live_api.post("/api/v1/messages", body, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["details"]["field"] == field
    assert not Message.objects.exists()


def test_no_account_on_the_channel_is_404_account_id(live_api):
    r = live_api.post("/api/v1/messages", {"channel": "instagram", "recipient": "1", "text": {"body": "x"}},
                      format="json")
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "account_id"


def test_several_accounts_need_a_pin(live_api, workspace):
    for page in (PAGE, "104000000000022"):
        social_account_connect(workspace=workspace, channel="messenger", page_id=page, access_token="t")
    r = live_api.post("/api/v1/messages", {"channel": "messenger", "recipient": "1", "text": {"body": "x"}},
                      format="json")
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "account_id"


@pytest.mark.parametrize("payload", [
    {"object": "page"},
    {"object": "page", "entry": "nope"},
    {"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": "x"}]}]},
    {"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": {"id": "1"}, "message": {"text": "no mid"}}]}]},
    {"object": "instagram", "entry": [{"id": "999", "messaging": [
        {"sender": {"id": "1"}, "recipient": {"id": "999"}, "timestamp": "soon", "message": {"mid": "m1", "text": "hi"}}]}]},
    {"object": "page", "entry": [{"id": PAGE, "messaging": [
        {"sender": {"id": PAGE}, "message": {"mid": "m_echo", "text": "ours", "is_echo": True}}]}]},
    {"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": {"id": "1"}, "read": {"watermark": "x"}}]}]},
])
def test_malformed_or_foreign_webhooks_store_nothing(workspace, payload):
    social_account_connect(workspace=workspace, channel="messenger", page_id=PAGE, access_token="t")
    row = inbound.inbound_webhook_store(body=json.dumps(payload).encode())
    outcome = inbound.inbound_webhook_process(webhook_id=row)
    assert outcome.status == "processed", outcome
    assert not Message.objects.exists() and not Event.objects.filter(type__startswith="message.").exists()


def test_sandbox_messenger_round_trip(workspace, sandbox_api):
    r = sandbox_api.post("/api/v1/social-accounts", {"channel": "messenger", "name": "Sandbox Page"}, format="json")
    assert r.status_code == 201 and r.json()["simulated"] is True
    account_id = r.json()["id"]
    wrote = sandbox_api.post("/api/v1/sandbox/inbound", {"channel": "messenger", "text": {"body": "Hello?"}},
                             format="json")
    assert wrote.status_code == 202, wrote.content
    user = wrote.json()["from"]
    inbound.inbound_webhooks_sweep()
    message = Message.objects.get(provider_message_id=wrote.json()["wamid"])
    assert message.workspace.is_sandbox and message.channel == "messenger" and message.body == "Hello?"
    sent = sandbox_api.post("/api/v1/messages", {"channel": "messenger", "recipient": user,
                                                 "text": {"body": "Hi! How can we help?"}}, format="json")
    assert sent.status_code == 202, sent.content
    from apps.conversations.services.dispatch.social import social_dispatch_drain

    social_dispatch_drain(account_id=account_id, budget_seconds=2)
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Message.objects.get(pk=sent.json()["id"]).status != "read":
        inbound.inbound_webhooks_sweep()
        time.sleep(0.05)
    assert Message.objects.get(pk=sent.json()["id"]).status == "read"
    assert Conversation.objects.get(pk=message.conversation_id).channel_kind == "messenger"
    # A live key of the same workspace does not see the sandbox account.
    assert not SocialAccount.objects.filter(pk=account_id, workspace__is_sandbox=False).exists()
