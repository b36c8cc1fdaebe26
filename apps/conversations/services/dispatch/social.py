"""The drain of one Page / Instagram account: claim its due Messenger / Instagram messages, send each
through Meta's Send API (a sandbox account through the in-process simulator), and record the outcomes
with the dispatcher's one recorder (outcomes_record: statuses, attempts, events), as WhatsApp's and SMS's.
Woken on commit by a doorbell of its own; the sweeper covers a lost kick."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict

from django.utils import timezone

from apps.conversations.models import Message
from apps.conversations.services import transitions
from apps.conversations.services.dispatch.base import Outcome, _setting, _Terminal, logger
from apps.conversations.services.dispatch.claim import _lease
from apps.conversations.services.dispatch.recording import outcomes_record
from apps.conversations.services.dispatch.send import _send_sync
from apps.core.runtime.doorbell import BackgroundRinger, Doorbell


def _enqueue(account_id: str) -> None:
    from apps.conversations.tasks.dispatch import dispatch_social_account

    dispatch_social_account.delay(account_id)


doorbell = Doorbell("reach:dispatch:social", ttl_ms=lambda: _setting("DISPATCH_KICK_TTL_MS", 2000),
                    enqueue=lambda account_id: _enqueue(account_id))
_kicks = BackgroundRinger(doorbell.ring, name="social-dispatch-kicks", linger_seconds=lambda: 0.0)


def social_dispatch_kick(*, account_id: str) -> None:
    try:
        _kicks.submit(account_id)
    except Exception:  # the row is the queue, the sweeper will find it
        logger.warning("social dispatch kick failed for %s", account_id, exc_info=True)


class _Sender:
    """One account's sender: the Send API client (live) or the in-process simulator (sandbox), whose
    receipts enter the receive road as webhooks once the batch is recorded."""

    def __init__(self, account) -> None:
        from apps.wabas.services import social_access_token

        self.account, self.token = account, social_access_token(account)
        self.followups: list = []

    def send(self, message: Message):
        from apps.providers.base import SendResult
        from apps.providers.meta_social.payloads import build_send_payload

        try:
            payload = build_send_payload(recipient_id=message.to_phone, message_type=message.type,
                                         content=message.content, tag=message.social_tag)
        except (ValueError, KeyError, TypeError) as exc:
            raise _Terminal("INVALID_REQUEST", f"Cannot build the request: {exc}")
        if self.account.is_simulated:
            from apps.providers.registry import social_sandbox_sender

            result = social_sandbox_sender().send(account_id=self.account.meta_account_id, body=payload,
                                            access_token=self.token, channel=self.account.channel)
            if result.status != 200:
                import json

                from apps.providers.meta_social.client import error_from_send_response

                raise error_from_send_response(result.status, json.dumps(result.body))
            self.followups.extend(result.followups)
            return SendResult(provider_message_id=result.body["message_id"], wa_id=None, message_status=None)
        from apps.providers.registry import social_send_client

        return social_send_client().send(account_id=self.account.meta_account_id, access_token=self.token,
                                         payload=payload)

    def deliver(self) -> None:
        from apps.core import hooks

        followups, self.followups = self.followups, []
        for f in followups:
            hooks.deliver_inbound(payload=f.payload, delay_seconds=f.delay, source="simulator")


def social_dispatch_drain(*, account_id: str, budget_seconds: float | None = None, limit: int = 50) -> dict[str, int]:
    """Send an account's due messages for up to `budget_seconds`. Safe to run twice at once (claims)."""
    from apps.wabas.models import SocialAccount

    totals: dict[str, int] = defaultdict(int)
    account = SocialAccount.objects.filter(pk=account_id).first()
    if account is None:
        return totals
    sender = _Sender(account)
    deadline = time.monotonic() + (budget_seconds if budget_seconds is not None
                                   else float(_setting("DISPATCH_DRAIN_SECONDS", 30)))
    try:
        while time.monotonic() < deadline:
            now = timezone.now()
            token = secrets.token_hex(8)
            messages = transitions.messages_claim_for_account(account_id=account_id, limit=limit, now=now,
                                                              until=now + _lease(), token=token)
            if not messages:
                break
            outcomes = []
            for message in messages:
                outcome = Outcome(message=message, kind="")
                if message.expires_at and message.expires_at <= now:
                    outcome.kind = "terminal"
                    outcome.error = _Terminal("MESSAGE_EXPIRED", "The message could not be sent before it expired.")
                else:
                    _send_sync(outcome, lambda m=message: sender.send(m))
                outcomes.append(outcome)
            for key, value in outcomes_record(outcomes=outcomes, token=token).items():
                totals[key] += value
            sender.deliver()
    finally:
        doorbell.release(account_id)
    return totals
