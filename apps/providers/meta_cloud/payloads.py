"""Reach's message shapes (API.md Messages) -> Meta's send request body (META.md §1).

The caller (the send pipeline) has already validated the API input and resolved our ids into Meta's: media
content carries Meta's media `id` (or a `link`), a reaction's `message_id` is the wamid being reacted to.
"""

from __future__ import annotations

import re

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
_CAPTIONED = ("image", "video", "document")
_BSUID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9.]{1,160}$")


def build_send_payload(*, to: str, message_type: str, content: dict, context_wamid: str | None = None,
                       biz_opaque_callback_data: str | None = None) -> dict:
    body: dict = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if _BSUID.match(to or ""):
        body["recipient"] = to
    else:
        body["to"] = to
    body["type"] = message_type
    builder = _BUILDERS.get(message_type)
    if builder is None:
        raise ValueError(f"unsupported message type {message_type!r}")
    body[message_type] = builder(content or {})
    reply_to = context_wamid or (content.get("context_wamid") if isinstance(content, dict) else None)
    if reply_to:
        body["context"] = {"message_id": reply_to}
    if biz_opaque_callback_data:
        body["biz_opaque_callback_data"] = biz_opaque_callback_data
    return body


MARKETING_MESSAGES = "marketing_messages"


def marketing_messages_payload(body: dict) -> dict:
    """A template send body as Meta's Marketing Messages API takes it (OAS MarketingMessageRequestPayload):
    falls back to the Cloud API when Meta cannot use MM API for it, and shares click activity (Meta's
    `marketing_messages_link_click` webhooks). Its TTL is the template's (message_send_ttl_seconds): the
    request has no per-message field."""
    return {**body, "product_policy": "CLOUD_API_FALLBACK", "message_activity_sharing": True}


def send_endpoint(body: dict) -> str:
    """Where a send body goes: `marketing_messages` for a Marketing Messages API body (it alone carries
    product_policy), else `messages`."""
    return MARKETING_MESSAGES if "product_policy" in body else "messages"


def build_block_users_payload(users: list[str]) -> dict:
    """POST (block) or DELETE (unblock) /{phone-number-id}/block_users: phones or BSUIDs, as Meta's `user`."""
    return {"messaging_product": "whatsapp", "block_users": [{"user": u} for u in users]}


def build_mark_read_payload(*, wamid: str, typing: bool = False) -> dict:
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    return body


def _text(c: dict) -> dict:
    out = {"body": c["body"]}
    if c.get("preview_url"):
        out["preview_url"] = True
    return out


def _media(kind: str):
    def build(c: dict) -> dict:
        out: dict = {}
        media_id = c.get("id") or c.get("meta_media_id")
        if media_id:
            out["id"] = str(media_id)
        elif c.get("link"):
            out["link"] = c["link"]
        else:
            raise ValueError(f"{kind}: one of id or link is required")
        if kind in _CAPTIONED and c.get("caption"):
            out["caption"] = c["caption"]
        if kind == "document" and c.get("filename"):
            out["filename"] = c["filename"]
        return out

    return build


def _location(c: dict) -> dict:
    out = {"latitude": float(c["latitude"]), "longitude": float(c["longitude"])}
    for key in ("name", "address"):
        if c.get(key):
            out[key] = c[key]
    return out


def _reaction(c: dict) -> dict:
    return {"message_id": c["message_id"], "emoji": c.get("emoji") or ""}


def _contacts(c) -> list:
    items = c.get("contacts") if isinstance(c, dict) else c
    if isinstance(c, dict) and items is None:
        items = [c]
    return list(items or [])


def _param(value, name: str | None = None) -> dict:
    if isinstance(value, dict) and "type" in value:
        param = dict(value)  # already a Meta parameter object (currency, date_time, media...)
    else:
        param = {"type": "text", "text": "" if value is None else str(value)}
    if name is not None:
        param["parameter_name"] = name
    return param


def _template(c: dict) -> dict:
    language = c.get("language") or "en"
    lang = dict(language) if isinstance(language, dict) else {"code": language}
    out: dict = {"name": c["name"], "language": lang}
    components: list = []
    variables = c.get("variables")
    if isinstance(variables, list) and variables:
        components.append({"type": "body", "parameters": [_param(v) for v in variables]})
    elif isinstance(variables, dict) and variables:
        components.append({"type": "body", "parameters": [_param(v, name=k) for k, v in variables.items()]})
    for comp in c.get("components") or []:
        if components and str(comp.get("type", "")).lower() == "body":
            continue  # variables already produced the body parameters
        components.append(comp)
    if components:
        out["components"] = components
    return out


def _interactive(c: dict) -> dict:
    kind = c.get("kind")
    if kind is None and c.get("type"):
        return dict(c)  # already Meta-shaped (cta_url, flow, ...): pass through
    out: dict = {}
    if kind == "cta_url":
        out["type"] = "cta_url"
        out["action"] = {"name": "cta_url", "parameters": {"display_text": c["display_text"], "url": c["url"]}}
    elif kind == "location_request":
        out["type"] = "location_request_message"
        out["action"] = {"name": "send_location"}
    elif kind == "flow":
        out["type"] = "flow"
        params: dict = {"flow_message_version": "3", "flow_token": c["flow_token"], "flow_cta": c["flow_cta"],
                        "mode": c.get("mode", "published"), "flow_action": c.get("flow_action", "navigate")}
        if c.get("flow_id"):
            params["flow_id"] = str(c["flow_id"])
        else:
            params["flow_name"] = c["flow_name"]
        if params["flow_action"] == "navigate":
            payload = {"screen": c["screen"]}
            if c.get("data"):
                payload["data"] = c["data"]
            params["flow_action_payload"] = payload
        out["action"] = {"name": "flow", "parameters": params}
    elif kind == "buttons":
        out["type"] = "button"
        out["action"] = {"buttons": [{"type": "reply", "reply": {"id": b["id"], "title": b["title"]}}
                                     for b in c.get("buttons") or []]}
    elif kind == "list":
        out["type"] = "list"
        sections = []
        for s in c.get("sections") or []:
            rows = []
            for r in s.get("rows") or []:
                row = {"id": r["id"], "title": r["title"]}
                if r.get("description"):
                    row["description"] = r["description"]
                rows.append(row)
            section = {"rows": rows}
            if s.get("title"):
                section["title"] = s["title"]
            sections.append(section)
        out["action"] = {"button": c.get("button") or "Options", "sections": sections}
    else:
        raise ValueError(f"unsupported interactive kind {kind!r}")
    if c.get("header_text"):
        out["header"] = {"type": "text", "text": c["header_text"]}
    elif isinstance(c.get("header"), dict):
        out["header"] = c["header"]
    out["body"] = {"text": c["body"]["text"] if isinstance(c.get("body"), dict) else c.get("body", "")}
    footer = c.get("footer")
    if footer:
        out["footer"] = {"text": footer["text"] if isinstance(footer, dict) else footer}
    # Meta wants header/body/footer before action; dict order only matters for readability of logs.
    return {k: out[k] for k in ("type", "header", "body", "footer", "action") if k in out}


_BUILDERS = {
    "text": _text,
    "template": _template,
    "location": _location,
    "reaction": _reaction,
    "contacts": _contacts,
    "interactive": _interactive,
    **{kind: _media(kind) for kind in MEDIA_TYPES},
}
