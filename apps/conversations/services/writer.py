"""The one message writer: the only code that inserts outbound messages, for one (`message_write`) and
for many (`messages_enqueue_bulk`, and its one-statement PostgreSQL form `messages_enqueue_query`).

It finds or opens the conversation (threads' upsert on the one-open-conversation constraint), inserts
the row(s), reserves their cost (policy.wallet_reserve, the last rule, inside the same transaction or
statement, so a refusal writes nothing), appends the creation event and schedules the dispatch kick on
commit. Whether a message may go at all was decided before, by apps.conversations.policy.

Fast forms that must write what the ORM form writes (tests/conversations/test_writer.py compares the rows):
- `message_write_guarded`: the API's common send as ONE statement whose guard CTE is the policy's read
  (selectors.sending.send_target_guard);
- `messages_enqueue_query`: a campaign batch as one INSERT … SELECT."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.billing import services as billing
from apps.contacts.models import Contact
from apps.contacts.services import contact_address, contact_key_share_lock
from apps.conversations import policy
from apps.conversations.events import message_status_changed
from apps.conversations.models import Conversation, Message
from apps.conversations.policy import SendContext
from apps.conversations.services.threads import (
    conversation_get_or_open,
    conversation_open_sql,
    conversation_record_message,
    conversation_record_message_statement,
    conversations_get_or_open,
)
from apps.core.models import User, Workspace
from apps.core.services import (
    audit_record,
    audit_record_statement,
    event_append,
    event_append_with_guarded_writes,
)
from apps.core.sql import insert_run, insert_select_statement, insert_statement
from apps.wabas.models import PhoneNumber


def _max_age() -> timedelta:
    return timedelta(seconds=getattr(settings, "DISPATCH_MAX_AGE_SECONDS", 86400))


def creation_event_data(message: Message, *, fallback_for: str | None = None) -> dict:
    """The `message.status_changed` a new message is created with: the status mover's payload, from no
    previous status."""
    return message_status_changed(message=message, previous_status=None, fallback_for=fallback_for)


def kick_on_commit(phone_number_id: str) -> None:
    from apps.conversations.services.dispatch import dispatch_kick

    transaction.on_commit(lambda: dispatch_kick(phone_number_id=phone_number_id))


def fallback_due_at(fallback: dict | None, *, release: datetime) -> datetime | None:
    """fallback.after = undelivered: the SMS is due when WhatsApp has not delivered `wait_seconds` after
    the message was released for sending."""
    if not fallback or fallback.get("after") != "undelivered":
        return None
    return release + timedelta(seconds=int(fallback["wait_seconds"]))


def _outbound_message(ctx: SendContext, *, number_id: str | None, conversation_id: str | None, sent_by: str,
                      sent_by_user: User | None, api_key_id: str, scheduled_at: datetime | None,
                      client_reference: str, fallback: dict | None, campaign_id: str,
                      fallback_for: str | None = None) -> Message:
    release = scheduled_at or ctx.now
    return Message(
        workspace=ctx.workspace, conversation_id=conversation_id, contact=ctx.contact, phone_number_id=number_id,
        direction=Message.Direction.OUTBOUND, channel=ctx.channel, type=ctx.message_type, to_phone=ctx.to,
        content=ctx.content, body=ctx.body, media=ctx.media, template=ctx.template,
        template_category=ctx.category,
        status=Message.Status.SCHEDULED if scheduled_at else Message.Status.QUEUED,
        client_reference=client_reference, sent_by=sent_by, sent_by_user=sent_by_user, api_key_id=api_key_id,
        scheduled_at=scheduled_at, next_attempt_at=release, expires_at=release + _max_age(),
        cost_estimate=ctx.cost, currency=billing.wallet_currency(workspace=ctx.workspace), fallback=fallback or {},
        campaign_id=campaign_id, fallback_for_id=fallback_for, fallback_due_at=fallback_due_at(fallback, release=release),
        social_account_id=getattr(ctx.account, "pk", None), social_tag=ctx.tag,
    )


def _kick_sender_on_commit(ctx: SendContext) -> None:
    """Wake the sender's drain: the number's, or the Page / Instagram account's."""
    if ctx.account is not None:
        from apps.conversations.services.dispatch.social import social_dispatch_kick

        transaction.on_commit(lambda pk=ctx.account.pk: social_dispatch_kick(account_id=pk))
    else:
        kick_on_commit(ctx.number.pk)


