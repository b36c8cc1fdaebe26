"""Prepare: split a claimed batch into what is finished already (expired, template no longer sendable,
unbuildable, deferred by the pair limit), the WhatsApp sends with their Graph payloads, and the SMS sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from apps.conversations.models import Message
from apps.conversations.services.dispatch.base import Batch, Outcome, _Terminal
from apps.conversations.services.dispatch.pacing import NumberPacer, pair_waits
from apps.message_templates.selectors import template_send_refusal
from apps.wabas.models import PhoneNumber
from apps.wabas.services import waba_access_token


@dataclass
class _NumberCtx:
    number: PhoneNumber
    token: str
    pacer: NumberPacer
    simulated: bool


def _number_ctx(phone_number_id: str) -> _NumberCtx | None:
    number = PhoneNumber.objects.select_related("waba").filter(pk=phone_number_id).first()
    if number is None:
        return None
    return _NumberCtx(number=number, token=waba_access_token(number.waba), pacer=NumberPacer.for_number(number),
                      simulated=number.waba.is_simulated)


def _meta_content(message: Message, number: PhoneNumber) -> dict | list:
    content = message.content
    if message.type in ("image", "video", "audio", "document", "sticker") and content.get("media_id"):
        from apps.conversations.services.media import media_meta_id_for_number

        if message.media is None:
            raise _Terminal("MEDIA_NOT_FOUND", "The media file was deleted.")
        content = dict(content)
        content["id"] = media_meta_id_for_number(media=message.media, phone_number=number)
        content.pop("media_id", None)
    elif message.type == "reaction" and str(content.get("message_id", "")).startswith("msg_"):
        target = Message.objects.filter(workspace_id=message.workspace_id, pk=content["message_id"]) \
            .values_list("provider_message_id", flat=True).first()
        if not target:
            raise _Terminal("REACTION_TARGET_NOT_SENT", "The message reacted to has no WhatsApp id yet.",
                            retryable=True, retry_after=5.0)
        content = {**content, "message_id": target}
    elif message.type == "contacts" and isinstance(content, list):
        content = {"contacts": content}
    return content


def _payload(message: Message, number: PhoneNumber) -> dict:
    from apps.providers.meta_cloud.payloads import build_send_payload, marketing_messages_payload

    content = _meta_content(message, number)
    try:
        # Our id rides along: Meta echoes it on every status webhook, which is how a send whose answer was
        # never recorded (the worker died) is recognised and settled instead of sent again (sweep.py).
        body = build_send_payload(to=message.to_phone, message_type=message.type, content=content,
                                  biz_opaque_callback_data=message.pk)
    except (ValueError, KeyError, TypeError) as exc:
        raise _Terminal("INVALID_REQUEST", f"Cannot build the request: {exc}")
    if message.type == "template" and message.template_category == "MARKETING" and \
            number.waba.marketing_messages_enabled:
        return marketing_messages_payload(body)  # the WABA's switch: Meta's Marketing Messages API
    return body


def _template_refusal(message: Message) -> _Terminal | None:
    """The template rule again at send time: the claim read the template's status with the row."""
    status = getattr(message, "template_status", None)
    if message.template_id is None or status is None:
        return None
    content = message.content if isinstance(message.content, dict) else {}
    refusal = template_send_refusal(SimpleNamespace(status=status, name=content.get("name", ""),
                                                    language=content.get("language", "")))
    return None if refusal is None else _Terminal(refusal.code, str(refusal.message))


def _prepare(batch: Batch, ctx: _NumberCtx, now: datetime) -> tuple[list[Outcome], list, list]:
    """Split a claimed batch into: finished already (expired/refused/unbuildable/deferred), WhatsApp sends,
    and the inline sends (SMS, email)."""
    done: list[Outcome] = []
    wa: list[tuple[Outcome, dict]] = []
    sms: list[Outcome] = []
    candidates = []
    for message in batch.messages:
        outcome = Outcome(message=message, kind="")
        refusal = _template_refusal(message)
        if message.expires_at and message.expires_at <= now:
            outcome.kind = "terminal"
            outcome.error = _Terminal("MESSAGE_EXPIRED", "The message could not be sent before it expired.")
            done.append(outcome)
        elif refusal is not None:
            outcome.kind, outcome.error = "terminal", refusal
            done.append(outcome)
        elif message.channel in (Message.Channel.SMS, Message.Channel.EMAIL):
            sms.append(outcome)  # the inline sends: SMS and email
        else:
            candidates.append(outcome)
    waits = pair_waits(phone_number_id=ctx.number.pk, recipients=[o.message.to_phone for o in candidates])
    for outcome, wait in zip(candidates, waits, strict=True):
        if wait > 0:
            outcome.kind, outcome.defer_seconds = "deferred", wait
            done.append(outcome)
            continue
        try:
            wa.append((outcome, _payload(outcome.message, ctx.number)))
        except _Terminal as exc:
            outcome.kind, outcome.error = ("retryable" if exc.retryable else "terminal"), exc
            done.append(outcome)
        except Exception as exc:  # e.g. media upload to Meta failed: ProviderError
            retryable = bool(getattr(exc, "retryable", True))
            outcome.kind = "retryable" if retryable else "terminal"
            outcome.error = exc if hasattr(exc, "code") else _Terminal("DISPATCH_ERROR", str(exc), retryable=True)
            done.append(outcome)
    return done, wa, sms
