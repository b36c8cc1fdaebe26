"""Meta webhook payloads (META.md §3) -> plain frozen dataclasses. Routing and persistence are the caller's
business; this module only reads. Unknown fields and unknown change types are skipped, never a crash: Meta
adds fields every quarter, and a payload we cannot read must not block the ones we can."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

logger = logging.getLogger("reach.providers.webhooks")


@dataclass(frozen=True)
class ErrorInfo:
    code: int
    title: str
    message: str
    details: str


@dataclass(frozen=True)
class InboundMessage:
    waba_id: str
    phone_number_id: str
    display_phone_number: str
    wamid: str
    from_phone: str | None
    wa_id: str | None
    bsuid: str | None
    profile_name: str | None
    username: str | None
    timestamp: datetime
    type: str
    content: dict
    context_wamid: str | None
    referral: dict | None
    errors: list[ErrorInfo] = field(default_factory=list)
    # Beyond the contract: the raw context (forwarded flags, referred_product) and the parent BSUID.
    context: dict | None = None
    parent_bsuid: str | None = None


@dataclass(frozen=True)
class StatusUpdate:
    waba_id: str
    phone_number_id: str
    wamid: str
    status: str
    timestamp: datetime
    recipient_id: str | None
    recipient_user_id: str | None
    pricing: dict | None
    errors: list[ErrorInfo]
    biz_opaque_callback_data: str | None
    conversation: dict | None = None
    display_phone_number: str = ""


@dataclass(frozen=True)
class TemplateStatusUpdate:
    waba_id: str
    event: str
    meta_template_id: str
    name: str
    language: str
    reason: str | None
    category: str | None
    rejection_info: dict | None
    other_info: dict | None = None
    disable_info: dict | None = None


@dataclass(frozen=True)
class TemplateCategoryUpdate:
    waba_id: str
    meta_template_id: str
    name: str
    language: str
    previous_category: str | None
    new_category: str | None
    correct_category: str | None
    category_update_timestamp: int | None = None


@dataclass(frozen=True)
class TemplateQualityUpdate:
    waba_id: str
    meta_template_id: str
    name: str
    language: str
    previous_score: str | None
    new_score: str | None


@dataclass(frozen=True)
class PhoneNumberQualityUpdate:
    waba_id: str
    display_phone_number: str
    event: str
    current_limit: str | None
    old_limit: str | None


@dataclass(frozen=True)
class UserPreferenceUpdate:
    waba_id: str
    phone_number_id: str | None
    wa_id: str | None
    bsuid: str | None
    category: str
    value: str
    timestamp: datetime


@dataclass(frozen=True)
class LinkClick:
    """Meta's `marketing_messages_link_click` user action (Marketing Messages API click tracking)."""

    waba_id: str
    phone_number_id: str
    wamid: str | None
    wa_id: str | None
    timestamp: datetime
    click_component: str
    click_id: str | None
    tracking_token: str | None
    product_id: str | None = None


@dataclass(frozen=True)
class BusinessCapabilityUpdate:
    waba_id: str
    max_daily_conversations_per_business: str | None
    max_phone_numbers_per_business: int | None


def _ts(value, default: datetime | None = None) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return default or datetime.now(tz=UTC)


