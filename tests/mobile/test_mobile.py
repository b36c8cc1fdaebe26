"""The mobile API: per-user tokens (created with a password, throttled, listed, revocable) that carry
the user's role; device registration; FCM HTTP v1 pushes for inbound messages against a fake FCM over a
socket: exactly one request per device of the assignee, unassigned ones by preference, invalid tokens
forgotten."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from apps.conversations.models import Conversation, Message
from apps.conversations.services import push
from apps.conversations.tasks import push as push_tasks
from apps.core.models import Device, Membership, User, UserToken
from apps.providers import fcm
from apps.providers.fcm.fake import FakeFcm
from tests.conversations.send_support import redis_keys_clear
from tests.webhooks.inbound_support import connect_number, deliver, text_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean():
    redis_keys_clear()
    for key in ("authtoken",):
        from apps.core.redis import get_redis

        for k in get_redis().scan_iter(f"reach:{key}:*"):
            get_redis().delete(k)


def _member(workspace, name, role="agent") -> User:
    user = User.objects.create_user(username=name, password=f"pw-{name}")
    Membership.objects.create(workspace=workspace, user=user, role=role)
    return user


def _token(name: str, device: str = "Pixel") -> tuple[APIClient, str]:
    r = APIClient().post("/api/v1/auth/token", {"username": name, "password": f"pw-{name}", "device_name": device},
                         format="json")
    assert r.status_code == 201, r.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}")
    return client, r.json()["token"]


def test_user_tokens_carry_the_role_and_are_revocable(workspace):
    _member(workspace, "ann")
    bad = APIClient().post("/api/v1/auth/token", {"username": "ann", "password": "nope", "device_name": "x"},
                           format="json")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "INVALID_CREDENTIALS"
    assert not UserToken.objects.exists()
    ann, secret = _token("ann")
    assert secret.startswith("ut_") and UserToken.objects.get().secret_hash != secret
    assert ann.get("/api/v1/conversations").status_code == 200  # the inbox, with the agent's role
    denied = ann.get("/api/v1/webhook-subscriptions")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    who = ann.get("/api/v1/workspace").json()
    assert who["user_id"] == User.objects.get(username="ann").pk and who["api_key_id"] is None
    other, _ = _token("ann", device="iPad")
    listed = ann.get("/api/v1/auth/tokens").json()["data"]
    assert sorted(t["device_name"] for t in listed) == ["Pixel", "iPad"] and "token" not in listed[0]
    assert ann.delete("/api/v1/auth/token").status_code == 204
    assert ann.get("/api/v1/conversations").status_code == 401
    assert other.get("/api/v1/conversations").status_code == 200  # only the one in use was revoked
    ipad = UserToken.objects.get(device_name="iPad")
    assert other.delete(f"/api/v1/auth/tokens/{ipad.pk}").status_code == 204
    assert other.get("/api/v1/conversations").status_code == 401


def test_token_creation_is_throttled(workspace, settings):
    settings.AUTH_TOKEN_ATTEMPTS_PER_MINUTE = 3
    _member(workspace, "bob")
    codes = [APIClient().post("/api/v1/auth/token", {"username": "bob", "password": "wrong", "device_name": "x"},
                              format="json").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    r = APIClient().post("/api/v1/auth/token", {"username": "bob", "password": "pw-bob", "device_name": "x"},
                         format="json")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and not UserToken.objects.exists()


@pytest.fixture
def fake_fcm(settings):
    fake = FakeFcm()
    settings.FCM_SERVICE_ACCOUNT_JSON = json.dumps(fake.service_account())
    settings.FCM_API_URL = fake.base_url
    fcm._clients.clear()
    yield fake
    fake.stop()
    fcm._clients.clear()


def test_inbound_pushes_once_per_device_of_the_assignee(workspace, fake_fcm, monkeypatch,
                                                       django_capture_on_commit_callbacks):
    connect_number(workspace)
    ann = _member(workspace, "ann")
    _member(workspace, "bob"), _member(workspace, "cy")
    clients = {name: _token(name)[0] for name in ("ann", "bob", "cy")}
    for name, tokens in (("ann", ["ann-phone", "ann-tablet"]), ("bob", ["bob-phone"]), ("cy", ["cy-phone"])):
        for t in tokens:
            r = clients[name].post("/api/v1/devices", {"platform": "android", "push_token": t}, format="json")
            assert r.status_code == 201 and r.json()["id"].startswith("dev_")
    r = clients["cy"].patch("/api/v1/me/push-preferences", {"unassigned": True}, format="json")
    assert r.json() == {"enabled": True, "unassigned": True}
    enqueued: list[str] = []
    monkeypatch.setattr(push_tasks.push_inbound_task, "delay", enqueued.append)  # the broker is the edge

    with django_capture_on_commit_callbacks(execute=True):
        deliver(text_payload(wamid="wamid.P1", body="first"))  # a new, unassigned conversation
    first = Message.objects.get(provider_message_id="wamid.P1")
    assert enqueued == [first.pk]
    assert push.push_inbound(message_id=first.pk) == {"sent": 1, "failed": 0, "forgotten": 0}
    assert [s["message"]["token"] for s in fake_fcm.sends] == ["cy-phone"]  # by preference only

    Conversation.objects.filter(pk=first.conversation_id).update(assigned_user=ann)
    fake_fcm.sends.clear()
    fake_fcm.unregistered.add("ann-tablet")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(text_payload(wamid="wamid.P2", body="where is my order?", timestamp=1749416400))
    second = Message.objects.get(provider_message_id="wamid.P2")
    assert enqueued == [first.pk, second.pk]
    assert push.push_inbound(message_id=second.pk) == {"sent": 1, "failed": 1, "forgotten": 1}
    sends = sorted(fake_fcm.sends, key=lambda s: s["message"]["token"])
    assert [s["message"]["token"] for s in sends] == ["ann-phone", "ann-tablet"]  # one request per device
    assert sends[0]["message"]["notification"]["body"] == "where is my order?"
    assert sends[0]["message"]["data"] == {"conversation_id": second.conversation_id, "message_id": second.pk,
                                           "channel": "whatsapp"}
    assert sorted(Device.objects.values_list("push_token", flat=True)) == ["ann-phone", "bob-phone", "cy-phone"]
    assert fake_fcm.token_requests == 1  # the OAuth2 token is reused

    # Turned off: nothing pushed for the assignee.
    clients["ann"].patch("/api/v1/me/push-preferences", {"enabled": False}, format="json")
    fake_fcm.sends.clear()
    assert push.push_inbound(message_id=second.pk)["sent"] == 0 and fake_fcm.sends == []


def test_devices_need_a_user(workspace, live_api):
    r = live_api.post("/api/v1/devices", {"platform": "android", "push_token": "x"}, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
    assert not Device.objects.exists()
