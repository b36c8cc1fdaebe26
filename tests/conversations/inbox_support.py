"""Helpers for the inbox tests (not collected: no test_ prefix)."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.core.models import Membership, User
from apps.core.selectors import SESSION_SANDBOX_KEY, SESSION_WORKSPACE_KEY
from tests.webhooks.inbound_support import connect_number

PASSWORD = "correct horse battery staple"


def make_agent(workspace, *, username: str = "alice", role: str = "agent", staff: bool = False) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, display_name=username.title(),
                                    is_staff=staff)
    Membership.objects.create(workspace=workspace.live, user=user, role=role)
    return user


def session_client(user, workspace=None, *, sandbox: bool = False, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    if workspace is not None:
        session = client.session
        session[SESSION_WORKSPACE_KEY] = workspace.live.pk
        session[SESSION_SANDBOX_KEY] = sandbox
        session.save()
    return client


def make_conversation(workspace, *, number=None, phone: str = "+16505551234", name: str = "Sheena Nelson",
                      last_inbound_ago: timedelta | None = timedelta(minutes=5), at=None,
                      state: str = "open", assigned=None, preview: str = "hello") -> Conversation:
    now = timezone.now()
    last_in = now - last_inbound_ago if last_inbound_ago is not None else None
    contact = Contact.objects.create(workspace=workspace, phone=phone, wa_id=phone.lstrip("+"), name=name,
                                     last_inbound_at=last_in)
    return Conversation.objects.create(workspace=workspace, contact=contact, phone_number=number, state=state,
                                       assigned_user=assigned, last_message_at=at or now, last_inbound_at=last_in,
                                       last_message_preview=preview)


def add_message(conversation, *, direction: str = "inbound", body: str = "hi", type: str = "text",
                status: str | None = None, sent_by: str | None = None, sent_by_user=None, content=None) -> Message:
    return Message.objects.create(
        workspace_id=conversation.workspace_id, conversation=conversation, contact=conversation.contact,
        phone_number=conversation.phone_number, direction=direction, type=type, body=body,
        content=content if content is not None else ({"body": body} if type == "text" else {}),
        status=status or ("received" if direction == "inbound" else "sent"),
        sent_by=sent_by or ("customer" if direction == "inbound" else "user"), sent_by_user=sent_by_user,
    )


__all__ = ["PASSWORD", "add_message", "connect_number", "make_agent", "make_conversation", "session_client"]
