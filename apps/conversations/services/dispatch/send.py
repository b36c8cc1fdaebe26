"""Send: outside any transaction, on one event loop per process (core runtime LoopThread), paced by the
number's NumberPacer. Live and sandbox numbers take the same loop; only the sender differs: the live one is
AsyncGraphSender (aiohttp, concurrent), the sandbox one the in-process simulator, whose follow-up webhooks
(statuses) are handed to the receive road by the drain thread once the batch is back. SMS goes through the
gateway, inline (the simulator for sandbox numbers, whatever SMS_GATEWAY says); email through the
workspace's email channel's SMTP server, inline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from apps.conversations.services.dispatch.base import Batch, Outcome, _Terminal, logger
from apps.conversations.services.dispatch.pacing import NumberPacer
from apps.conversations.services.dispatch.prepare import _NumberCtx, _prepare
from apps.core.runtime.loop import LoopThread


def _close_sender(loop: asyncio.AbstractEventLoop) -> None:
    """At exit, close the sender's pooled connections on their loop (else aiohttp reports them unclosed)."""
    from apps.providers.registry import async_whatsapp_sender

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(async_whatsapp_sender().aclose(), loop).result(timeout=2)


_loop = LoopThread("reach-dispatch-loop", at_exit=_close_sender)


def _now() -> datetime:
    return timezone.now()


class _SandboxSender:
    """The in-process simulator behind the live sender's async surface. The engine answers from Redis, so it
    runs on the loop; its follow-ups write rows (the receive road), so they wait for the drain thread."""

    def __init__(self) -> None:
        from apps.providers.registry import whatsapp_provider

        self.provider = whatsapp_provider(simulated=True)
        self.followups: list = []

    async def send_message(self, *, phone_number_id: str, access_token: str, payload: dict):
        return self.provider.send_message_collect(phone_number_id=phone_number_id, access_token=access_token,
                                                  payload=payload, followups=self.followups)

    def deliver(self) -> None:
        followups, self.followups = self.followups, []
        self.provider.deliver_followups(followups)


@dataclass
class InFlight:
    batch: Batch
    outcomes: list[Outcome]
    future: object | None = None
    after: list = field(default_factory=list)  # run by the drain thread once the future is done


def _outcome_from_exception(outcome: Outcome, exc: Exception) -> None:
    from apps.providers.base import ProviderError

    if isinstance(exc, ProviderError):
        outcome.kind, outcome.error = ("retryable" if exc.retryable else "terminal"), exc
        if exc.retryable and getattr(exc, "maybe_sent", False):
            outcome.kind = "unknown"  # Meta may have it: wait for its report (recording._record_unknown)
        return
    logger.error("send failed unexpectedly", exc_info=exc)  # a bug or an unmapped failure: retry, never lose it
    outcome.kind = "retryable"
    outcome.error = _Terminal("DISPATCH_ERROR", f"{type(exc).__name__}: {exc}", retryable=True)


async def _send_paced(items: list[tuple[Outcome, dict]], *, pacer: NumberPacer, sender, number_meta_id: str,
                      token: str) -> None:
    """The one send loop: take grants from the pacer a burst at a time and start each granted send."""

    async def one(outcome: Outcome, payload: dict) -> None:
        outcome.started_at = _now()
        t0 = time.perf_counter()
        try:
            result = await sender.send_message(phone_number_id=number_meta_id, access_token=token, payload=payload)
            outcome.kind, outcome.provider_message_id = "accepted", result.provider_message_id
        except Exception as exc:
            _outcome_from_exception(outcome, exc)
        outcome.finished_at = _now()
        outcome.latency_ms = int((time.perf_counter() - t0) * 1000)

    tasks = []
    i = 0
    chunk = pacer.burst
    while i < len(items):
        want = min(len(items) - i, chunk)
        granted, wait = pacer.take(want)
        for k in range(granted):
            tasks.append(asyncio.ensure_future(one(*items[i + k])))
        i += granted
        if i < len(items):
            await asyncio.sleep(max(wait, 0.0005))
    if tasks:
        await asyncio.gather(*tasks)


def _send_sync(outcome: Outcome, call) -> None:
    outcome.started_at = _now()
    t0 = time.perf_counter()
    try:
        result = call()
        outcome.provider_message_id = result.provider_message_id
        outcome.sms = result
        outcome.kind = "accepted"
    except Exception as exc:
        _outcome_from_exception(outcome, exc)
    outcome.finished_at = _now()
    outcome.latency_ms = int((time.perf_counter() - t0) * 1000)


def _send_sms(outcomes: list[Outcome], *, simulated: bool) -> None:
    """A sandbox number's SMS always goes to the simulator; a live one's to the configured gateway."""
    if not outcomes:
        return
    from apps.providers.sms import get_sms_gateway

    gateway = get_sms_gateway(simulated=simulated)
    for outcome in outcomes:
        m = outcome.message
        _send_sync(outcome, lambda m=m: gateway.send_sms(to=m.to_phone, text=m.content.get("body", m.body),
                                                          sender=m.content.get("sender") or ""))


def _send_email(outcomes: list[Outcome]) -> None:
    """Email through the workspace's email channel's SMTP server, inline; the mail (subject, threading
    headers, List-Unsubscribe) is conversations.services.email's."""
    if not outcomes:
        return
    from apps.conversations.services.email import email_outgoing
    from apps.providers.email import email_connection, email_send

    session: dict = {}  # one SMTP session for the batch (a number's batch is one workspace's one channel)

    def close() -> None:
        connection = session.pop("connection", None)
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    try:
        for outcome in outcomes:
            def call(m=outcome.message):
                mail, smtp = email_outgoing(message=m)
                if "connection" not in session:
                    session["connection"] = email_connection(smtp, open_now=True)
                try:
                    return email_send(mail, connection=session["connection"])
                except Exception:
                    close()  # after an error the session may be broken: the next mail opens a new one
                    raise

            _send_sync(outcome, call)
    finally:
        close()


def _start_send(batch: Batch, ctx: _NumberCtx, now: datetime) -> InFlight:
    """Prepare a batch and put its WhatsApp sends on the wire (the future); SMS sends run inline."""
    from apps.providers.registry import async_whatsapp_sender

    done, wa, inline = _prepare(batch, ctx, now)
    sms = [o for o in inline if o.message.channel == "sms"]
    email = [o for o in inline if o.message.channel == "email"]
    flight = InFlight(batch=batch, outcomes=done + [o for o, _ in wa] + inline)
    if wa:
        sender = _SandboxSender() if ctx.simulated else async_whatsapp_sender()
        if ctx.simulated:
            flight.after.append(sender.deliver)
        flight.future = _loop.submit(_send_paced(wa, pacer=ctx.pacer, sender=sender,
                                                 number_meta_id=ctx.number.meta_phone_number_id, token=ctx.token))
    _send_sms(sms, simulated=ctx.simulated)
    _send_email(email)
    return flight