def message_write(ctx: SendContext, *, sent_by: str, sent_by_user: User | None = None, api_key_id: str = "",
                  scheduled_at: datetime | None = None, client_reference: str = "", fallback: dict | None = None,
                  audit: dict | None = None, campaign_id: str = "", fallback_for: str | None = None,
                  events: list | None = None) -> Message:
    """One message the policy accepted (ctx). ctx.conversation_id: the contact's current conversation on
    the number when the caller already read it. audit: the request's audit record (audit_record's
    arguments), written with the message as its target. events: the caller's list of events for its own
    transaction (the dispatcher's batch), which then gets the creation event instead of it being appended
    here; the caller must be inside its transaction."""
    contact, conversation_id, number = ctx.contact, ctx.conversation_id, ctx.number
    tracker = _links_expand(ctx)

    def new_message() -> Message:
        return _outbound_message(ctx, number_id=number.pk if number else None, conversation_id=conversation_id,
                                 sent_by=sent_by,
                                 sent_by_user=sent_by_user, api_key_id=api_key_id, scheduled_at=scheduled_at,
                                 client_reference=client_reference, fallback=fallback, campaign_id=campaign_id,
                                 fallback_for=fallback_for)

    # A Messenger / Instagram recipient is its PSID / IGSID: the policy found its contact by it.
    known = contact is not None and conversation_id is not None and (
        ctx.account is not None or contact_address(contact, channel=ctx.channel) == ctx.to)
    if known and events is None and connection.vendor == "postgresql" and not tracker:
        # The common case (a known contact's open conversation): the message, the conversation's activity,
        # the audit record and the event are ONE statement, hence one transaction and one round trip.
        message = new_message()
        if _write_in_one_statement(ctx, message, conversation_id=conversation_id, audit=audit,
                                   fallback_for=fallback_for):
            if not scheduled_at:
                _kick_sender_on_commit(ctx)
            return message
        # The wallet's guard refused (or the reservation crosses the low-balance threshold): the plain road
        # below refuses with the amounts, or reserves and emits wallet.low_balance.
    # Other cases build the INSERT before the transaction opens when they can: Python run inside it,
    # waiting for the GIL under load, holds its locks for longer.
    message = new_message() if known else None
    statement = insert_statement([message]) if known else None
    with transaction.atomic():
        # Lock order: the contact first (contact_upsert_by_address's row lock, else the KEY SHARE the message's
        # foreign key would take at commit), then the wallet, the conversation and the event counter last. A
        # caller's batch (the dispatcher's SMS fallback) takes the counter after this returns; with the contact's
        # lock left to the commit, that crossed the receive road's order (contact, then counter): a deadlock.
        if not known and ctx.account is None and (
                contact is None or contact_address(contact, channel=ctx.channel) != ctx.to):
            from apps.contacts.services import contact_upsert_by_address

            contact, conversation_id = contact_upsert_by_address(workspace=ctx.workspace, address=ctx.to), None
            ctx.contact = contact
        elif contact is not None:
            contact_key_share_lock(contact_id=contact.pk)
        if not known:
            if conversation_id is None:
                conversation_id = conversation_get_or_open(workspace=ctx.workspace, contact=contact,
                                                           phone_number=number, channel_kind=ctx.channel,
                                                           social_account=ctx.account).pk
            message = new_message()
            statement = insert_statement([message])
        insert_run([message], statement)
        if tracker:
            tracker.save(workspace_id=ctx.workspace.pk, message_id=message.pk, campaign_id=campaign_id,
                         contact_id=contact.pk if contact else "")
        policy.wallet_reserve(workspace=ctx.workspace, amount=ctx.cost, message_id=message.pk)
        conversation_record_message(conversation_id=conversation_id, at=ctx.now, preview=ctx.body, inbound=False)
        if audit is not None:
            audit_record(**{**audit, "target_id": message.pk})
        # Last: the event takes the workspace's counter lock, which is held until the commit.
        data = creation_event_data(message, fallback_for=fallback_for)
        if events is not None:
            events.append(("message.status_changed", data))
        else:
            event_append(workspace=ctx.workspace, type="message.status_changed", data=data)
        if not scheduled_at:
            _kick_sender_on_commit(ctx)
    return message


