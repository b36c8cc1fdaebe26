"""The fake Meta for Messenger and Instagram (Send API + `object` page / instagram webhooks), shared by
fakemeta (HTTP, server.py routes POST /{v}/{page-or-ig-id}/messages here for registered accounts) and the
sandbox's in-process sender.

Meta's behaviour it plays: a send to a customer who never wrote to the account is refused (code 10,
subcode 2018278: outside the allowed window); a bad body is code 100; a wrong token 190. An accepted send
answers {recipient_id, message_id} and is followed by webhooks: Messenger `delivery` (mids) then `read`
(watermark); Instagram `read` (mid). A simulated customer message (`inbound`) is a signed `messaging`
webhook like Meta's. Kept apart from the WhatsApp engine on purpose."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from apps.providers.simulator.rules import Followup

OBJECTS = {"messenger": "page", "instagram": "instagram"}
DELIVERED_DELAY, READ_DELAY = 0.05, 0.1


@dataclass
class SocialResult:
    status: int
    body: dict
    followups: list = field(default_factory=list)


def _error(status: int, code: int, message: str, subcode: int | None = None) -> SocialResult:
    err = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": secrets.token_hex(8)}
    if subcode is not None:
        err["error_subcode"] = subcode
    return SocialResult(status, {"error": err})


def _ms() -> int:
    return int(time.time() * 1000)


def new_mid(channel: str) -> str:
    return ("m_" if channel == "messenger" else "aWdf") + secrets.token_urlsafe(24)


def new_user_id() -> str:
    return str(secrets.randbelow(9 * 10**15) + 10**15)


def messaging_envelope(*, channel: str, account_id: str, event: dict) -> dict:
    return {"object": OBJECTS[channel], "entry": [{"id": account_id, "time": _ms(), "messaging": [event]}]}


class SocialSimulator:
    def __init__(self, *, strict: bool = True) -> None:
        # strict (fakemeta): only registered accounts answer, with their token, and only to customers who
        # wrote. The sandbox's in-process form leaves those rules to Reach's policy.
        self.strict = strict
        self.accounts: dict[str, dict] = {}  # meta account id -> {"channel", "token"}
        self.customers: set[tuple[str, str]] = set()  # (account id, user id) that wrote
        self.sent: list[dict] = []  # every accepted send, for tests

    def register(self, *, channel: str, account_id: str, token: str | None = None) -> None:
        self.accounts[str(account_id)] = {"channel": channel, "token": token}

    def owns(self, account_id: str) -> bool:
        return str(account_id) in self.accounts

    def channel_of(self, account_id: str, default: str = "messenger") -> str:
        return self.accounts.get(str(account_id), {}).get("channel", default)

    # -- Send API ------------------------------------------------------------------------------------
    def send(self, *, account_id: str, body, access_token: str | None, channel: str | None = None) -> SocialResult:
        account = self.accounts.get(str(account_id))
        if self.strict and account is None:
            return _error(400, 100, f"Unsupported post request. Object with ID '{account_id}' does not exist")
        channel = channel or (account or {}).get("channel", "messenger")
        if self.strict and (not access_token or (account.get("token") and access_token != account["token"])):
            return _error(401, 190, "Invalid OAuth access token.")
        if not isinstance(body, dict) or not isinstance(body.get("recipient"), dict) \
                or not body["recipient"].get("id") or not isinstance(body.get("message"), dict):
            return _error(400, 100, "(#100) The parameter recipient is required")
        message = body["message"]
        if not (message.get("text") or message.get("attachment")):
            return _error(400, 100, "(#100) Message cannot be empty, must provide valid attachment or text")
        user = str(body["recipient"]["id"])
        if self.strict and (str(account_id), user) not in self.customers:
            return _error(400, 10, "(#10) This message is sent outside of allowed window.", subcode=2018278)
        mid = new_mid(channel)
        self.sent.append({"account_id": str(account_id), "channel": channel, "body": body, "mid": mid})
        return SocialResult(200, {"recipient_id": user, "message_id": mid},
                            followups=self.receipts(channel=channel, account_id=str(account_id), user_id=user, mid=mid))

    def receipts(self, *, channel: str, account_id: str, user_id: str, mid: str) -> list[Followup]:
        out = []
        if channel == "messenger":
            out.append(Followup(DELIVERED_DELAY, messaging_envelope(channel=channel, account_id=account_id, event={
                "sender": {"id": user_id}, "recipient": {"id": account_id}, "timestamp": _ms(),
                "delivery": {"mids": [mid], "watermark": _ms()}})))
            read = {"watermark": _ms() + int(READ_DELAY * 1000)}
        else:
            read = {"mid": mid}
        out.append(Followup(READ_DELAY, messaging_envelope(channel=channel, account_id=account_id, event={
            "sender": {"id": user_id}, "recipient": {"id": account_id}, "timestamp": _ms() + int(READ_DELAY * 1000),
            "read": read})))
        return out

    # -- a customer writes -----------------------------------------------------------------------------
    def inbound(self, *, account_id: str, user_id: str | None = None, text: str | None = None,
                quick_reply: str | None = None, attachment: dict | None = None, postback: dict | None = None,
                channel: str | None = None) -> tuple[str, str, dict]:
        """-> (mid, user id, the webhook payload)."""
        channel = channel or self.channel_of(account_id)
        user_id = str(user_id or new_user_id())
        self.customers.add((str(account_id), user_id))
        mid = new_mid(channel)
        event = {"sender": {"id": user_id}, "recipient": {"id": str(account_id)}, "timestamp": _ms()}
        if postback is not None:
            event["postback"] = {"mid": mid, "title": str(postback.get("title", "")),
                                 "payload": str(postback.get("payload", ""))}
        else:
            message: dict = {"mid": mid}
            if text:
                message["text"] = text
            if quick_reply is not None:
                message["quick_reply"] = {"payload": quick_reply}
            if attachment is not None:
                message["attachments"] = [{"type": attachment.get("type", "image"),
                                           "payload": {"url": attachment.get("url", "")}}]
            event["message"] = message
        return mid, user_id, messaging_envelope(channel=channel, account_id=str(account_id), event=event)
