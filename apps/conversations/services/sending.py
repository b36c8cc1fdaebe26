"""The send road up to the queue: policy chain (API.md order), the Message row, the on-commit kick.

Order, every time: payload validation -> sender resolution -> template status/language/variables ->
24 h window (non-template) -> consent (MARKETING only) -> wallet. Nothing is written until all pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.billing import services as billing
from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Media, Message
from apps.conversations.selectors.sending import send_target_guard, send_targets
from apps.conversations.services import transitions
from apps.conversations.services.threads import (
    conversation_get_or_open,
    conversation_record_message,
    conversation_record_message_statement,
)
from apps.conversations.services.validation import (
    MEDIA_TYPES,
    SendRequest,
    body_preview,
    content_validate,
    send_request_validate,
)
from apps.core.errors import (
    ContactOptedOut,
    NotFound,
    OutsideWindow,
    ValidationFailed,
)
from apps.core.models import User, Workspace
from apps.core.services import (
    audit_record,
    audit_record_statement,
    event_append,
    event_append_with_guarded_writes,
    event_append_with_writes,
)
from apps.core.sql import insert_run, insert_select_statement, insert_statement
from apps.core.tenancy import Tenant
from apps.wabas.models import PhoneNumber


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _max_age() -> timedelta:
    return timedelta(seconds=getattr(settings, "DISPATCH_MAX_AGE_SECONDS", 86400))


@dataclass
class _Resolved:
    number: PhoneNumber
    contact: Contact | None
    template: object | None
    category: str
    body: str
    media: Media | None
    content: dict | list
    conversation_id: str | None = None


def _window_open(contact: Contact | None, now: datetime) -> bool:
    last = contact.last_inbound_at if contact else None
    return bool(last and now - last < timedelta(hours=settings.CUSTOMER_SERVICE_WINDOW_HOURS))


def _check_window(contact: Contact | None, now: datetime) -> None:
    if not _window_open(contact, now):
        raise OutsideWindow(details={"field": "type",
                                     "last_inbound_at": _iso(contact.last_inbound_at if contact else None)})


def _resolve_template(*, workspace: Workspace, number: PhoneNumber, content: dict):
    from apps.message_templates.selectors import template_for_send
    from apps.message_templates.services import template_render

    template = template_for_send(workspace=workspace, waba=number.waba, name=content["name"],
                                 language=content["language"])
    body = template_render(template=template, variables=content.get("variables"),
                           components=content.get("components"))
    return template, body


def _resolve_refs(*, workspace: Workspace, message_type: str, content, waba_id: str = ""):
    """Foreign or unknown ids in the payload answer 404 like any other id."""
    media = None
    if message_type in MEDIA_TYPES and content.get("media_id"):
        media = Media.objects.filter(workspace=workspace, pk=content["media_id"]).first()
        if media is None:
            raise NotFound("No such media.", details={"field": f"{message_type}.media_id"})
        if media.kind != message_type and not (message_type == "document" and media.kind in ("document",)):
            raise ValidationFailed(f"{message_type}.media_id: that file is {media.kind}, not {message_type}.",
                                   field=f"{message_type}.media_id")
    if message_type == "reaction":
        target = content["message_id"]
        if target.startswith("msg_"):
            qs = Message.objects.filter(workspace=workspace, pk=target)
            if waba_id:
                qs = qs.filter(phone_number__waba_id=waba_id)
            if not qs.exists():
                raise NotFound("No such message.", details={"field": "reaction.message_id"})
    return media


def _policy(*, workspace: Workspace, waba_id: str, req: SendRequest, now: datetime) -> _Resolved:
    targets = send_targets(workspace=workspace, waba_id=waba_id, phone_number_id=req.phone_number_id, to=req.to,
                           channel_kind=req.channel)
    number, contact = targets.number, targets.contact
    media = _resolve_refs(workspace=workspace, message_type=req.type, content=req.content, waba_id=waba_id)
    template, category, body = None, "", ""
    if req.type == "template":
        template, body = _resolve_template(workspace=workspace, number=number, content=req.content)
        category = template.category
    else:
        body = body_preview(req.type, req.content)
        if req.channel == "whatsapp":
            _check_window(contact, now)
    if category == "MARKETING" and contact is not None:
        from apps.contacts.selectors import contact_is_opted_out

        if contact_is_opted_out(contact=contact):
            raise ContactOptedOut(details={"field": "to"})
    return _Resolved(number=number, contact=contact, template=template, category=category, body=body,
                     media=media, content=req.content, conversation_id=targets.conversation_id)


def _kick_on_commit(phone_number_id: str) -> None:
    from apps.conversations.services.dispatch import dispatch_kick

    transaction.on_commit(lambda: dispatch_kick(phone_number_id=phone_number_id))


def _status_event_data(message: Message, previous: str | None) -> dict:
    return {
        "message_id": message.pk, "status": message.status, "previous_status": previous,
        "to": message.to_phone, "conversation_id": message.conversation_id,
        "client_reference": message.client_reference, "campaign_id": message.campaign_id,
    }


def _status_event(*, workspace: Workspace, message: Message, previous: str | None) -> None:
    event_append(workspace=workspace, type="message.status_changed", data=_status_event_data(message, previous))


def _outbound_message(*, workspace: Workspace, conversation_id: str | None, contact: Contact | None,
                      number: PhoneNumber | None, channel: str, message_type: str, to: str, content, body: str,
                      media: Media | None, template, category: str, cost: Decimal, sent_by: str,
                      sent_by_user: User | None, api_key_id: str, scheduled_at: datetime | None,
                      client_reference: str, fallback: dict | None, now: datetime) -> Message:
    release = scheduled_at or now
    return Message(
        workspace=workspace, conversation_id=conversation_id, contact=contact, phone_number=number,
        direction=Message.Direction.OUTBOUND, channel=channel, type=message_type, to_phone=to,
        content=content, body=body, media=media, template=template, template_category=category,
        status=Message.Status.SCHEDULED if scheduled_at else Message.Status.QUEUED,
        client_reference=client_reference, sent_by=sent_by, sent_by_user=sent_by_user, api_key_id=api_key_id,
        scheduled_at=scheduled_at, next_attempt_at=release, expires_at=release + _max_age(),
        cost_estimate=cost, currency=billing.wallet_currency(workspace=workspace), fallback=fallback or {},
    )


def _create(*, workspace: Workspace, number: PhoneNumber, contact: Contact | None, to: str, channel: str,
            message_type: str, content, body: str, template, category: str, media: Media | None,
            cost: Decimal, sent_by: str, sent_by_user: User | None = None, api_key_id: str = "",
            scheduled_at: datetime | None = None, client_reference: str = "", fallback: dict | None = None,
            conversation_id: str | None = None, audit: dict | None = None, now: datetime) -> Message:
    """conversation_id: the contact's current conversation on this number when the caller already read it.
    audit: the request's audit record (apps.core.services.audit_record arguments), written in this
    transaction with the message as its target."""
    def new_message() -> Message:
        return _outbound_message(
            workspace=workspace, conversation_id=conversation_id, contact=contact, number=number, channel=channel,
            message_type=message_type, to=to, content=content, body=body, media=media, template=template,
            category=category, cost=cost, sent_by=sent_by, sent_by_user=sent_by_user, api_key_id=api_key_id,
            scheduled_at=scheduled_at, client_reference=client_reference, fallback=fallback, now=now)

    known = contact is not None and contact.phone == to and conversation_id is not None
    if known and connection.vendor == "postgresql":
        # The common case (a known contact's open conversation): the message, the conversation's activity,
        # the audit record and the event are ONE statement, hence one transaction and one round trip.
        message = new_message()
        billing.wallet_reserve(workspace=workspace, amount=cost, message_id=message.pk)  # a stub: no write yet
        writes = [insert_statement([message]),
                  conversation_record_message_statement(conversation_id=conversation_id, at=now, preview=body,
                                                        inbound=False)]
        if audit is not None:
            writes.append(audit_record_statement(**{**audit, "target_id": message.pk}))
        event_append_with_writes(workspace=workspace, type="message.status_changed",
                                 data=_status_event_data(message, None), writes=writes)
        message._state.adding, message._state.db = False, connection.alias
        if not scheduled_at:
            _kick_on_commit(number.pk)
        return message
    # Other cases build the INSERT before the transaction opens when they can: Python run inside it,
    # waiting for the GIL under load, holds its locks for longer.
    message = new_message() if known else None
    statement = insert_statement([message]) if known else None
    with transaction.atomic():
        if not known:
            if contact is None or contact.phone != to:
                from apps.contacts.services import contact_upsert_by_phone

                contact, conversation_id = contact_upsert_by_phone(workspace=workspace, phone=to), None
            if conversation_id is None:
                conversation_id = conversation_get_or_open(workspace=workspace, contact=contact,
                                                           phone_number=number, channel_kind=channel).pk
            message = new_message()
            statement = insert_statement([message])
        insert_run([message], statement)
        billing.wallet_reserve(workspace=workspace, amount=cost, message_id=message.pk)
        conversation_record_message(conversation_id=conversation_id, at=now, preview=body, inbound=False)
        if audit is not None:
            audit_record(**{**audit, "target_id": message.pk})
        # Last: the event takes the workspace's counter lock, which is held until the commit.
        _status_event(workspace=workspace, message=message, previous=None)
        if not scheduled_at:
            _kick_on_commit(number.pk)
    return message


def _one_statement_applies(req: SendRequest) -> bool:
    """Sends whose whole policy is the sender, the contact and its window (no template, no consent, no
    media or message to look up) can be checked inside the statement that writes them."""
    return (connection.vendor == "postgresql" and req.channel == Message.Channel.WHATSAPP
            and req.type not in ("template", "reaction")
            and not (req.type in MEDIA_TYPES and req.content.get("media_id")))


def _send_in_one_statement(*, tenant: Tenant, req: SendRequest, audit: dict | None, now: datetime) -> Message | None:
    """The common send, a free-form message to a contact inside their window, in their current conversation
    on the workspace's only (or the pinned) number, as ONE statement and one round trip: the policy's read
    is a guard CTE of the write (send_target_guard), and the message, the conversation's activity, the
    audit record and the event are written only if it found that case. None when it did not: nothing was
    written, and the caller takes the full road, which refuses with the reason, or opens the contact or
    the conversation."""
    workspace = tenant.workspace
    body = body_preview(req.type, req.content)
    cost = billing.cost_estimate(category="", to_phone=req.to)
    message = _outbound_message(
        workspace=workspace, conversation_id=None, contact=None, number=None, channel=req.channel,
        message_type=req.type, to=req.to, content=req.content, body=body, media=None, template=None, category="",
        cost=cost, sent_by="api", sent_by_user=tenant.user, api_key_id=tenant.api_key.pk if tenant.api_key else "",
        scheduled_at=req.scheduled_at, client_reference=req.client_reference, fallback=req.fallback, now=now)
    billing.wallet_reserve(workspace=workspace, amount=cost, message_id=message.pk)  # a stub: no write yet
    guard = send_target_guard(
        workspace=workspace, waba_id=tenant.waba_id, phone_number_id=req.phone_number_id, to=req.to,
        channel_kind=req.channel, window_opened_after=now - timedelta(hours=settings.CUSTOMER_SERVICE_WINDOW_HOURS))
    writes = [
        insert_select_statement(message, source="ok", exprs={"phone_number_id": "ok.phone_number_id",
                                                             "contact_id": "ok.contact_id",
                                                             "conversation_id": "ok.conversation_id"}),
        conversation_record_message_statement(at=now, preview=body, inbound=False,
                                              conversation_id_sql="(SELECT conversation_id FROM ok)"),
    ]
    if audit is not None:
        writes.append(audit_record_statement(source="ok", **{**audit, "target_id": message.pk}))
    event, ids = event_append_with_guarded_writes(
        workspace=workspace, type="message.status_changed", data=_status_event_data(message, None), guard=guard,
        guard_name="ok", writes=writes,
        data_sql="(SELECT jsonb_build_object('conversation_id', conversation_id) FROM ok)",
        returning="(SELECT phone_number_id FROM ok), (SELECT contact_id FROM ok)",
    )
    if event is None:
        return None
    message.phone_number_id, message.contact_id = ids
    message.conversation_id = event.data["conversation_id"]
    message._state.adding, message._state.db = False, connection.alias
    if not req.scheduled_at:
        _kick_on_commit(message.phone_number_id)
    return message


def message_send(*, tenant: Tenant, data: dict, audit: dict | None = None, now: datetime | None = None) -> Message:
    """POST /api/v1/messages: the policy chain, then the queued (or scheduled) row, stored before the 202
    (with the request's audit record, when given, in the same transaction)."""
    now = now or timezone.now()
    req = send_request_validate(data, now=now)
    if _one_statement_applies(req):
        message = _send_in_one_statement(tenant=tenant, req=req, audit=audit, now=now)
        if message is not None:
            return message
    workspace = tenant.workspace
    r = _policy(workspace=workspace, waba_id=tenant.waba_id, req=req, now=now)
    cost = billing.cost_estimate(category=r.category, to_phone=req.to)
    return _create(
        workspace=workspace, number=r.number, contact=r.contact, to=req.to, channel=req.channel,
        message_type=req.type, content=r.content, body=r.body, template=r.template, category=r.category,
        media=r.media, cost=cost, sent_by="api", sent_by_user=tenant.user,
        api_key_id=tenant.api_key.pk if tenant.api_key else "", scheduled_at=req.scheduled_at,
        client_reference=req.client_reference, fallback=req.fallback, conversation_id=r.conversation_id,
        audit=audit, now=now,
    )


def message_send_internal(*, workspace: Workspace, phone_number: PhoneNumber, contact: Contact, message_type: str,
                          content, sent_by: str, sent_by_user: User | None = None,
                          enforce_window: bool = True, now: datetime | None = None) -> Message:
    """Agent replies (inbox) and auto-replies: same checks minus sender resolution; content in API.md shape."""
    now = now or timezone.now()
    content = content_validate(message_type=message_type, content=content)
    if not contact.phone:
        raise ValidationFailed("This contact has no phone number to send to.", field="to")
    media = _resolve_refs(workspace=workspace, message_type=message_type, content=content)
    template, category = None, ""
    if message_type == "template":
        template, body = _resolve_template(workspace=workspace, number=phone_number, content=content)
        category = template.category
    else:
        body = body_preview(message_type, content)
        if enforce_window:
            _check_window(contact, now)
    if category == "MARKETING":
        from apps.contacts.selectors import contact_is_opted_out

        if contact_is_opted_out(contact=contact):
            raise ContactOptedOut(details={"field": "to"})
    cost = billing.cost_estimate(category=category, to_phone=contact.phone)
    return _create(
        workspace=workspace, number=phone_number, contact=contact, to=contact.phone,
        channel=Message.Channel.WHATSAPP, message_type=message_type, content=content, body=body, template=template,
        category=category, media=media, cost=cost, sent_by=sent_by, sent_by_user=sent_by_user, now=now,
    )


def messages_enqueue_bulk(*, workspace: Workspace, phone_number: PhoneNumber, template, rows: list[dict],
                          campaign_id: str, now: datetime | None = None) -> list[str]:
    """Campaign fan-out: one transaction, bulk inserts, queued rows the dispatcher drains fairly.
    rows: [{"contact": Contact, "variables": list|dict, "body": rendered text, "expires_at": datetime|None}]
    ("expires_at" only shortens the maximum age). No per-message creation event (a campaign of 100k would
    write 100k events); status changes from the dispatcher on are evented."""
    now = now or timezone.now()
    if not rows:
        return []
    currency = billing.wallet_currency(workspace=workspace)
    with transaction.atomic():
        contact_ids = [row["contact"].pk for row in rows]
        conversations = {
            c.contact_id: c
            for c in Conversation.objects.filter(
                workspace=workspace, phone_number=phone_number, channel_kind=Conversation.ChannelKind.WHATSAPP,
                contact_id__in=contact_ids,
            ).exclude(state=Conversation.State.RESOLVED).order_by("created_at")
        }
        missing = [row["contact"] for row in rows if row["contact"].pk not in conversations]
        if missing:
            created = Conversation.objects.bulk_create([
                Conversation(workspace=workspace, contact=c, phone_number=phone_number,
                             channel_kind=Conversation.ChannelKind.WHATSAPP, state=Conversation.State.OPEN,
                             last_message_at=now)
                for c in {c.pk: c for c in missing}.values()
            ])
            conversations.update({c.contact_id: c for c in created})
        messages = []
        default_expiry = now + _max_age()
        for row in rows:
            contact = row["contact"]
            # A row may bring its own deadline (a campaign's validity window); never beyond the maximum age.
            expires_at = min(default_expiry, row["expires_at"]) if row.get("expires_at") else default_expiry
            content = {"name": template.name, "language": template.language}
            if row.get("variables") is not None:
                content["variables"] = row["variables"]
            messages.append(Message(
                workspace=workspace, conversation=conversations[contact.pk], contact=contact,
                phone_number=phone_number, direction=Message.Direction.OUTBOUND, channel=Message.Channel.WHATSAPP,
                type="template", to_phone=contact.phone or "", content=content, body=row.get("body", ""),
                template=template, template_category=template.category, status=Message.Status.QUEUED,
                campaign_id=campaign_id, sent_by="campaign", next_attempt_at=now, expires_at=expires_at,
                cost_estimate=billing.cost_estimate(category=template.category, to_phone=contact.phone or ""),
                currency=currency,
            ))
        Message.objects.bulk_create(messages, batch_size=1000)
        Conversation.objects.filter(pk__in=[c.pk for c in conversations.values()]).update(last_message_at=now)
        _kick_on_commit(phone_number.pk)
    return [m.pk for m in messages]


def _insert_select_columns(model, explicit: dict[str, str | tuple[str, list]], *, now: datetime):
    """(columns, select expressions, params) for `INSERT INTO <model> (columns) SELECT expressions`: `explicit`
    maps field names to SQL (a bare "%s" with one param is cast to the column's type); every other column takes
    the field's Python default (auto_now fields: `now`), so a new field with a default needs no change here."""

    columns, exprs, params = [], [], []
    for field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        cast = field.cast_db_type(connection)
        if field.name in explicit:
            spec = explicit[field.name]
            sql, values = (spec, []) if isinstance(spec, str) else spec
            exprs.append(f"{sql}::{cast}" if sql == "%s" else sql)
            params.extend(values)
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            exprs.append(f"%s::{cast}")
            params.append(now)
        else:
            exprs.append(f"%s::{cast}")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    return ", ".join(columns), ", ".join(exprs), params


def messages_enqueue_query(*, workspace: Workspace, phone_number: PhoneNumber, template, campaign_id: str,
                           ctes: list[tuple[str, list]], source: str, after: list[tuple[str, list]],
                           select: tuple[str, list], now: datetime | None = None) -> tuple:
    """`messages_enqueue_bulk` as one PostgreSQL statement, for callers whose rows are themselves a query
    (a campaign's batch): Python does the same work for 10 rows as for 10,000.

    `ctes` are the caller's CTEs (`name AS (...)`, params); the one named `source` yields one row per message:
    `ord` (the batch's order), `contact_id`, `to_phone`, `variables` (jsonb, or NULL for no "variables" key),
    `body` (the rendered text), `cost_estimate`, `expires_at` (NULL = the maximum age; never beyond it), plus
    any columns of the caller's own. This adds `enqueued` (the source's rows with their `message_id`), the
    conversation get-or-open (the newest not resolved one per contact on this number, else a new one, as
    `messages_enqueue_bulk`) and the message insert; the caller's `after` CTEs may read `enqueued` (to link
    its rows to their messages in the same statement), and `select` is the statement's final SELECT, whose
    row is returned. Same rows, same defaults and the same on-commit kick as `messages_enqueue_bulk`."""
    from apps.core.ids import new_id_batch_prefix, sql_id_expression

    now = now or timezone.now()
    seq = "row_number() OVER (ORDER BY s.ord) - 1"
    parts: list[str] = []
    params: list = []
    for sql, values in ctes:
        parts.append(sql)
        params.extend(values)
    parts.append(
        f"enqueued AS MATERIALIZED (SELECT s.*, {seq} AS _seq, "  # noqa: S608 - our SQL
        f"{sql_id_expression(prefix_sql='%s::text', seq_sql=seq)} AS message_id FROM {source} s)"
    )
    params.append(new_id_batch_prefix("msg"))
    conv = Conversation._meta.db_table
    # One index probe per contact (cnv_contact_number), whatever the planner believes about the table's size.
    parts.append(
        "_conv_old AS MATERIALIZED (SELECT e.contact_id, o.id FROM enqueued e CROSS JOIN LATERAL ("  # noqa: S608
        f"SELECT cv.id FROM {conv} cv WHERE cv.contact_id = e.contact_id AND cv.phone_number_id = %s "
        "AND cv.channel_kind = %s AND cv.workspace_id = %s AND cv.state <> %s ORDER BY cv.created_at DESC LIMIT 1) o)"
    )
    params += [phone_number.pk, Conversation.ChannelKind.WHATSAPP.value, workspace.pk,
               Conversation.State.RESOLVED.value]
    cols, exprs, values = _insert_select_columns(Conversation, {
        "id": (sql_id_expression(prefix_sql="%s::text", seq_sql="e._seq"), [new_id_batch_prefix("cnv")]),
        "workspace": ("%s", [workspace.pk]),
        "contact": "e.contact_id",
        "phone_number": ("%s", [phone_number.pk]),
        "channel_kind": ("%s", [Conversation.ChannelKind.WHATSAPP.value]),
        "state": ("%s", [Conversation.State.OPEN.value]),
        "last_message_at": ("%s", [now]),
    }, now=now)
    parts.append(
        f"_conv_new AS (INSERT INTO {conv} ({cols}) SELECT {exprs} FROM enqueued e "  # noqa: S608 - our tables
        "WHERE NOT EXISTS (SELECT 1 FROM _conv_old o WHERE o.contact_id = e.contact_id) RETURNING contact_id, id)"
    )
    params += values
    parts.append(f"_conv_touch AS (UPDATE {conv} SET last_message_at = %s "  # noqa: S608
                 "WHERE id IN (SELECT id FROM _conv_old))")
    params.append(now)
    cols, exprs, values = _insert_select_columns(Message, {
        "id": "e.message_id",
        "workspace": ("%s", [workspace.pk]),
        "conversation": "cv.id",
        "contact": "e.contact_id",
        "phone_number": ("%s", [phone_number.pk]),
        "direction": ("%s", [Message.Direction.OUTBOUND.value]),
        "channel": ("%s", [Message.Channel.WHATSAPP.value]),
        "type": ("%s", ["template"]),
        "to_phone": "coalesce(e.to_phone, '')",
        "content": ("(jsonb_build_object('name', %s::text, 'language', %s::text) || CASE WHEN e.variables IS NULL "
                    "THEN '{}'::jsonb ELSE jsonb_build_object('variables', e.variables) END)",
                    [template.name, template.language]),
        "body": "coalesce(e.body, '')",
        "template": ("%s", [template.pk]),
        "template_category": ("%s", [template.category]),
        "status": ("%s", [Message.Status.QUEUED.value]),
        "campaign_id": ("%s", [campaign_id]),
        "sent_by": ("%s", ["campaign"]),
        "next_attempt_at": ("%s", [now]),
        # A row may bring its own deadline (a campaign's validity window); never beyond the maximum age.
        "expires_at": ("LEAST(%s::timestamptz, e.expires_at)", [now + _max_age()]),
        "cost_estimate": "e.cost_estimate",
        "currency": ("%s", [billing.wallet_currency(workspace=workspace)]),
    }, now=now)
    parts.append(
        f"_msgs AS (INSERT INTO {Message._meta.db_table} ({cols}) SELECT {exprs} FROM enqueued e "  # noqa: S608
        "JOIN (SELECT contact_id, id FROM _conv_old UNION ALL SELECT contact_id, id FROM _conv_new) cv "
        "ON cv.contact_id = e.contact_id)"
    )
    params += values
    for sql, values in after:
        parts.append(sql)
        params.extend(values)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("WITH " + ",\n".join(parts) + "\n" + select[0], [*params, *select[1]])
            row = cursor.fetchone()
        _kick_on_commit(phone_number.pk)
    return row


# --- scheduled messages ------------------------------------------------------------------------------


def message_cancel(*, workspace: Workspace, message_id: str, waba_id: str = "") -> Message:
    from apps.core.errors import Conflict

    with transaction.atomic():
        qs = Message.objects.select_for_update().filter(workspace=workspace, pk=message_id,
                                                        direction=Message.Direction.OUTBOUND)
        if waba_id:
            qs = qs.filter(phone_number__waba_id=waba_id)
        message = qs.first()
        if message is None:
            raise NotFound()
        if message.status != Message.Status.SCHEDULED:
            raise Conflict("Only a scheduled message can be canceled.",
                           details={"field": "status", "status": message.status})
        transitions.message_transition(message=message, to=Message.Status.CANCELED)
    return message


def messages_release_scheduled(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Beat: scheduled messages whose time has come become queued (skip-locked, so two beats never race)."""
    now = now or timezone.now()
    with transaction.atomic():
        qs = Message.objects.filter(status=Message.Status.SCHEDULED, scheduled_at__lte=now).order_by("scheduled_at")
        if settings.IS_POSTGRES:
            qs = qs.select_for_update(skip_locked=True)
        events: dict[str, list] = {}
        released = transitions.messages_release_due(messages=list(qs[:limit]), now=now, events=events)
        transitions.events_flush(events)
        for pn in {m.phone_number_id for m in released}:
            _kick_on_commit(pn)
    return len(released)
