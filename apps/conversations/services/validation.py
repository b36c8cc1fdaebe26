"""Payload validation for POST /api/v1/messages (API.md Messages, META.md §1.2/§5 limits).

Every refusal is VALIDATION_FAILED naming the field with a dotted path (`interactive.buttons[1].title`).
Returns the normalised content stored on the Message (Reach's shape; providers build Meta's body)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.errors import ValidationFailed

MESSAGE_TYPES = ("text", "template", "image", "video", "audio", "document", "sticker", "location",
                 "interactive", "reaction", "contacts")
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
CAPTIONED = ("image", "video", "document")
CHANNELS = ("whatsapp", "sms", "messenger", "instagram", "email")
# Meta's Send API channels: what each carries (interactive buttons go out as quick replies) and its text limit.
SOCIAL_CHANNEL_RULES = {
    "messenger": {"types": ("text", "image", "video", "audio", "document", "interactive"), "text_max": 2000},
    "instagram": {"types": ("text", "image", "video", "audio", "interactive"), "text_max": 1000},
}
SOCIAL_USER_ID = re.compile(r"^[0-9]{1,64}$")
TAG_MAX, ACCOUNT_ID_MAX = 40, 64
FALLBACK_FAILED, FALLBACK_UNDELIVERED = "failed", "undelivered"

TEXT_MAX = 4096
CTA_DISPLAY_MAX, FLOW_CTA_MAX = 20, 30
CAPTION_MAX = 1024
BUTTONS_BODY_MAX, LIST_BODY_MAX = 1024, 4096
HEADER_MAX = FOOTER_MAX = 60
BUTTONS_MAX, BUTTON_TITLE_MAX, BUTTON_ID_MAX = 3, 20, 256
LIST_BUTTON_MAX, SECTIONS_MAX, ROWS_MAX = 20, 10, 10
SECTION_TITLE_MAX, ROW_ID_MAX, ROW_TITLE_MAX, ROW_DESCRIPTION_MAX = 24, 200, 24, 72
CONTACTS_MIN, CONTACTS_MAX = 1, 5
CLIENT_REFERENCE_MAX = 255
TEMPLATE_NAME_MAX, TEMPLATE_LANGUAGE_MAX = 512, 15
LINK_MAX, FILENAME_MAX = 2048, 255
SMS_TEXT_MAX, SMS_SENDER_MAX = 1600, 16
EMAIL_ADDRESS_MAX, EMAIL_SUBJECT_MAX, EMAIL_HTML_MAX = 170, 998, 512 * 1024


def email_address_validate(value, path: str = "to") -> str:
    """A recipient's email address, lower-cased (what contacts are matched on)."""
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.core.validators import validate_email

    address = _str(value, path, max_len=EMAIL_ADDRESS_MAX).strip().lower()
    try:
        validate_email(address)
    except DjangoValidationError:
        _fail("must be an email address when channel is email.", path)
    return address


def email_options_validate(value, content: dict) -> dict:
    """The `email` object of an email send: `subject` (else "Re:" the customer's last subject, or the
    channel's name), `html` (the HTML alternative of text.body), `marketing` (List-Unsubscribe, and the
    consent rule of marketing)."""
    if value is None:
        return content
    value = _obj(value, "email")
    unknown = sorted(set(value) - {"subject", "html", "marketing"})
    if unknown:
        _fail("is not a known field.", f"email.{unknown[0]}")
    out = dict(content)
    subject = _str(value.get("subject"), "email.subject", max_len=EMAIL_SUBJECT_MAX, required=False)
    if subject is not None:
        if any(c in subject for c in "\r\n"):
            _fail("must be one line.", "email.subject")
        out["subject"] = subject
    html = _str(value.get("html"), "email.html", max_len=EMAIL_HTML_MAX, required=False)
    if html is not None:
        out["html"] = html
    marketing = value.get("marketing")
    if marketing is not None:
        if not isinstance(marketing, bool):
            _fail("must be true or false.", "email.marketing")
        out["marketing"] = marketing
    return out


def _fail(message: str, path: str):
    raise ValidationFailed(f"{path}: {message}", field=path)


