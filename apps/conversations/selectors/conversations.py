"""Reads for the operator inbox: the conversation list (keyset on newest activity), a conversation's
messages and notes, the contact sidebar, the event stream for resume, templates for the picker."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.contacts.models import ConsentRecord, Contact, ContactTag
from apps.conversations import policy
from apps.conversations.models import (
    AutoReplyRule,
    AutoReplySettings,
    CannedResponse,
    Conversation,
    ConversationNote,
    Message,
)
from apps.core.errors import ValidationFailed
from apps.core.models import Event, Membership, User, Workspace
from apps.core.pagination import decode_cursor, encode_cursor, parse_limit
from apps.core.selectors import events_after
from apps.core.services import event_envelope
from apps.core.tenancy import Tenant
from apps.message_templates.models import MessageTemplate


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def window_expires_at(conversation: Conversation, *, now: datetime | None = None) -> datetime | None:
    """End of the customer service window for this thread, or None when it is closed."""
    candidates = [conversation.last_inbound_at]
    if conversation.channel_kind not in policy.SOCIAL_CHANNELS:  # social windows are per thread
        candidates.append(getattr(conversation.contact, "last_inbound_at", None))
    last = max((c for c in candidates if c is not None), default=None)
    return policy.window_expires_at(channel=conversation.channel_kind, last_inbound_at=last,
                                    now=now or timezone.now())


def agent_reply_expires_at(conversation: Conversation, *, now: datetime | None = None) -> datetime | None:
    """Until when an agent may reply from the inbox (policy.agent_reply_expires_at)."""
    last = conversation.last_inbound_at
    if conversation.channel_kind not in policy.SOCIAL_CHANNELS:
        last = max((c for c in (last, getattr(conversation.contact, "last_inbound_at", None)) if c), default=None)
    return policy.agent_reply_expires_at(channel=conversation.channel_kind, last_inbound_at=last,
                                         now=now or timezone.now())


# --- conversations ------------------------------------------------------------------------------


def user_brief(user: User | None) -> dict | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.display_name or user.get_full_name() or user.username}


def contact_brief(contact: Contact | None) -> dict | None:
    if contact is None:
        return None
    return {"id": contact.pk, "name": contact.name, "phone": contact.phone, "wa_id": contact.wa_id,
            "bsuid": contact.bsuid, "username": contact.username or None, "email": contact.email or None,
            "opted_in": contact.opted_in is True}


def conversation_to_dict(conversation: Conversation, *, now: datetime | None = None) -> dict:
    return {
        "id": conversation.pk,
        "contact": contact_brief(conversation.contact),
        "channel_kind": conversation.channel_kind,
        "phone_number_id": conversation.phone_number_id,
        "state": conversation.state,
        "assigned_user_id": conversation.assigned_user_id,
        "assigned_user": user_brief(conversation.assigned_user),
        "snooze_until": _iso(conversation.snooze_until),
        "last_message_at": _iso(conversation.last_message_at),
        "last_inbound_at": _iso(conversation.last_inbound_at),
        "last_message_preview": conversation.last_message_preview,
        "window_expires_at": _iso(window_expires_at(conversation, now=now)),
        "agent_reply_expires_at": _iso(agent_reply_expires_at(conversation, now=now)),
        "referral": conversation.referral or None,
        "free_entry_point_expires_at": _iso(policy.entry_point_expires_at(opened_at=conversation.entry_point_opened_at,
                                                                   now=now or timezone.now())),
        "unread_count": conversation.unread_count,
        "team_id": conversation.team_id,
        "label_ids": sorted(label.pk for label in conversation.labels.all()),
        # Needs reply: the customer wrote last (the time they have been waiting since), else null.
        "waiting_since": _iso(conversation.last_inbound_at) if needs_reply(conversation) else None,
        "created_at": _iso(conversation.created_at),
    }


def needs_reply(conversation: Conversation) -> bool:
    """The last message is the customer's (what the needs_reply filter selects in SQL: _NEEDS_REPLY)."""
    return (conversation.last_inbound_at is not None and conversation.last_message_at is not None
            and conversation.last_message_at <= conversation.last_inbound_at)