def _write_in_one_statement(ctx: SendContext, message: Message, *, conversation_id: str, audit: dict | None,
                            fallback_for: str | None) -> bool:
    """message_write's known-contact case as ONE PostgreSQL statement. With a cost, the wallet's reservation
    (billing.reserve_sql: a guarded UPDATE and its ledger row) is the statement's guard: every write selects
    from it, so without it nothing is written and False is returned. Same rows as the plain road
    (tests/conversations/test_writer.py, tests/billing).

    Lock order: the contact first (the KEY SHARE its message's foreign key takes at commit, taken here
    before anything else), then the wallet, the conversation and the workspace's event counter last, the
    order of the plain road, which holds the contact (contact_upsert_by_address) before it reserves. Taken
    at commit instead, it crossed that road's order, a deadlock (tests/conversations/test_send_lock_order.py)."""
    record = conversation_record_message_statement(conversation_id=conversation_id, at=ctx.now, preview=ctx.body,
                                                   inbound=False)
    data = creation_event_data(message, fallback_for=fallback_for)
    contact = (f"ck AS MATERIALIZED (SELECT id FROM {Contact._meta.db_table} WHERE id = %s FOR KEY SHARE)",  # noqa: S608
               [ctx.contact.pk])
    if not ctx.cost:
        guard, name = contact, "ck"
    else:
        reserve = billing.reserve_sql(workspace=ctx.workspace, amount=ctx.cost, message_id=message.pk, name="wr",
                                      after="ck")
        parts = [contact, *reserve]
        guard, name = (", ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]), "wr"
    writes = [insert_select_statement(message, source=name),
              (record[0] + f" AND EXISTS (SELECT 1 FROM {name})", record[1])]  # noqa: S608 - our SQL
    if audit is not None:
        writes.append(audit_record_statement(source=name, **{**audit, "target_id": message.pk}))
    event, _ = event_append_with_guarded_writes(workspace=ctx.workspace, type="message.status_changed", data=data,
                                                guard=guard, guard_name=name, writes=writes)
    if event is None:
        return False
    message._state.adding, message._state.db = False, connection.alias
    return True


def _links_expand(ctx: SendContext):
    """`{{track:URL}}` in the content (and so in the rendered body) -> this recipient's short links; the
    tracker saves them with the message. None when there is nothing to track."""
    from apps.links.services import LinkTracker, has_track

    if not has_track(ctx.content):
        return None
    tracker = LinkTracker()
    field = "template" if ctx.message_type == "template" else ctx.message_type
    ctx.content = tracker.expand(ctx.content, field=field)
    ctx.body = tracker.expand_text(ctx.body, field=field)
    return tracker


def message_write_guarded(ctx: SendContext, *, guard: tuple[str, list], sent_by: str,
                          sent_by_user: User | None = None, api_key_id: str = "",
                          scheduled_at: datetime | None = None, client_reference: str = "",
                          fallback: dict | None = None, audit: dict | None = None) -> Message | None:
    """message_write as ONE statement whose guard CTE `ok` (phone_number_id, contact_id, conversation_id)
    is the policy's read (send_target_guard): written only if the guard found its one row, else None and
    nothing written. ctx holds what does not depend on the guard (no number, contact or conversation)."""
    message = _outbound_message(ctx, number_id=None, conversation_id=None, sent_by=sent_by,
                                sent_by_user=sent_by_user, api_key_id=api_key_id, scheduled_at=scheduled_at,
                                client_reference=client_reference, fallback=fallback, campaign_id="")
    if ctx.cost:
        # The wallet is the last rule, and the guard has not run the others yet: the full road answers
        # with the first refusal in API.md's order (and reserves). Free-form sends cost nothing.
        return None
    # Lock order, as _write_in_one_statement: the contact's KEY SHARE (what its message's foreign key takes
    # at commit) before the writes, so before the workspace's event counter. Taken at commit it crossed the
    # receive road's and the plain road's order (contact, then counter): a deadlock the API fuzzer hit.
    guard = (guard[0] + f""", okc AS MATERIALIZED (
        SELECT ok.phone_number_id, ok.contact_id, ok.conversation_id FROM ok
        JOIN {Contact._meta.db_table} c ON c.id = ok.contact_id FOR KEY SHARE OF c)""", guard[1])  # noqa: S608
    writes = [
        insert_select_statement(message, source="okc", exprs={"phone_number_id": "okc.phone_number_id",
                                                              "contact_id": "okc.contact_id",
                                                              "conversation_id": "okc.conversation_id"}),
        conversation_record_message_statement(at=ctx.now, preview=ctx.body, inbound=False,
                                              conversation_id_sql="(SELECT conversation_id FROM okc)"),
    ]
    if audit is not None:
        writes.append(audit_record_statement(source="okc", **{**audit, "target_id": message.pk}))
    event, ids = event_append_with_guarded_writes(
        workspace=ctx.workspace, type="message.status_changed", data=creation_event_data(message), guard=guard,
        guard_name="okc", writes=writes,
        # What only the guard knows goes into the event in SQL: the same payload the ORM form builds.
        data_sql="(SELECT jsonb_build_object('conversation_id', conversation_id, 'contact_id', contact_id) FROM okc)",
        returning="(SELECT phone_number_id FROM okc), (SELECT contact_id FROM okc)",
    )
    if event is None:
        return None
    message.phone_number_id, message.contact_id = ids
    message.conversation_id = event.data["conversation_id"]
    message._state.adding, message._state.db = False, connection.alias
    if not scheduled_at:
        kick_on_commit(message.phone_number_id)
    return message


# --- many: a campaign's batch ----------------------------------------------------------------------------


def messages_enqueue_bulk(*, workspace: Workspace, phone_number: PhoneNumber, template, rows: list[dict],
                          campaign_id: str, now: datetime | None = None) -> list[str]:
    """Campaign fan-out: one transaction, bulk inserts, queued rows the dispatcher drains fairly.
    rows: [{"contact": Contact, "variables": list|dict, "components": Meta's send shape (optional), "body": rendered
    text, "expires_at": datetime|None}]
    ("expires_at" only shortens the maximum age). Whether each may go was decided by the caller
    (policy.campaign_check and policy.recipient_classify); the batch reserves its total cost. No
    per-message creation event (a campaign of 100k would write 100k events); status changes from the
    dispatcher on are evented."""
    now = now or timezone.now()
    if not rows:
        return []
    currency = billing.wallet_currency(workspace=workspace)
    with transaction.atomic():
        conversations = conversations_get_or_open(
            workspace=workspace, contact_ids=[row["contact"].pk for row in rows], phone_number=phone_number,
            channel_kind=Conversation.ChannelKind.WHATSAPP, now=now, opened_by="campaign")
        messages = []
        trackers = []
        default_expiry = now + _max_age()
        for row in rows:
            contact = row["contact"]
            # A row may bring its own deadline (a campaign's validity window); never beyond the maximum age.
            expires_at = min(default_expiry, row["expires_at"]) if row.get("expires_at") else default_expiry
            content = {"name": template.name, "language": template.language}
            if row.get("variables") is not None:
                content["variables"] = row["variables"]
            if row.get("components"):
                content["components"] = row["components"]
            tracker = _rows_links_expand(row, content)
            trackers.append(tracker)
            messages.append(Message(
                workspace=workspace, conversation=conversations[contact.pk], contact=contact,
                phone_number=phone_number, direction=Message.Direction.OUTBOUND, channel=Message.Channel.WHATSAPP,
                type="template", to_phone=contact_address(contact), content=content, body=row.get("body", ""),
                template=template, template_category=template.category, status=Message.Status.QUEUED,
                campaign_id=campaign_id, sent_by="campaign", next_attempt_at=now, expires_at=expires_at,
                cost_estimate=policy.cost_estimate(category=template.category, to=contact.phone or "",
                                                   workspace=workspace),
                currency=currency,
            ))
        Message.objects.bulk_create(messages, batch_size=1000)
        if any(trackers):
            from apps.links.services import links_create

            links_create(workspace_id=workspace.pk, items=[
                {"code": code, "url": url, "message_id": m.pk, "campaign_id": campaign_id, "contact_id": m.contact_id}
                for m, tracker in zip(messages, trackers, strict=True) if tracker for url, code in tracker.codes.items()])
        policy.wallet_reserve(workspace=workspace, amount=sum((m.cost_estimate for m in messages), Decimal("0")),
                              campaign_id=campaign_id)
        # Activity and the list preview: the message's text (the rendered template), like any other send.
        touched = []
        for row in rows:
            conversation = conversations[row["contact"].pk]
            conversation.last_message_at, conversation.last_message_preview = now, (row.get("body") or "")[:200]
            touched.append(conversation)
        Conversation.objects.bulk_update(touched, ["last_message_at", "last_message_preview"], batch_size=1000)
        kick_on_commit(phone_number.pk)
    return [m.pk for m in messages]


def _rows_links_expand(row: dict, content: dict):
    """A campaign row's `{{track:URL}}` (in its variables, hence its body) -> this recipient's short links,
    in `content` and the row's body."""
    from apps.links.services import LinkTracker, has_track

    if not has_track(content.get("variables")) and not has_track(content.get("components")):
        return None
    tracker = LinkTracker()
    for key in ("variables", "components"):
        if content.get(key) is not None:
            content[key] = tracker.expand(content[key], field=key)
    row["body"] = tracker.expand_text(row.get("body", ""), field="variables")
    return tracker


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
    conversation get-or-open (the contact's open one on this number, else the upsert on the one-open
    constraint, threads.conversation_open_sql) and the message insert; the caller's `after` CTEs may read `enqueued` (to link
    its rows to their messages in the same statement), and `select` is the statement's final SELECT, whose
    row is returned. The messages' total cost_estimate is reserved in the same transaction. Same rows, same
    defaults and the same on-commit kick as `messages_enqueue_bulk` (tests/conversations/test_writer.py)."""
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
        "last_message_preview": "left(coalesce(e.body, ''), 200)",
        "opened_by": ("%s", ["campaign"]),
    }, now=now)
    opened = conversation_open_sql(
        source="enqueued e WHERE NOT EXISTS (SELECT 1 FROM _conv_old o WHERE o.contact_id = e.contact_id)",
        columns=cols, exprs=exprs)
    parts.append(f"_conv_new AS ({opened})")
    params += values
    parts.append(f"_conv_touch AS (UPDATE {conv} cu SET last_message_at = %s, "  # noqa: S608
                 "last_message_preview = left(coalesce(e.body, ''), 200) "
                 "FROM _conv_old o JOIN enqueued e ON e.contact_id = o.contact_id WHERE cu.id = o.id)")
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
    # The statement also answers the batch's total cost: the estimates of the messages it created.
    final = f"SELECT _q.*, (SELECT coalesce(sum(cost_estimate), 0) FROM enqueued) FROM ({select[0]}) _q"  # noqa: S608
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("WITH " + ",\n".join(parts) + "\n" + final, [*params, *select[1]])
            *row, total = cursor.fetchone()
        # Reserved in this transaction: a refusal (402) rolls the whole batch back, nothing written.
        policy.wallet_reserve(workspace=workspace, amount=Decimal(total), campaign_id=campaign_id)
        kick_on_commit(phone_number.pk)
    return tuple(row)


