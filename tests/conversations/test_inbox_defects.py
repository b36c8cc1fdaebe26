"""The inbox as a new user meets it: the side with traffic, and a campaign's silent threads kept out of the
lists until the customer replies."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.conversations.services import writer
from apps.core.models import Membership
from tests.conversations.inbox_support import make_agent, make_conversation, session_client
from tests.conversations.send_support import live_number, template

pytestmark = pytest.mark.django_db


def test_a_campaign_thread_enters_the_list_when_the_customer_replies(workspace):
    from apps.contacts.models import Contact

    agent = make_agent(workspace)
    client = session_client(agent, workspace)
    number = live_number(workspace)
    tpl = template(workspace, number.waba)
    wrote = make_conversation(workspace, number=number, phone="+16505550001", name="Wrote First")
    people = [Contact.objects.create(workspace=workspace, phone=f"+1650555{i:04d}", wa_id=f"1650555{i:04d}")
              for i in range(100, 150)]
    writer.messages_enqueue_bulk(workspace=workspace, phone_number=number, template=tpl, campaign_id="cmp_1",
                                 rows=[{"contact": p, "variables": ["A", "1"], "body": "Your order 1 shipped"}
                                       for p in people])
    listed = client.get("/api/v1/conversations?state=open&limit=100").json()["data"]
    assert [c["id"] for c in listed] == [wrote.pk]
    replied = Conversation.objects.get(contact=people[7])
    assert replied.last_message_preview == "Your order 1 shipped"
    Conversation.objects.filter(pk=replied.pk).update(last_inbound_at=timezone.now(), last_message_at=timezone.now(),
                                                      last_message_preview="Thanks!")
    listed = client.get("/api/v1/conversations?state=open&limit=100").json()["data"]
    assert [(c["id"], c["last_message_preview"]) for c in listed] == [(replied.pk, "Thanks!"), (wrote.pk, "hello")]


def test_the_inbox_opens_on_the_side_with_traffic_then_on_the_users_choice(workspace):
    agent = make_agent(workspace)
    client = session_client(agent)
    assert 'data-pane="list"' in client.get("/inbox/").content.decode()
    assert client.session[_sandbox_key()] is False  # no traffic anywhere: live
    make_conversation(workspace.sandbox)
    from apps.core.services import event_append_many

    event_append_many(workspace=workspace.sandbox, events=[("conversation.status_changed", {
        "conversation_id": "cnv_x", "state": "open", "previous_state": "pending", "snooze_until": None,
        "by_user_id": None})])
    fresh = session_client(agent)
    fresh.get("/inbox/")
    assert fresh.session[_sandbox_key()] is True
    fresh.post("/workspace/sandbox", {"sandbox": "0"})
    assert Membership.objects.get(user=agent).sandbox_preferred is False
    later = session_client(agent)
    later.get("/inbox/")
    assert later.session[_sandbox_key()] is False  # the user's choice wins over the traffic


def _sandbox_key() -> str:
    from apps.core.selectors import SESSION_SANDBOX_KEY

    return SESSION_SANDBOX_KEY