_NEEDS_REPLY = Q(last_inbound_at__isnull=False, last_message_at__lte=F("last_inbound_at"))


def _conversation_qs(*, tenant: Tenant) -> QuerySet[Conversation]:
    from apps.core.selectors import tenant_queryset

    return (tenant_queryset(Conversation, tenant=tenant).select_related("contact", "assigned_user")
            .prefetch_related("labels"))


def conversation_get(*, tenant: Tenant, conversation_id: str) -> Conversation | None:
    return _conversation_qs(tenant=tenant).filter(pk=conversation_id).first()


def _encode_activity_cursor(activity: datetime, pk: str) -> str:
    micros = int(activity.timestamp() * 1_000_000)
    return encode_cursor(f"{micros}|{pk}")


def _decode_activity_cursor(raw: str) -> tuple[datetime, str]:
    value = decode_cursor(raw)
    micros, _, pk = value.partition("|")
    try:
        at = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed("cursor is not one this API handed out.", field="cursor")
    return at, pk


SORTS = ("newest", "oldest_waiting", "unread")


def _decode_offset_cursor(raw: str) -> int:
    value = decode_cursor(raw)
    if not value.startswith("o") or not value[1:].isdigit():
        raise ValidationFailed("cursor is not one this API handed out.", field="cursor")
    return int(value[1:])


def conversations_list(*, tenant: Tenant, params) -> tuple[list[Conversation], str | None]:
    """Newest activity first, keyset-paginated on (activity, id): a conversation that moves to the
    top while an agent pages never shows up twice or pushes another one out of the next page."""
    qs = _conversation_qs(tenant=tenant).annotate(activity_at=Coalesce("last_message_at", "created_at"))
    # A campaign's conversations enter the lists when the customer replies (a 1,000-recipient campaign must
    # not bury the customers who wrote under 1,000 silent threads).
    qs = qs.exclude(opened_by="campaign", last_inbound_at__isnull=True)
    state = params.get("state")
    if state:
        states = [s for s in state.split(",") if s]
        unknown = sorted(set(states) - set(Conversation.State.values))
        if unknown:
            raise ValidationFailed(f"Unknown state {unknown[0]!r}.", field="state")
        qs = qs.filter(state__in=states)
    channel_kind = params.get("channel_kind")
    if channel_kind:
        if channel_kind not in Conversation.ChannelKind.values:
            raise ValidationFailed(f"Unknown channel_kind {channel_kind!r}.", field="channel_kind")
        qs = qs.filter(channel_kind=channel_kind)
    assigned = params.get("assigned_user_id")
    if assigned:
        qs = qs.filter(assigned_user__isnull=True) if assigned == "none" else qs.filter(assigned_user_id=assigned)
    if params.get("mine") in ("1", "true", "yes"):
        if tenant.user is None:
            raise ValidationFailed("mine needs a signed-in user (not an API key).", field="mine")
        qs = qs.filter(assigned_user=tenant.user)
    if params.get("unread") in ("1", "true", "yes"):
        qs = qs.filter(unread_count__gt=0)
    label = params.get("label")
    if label:
        qs = qs.filter(labels=label)
    team = params.get("team_id")
    if team:
        qs = qs.filter(team__isnull=True) if team == "none" else qs.filter(team_id=team)
    if params.get("needs_reply") in ("1", "true", "yes"):
        qs = qs.filter(_NEEDS_REPLY)
    sort = params.get("sort") or ("oldest_waiting" if params.get("needs_reply") in ("1", "true", "yes")
                                  else "newest")
    if sort not in SORTS:
        raise ValidationFailed(f"sort is one of {', '.join(SORTS)}.", field="sort")
    q = (params.get("q") or "").strip()
    if q:
        if len(q) > 200:
            raise ValidationFailed("q is at most 200 characters.", field="q")
        text_hit = Message.objects.filter(conversation=OuterRef("pk"), body__icontains=q)
        digits = re.sub(r"[^\d]", "", q)
        match = Q(contact__name__icontains=q) | Exists(text_hit)
        if len(digits) >= 3:
            match |= Q(contact__phone__contains=digits)
        qs = qs.filter(match)
    limit = parse_limit(params.get("limit"), default=25, maximum=100)
    cursor = params.get("cursor")
    if sort != "newest":  # the other orders page by position (their keys change as agents work)
        offset = _decode_offset_cursor(cursor) if cursor else 0
        order = (["last_inbound_at", "pk"] if sort == "oldest_waiting" else ["-unread_count", "-activity_at", "-pk"])
        if sort == "oldest_waiting":
            qs = qs.filter(last_inbound_at__isnull=False)
        items = list(qs.order_by(*order)[offset: offset + limit + 1])
        next_cursor = encode_cursor(f"o{offset + limit}") if len(items) > limit else None
        return items[:limit], next_cursor
    if cursor:
        at, pk = _decode_activity_cursor(cursor)
        qs = qs.filter(Q(activity_at__lt=at) | Q(activity_at=at, pk__lt=pk))
    items = list(qs.order_by("-activity_at", "-pk")[: limit + 1])
    next_cursor = None
    if len(items) > limit:
        last = items[limit - 1]
        next_cursor = _encode_activity_cursor(last.activity_at, last.pk)
    return items[:limit], next_cursor


