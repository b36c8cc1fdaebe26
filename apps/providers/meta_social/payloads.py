"""Reach's message content (API.md shape) -> Meta's Send API body for Messenger and Instagram.

Both take `{"recipient": {"id": PSID|IGSID}, "messaging_type": ..., "message": {...}}`; a message tag
(HUMAN_AGENT, ...) goes out with messaging_type MESSAGE_TAG. Interactive buttons become quick replies."""

from __future__ import annotations

ATTACHMENT_TYPES = {"image": "image", "video": "video", "audio": "audio", "document": "file"}


def build_message(*, message_type: str, content: dict) -> dict:
    if message_type == "text":
        return {"text": content["body"]}
    if message_type in ATTACHMENT_TYPES:
        return {"attachment": {"type": ATTACHMENT_TYPES[message_type],
                               "payload": {"url": content["link"], "is_reusable": True}}}
    if message_type == "interactive" and content.get("kind") == "buttons":
        return {"text": content["body"],
                "quick_replies": [{"content_type": "text", "title": b["title"], "payload": b["id"]}
                                  for b in content["buttons"]]}
    raise ValueError(f"{message_type} cannot be sent on Messenger or Instagram")


def build_send_payload(*, recipient_id: str, message_type: str, content: dict, tag: str = "") -> dict:
    body = {"recipient": {"id": recipient_id}, "messaging_type": "MESSAGE_TAG" if tag else "RESPONSE",
            "message": build_message(message_type=message_type, content=content)}
    if tag:
        body["tag"] = tag
    return body