def _obj(value, path: str) -> dict:
    if not isinstance(value, dict):
        _fail("must be an object.", path)
    return value


def _str(value, path: str, *, max_len: int, min_len: int = 1, required: bool = True) -> str | None:
    if value is None:
        if required:
            _fail("is required.", path)
        return None
    if not isinstance(value, str):
        _fail("must be a string.", path)
    if len(value) < min_len:
        _fail("is required." if min_len == 1 and not value else f"must be at least {min_len} characters.", path)
    if len(value) > max_len:
        _fail(f"must be at most {max_len} characters.", path)
    return value


def _bool(value, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        _fail("must be true or false.", path)
    return value


def _number(value, path: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                _fail("must be a number.", path)
        else:
            _fail("must be a number.", path)
    if not lo <= value <= hi:
        _fail(f"must be between {lo:g} and {hi:g}.", path)
    return float(value)


def _https(value, path: str) -> str:
    link = _str(value, path, max_len=LINK_MAX)
    parsed = urlparse(link)
    if parsed.scheme != "https" or not parsed.netloc:
        _fail("must be a public https URL.", path)
    return link


# --- per-type ------------------------------------------------------------------------------------


def _text(c, p) -> dict:
    c = _obj(c, p)
    out = {"body": _str(c.get("body"), f"{p}.body", max_len=TEXT_MAX)}
    if c.get("preview_url") is not None:
        out["preview_url"] = _bool(c.get("preview_url"), f"{p}.preview_url")
    return out


def _media(kind: str):
    def check(c, p) -> dict:
        c = _obj(c, p)
        has_id, has_link = c.get("media_id") not in (None, ""), c.get("link") not in (None, "")
        if has_id == has_link:
            _fail("give exactly one of media_id or link.", f"{p}.media_id")
        out: dict = {}
        if has_id:
            media_id = _str(c["media_id"], f"{p}.media_id", max_len=40)
            if not media_id.startswith("med_"):
                _fail("must be a med_ id from POST /api/v1/media.", f"{p}.media_id")
            out["media_id"] = media_id
        else:
            out["link"] = _https(c["link"], f"{p}.link")
        if c.get("caption") is not None:
            if kind not in CAPTIONED:
                _fail(f"{kind} messages take no caption.", f"{p}.caption")
            out["caption"] = _str(c["caption"], f"{p}.caption", max_len=CAPTION_MAX, min_len=0)
        if c.get("filename") is not None:
            if kind != "document":
                _fail("only documents take a filename.", f"{p}.filename")
            out["filename"] = _str(c["filename"], f"{p}.filename", max_len=FILENAME_MAX)
        return out

    return check


def _location(c, p) -> dict:
    c = _obj(c, p)
    out = {"latitude": _number(c.get("latitude"), f"{p}.latitude", -90, 90),
           "longitude": _number(c.get("longitude"), f"{p}.longitude", -180, 180)}
    for key in ("name", "address"):
        if c.get(key) is not None:
            out[key] = _str(c[key], f"{p}.{key}", max_len=1000, min_len=0)
    return out


def _header_footer(c: dict, p: str, out: dict) -> None:
    if c.get("header_text") is not None:
        out["header_text"] = _str(c["header_text"], f"{p}.header_text", max_len=HEADER_MAX)
    if c.get("footer") is not None:
        footer = c["footer"]["text"] if isinstance(c["footer"], dict) else c["footer"]
        out["footer"] = _str(footer, f"{p}.footer", max_len=FOOTER_MAX)


def _interactive(c, p) -> dict:
    c = _obj(c, p)
    kind = c.get("kind")
    body = c["body"].get("text") if isinstance(c.get("body"), dict) else c.get("body")
    if kind == "buttons":
        out: dict = {"kind": "buttons", "body": _str(body, f"{p}.body", max_len=BUTTONS_BODY_MAX)}
        _header_footer(c, p, out)
        buttons = c.get("buttons")
        if not isinstance(buttons, list) or not buttons:
            _fail("needs 1 to 3 buttons.", f"{p}.buttons")
        if len(buttons) > BUTTONS_MAX:
            _fail(f"at most {BUTTONS_MAX} buttons.", f"{p}.buttons")
        seen: set[str] = set()
        out["buttons"] = []
        for i, b in enumerate(buttons):
            bp = f"{p}.buttons[{i}]"
            b = _obj(b, bp)
            bid = _str(b.get("id"), f"{bp}.id", max_len=BUTTON_ID_MAX)
            title = _str(b.get("title"), f"{bp}.title", max_len=BUTTON_TITLE_MAX)
            if title in seen:
                _fail("button titles must be unique.", f"{bp}.title")
            seen.add(title)
            out["buttons"].append({"id": bid, "title": title})
        return out
    if kind == "list":
        out = {"kind": "list", "body": _str(body, f"{p}.body", max_len=LIST_BODY_MAX),
               "button": _str(c.get("button"), f"{p}.button", max_len=LIST_BUTTON_MAX)}
        _header_footer(c, p, out)
        sections = c.get("sections")
        if not isinstance(sections, list) or not sections:
            _fail("needs 1 to 10 sections.", f"{p}.sections")
        if len(sections) > SECTIONS_MAX:
            _fail(f"at most {SECTIONS_MAX} sections.", f"{p}.sections")
        total, out["sections"] = 0, []
        for i, s in enumerate(sections):
            sp = f"{p}.sections[{i}]"
            s = _obj(s, sp)
            section: dict = {}
            if s.get("title") is not None or len(sections) > 1:
                section["title"] = _str(s.get("title"), f"{sp}.title", max_len=SECTION_TITLE_MAX)
            rows = s.get("rows")
            if not isinstance(rows, list) or not rows:
                _fail("needs at least one row.", f"{sp}.rows")
            section["rows"] = []
            for j, r in enumerate(rows):
                rp = f"{sp}.rows[{j}]"
                r = _obj(r, rp)
                row = {"id": _str(r.get("id"), f"{rp}.id", max_len=ROW_ID_MAX),
                       "title": _str(r.get("title"), f"{rp}.title", max_len=ROW_TITLE_MAX)}
                if r.get("description") is not None:
                    row["description"] = _str(r["description"], f"{rp}.description", max_len=ROW_DESCRIPTION_MAX,
                                              min_len=0)
                section["rows"].append(row)
            total += len(rows)
            if total > ROWS_MAX:
                _fail(f"at most {ROWS_MAX} rows across all sections.", f"{sp}.rows")
            out["sections"].append(section)
        return out
    if kind == "cta_url":
        out = {"kind": "cta_url", "body": _str(body, f"{p}.body", max_len=BUTTONS_BODY_MAX),
               "display_text": _str(c.get("display_text"), f"{p}.display_text", max_len=CTA_DISPLAY_MAX),
               "url": _https(c.get("url"), f"{p}.url")}
        _header_footer(c, p, out)
        return out
    if kind == "location_request":
        return {"kind": "location_request", "body": _str(body, f"{p}.body", max_len=BUTTONS_BODY_MAX)}
    if kind == "flow":
        return _flow(c, p, body)
    _fail("must be 'buttons', 'list', 'cta_url', 'flow' or 'location_request'.", f"{p}.kind")


_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF]")


def _flow(c: dict, p: str, body) -> dict:
    """A WhatsApp Flow message (META.md §1.2): by flow_id or flow_name, a CTA (≤30, no emoji), navigate (with
    its first screen) or data_exchange, and a flow token (generated when not given) that comes back with
    the answers."""
    import secrets

    out: dict = {"kind": "flow", "body": _str(body, f"{p}.body", max_len=BUTTONS_BODY_MAX)}
    _header_footer(c, p, out)
    if (c.get("flow_id") in (None, "")) == (c.get("flow_name") in (None, "")):
        _fail("give exactly one of flow_id or flow_name.", f"{p}.flow_id")
    if c.get("flow_id") not in (None, ""):
        out["flow_id"] = _str(str(c["flow_id"]), f"{p}.flow_id", max_len=64)
    else:
        out["flow_name"] = _str(c["flow_name"], f"{p}.flow_name", max_len=200)
    cta = _str(c.get("flow_cta"), f"{p}.flow_cta", max_len=FLOW_CTA_MAX)
    if _EMOJI.search(cta):
        _fail("may not contain emoji.", f"{p}.flow_cta")
    out["flow_cta"] = cta
    token = c.get("flow_token")
    out["flow_token"] = _str(token, f"{p}.flow_token", max_len=200) if token is not None \
        else "ft_" + secrets.token_urlsafe(12)
    mode = c.get("mode", "published")
    if mode not in ("published", "draft"):
        _fail("must be published or draft.", f"{p}.mode")
    out["mode"] = mode
    action = c.get("flow_action", "navigate")
    if action not in ("navigate", "data_exchange"):
        _fail("must be navigate or data_exchange.", f"{p}.flow_action")
    out["flow_action"] = action
    if action == "navigate":
        out["screen"] = _str(c.get("screen"), f"{p}.screen", max_len=200)
        if c.get("data") is not None:
            out["data"] = _obj(c["data"], f"{p}.data")
    elif c.get("screen") is not None or c.get("data") is not None:
        _fail("data_exchange flows take no screen or data (your endpoint answers them).", f"{p}.screen")
    return out


def _reaction(c, p) -> dict:
    c = _obj(c, p)
    message_id = _str(c.get("message_id"), f"{p}.message_id", max_len=255)
    emoji = c.get("emoji", "")
    if not isinstance(emoji, str):
        _fail("must be a string (empty removes the reaction).", f"{p}.emoji")
    if len(emoji) > 16:
        _fail("must be a single emoji.", f"{p}.emoji")
    return {"message_id": message_id, "emoji": emoji}


def _contacts(c, p) -> list:
    if not isinstance(c, list):
        _fail("must be a list of 1 to 5 contacts.", p)
    if not CONTACTS_MIN <= len(c) <= CONTACTS_MAX:
        _fail(f"must hold {CONTACTS_MIN} to {CONTACTS_MAX} contacts.", p)
    for i, item in enumerate(c):
        ip = f"{p}[{i}]"
        item = _obj(item, ip)
        name = _obj(item.get("name"), f"{ip}.name") if item.get("name") is not None else _fail("is required.",
                                                                                               f"{ip}.name")
        _str(name.get("formatted_name"), f"{ip}.name.formatted_name", max_len=1000)
        for key in ("phones", "emails", "addresses", "urls"):
            if item.get(key) is not None and not isinstance(item[key], list):
                _fail("must be a list.", f"{ip}.{key}")
    return c


def _template(c, p) -> dict:
    c = _obj(c, p)
    name = _str(c.get("name"), f"{p}.name", max_len=TEMPLATE_NAME_MAX)
    language = c.get("language")
    if isinstance(language, dict):
        language = language.get("code")
    language = _str(language, f"{p}.language", max_len=TEMPLATE_LANGUAGE_MAX)
    out: dict = {"name": name, "language": language}
    variables = c.get("variables")
    if variables is not None:
        if isinstance(variables, list):
            for i, v in enumerate(variables):
                if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                    _fail("must be a string or a number.", f"{p}.variables[{i}]")
                if isinstance(v, str) and len(v) > 1024:
                    _fail("must be at most 1024 characters.", f"{p}.variables[{i}]")
        elif isinstance(variables, dict):
            for k, v in variables.items():
                if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                    _fail("must be a string or a number.", f"{p}.variables.{k}")
        else:
            _fail("must be a list (positional) or an object (named).", f"{p}.variables")
        out["variables"] = variables
    components = c.get("components")
    if components is not None:
        if not isinstance(components, list) or not all(isinstance(x, dict) for x in components):
            _fail("must be a list of Meta-shaped component objects.", f"{p}.components")
        out["components"] = components
    return out


CHECKS = {"text": _text, "template": _template, "location": _location, "interactive": _interactive,
          "reaction": _reaction, "contacts": _contacts, **{k: _media(k) for k in MEDIA_TYPES}}


def content_validate(*, message_type: str, content) -> dict | list:
    if message_type not in CHECKS:
        _fail(f"must be one of {', '.join(MESSAGE_TYPES)}.", "type")
    return CHECKS[message_type](content, message_type)


# --- the whole request ------------------------------------------------------------------------------


@dataclass
class SendRequest:
    to: str  # E.164, or a business-scoped user id (API.md Identity: `recipient`)
    channel: str
    type: str
    content: dict | list
    phone_number_id: str | None = None
    scheduled_at: datetime | None = None
    client_reference: str = ""
    fallback: dict = field(default_factory=dict)
    tag: str = ""  # Messenger / Instagram message tag
    account_id: str | None = None  # Messenger / Instagram sender pin (sac_… or Meta's Page / account id)


def _infer_type(data: dict) -> str:
    present = [t for t in MESSAGE_TYPES if t in data]
    if len(present) == 1:
        return present[0]
    if not present:
        _fail("is required (or give exactly one message object such as text).", "type")
    _fail(f"is required when several message objects are present ({', '.join(present)}).", "type")


def send_request_validate(data, *, now: datetime | None = None) -> SendRequest:
    from apps.contacts.services import normalize_bsuid, normalize_phone

    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="")
    channel = data.get("channel") or "whatsapp"
    if channel not in CHANNELS:
        _fail(f"must be one of {', '.join(CHANNELS)}.", "channel")
    social = SOCIAL_CHANNEL_RULES.get(channel)
    if social is not None:
        # A Page- or Instagram-scoped user id (PSID / IGSID): Meta's recipient.id.
        key = "recipient" if data.get("recipient") not in (None, "") else "to"
        to = _str(data.get(key), key, max_len=64)
        if not SOCIAL_USER_ID.fullmatch(to):
            _fail(f"must be the customer's {channel} id (digits), as its inbound messages carry it.", key)
    elif data.get("to") in (None, "") and data.get("recipient") not in (None, ""):
        # No phone: the business-scoped user id, sent to Meta as `recipient` (as Meta, `to` wins when both).
        if channel != "whatsapp":
            _fail("a business-scoped user id reaches WhatsApp only; give `to` for SMS.", "recipient")
        to = normalize_bsuid(data["recipient"], field="recipient")
    elif channel == "email":
        to = email_address_validate(data.get("to"), "to")
    else:
        to = normalize_phone(data.get("to") if data.get("to") is not None else "", field="to")
    mtype = data.get("type")
    if mtype is None:
        mtype = _infer_type(data)
    elif mtype not in MESSAGE_TYPES:
        _fail(f"must be one of {', '.join(MESSAGE_TYPES)}.", "type")
    if mtype == "template" and isinstance(data.get("template"), str):
        # Short form: "template": "name" with language/variables/components at the top level.
        raw = {"name": data["template"], "language": data.get("language"), "variables": data.get("variables"),
               "components": data.get("components")}
    else:
        if data.get(mtype) is None:
            _fail("is required for this type.", mtype)
        raw = data[mtype]
    content = content_validate(message_type=mtype, content=raw)
    if channel == "sms" and mtype != "text":
        _fail("SMS messages are text only.", "type")
    tag = data.get("tag")
    if social is not None:
        _social_content_check(channel, social, mtype, content)
        if tag is not None:
            tag = _str(tag, "tag", max_len=TAG_MAX)
    elif tag is not None:
        _fail("message tags are for messenger and instagram.", "tag")
    account_id = data.get("account_id")
    if account_id is not None:
        if social is None:
            _fail("a Page or Instagram account sends messenger and instagram messages only.", "account_id")
        account_id = _str(account_id, "account_id", max_len=ACCOUNT_ID_MAX)
    if channel == "email":
        if mtype != "text":
            _fail("email messages are text (with an optional email.html alternative).", "type")
        content = email_options_validate(data.get("email"), content)
    elif data.get("email") is not None:
        _fail("is for channel email.", "email")
    pn = data.get("phone_number_id")
    if pn is not None:
        pn = _str(pn, "phone_number_id", max_len=64)
    scheduled_at = None
    if data.get("scheduled_at") is not None:
        raw_at = data["scheduled_at"]
        scheduled_at = parse_datetime(raw_at) if isinstance(raw_at, str) else None
        if scheduled_at is None:
            _fail("must be an ISO-8601 time.", "scheduled_at")
        if timezone.is_naive(scheduled_at):
            scheduled_at = scheduled_at.replace(tzinfo=UTC)
        if scheduled_at <= (now or timezone.now()):
            _fail("must be in the future.", "scheduled_at")
        horizon = getattr(settings, "MESSAGE_SCHEDULE_MAX_DAYS", 30)
        if (scheduled_at - (now or timezone.now())).days >= horizon:
            _fail(f"must be within {horizon} days.", "scheduled_at")
    client_reference = data.get("client_reference")
    if client_reference is not None:
        client_reference = _str(client_reference, "client_reference", max_len=CLIENT_REFERENCE_MAX, min_len=0)
    fallback = data.get("fallback")
    fb_out: dict = {}
    if fallback is not None:
        fallback = _obj(fallback, "fallback")
        unknown = set(fallback) - {"sms", "after", "wait_seconds"}
        if unknown:
            _fail("only sms is supported.", f"fallback.{sorted(unknown)[0]}")
        if channel != "whatsapp":
            _fail("a fallback is for WhatsApp messages.", "fallback")
        sms = _obj(fallback.get("sms"), "fallback.sms")
        fb_out = {"sms": {"text": _str(sms.get("text"), "fallback.sms.text", max_len=SMS_TEXT_MAX)}}
        if sms.get("sender") is not None:
            fb_out["sms"]["sender"] = _str(sms["sender"], "fallback.sms.sender", max_len=SMS_SENDER_MAX)
        after = fallback.get("after", FALLBACK_FAILED)
        if after not in (FALLBACK_FAILED, FALLBACK_UNDELIVERED):
            _fail("must be failed or undelivered.", "fallback.after")
        fb_out["after"] = after
        if after == FALLBACK_UNDELIVERED:
            wait = fallback.get("wait_seconds")
            lo, hi = settings.FALLBACK_WAIT_MIN_SECONDS, settings.FALLBACK_WAIT_MAX_SECONDS
            if isinstance(wait, bool) or not isinstance(wait, int) or not lo <= wait <= hi:
                _fail(f"must be an integer from {lo} to {hi} when after is undelivered.", "fallback.wait_seconds")
            fb_out["wait_seconds"] = wait
        elif fallback.get("wait_seconds") is not None:
            _fail("only applies when after is undelivered.", "fallback.wait_seconds")
    if social is not None and pn is not None:
        _fail("messenger and instagram messages are sent from a Page or account: give account_id.",
              "phone_number_id")
    return SendRequest(to=to, channel=channel, type=mtype, content=content, phone_number_id=pn,
                       scheduled_at=scheduled_at, client_reference=client_reference or "", fallback=fb_out,
                       tag=tag or "", account_id=account_id)