# --- messages and notes -----------------------------------------------------------------------------


def media_to_dict(message: Message) -> dict | None:
    media = message.media
    if media is None:
        return None
    return {
        "id": media.pk,
        "kind": media.kind,
        "content_type": media.content_type,
        "size": media.size,
        "filename": media.filename,
        # The authenticated download (workspace-checked, session or key).
        "url": f"/api/v1/media/{media.pk}/content",
    }


def message_sent_by(message: Message) -> str:
    if message.direction == Message.Direction.INBOUND:
        return "customer"
    if message.sent_by == "user" and message.sent_by_user_id:
        return message.sent_by_user_id
    return message.sent_by


def message_to_dict(message: Message) -> dict:
    data = {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "channel": message.channel,
        "type": message.type,
        "body": message.body,
        "content": message.content,
        "media": media_to_dict(message),
        "status": message.status,
        "created_at": _iso_ms(message.created_at),
        "sent_at": _iso(message.sent_at),
        "delivered_at": _iso(message.delivered_at),
        "read_at": _iso(message.read_at),
        "failed_at": _iso(message.failed_at),
        "sent_by": message_sent_by(message),
        "sent_by_user": user_brief(message.sent_by_user) if message.sent_by_user_id else None,
        "reply_to_id": message.reply_to_id,
        "error": None,
    }
    if message.status == Message.Status.FAILED or message.error_code:
        from apps.providers.failures import failure_public

        data["error"] = {"code": message.error_code, "message": message.error_message,
                         "upstream_code": message.upstream_code,
                         **failure_public(code=message.error_code, upstream_code=message.upstream_code)}
    return data


def conversation_messages(*, conversation: Conversation, before_id: str | None = None,
                          after_id: str | None = None, limit: int = 50) -> list[Message]:
    """Newest first; `before_id` pages back in history, `after_id` fetches what is newer (catch-up)."""
    qs = Message.objects.filter(workspace_id=conversation.workspace_id, conversation=conversation)
    qs = qs.select_related("media", "sent_by_user")
    if before_id:
        qs = qs.filter(pk__lt=before_id)
    if after_id:
        qs = qs.filter(pk__gt=after_id)
    return list(qs.order_by("-pk")[:limit])


