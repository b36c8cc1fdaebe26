"""Meta webhooks for `object: page` (Messenger) and `object: instagram` -> plain dataclasses.

Each entry is one Page / Instagram account (entry.id) with `messaging` events: `message` (text,
attachments, quick_reply payloads; echoes of our own sends are skipped), `postback` (a button tap),
`delivery` (mids, or a watermark) and `read` (Instagram: the mid; Messenger: a watermark: everything sent
before it is read). Unknown shapes are skipped, never a crash."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

logger = logging.getLogger("reach.providers.social")

SOCIAL_OBJECTS = {"page": "messenger", "instagram": "instagram"}


@dataclass(frozen=True)
class SocialInbound:
    channel: str
    account_id: str  # entry.id: the Page id or the Instagram account id
    sender_id: str  # PSID / IGSID
    mid: str
    timestamp: datetime
    type: str  # text | image | video | audio | document | sticker | location | button
    body: str
    content: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SocialReceipt:
    channel: str
    account_id: str
    recipient_id: str  # the customer (the event's sender)
    status: str  # delivered | read
    timestamp: datetime
    mids: tuple[str, ...] = ()
    watermark: datetime | None = None


def _at(ms) -> datetime:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(tz=UTC)


_ATTACHMENT_KINDS = {"image": "image", "video": "video", "audio": "audio", "file": "document",
                     "sticker": "sticker", "location": "location", "share": "document", "story_mention": "image",
                     "ig_reel": "video", "reel": "video"}


def _message(channel: str, account_id: str, sender: str, event: dict) -> SocialInbound | None:
    msg = event.get("message")
    if not isinstance(msg, dict) or msg.get("is_echo") or msg.get("is_deleted"):
        return None
    mid = str(msg.get("mid") or "")
    if not mid:
        return None
    text = msg.get("text") if isinstance(msg.get("text"), str) else ""
    content: dict = {"mid": mid}
    mtype = "text"
    if text:
        content["body"] = text
    quick = msg.get("quick_reply")
    if isinstance(quick, dict) and quick.get("payload") is not None:
        content["quick_reply"] = {"payload": str(quick["payload"])}
        mtype = "button"
    attachments = [a for a in (msg.get("attachments") or []) if isinstance(a, dict)]
    if attachments:
        first = attachments[0]
        mtype = _ATTACHMENT_KINDS.get(str(first.get("type")), "document")
        payload = first.get("payload") if isinstance(first.get("payload"), dict) else {}
        content["attachments"] = [{"type": str(a.get("type")), "url": (a.get("payload") or {}).get("url")
                                   if isinstance(a.get("payload"), dict) else None} for a in attachments]
        if payload.get("url"):
            content["link"] = str(payload["url"])
    if isinstance(msg.get("reply_to"), dict) and msg["reply_to"].get("mid"):
        content["reply_to_mid"] = str(msg["reply_to"]["mid"])
    body = text or (f"[{mtype}]" if mtype != "text" else "")
    return SocialInbound(channel=channel, account_id=account_id, sender_id=sender, mid=mid,
                         timestamp=_at(event.get("timestamp")), type=mtype, body=body, content=content)


def _postback(channel: str, account_id: str, sender: str, event: dict) -> SocialInbound | None:
    pb = event.get("postback")
    if not isinstance(pb, dict):
        return None
    ts = str(event.get("timestamp") or "")
    mid = str(pb.get("mid") or f"postback.{account_id}.{sender}.{ts}")
    title = str(pb.get("title") or "")
    content = {"mid": mid, "postback": {"title": title, "payload": str(pb.get("payload") or "")}}
    return SocialInbound(channel=channel, account_id=account_id, sender_id=sender, mid=mid,
                         timestamp=_at(event.get("timestamp")), type="button", body=title or "[button]",
                         content=content)


def _receipts(channel: str, account_id: str, sender: str, event: dict) -> list[SocialReceipt]:
    out = []
    for key, status in (("delivery", "delivered"), ("read", "read")):
        item = event.get(key)
        if not isinstance(item, dict):
            continue
        mids = tuple(str(m) for m in (item.get("mids") or ([item["mid"]] if item.get("mid") else [])) if m)
        watermark = _at(item["watermark"]) if item.get("watermark") else None
        if not mids and watermark is None:
            continue
        out.append(SocialReceipt(channel=channel, account_id=account_id, recipient_id=sender, status=status,
                                 timestamp=_at(event.get("timestamp")) if event.get("timestamp") else
                                 (watermark or datetime.now(tz=UTC)), mids=mids, watermark=watermark))
    return out


def parse_social_webhook(payload: dict) -> list[SocialInbound | SocialReceipt]:
    """Every inbound message and receipt of a page / instagram payload, in order."""
    channel = SOCIAL_OBJECTS.get(payload.get("object")) if isinstance(payload, dict) else None
    if channel is None:
        return []
    items: list = []
    for entry in payload.get("entry") or ():
        if not isinstance(entry, dict):
            continue
        account_id = str(entry.get("id") or "")
        for event in entry.get("messaging") or ():
            if not isinstance(event, dict):
                continue
            sender = str((event.get("sender") or {}).get("id") or "") if isinstance(event.get("sender"), dict) else ""
            if not sender or not account_id or sender == account_id:
                continue
            for reader in (_message, _postback):
                item = reader(channel, account_id, sender, event)
                if item is not None:
                    items.append(item)
            items.extend(_receipts(channel, account_id, sender, event))
    return items
