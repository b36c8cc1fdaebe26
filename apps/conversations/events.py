"""The conversations app's event types: one builder per type, each registered with its JSON Schema.

Builders read the rows as they are after the change they describe, so call them once the change is made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, ConversationNote, Message
from apps.core.events import event_type_register
from apps.core.events.schema import INTEGER, STRING, TIMESTAMP, enum, ident, nullable, obj


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# --- message status -----------------------------------------------------------------------------------

# Statuses with their own event type besides message.status_changed (API.md).
STATUS_EVENT_TYPES = {s: f"message.{s}" for s in ("sent", "delivered", "read", "failed")}

# The statuses a status event may name: `sending` (a dispatcher's claim) is reported as queued, and
# `received` belongs to inbound messages, which have message.inbound.
PUBLIC_STATUSES = ("scheduled", "queued", "sent", "delivered", "read", "failed", "canceled")


def public_status(status: str | None) -> str | None:
    return Message.Status.QUEUED.value if status == Message.Status.SENDING else status


_ERROR = obj({"code": STRING, "message": STRING, "upstream_code": nullable(INTEGER)},
             {"reason": STRING, "description": STRING, "action": STRING},
             description="Why the message failed (as GET /api/v1/messages/{id} reports it): Reach's stable "
                         "code and reason, Meta's text, a plain sentence and the next action.")


def message_error(message: Message) -> dict[str, Any] | None:
    """The `error` object of a failed message, the same in the API, the events, the inbox and the reports:
    code, Meta's message and code, and the failure table's reason, sentence and action."""
    held = message.status in (Message.Status.QUEUED, Message.Status.SENDING) and message.holds and message.error_code
    if message.status != Message.Status.FAILED and not held:
        return None  # a message Meta held back (131049) shows why it waits
    from apps.providers.failures import failure_public

    return {"code": message.error_code, "message": message.error_message, "upstream_code": message.upstream_code,
            **failure_public(code=message.error_code, upstream_code=message.upstream_code)}


CHANNEL_VALUES = tuple(Message.Channel.values)

_STATUS_SCHEMA = obj(
    {
        "message_id": ident("message"),
        "status": enum(*PUBLIC_STATUSES),
        "previous_status": nullable(enum(*PUBLIC_STATUSES)),
        "to": STRING,
        "conversation_id": nullable(STRING),
        "client_reference": STRING,
        "campaign_id": nullable(STRING),
        "provider_message_id": nullable(STRING),
        "contact_id": nullable(STRING),
        "timestamp": nullable({**TIMESTAMP, "description": "When the provider says the move happened."}),
        "sent_at": nullable(TIMESTAMP),
        "delivered_at": nullable(TIMESTAMP),
        "read_at": nullable(TIMESTAMP),
        "failed_at": nullable(TIMESTAMP),
    },
    {
        "channel": {**enum(*CHANNEL_VALUES), "description": "The message's channel."},
        "pricing": {"type": "object", "description": "Meta's pricing object, once reported."},
        "error": _ERROR,
        "fallback_for": {"type": "string", "description": "The WhatsApp message this SMS falls back for."},
        "attempts": {**INTEGER, "description": "Failed messages: how many times the dispatcher tried it."},
        "refund": {"type": "string", "pattern": r"^\d+\.\d{4}$",
                   "description": "Failed messages already charged: the refund posted to the wallet."},
        "retry": obj({"reason": STRING, "upstream_code": nullable(INTEGER), "next_attempt_at": TIMESTAMP,
                      "holds": INTEGER},
                     description="Meta held the sent message back (131049, the per-user marketing limit): it "
                                 "is queued again for next_attempt_at, inside its validity window."),
    },
)
_STATUS_EXAMPLE = {
    "message_id": "msg_01HNQX2P8Y9R3T4V5W6Z7A8B9C", "status": "delivered", "previous_status": "sent",
    "to": "+15551234567", "conversation_id": "cnv_01HNQX2P8Y9R3T4V5W6Z7A8B9D", "client_reference": "order-1042",
    "campaign_id": "", "provider_message_id": "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI", "contact_id": "ct_01HNQX2P8Y9R",
    "timestamp": "2026-05-23T14:22:19Z", "sent_at": "2026-05-23T14:22:18Z", "delivered_at": "2026-05-23T14:22:19Z",
    "read_at": None, "failed_at": None,
}


def message_status_changed(*, message: Message, previous_status: str | None, timestamp: datetime | None = None,
                           fallback_for: str | None = None) -> dict[str, Any]:
    """The payload of message.status_changed and of message.<status>: `message` as it is after the move.
    `pricing` only once Meta has reported it, `error` only for a failed message. timestamp: when the provider says it happened (a delivery receipt's time). fallback_for: for an SMS
    fallback's first event, the WhatsApp message it stands in for."""
    failed = message.status == Message.Status.FAILED
    data = {
        "message_id": message.pk, "status": public_status(message.status),
        "previous_status": public_status(previous_status),
        "to": message.to_phone, "conversation_id": message.conversation_id,
        "client_reference": message.client_reference, "campaign_id": message.campaign_id,
        "provider_message_id": message.provider_message_id, "contact_id": message.contact_id,
        "timestamp": _iso(timestamp), "sent_at": _iso(message.sent_at), "delivered_at": _iso(message.delivered_at),
        "read_at": _iso(message.read_at), "failed_at": _iso(message.failed_at),
        "channel": message.channel,
    }
    if message.pricing:
        data["pricing"] = message.pricing
    if failed:
        data["error"] = message_error(message)
        data["attempts"] = message.attempts
        refund = getattr(message, "refund", None)
        if refund:
            data["refund"] = f"{refund:.4f}"
    if fallback_for:
        data["fallback_for"] = fallback_for
    return data


def _per_status(status: str):
    def build(*, message: Message, previous_status: str | None, timestamp: datetime | None = None) -> dict[str, Any]:
        if message.status != status:
            raise ValueError(f"message.{status} for a message in status {message.status!r}")
        return message_status_changed(message=message, previous_status=previous_status, timestamp=timestamp)

    build.__name__ = build.__qualname__ = f"message_{status}"
    build.__doc__ = f"The payload of message.{status} (that of message.status_changed)."
    return build


message_sent = _per_status("sent")
message_delivered = _per_status("delivered")
message_read = _per_status("read")
message_failed = _per_status("failed")


def message_status_events(*, message: Message, previous_status: str | None, timestamp: datetime | None = None,
                          fallback_for: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The events of one status move: message.status_changed, then message.<status> when that status has
    its own type; none when the public status did not move (a claim: queued -> sending). One dict serves
    both (it is stored twice, never mutated)."""
    if public_status(previous_status) == public_status(message.status):
        return []
    data = message_status_changed(message=message, previous_status=previous_status, timestamp=timestamp,
                                  fallback_for=fallback_for)
    events = [("message.status_changed", data)]
    if message.status in STATUS_EVENT_TYPES:
        events.append((STATUS_EVENT_TYPES[message.status], data))
    return events


event_type_register(
    "message.status_changed", public=True, schema=_STATUS_SCHEMA, example=_STATUS_EXAMPLE,
    description="An outbound message was stored (previous_status null) or moved status (forward only).")
for _status, _type in STATUS_EVENT_TYPES.items():
    event_type_register(
        _type, public=True, schema={**_STATUS_SCHEMA, "properties": {
            **_STATUS_SCHEMA["properties"], "status": {"const": _status}}},
        example={**_STATUS_EXAMPLE, "status": _status, **(
            {"error": {"code": "RECIPIENT_NOT_ON_WHATSAPP", "message": "Not on WhatsApp", "upstream_code": 131026},
             "failed_at": "2026-05-23T14:22:19Z"} if _status == "failed" else {})},
        description=f"An outbound message became {_status} (the same data as message.status_changed).")


# --- inbound -------------------------------------------------------------------------------------------

event_type_register(
    "message.inbound", public=True,
    description="A customer's message arrived.",
    schema=obj({
        "message_id": ident("message"), "conversation_id": ident("conversation"), "direction": {"const": "inbound"},
        "contact": obj({"id": ident("contact"), "phone": nullable(STRING), "wa_id": nullable(STRING),
                        "bsuid": nullable(STRING), "name": nullable(STRING)},
                       {"parent_bsuid": nullable(STRING), "username": nullable(STRING)}),
        "from": nullable(STRING), "type": STRING, "body": STRING,
        "content": {"type": "object", "description": "Meta's message object (with context, referral, errors)."},
        "provider_message_id": STRING, "phone_number_id": nullable(ident("receiving phone number (null on Messenger / Instagram)")),
        "reply_to_message_id": nullable(STRING), "timestamp": nullable(TIMESTAMP), "received_at": TIMESTAMP,
        "created_at": TIMESTAMP,
    }, {
        "channel": {**enum(*CHANNEL_VALUES), "description": "The channel the message came in on."},
        "social_account_id": {"type": "string", "description": "Messenger / Instagram: the connected Page or "
                                                                "Instagram account (sac_…) it was sent to."},
        "referral": {"type": "object", "description": "The click-to-WhatsApp ad or post the customer came "
                                                      "from (source_type, source_id, source_url, headline, "
                                                      "body, ctwa_clid, media)."},
        "flow_response": {"type": "object", "description": "A WhatsApp Flow's answers (nfm_reply), decoded: "
                                                           "flow_token, name and the fields."},
    }),
    example={
        "message_id": "msg_01HNQX2P8Y9R3T4V5W6Z7A8B9E", "conversation_id": "cnv_01HNQX2P8Y9R3T4V5W6Z7A8B9D",
        "direction": "inbound",
        "contact": {"id": "ct_01HNQX2P8Y9R", "phone": "+15551234567", "wa_id": "15551234567", "bsuid": None,
                    "name": "Ada"},
        "from": "+15551234567", "type": "text", "body": "Hello", "content": {"body": "Hello"},
        "provider_message_id": "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQ", "phone_number_id": "pn_01HNQX2P8Y9R",
        "reply_to_message_id": None, "timestamp": "2026-05-23T14:22:17Z", "received_at": "2026-05-23T14:22:18Z",
        "created_at": "2026-05-23T14:22:18Z",
    },
)


def message_inbound(*, message: Message, contact: Contact, sender: str, wa_id: str | None, profile_name: str | None,
                    timestamp: datetime | None, received_at: datetime) -> dict[str, Any]:
    """message.inbound for a stored inbound `message`. sender: the phone (or business-scoped id) it came
    from; wa_id, profile_name: what Meta said, used where the contact row has no value yet."""
    return {
        "message_id": message.pk, "conversation_id": message.conversation_id, "direction": "inbound",
        "contact": {"id": contact.pk, "phone": contact.phone, "wa_id": contact.wa_id or wa_id,
                    "bsuid": contact.bsuid, "name": contact.name or profile_name,
                    "parent_bsuid": contact.parent_bsuid or None, "username": contact.username or None},
        "from": sender, "type": message.type, "body": message.body, "content": message.content,
        "provider_message_id": message.provider_message_id, "phone_number_id": message.phone_number_id,
        "reply_to_message_id": message.reply_to_id, "timestamp": _iso(timestamp), "received_at": _iso(received_at),
        "created_at": _iso(message.created_at), "channel": message.channel,
        **({"social_account_id": message.social_account_id} if message.social_account_id else {}),
        **({"referral": message.content["referral"]} if isinstance(message.content.get("referral"), dict) else {}),
        **({"flow_response": message.content["flow_response"]}
           if isinstance(message.content.get("flow_response"), dict) else {}),
    }


# --- conversations -------------------------------------------------------------------------------------

event_type_register(
    "conversation.assigned", public=True,
    description="A conversation's assignee changed (assigned_user_id null: unassigned).",
    schema=obj({"conversation_id": ident("conversation"), "assigned_user_id": nullable(STRING),
                "previous_assigned_user_id": nullable(STRING), "by_user_id": nullable(STRING)},
               {"team_id": nullable(STRING), "previous_team_id": nullable(STRING),
                "reason": enum("auto_assignment")}),
    example={"conversation_id": "cnv_01HNQX2P8Y9R3T4V5W6Z7A8B9D", "assigned_user_id": "usr_01HNQX2P8Y9R",
             "previous_assigned_user_id": None, "by_user_id": "usr_01HNQX2P8Y9S", "team_id": None,
             "previous_team_id": None},
)


def conversation_assigned(*, conversation: Conversation, previous_assigned_user_id: str | None,
                          by_user_id: str | None, previous_team_id: str | None = None,
                          reason: str | None = None) -> dict[str, Any]:
    data = {"conversation_id": conversation.pk, "assigned_user_id": conversation.assigned_user_id,
            "previous_assigned_user_id": previous_assigned_user_id, "by_user_id": by_user_id}
    if conversation.team_id or previous_team_id:  # teams are optional: the fields appear once one is involved
        data.update(team_id=conversation.team_id, previous_team_id=previous_team_id)
    if reason:
        data["reason"] = reason
    return data


_CONVERSATION_REASONS = ("inbound", "snooze_elapsed")
event_type_register(
    "conversation.status_changed", public=True,
    description="A conversation's state changed (or its snooze time). reason: what changed it when no agent "
                "did (a customer's message, a snooze running out).",
    schema=obj({"conversation_id": ident("conversation"), "state": enum(*Conversation.State.values),
                "previous_state": enum(*Conversation.State.values), "snooze_until": nullable(TIMESTAMP),
                "by_user_id": nullable(STRING)},
               {"reason": enum(*_CONVERSATION_REASONS)}),
    example={"conversation_id": "cnv_01HNQX2P8Y9R3T4V5W6Z7A8B9D", "state": "open", "previous_state": "snoozed",
             "snooze_until": None, "by_user_id": None, "reason": "snooze_elapsed"},
)


def conversation_status_changed(*, conversation: Conversation, previous_state: str, by_user_id: str | None = None,
                                reason: str | None = None) -> dict[str, Any]:
    data = {"conversation_id": conversation.pk, "state": conversation.state, "previous_state": previous_state,
            "snooze_until": _iso(conversation.snooze_until), "by_user_id": by_user_id}
    if reason:
        data["reason"] = reason
    return data


event_type_register(
    "conversation.note_added", public=False,
    description="An agent left a private note (the body stays out: notes are private).",
    schema=obj({"conversation_id": ident("conversation"), "note_id": ident("note"),
                "author_user_id": nullable(STRING)}),
    example={"conversation_id": "cnv_01HNQX2P8Y9R3T4V5W6Z7A8B9D", "note_id": "note_01HNQX2P8Y9R",
             "author_user_id": "usr_01HNQX2P8Y9R"},
)


def conversation_note_added(*, note: ConversationNote) -> dict[str, Any]:
    return {"conversation_id": note.conversation_id, "note_id": note.pk, "author_user_id": note.author_id}


# --- labels, teams, presence (the inbox's organisation; internal: the browsers and the audit need them) -----

event_type_register(
    "conversation.labels_changed", public=False,
    description="Labels were added to or removed from a conversation (label_ids: the set after the change).",
    schema=obj({"conversation_id": ident("conversation"), "label_ids": {"type": "array", "items": STRING},
                "added": {"type": "array", "items": STRING}, "removed": {"type": "array", "items": STRING},
                "by_user_id": nullable(STRING)}),
    example={"conversation_id": "cnv_01HNQX2P8Y9R3T4V5W6Z7A8B9D", "label_ids": ["lbl_01HNQX2P8Y9R"],
             "added": ["lbl_01HNQX2P8Y9R"], "removed": [], "by_user_id": "usr_01HNQX2P8Y9R"},
)


def conversation_labels_changed(*, conversation_id: str, label_ids: list[str], added: list[str],
                                removed: list[str], by_user_id: str | None) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "label_ids": sorted(label_ids), "added": sorted(added),
            "removed": sorted(removed), "by_user_id": by_user_id}


_CHANGE = enum("created", "updated", "deleted")
event_type_register(
    "label.changed", public=False,
    description="A conversation label was created, renamed or recoloured, or deleted.",
    schema=obj({"label_id": ident("label"), "change": _CHANGE, "name": STRING, "color": STRING}),
    example={"label_id": "lbl_01HNQX2P8Y9R", "change": "created", "name": "VIP", "color": "#6941c6"},
)
event_type_register(
    "team.changed", public=False,
    description="A team was created, changed (name, members, assignment settings) or deleted.",
    schema=obj({"team_id": ident("team"), "change": _CHANGE, "name": STRING,
                "member_ids": {"type": "array", "items": STRING}}),
    example={"team_id": "team_01HNQX2P8Y9R", "change": "created", "name": "Support", "member_ids": []},
)
event_type_register(
    "agent.presence_changed", public=False,
    description="An agent went online or away in the inbox.",
    schema=obj({"user_id": STRING, "status": enum("online", "away")}),
    example={"user_id": "usr_01HNQX2P8Y9R", "status": "away"},
)


def label_changed(*, label, change: str) -> dict[str, Any]:
    return {"label_id": label.pk, "change": change, "name": label.name, "color": label.color}


def team_changed(*, team, change: str, member_ids: list[str]) -> dict[str, Any]:
    return {"team_id": team.pk, "change": change, "name": team.name, "member_ids": sorted(member_ids)}


def agent_presence_changed(*, user_id: str, status: str) -> dict[str, Any]:
    return {"user_id": user_id, "status": status}