def _social_content_check(channel: str, rules: dict, mtype: str, content) -> None:
    """What Meta's Send API takes on this channel, on top of the common content rules."""
    if mtype not in rules["types"]:
        _fail(f"{channel} messages are {', '.join(rules['types'])}.", "type")
    if mtype == "text" and len(content["body"]) > rules["text_max"]:
        _fail(f"must be at most {rules['text_max']} characters on {channel}.", "text.body")
    if mtype in MEDIA_TYPES and not content.get("link"):
        _fail(f"{channel} attachments are sent by URL: give link.", f"{mtype}.link")
    if mtype == "interactive" and content.get("kind") != "buttons":
        _fail(f"{channel} takes buttons (sent as quick replies), not lists.", "interactive.kind")


def body_preview(message_type: str, content) -> str:
    """The text a person sees for a free-form message (templates are rendered by message_templates)."""
    if message_type == "text":
        return content["body"]
    if message_type in MEDIA_TYPES:
        return content.get("caption") or f"[{message_type}]"
    if message_type == "location":
        return content.get("name") or content.get("address") or f"📍 {content['latitude']}, {content['longitude']}"
    if message_type == "interactive":
        return content.get("body", "")
    if message_type == "reaction":
        return content.get("emoji", "")
    if message_type == "contacts":
        return ", ".join(c.get("name", {}).get("formatted_name", "") for c in content)
    return ""