def note_to_dict(note: ConversationNote) -> dict:
    return {"id": note.pk, "conversation_id": note.conversation_id, "body": note.body,
            "author": user_brief(note.author), "created_at": _iso_ms(note.created_at)}


def conversation_notes(*, conversation: Conversation, limit: int = 200) -> list[ConversationNote]:
    return list(ConversationNote.objects.filter(conversation=conversation).select_related("author")
                .order_by("-created_at")[:limit])


# --- the contact sidebar ---------------------------------------------------------------------------


def contact_sidebar(*, conversation: Conversation) -> dict:
    contact = conversation.contact
    tags = list(ContactTag.objects.filter(contact=contact).order_by("name").values_list("name", flat=True))
    consents = ConsentRecord.objects.filter(contact=contact).order_by("-created_at")[:20]
    previous = (Conversation.objects.filter(workspace_id=conversation.workspace_id, contact=contact)
                .exclude(pk=conversation.pk).order_by("-created_at")[:10])
    return {
        "id": contact.pk,
        "name": contact.name,
        "phone": contact.phone,
        "wa_id": contact.wa_id,
        "bsuid": contact.bsuid,
        "parent_bsuid": contact.parent_bsuid or None,
        "username": contact.username or None,
        "blocked_at": _iso(contact.blocked_at),
        "email": contact.email,
        "tags": tags,
        "custom_fields": contact.custom_fields,
        "consent": {
            "opted_in": contact.opted_in is True,
            "updated_at": _iso(contact.consent_updated_at),
            "history": [{"status": c.status, "source": c.source, "note": c.note, "created_at": _iso(c.created_at)}
                        for c in consents],
        },
        "previous_conversations": [
            {"id": c.pk, "state": c.state, "channel_kind": c.channel_kind, "created_at": _iso(c.created_at),
             "last_message_at": _iso(c.last_message_at), "last_message_preview": c.last_message_preview}
            for c in previous
        ],
    }


# --- agents, templates, canned responses -----------------------------------------------------------------


def workspace_agents(*, workspace: Workspace) -> list[dict]:
    rows = Membership.objects.filter(workspace=workspace.live).select_related("user").order_by("user__username")
    return [{**user_brief(m.user), "role": m.role} for m in rows]


def is_workspace_member(*, workspace: Workspace, user_id: str) -> bool:
    return Membership.objects.filter(workspace=workspace.live, user_id=user_id).exists()


_POSITIONAL = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_NAMED = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


def template_variables(template: MessageTemplate) -> list[str]:
    """Placeholders of the header and body, in order of first appearance (what the picker asks for)."""
    text = " ".join(c.get("text", "") for c in template.components or []
                    if isinstance(c, dict) and c.get("type", "").upper() in ("HEADER", "BODY"))
    pattern = _NAMED if template.parameter_format == MessageTemplate.ParameterFormat.NAMED else _POSITIONAL
    seen: list[str] = []
    for name in pattern.findall(text):
        if name not in seen:
            seen.append(name)
    if pattern is _POSITIONAL:
        seen.sort(key=int)
    return seen


def template_to_picker(template: MessageTemplate) -> dict:
    parts = {}
    buttons = []
    for c in template.components or []:
        if not isinstance(c, dict):
            continue
        kind = c.get("type", "").upper()
        if kind in ("HEADER", "BODY", "FOOTER") and c.get("text"):
            parts[kind.lower()] = c["text"]
        if kind == "BUTTONS":
            buttons = [b.get("text", "") for b in c.get("buttons", []) if isinstance(b, dict)]
    return {
        "id": template.pk, "name": template.name, "language": template.language, "category": template.category,
        "parameter_format": template.parameter_format, "variables": template_variables(template),
        "header": parts.get("header", ""), "body": parts.get("body", ""), "footer": parts.get("footer", ""),
        "buttons": buttons, "waba_id": template.waba_id,
    }