def _s(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _errors(items) -> list[ErrorInfo]:
    out = []
    for e in items or []:
        if not isinstance(e, dict):
            continue
        try:
            code = int(e.get("code"))
        except (TypeError, ValueError):
            code = 0
        data = e.get("error_data") if isinstance(e.get("error_data"), dict) else {}
        out.append(ErrorInfo(code=code, title=str(e.get("title") or ""), message=str(e.get("message") or ""),
                             details=str(data.get("details") or "")))
    return out


def _phone(raw) -> str | None:
    if raw is None or raw == "":
        return None
    raw = str(raw).strip()
    return raw if raw.startswith("+") else f"+{raw}"


def _content(msg: dict, mtype: str) -> dict:
    obj = msg.get(mtype)
    if mtype == "contacts":
        return {"contacts": obj if isinstance(obj, list) else []}
    if isinstance(obj, dict):
        return dict(obj)
    return {}


def _find_contact(contacts: list, msg: dict) -> dict:
    sender, sender_uid = msg.get("from"), msg.get("from_user_id")
    for c in contacts:
        if (sender and c.get("wa_id") == sender) or (sender_uid and c.get("user_id") == sender_uid):
            return c
    return contacts[0] if len(contacts) == 1 else {}


def _messages_change(waba_id: str, value: dict, default_ts: datetime) -> list:
    meta = value.get("metadata") or {}
    pnid = str(meta.get("phone_number_id") or "")
    display = str(meta.get("display_phone_number") or "")
    contacts = [c for c in value.get("contacts") or [] if isinstance(c, dict)]
    out: list = []
    for msg in value.get("messages") or []:
        if not isinstance(msg, dict) or not msg.get("id"):
            continue
        contact = _find_contact(contacts, msg)
        profile = contact.get("profile") or {}
        mtype = str(msg.get("type") or "unknown")
        context = msg.get("context") if isinstance(msg.get("context"), dict) else None
        wa_id = _s(contact.get("wa_id")) or _s(msg.get("from"))
        out.append(InboundMessage(
            waba_id=waba_id, phone_number_id=pnid, display_phone_number=display, wamid=str(msg["id"]),
            from_phone=_phone(msg.get("from")), wa_id=wa_id,
            bsuid=_s(msg.get("from_user_id")) or _s(contact.get("user_id")),
            profile_name=_s(profile.get("name")), username=_s(profile.get("username")),
            timestamp=_ts(msg.get("timestamp"), default_ts), type=mtype, content=_content(msg, mtype),
            context_wamid=_s((context or {}).get("id")),
            referral=msg.get("referral") if isinstance(msg.get("referral"), dict) else None,
            errors=_errors(msg.get("errors")), context=context,
            parent_bsuid=_s(contact.get("parent_user_id")),
        ))
    for st in value.get("statuses") or []:
        if not isinstance(st, dict) or not st.get("id") or not st.get("status"):
            continue
        out.append(StatusUpdate(
            waba_id=waba_id, phone_number_id=pnid, wamid=str(st["id"]), status=str(st["status"]),
            timestamp=_ts(st.get("timestamp"), default_ts), recipient_id=_s(st.get("recipient_id")),
            recipient_user_id=_s(st.get("recipient_user_id")),
            pricing=st.get("pricing") if isinstance(st.get("pricing"), dict) else None,
            errors=_errors(st.get("errors")), biz_opaque_callback_data=_s(st.get("biz_opaque_callback_data")),
            conversation=st.get("conversation") if isinstance(st.get("conversation"), dict) else None,
            display_phone_number=display,
        ))
    for action in value.get("user_actions") or []:
        if not isinstance(action, dict) or action.get("action_type") != "marketing_messages_link_click":
            continue
        data = action.get("marketing_messages_link_click_data") or {}
        wa_id = _s(action.get("from")) or (_s(contacts[0].get("wa_id")) if len(contacts) == 1 else None)
        out.append(LinkClick(
            waba_id=waba_id, phone_number_id=pnid, wamid=_s(action.get("id")) or _s(data.get("message_id")),
            wa_id=wa_id, timestamp=_ts(action.get("timestamp"), default_ts),
            click_component=str(data.get("click_component") or ""), click_id=_s(data.get("click_id")),
            tracking_token=_s(data.get("tracking_token")), product_id=_s(data.get("product_id"))))
    if value.get("errors"):
        # System/app-level errors have no message to attach to; surface them in the logs.
        logger.warning("meta webhook errors for phone %s: %s", pnid, _errors(value.get("errors")))
    return out


def _template_fields(value: dict) -> tuple[str, str, str]:
    return (str(value.get("message_template_id") or ""), str(value.get("message_template_name") or ""),
            str(value.get("message_template_language") or ""))


def _template_status(waba_id: str, value: dict, _ts_default) -> list:
    tid, name, lang = _template_fields(value)
    return [TemplateStatusUpdate(
        waba_id=waba_id, event=str(value.get("event") or ""), meta_template_id=tid, name=name, language=lang,
        reason=_s(value.get("reason")), category=_s(value.get("message_template_category")),
        rejection_info=value.get("rejection_info") if isinstance(value.get("rejection_info"), dict) else None,
        other_info=value.get("other_info") if isinstance(value.get("other_info"), dict) else None,
        disable_info=value.get("disable_info") if isinstance(value.get("disable_info"), dict) else None,
    )]


def _template_category(waba_id: str, value: dict, _ts_default) -> list:
    tid, name, lang = _template_fields(value)
    ts = value.get("category_update_timestamp")
    return [TemplateCategoryUpdate(
        waba_id=waba_id, meta_template_id=tid, name=name, language=lang,
        previous_category=_s(value.get("previous_category")), new_category=_s(value.get("new_category")),
        correct_category=_s(value.get("correct_category")),
        category_update_timestamp=int(ts) if str(ts or "").isdigit() else None,
    )]


def _template_quality(waba_id: str, value: dict, _ts_default) -> list:
    tid, name, lang = _template_fields(value)
    return [TemplateQualityUpdate(
        waba_id=waba_id, meta_template_id=tid, name=name, language=lang,
        previous_score=_s(value.get("previous_quality_score")), new_score=_s(value.get("new_quality_score")),
    )]


def _phone_quality(waba_id: str, value: dict, _ts_default) -> list:
    return [PhoneNumberQualityUpdate(
        waba_id=waba_id, display_phone_number=str(value.get("display_phone_number") or ""),
        event=str(value.get("event") or ""), current_limit=_s(value.get("current_limit")),
        old_limit=_s(value.get("old_limit")),
    )]


def _user_preferences(waba_id: str, value: dict, ts_default) -> list:
    meta = value.get("metadata") or {}
    pnid = _s(meta.get("phone_number_id"))
    contacts = [c for c in value.get("contacts") or [] if isinstance(c, dict)]
    out = []
    for pref in value.get("user_preferences") or []:
        if not isinstance(pref, dict) or pref.get("value") not in ("stop", "resume"):
            continue
        contact = {}
        for c in contacts:
            if (pref.get("wa_id") and c.get("wa_id") == pref.get("wa_id")) or (
                    pref.get("user_id") and c.get("user_id") == pref.get("user_id")):
                contact = c
        out.append(UserPreferenceUpdate(
            waba_id=waba_id, phone_number_id=pnid,
            wa_id=_s(pref.get("wa_id")) or _s(contact.get("wa_id")),
            bsuid=_s(pref.get("user_id")) or _s(contact.get("user_id")),
            category=str(pref.get("category") or "marketing_messages"), value=str(pref["value"]),
            timestamp=_ts(pref.get("timestamp"), ts_default),
        ))
    return out


def _business_capability(waba_id: str, value: dict, _ts_default) -> list:
    limit = value.get("max_daily_conversations_per_business", value.get("max_daily_conversation_per_business"))
    numbers = value.get("max_phone_numbers_per_business")
    return [BusinessCapabilityUpdate(waba_id=waba_id, max_daily_conversations_per_business=_s(limit),
                                     max_phone_numbers_per_business=int(numbers) if str(numbers or "").isdigit()
                                     else None)]


_HANDLERS = {
    "business_capability_update": _business_capability,
    "messages": lambda waba_id, value, ts: _messages_change(waba_id, value, ts),
    "message_template_status_update": _template_status,
    "template_category_update": _template_category,
    "message_template_quality_update": _template_quality,
    "phone_number_quality_update": _phone_quality,
    "user_preferences": _user_preferences,
}


def parse_webhook(payload: dict) -> list:
    items: list = []
    if not isinstance(payload, dict):
        return items
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        waba_id = str(entry.get("id") or "")
        entry_ts = _ts(entry.get("time")) if entry.get("time") else datetime.now(tz=UTC)
        for change in entry.get("changes") or []:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                continue
            handler = _HANDLERS.get(change.get("field"))
            if handler is None:
                continue
            try:
                items.extend(handler(waba_id, change["value"], entry_ts))
            except Exception:  # one malformed change must not drop the rest of the batch
                logger.exception("could not parse meta webhook change %r", change.get("field"))
    return items
