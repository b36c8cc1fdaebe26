"""The reads of the send road (sender, recipient contact, open conversation) in one round trip.

The send API is the hottest write we serve; as three ORM queries these reads cost more CPU than the
database spends on them. Same rules as apps.wabas.selectors.phone_number_for_send, same errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.db import connection

from apps.contacts.models import Contact
from apps.conversations.models import Conversation
from apps.core.errors import PhoneNotFound, ValidationFailed
from apps.core.models import Workspace
from apps.message_templates.models import MessageTemplate
from apps.wabas.models import PhoneNumber, Waba

_MODELS = (PhoneNumber, Waba, Contact)  # the row's objects, in this order (then the conversation id)
# What the send road reads of each (the rest is deferred: loaded on access, which the send road does not
# do). Timestamps and JSON are most of the cost of hydrating a row, and the send needs few of them.
_SEND_FIELDS = {
    PhoneNumber: ("id", "workspace", "waba", "meta_phone_number_id", "display_phone_number", "quality_rating",
                  "messaging_tier", "throughput_mps"),
    Waba: ("id", "workspace", "meta_waba_id", "is_simulated"),
    Contact: ("id", "workspace", "phone", "wa_id", "bsuid", "name", "opted_in", "consent_updated_at",
              "last_inbound_at", "blocked_at"),
    # A template send's candidates (template_for_send's rows): all but the timestamps, which it never reads.
    MessageTemplate: ("id", "workspace", "waba", "name", "language", "category", "parameter_format", "components",
                      "status", "rejection_reason", "quality_score", "meta_template_id"),
}


def _fields(model) -> list:
    # In the model's own field order: Model.from_db lines the values up with concrete_fields.
    wanted = set(_SEND_FIELDS[model])
    return [f for f in model._meta.concrete_fields if f.name in wanted]


@dataclass
class SendTargets:
    number: PhoneNumber
    contact: Contact | None
    conversation_id: str | None  # the contact's current (not resolved) conversation on this number
    # With template_name: the number's WABA's templates of that name (template_for_send's candidates),
    # read in the same round trip; None when not asked for.
    templates: list | None = field(default=None)


def _columns(alias: str, model) -> str:
    return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in _fields(model))


_SQL: dict[tuple[str, str], str] = {}


def _sql(pin: str, by: str = "phone", templates: bool = False) -> str:
    """pin: "" (the only number), "pk" or "meta" (pinned by our id or Meta's). by: the contact's column the
    recipient is matched on, `phone` (E.164) or `bsuid` (a business-scoped user id). templates: also the
    number's WABA's templates named %(template)s, as one JSON array of rows (template_for_send's query:
    this workspace, this WABA, this name; pinned to it by tests/conversations/test_send_targets.py)."""
    if (pin, by, templates) not in _SQL:
        where = {"": "", "pk": " AND pn.id = %(pin)s", "meta": " AND pn.meta_phone_number_id = %(pin)s"}[pin]
        tpl = f""",
                (SELECT json_agg(json_build_array({_columns('t', MessageTemplate)}))
                 FROM {MessageTemplate._meta.db_table} t
                 WHERE t.workspace_id = pn.workspace_id AND t.waba_id = pn.waba_id AND t.name = %(template)s)"""  # noqa: S608
        tpl = tpl if templates else ""
        _SQL[pin, by, templates] = f"""
            SELECT {_columns('pn', PhoneNumber)}, {_columns('w', Waba)}, {_columns('c', Contact)},
                (SELECT cv.id FROM {Conversation._meta.db_table} cv
                 WHERE cv.contact_id = c.id AND cv.phone_number_id = pn.id AND cv.channel_kind = %(kind)s
                   AND cv.workspace_id = pn.workspace_id AND cv.state <> %(resolved)s
                 ORDER BY cv.created_at DESC LIMIT 1){tpl}
            FROM {PhoneNumber._meta.db_table} pn
            JOIN {Waba._meta.db_table} w ON w.id = pn.waba_id
            LEFT JOIN {Contact._meta.db_table} c ON c.workspace_id = pn.workspace_id AND c.{by} = %(to)s
            WHERE pn.workspace_id = %(ws)s AND (%(waba)s = '' OR pn.waba_id = %(waba)s){where}
            ORDER BY pn.created_at LIMIT 2
        """  # noqa: S608 (identifiers from model metadata; values are parameters)
    return _SQL[pin, by, templates]


_converters: dict = {}


def _field_converters(model) -> list[tuple[int, list, object]]:
    """(column index, converters, column) for each field whose raw value needs converting, as the ORM's
    compiler would (JSON decoded from text, SQLite's datetimes made aware, its booleans and decimals)."""
    key = (model, connection.vendor)
    if key not in _converters:
        out = []
        for i, field in enumerate(_fields(model)):
            column = field.get_col(model._meta.db_table)
            converters = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if converters:
                out.append((i, converters, column))
        _converters[key] = out
    return _converters[key]


def _hydrate(model, values):
    if values[0] is None:  # LEFT JOIN found nothing
        return None
    converted = list(values)
    for i, converters, column in _field_converters(model):
        for convert in converters:
            converted[i] = convert(converted[i], column, connection)
    return model.from_db(connection.alias, [f.attname for f in _fields(model)], converted)


def _templates_hydrate(value) -> list:
    """The JSON array of template rows -> MessageTemplate instances, as the ORM would load them (JSON values
    arrive decoded inside the array; text columns need no conversion); the timestamps are deferred."""
    if value is None:
        return []
    rows = json.loads(value) if isinstance(value, str) else value
    attnames = [f.attname for f in _fields(MessageTemplate)]
    return [MessageTemplate.from_db(connection.alias, attnames, row) for row in rows]


def send_targets(*, workspace: Workspace, waba_id: str, phone_number_id: str | None, to: str,
                 channel_kind: str, template_name: str | None = None) -> SendTargets:
    """template_name: a template send's; the number's WABA's templates of that name come back in
    `templates` (template_for_send then decides among them without reading them again)."""
    pin = ("pk" if str(phone_number_id).startswith("pn_") else "meta") if phone_number_id else ""
    with_templates = template_name is not None and connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        by = "phone" if to.startswith("+") else "bsuid"
        cursor.execute(_sql(pin, by, with_templates),
                       {"to": to, "kind": channel_kind, "resolved": Conversation.State.RESOLVED, "ws": workspace.pk,
                        "waba": waba_id or "", "pin": str(phone_number_id or ""), "template": template_name})
        rows = cursor.fetchall()
    if not rows:
        if phone_number_id:
            raise PhoneNotFound(details={"field": "phone_number_id"})
        raise PhoneNotFound("This workspace has no WhatsApp number to send from.",
                            details={"field": "phone_number_id"})
    if len(rows) > 1:
        raise ValidationFailed("Several numbers can send; pick one with phone_number_id.", field="phone_number_id")
    row, start = rows[0], 0
    objects = []
    for model in _MODELS:
        width = len(_SEND_FIELDS[model])
        objects.append(_hydrate(model, row[start:start + width]))
        start += width
    number, waba, contact = objects
    number.waba = waba
    return SendTargets(number=number, contact=contact, conversation_id=row[start],
                       templates=_templates_hydrate(row[start + 1]) if with_templates else None)


_GUARD_SQL: dict[str, str] = {}


def send_target_guard(*, workspace: Workspace, waba_id: str, phone_number_id: str | None, to: str,
                      channel_kind: str, window_opened_after) -> tuple[str, list]:
    """send_targets' read as a CTE named `ok` of the statement that writes the send, as (sql, params), for
    the common case only: one row (phone_number_id, contact_id, conversation_id) when there is exactly one
    sender number (the pinned one, or the workspace's only one), a contact with this phone whose last
    inbound message came after `window_opened_after`, and that contact's current conversation on the
    number. Otherwise no row, and the statement writes nothing (event_append_with_guarded_writes): the
    caller then takes the full road, whose read finds out why."""
    pin = ("pk" if str(phone_number_id).startswith("pn_") else "meta") if phone_number_id else ""
    if pin not in _GUARD_SQL:
        where = {"": "", "pk": " AND pn.id = %s", "meta": " AND pn.meta_phone_number_id = %s"}[pin]
        _GUARD_SQL[pin] = f"""ok AS MATERIALIZED (
            SELECT t.phone_number_id, t.contact_id, t.conversation_id FROM (
                SELECT pn.id AS phone_number_id, c.id AS contact_id, c.last_inbound_at, c.blocked_at,
                    (SELECT cv.id FROM {Conversation._meta.db_table} cv
                     WHERE cv.contact_id = c.id AND cv.phone_number_id = pn.id AND cv.channel_kind = %s
                       AND cv.workspace_id = pn.workspace_id AND cv.state <> %s
                     ORDER BY cv.created_at DESC LIMIT 1) AS conversation_id,
                    count(*) OVER () AS senders
                FROM {PhoneNumber._meta.db_table} pn
                LEFT JOIN {Contact._meta.db_table} c ON c.workspace_id = pn.workspace_id AND c.phone = %s
                WHERE pn.workspace_id = %s AND (%s::text = '' OR pn.waba_id = %s){where}
                ORDER BY pn.created_at LIMIT 2
            ) t
            WHERE t.senders = 1 AND t.conversation_id IS NOT NULL AND t.last_inbound_at > %s
              AND t.blocked_at IS NULL)"""  # noqa: S608
    params = [channel_kind, Conversation.State.RESOLVED.value, to, workspace.pk, waba_id or "", waba_id or ""]
    if pin:
        params.append(str(phone_number_id))
    params.append(window_opened_after)
    return _GUARD_SQL[pin], params


# --- Messenger / Instagram ------------------------------------------------------------------------------


@dataclass
class SocialSendTargets:
    account: object  # wabas.SocialAccount
    contact: object | None  # contacts.Contact: the customer behind the PSID / IGSID, if they ever wrote
    conversation_id: str | None
    last_inbound_at: object | None  # their last message on this account's thread (the window's start)


def social_accounts_for_send(*, workspace: Workspace, channel: str, waba_id: str = ""):
    from apps.core.scoping import waba_scoped
    from apps.wabas.models import SocialAccount

    return waba_scoped(SocialAccount.objects.filter(workspace=workspace, channel=channel), waba_id=waba_id)


def social_account_resolve(*, workspace: Workspace, channel: str, account_id: str | None = None,
                           waba_id: str = ""):
    """The sending Page / Instagram account: the pinned one (our sac_ id or Meta's id) or the workspace's
    only one on the channel. 404 NOT_FOUND (field account_id) / VALIDATION_FAILED when several could send."""
    from django.db.models import Q

    from apps.core.errors import NotFound

    accounts = social_accounts_for_send(workspace=workspace, channel=channel, waba_id=waba_id)
    if account_id:
        accounts = accounts.filter(Q(pk=account_id) | Q(page_id=account_id) | Q(ig_user_id=account_id))
    found = list(accounts[:2])
    if not found:
        raise NotFound(f"No connected {channel} account to send from.", details={"field": "account_id"})
    if len(found) > 1:
        raise ValidationFailed(f"Several {channel} accounts can send; pick one with account_id.",
                               field="account_id")
    return found[0]


def social_send_targets(*, workspace: Workspace, channel: str, to: str, account_id: str | None = None,
                        account=None, waba_id: str = "") -> SocialSendTargets:
    """The sending account (social_account_resolve, unless the caller brings it) and the customer that user
    id names on it, with their current thread."""
    from django.db.models import Max

    from apps.contacts.models import SocialIdentity

    if account is None:
        account = social_account_resolve(workspace=workspace, channel=channel, account_id=account_id,
                                         waba_id=waba_id)
    identity = SocialIdentity.objects.select_related("contact").filter(account=account, user_id=to).first()
    if identity is None:
        return SocialSendTargets(account=account, contact=None, conversation_id=None, last_inbound_at=None)
    conversation = (Conversation.objects.filter(workspace=workspace, contact=identity.contact, social_account=account,
                                                channel_kind=channel).exclude(state=Conversation.State.RESOLVED)
                    .order_by("-created_at").values_list("pk", flat=True).first())
    # The customer's last message to this account, in whichever thread (a resolved one counts too).
    last = Conversation.objects.filter(contact=identity.contact, social_account=account).aggregate(
        last=Max("last_inbound_at"))["last"]
    return SocialSendTargets(account=account, contact=identity.contact, conversation_id=conversation,
                             last_inbound_at=last)
def email_send_targets(*, workspace: Workspace, waba_id: str, to: str) -> SendTargets:
    """The email send's sender resolution: the workspace's email channel (on its number), the contact with
    this address and its current email conversation."""
    from apps.contacts.services import contact_by_email
    from apps.wabas.selectors import email_channel_for

    channel = email_channel_for(workspace=workspace, waba_id=waba_id)
    if channel is None:
        raise ValidationFailed("This workspace has no email channel to send from (PUT /api/v1/channels/email).",
                               field="channel")
    contact = contact_by_email(workspace=workspace, email=to)
    conversation_id = None
    if contact is not None:
        conversation_id = (Conversation.objects.filter(
            workspace=workspace, contact=contact, phone_number=channel.phone_number,
            channel_kind=Conversation.ChannelKind.EMAIL).exclude(state=Conversation.State.RESOLVED)
            .order_by("-created_at").values_list("pk", flat=True).first())
    return SendTargets(number=channel.phone_number, contact=contact, conversation_id=conversation_id)