def approved_templates(*, tenant: Tenant, waba_id: str | None = None) -> list[MessageTemplate]:
    from apps.core.selectors import tenant_queryset

    qs = tenant_queryset(MessageTemplate, tenant=tenant).filter(status=MessageTemplate.Status.APPROVED)
    if waba_id:
        qs = qs.filter(waba_id=waba_id)
    return list(qs.order_by("name", "language")[:500])


def canned_response_to_dict(item: CannedResponse) -> dict:
    return {"id": item.pk, "shortcut": item.shortcut, "title": item.title, "body": item.body,
            "created_at": _iso(item.created_at), "updated_at": _iso(item.updated_at)}


def canned_responses(*, workspace: Workspace) -> QuerySet[CannedResponse]:
    return CannedResponse.objects.filter(workspace=workspace).order_by("shortcut")


# --- auto-replies -------------------------------------------------------------------------------------------


def auto_reply_rule_to_dict(rule: AutoReplyRule) -> dict:
    return {"id": rule.pk, "kind": rule.kind, "name": rule.name, "enabled": rule.enabled,
            "keywords": rule.keywords, "match": rule.match, "language": rule.language,
            "reply_text": rule.reply_text, "priority": rule.priority,
            "created_at": _iso(rule.created_at), "updated_at": _iso(rule.updated_at)}


def auto_reply_settings_to_dict(item: AutoReplySettings | None) -> dict:
    if item is None:
        return {"cooldown_seconds": settings.AUTO_REPLY_DEFAULT_COOLDOWN_SECONDS, "timezone": "UTC",
                "business_hours": {}, "holidays": []}
    return {"cooldown_seconds": item.cooldown_seconds, "timezone": item.timezone,
            "business_hours": item.business_hours, "holidays": item.holidays}


def auto_reply_settings_get(*, workspace: Workspace) -> AutoReplySettings | None:
    return AutoReplySettings.objects.filter(workspace=workspace).first()


def auto_reply_rules(*, workspace: Workspace, enabled_only: bool = False) -> QuerySet[AutoReplyRule]:
    qs = AutoReplyRule.objects.filter(workspace=workspace)
    if enabled_only:
        qs = qs.filter(enabled=True)
    return qs.order_by("priority", "created_at")


# --- the event stream -----------------------------------------------------------------------------------------


def inbox_current_sequence(*, workspace: Workspace) -> int:
    return Workspace.objects.filter(pk=workspace.pk).values_list("event_sequence", flat=True).first() or 0


def inbox_events_after(*, tenant: Tenant, after_sequence: int,
                       max_events: int | None = None) -> tuple[list[dict], bool, int]:
    """(envelopes, reset, current sequence). `reset` says the gap cannot be replayed (too many
    events, pruned rows, or a sequence from another life of this workspace): reload state instead.
    A WABA-bound caller gets only its WABA's events (tenant_queryset's binding); the sequence numbers
    are the workspace's, so its stream has gaps where other WABAs' events were."""
    workspace = tenant.workspace
    max_events = max_events or settings.INBOX_RESUME_MAX_EVENTS
    current = inbox_current_sequence(workspace=workspace)
    if after_sequence < 0 or after_sequence > current:
        return [], True, current
    if current - after_sequence > max_events:
        return [], True, current
    rows, first = events_after(tenant=tenant, after_sequence=after_sequence, limit=max_events)
    if first is not None and first != after_sequence + 1:
        return [], True, current  # the log was pruned below what the client needs
    return [event_envelope(event=e, workspace=workspace) for e in rows], False, current


def events_envelopes_by_id(*, event_ids: list[str]) -> dict[str, list[dict]]:
    """Envelopes of freshly committed events grouped by workspace id, in sequence order."""
    rows = (Event.objects.filter(pk__in=event_ids).select_related("workspace", "workspace__sandbox_of")
            .order_by("workspace_id", "sequence"))
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row.workspace_id, []).append(event_envelope(event=row, workspace=row.workspace))
    return grouped
