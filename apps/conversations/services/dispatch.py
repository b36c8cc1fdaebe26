"""The dispatcher: the Message row is the queue.

- Claim: compare-and-set queued -> sending with a lease (`claimed_until`) and a claim token; on PostgreSQL
  the candidates are picked with SELECT ... FOR UPDATE SKIP LOCKED in a short transaction, so concurrent
  drainers never claim the same row. A killed worker's claims come back after the lease (sweeper).
- Pace: per sender number a Redis one-second ledger at PhoneNumber.throughput_mps with a small burst bucket
  (NumberPacer), shared by every worker (one Lua script, Redis' own clock), plus a per-recipient pair
  bucket (Meta's 1 msg / 6 s with bursts).
- Fair: a batch takes an equal share from every campaign (and from the API traffic) due on the number.
- Send: outside any transaction; live numbers through AsyncGraphSender (aiohttp, concurrent) on one
  event loop per process, simulated numbers through the in-process SandboxProvider, SMS via the gateway.
- Record: one short transaction per batch; an attempt row per call; events for every status change.
  Retryable errors go back to queued with `next_attempt_at` (Retry-After, else exponential with ±20%
  jitter); past `expires_at` the message fails as MESSAGE_EXPIRED; terminal errors fail it with the mapped
  code and trigger `fallback.sms` when the recipient is not on WhatsApp.
The claim/send/record steps are pipelined: the next batch is claimed and the last one recorded while
the current one is on the wire, so the number's pace never waits for the database.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import math
import os
import random
import secrets
import threading
import time
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.core.redis import get_redis
from apps.core.services import event_append_many
from apps.wabas.models import PhoneNumber
from apps.wabas.services import waba_access_token

logger = logging.getLogger("reach.dispatch")


def _setting(name: str, default):
    return getattr(settings, name, default)


# --- Redis pacing --------------------------------------------------------------------------------------

# KEYS[1] the number's pace (burst tokens, their timestamp, the ledger's sum), KEYS[2] its ledger: a list of
# "granted_at_us:count", oldest first. ARGV burst rate (tokens/s), burst capacity, window (us), window limit,
# wanted, and optionally now (us; tests). Returns {granted, wait_us until the next
# `min(wanted - granted, capacity/4)` could be granted}. Time comes from Redis so every worker shares one clock.
_PACE_LUA = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
local now
if ARGV[6] then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'sum')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
local sum = tonumber(v[3])
if tokens == nil or ts == nil or sum == nil then
  tokens = cap
  ts = now
  sum = 0
  for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    sum = sum + tonumber(string.match(e, ':(%d+)$'))
  end
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate / 1000000)
end
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then
    sum = 0
    break
  end
  local at, n = string.match(head, '^(%d+):(%d+)$')
  if tonumber(at) + window > now then
    break
  end
  sum = sum - tonumber(n)
  redis.call('LPOP', KEYS[2])
end
local granted = math.min(want, math.floor(tokens), limit - sum)
if granted < 0 then granted = 0 end
if granted > 0 then
  tokens = tokens - granted
  sum = sum + granted
  redis.call('RPUSH', KEYS[2], string.format('%d:%d', now, granted))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', string.format('%d', now), 'sum', string.format('%d', sum))
local ttl = math.ceil(window / 1000) + 60000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local wait = 0
if granted < want then
  local need = math.min(want - granted, math.max(1, math.floor(cap / 4)))
  if tokens < need then
    wait = math.ceil((need - tokens) * 1000000 / rate)
  end
  local over = sum + need - limit
  if over > 0 then
    local freed = 0
    for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, 63)) do
      local at, n = string.match(e, '^(%d+):(%d+)$')
      freed = freed + tonumber(n)
      wait = math.max(wait, tonumber(at) + window - now)
      if freed >= over then break end
    end
  end
end
return {granted, wait}
"""

# KEYS = one pair bucket per recipient; ARGV rate, capacity. Returns a wait (ms) per key; 0 = take it.
_PAIR_LUA = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1])
  local ts = tonumber(v[2])
  if tokens == nil or ts == nil then tokens = cap; ts = now end
  if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate / 1000000) end
  if tokens >= 1 then
    tokens = tokens - 1
    out[i] = 0
  else
    out[i] = math.ceil((1 - tokens) * 1000 / rate)
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('EXPIRE', key, math.ceil(cap / rate) + 60)
end
return out
"""

# The burst bucket refills this much faster than the cap: a late drainer catches up within a few of its
# batches, and the ledger still holds every second to the cap.
_CATCH_UP = 1.25

_scripts: dict[str, object] = {}


def _script(name: str, source: str):
    client = get_redis()
    cached = _scripts.get(name)
    if cached is None or cached[0] is not client:
        cached = _scripts[name] = (client, client.register_script(source))
    return cached[1]


@dataclass
class NumberPacer:
    """A sender number's pace, shared by every worker through Redis.

    A one-second ledger lets at most `window_limit` sends into any `window_seconds` (the cap less a margin
    for the jitter between a grant and its request: 1% covers ~10 ms at 1,000 mps), and a small burst
    bucket refilling faster than the cap keeps the sends spread out. A drainer that wakes late
    takes the sends it missed while the ledger still has room; a plain token bucket small enough to keep
    every second under the cap would have dropped them (and with them 2-6% of the number's throughput).
    """

    key: str
    window_limit: int
    window_seconds: float
    burst: int
    burst_rate: float

    @property
    def rate(self) -> float:
        """What the ledger admits on average, sends/s."""
        return self.window_limit / self.window_seconds

    @classmethod
    def for_number(cls, number: PhoneNumber) -> NumberPacer:
        cap = max(0.1, float(number.throughput_mps) * float(_setting("DISPATCH_RATE_FACTOR", 1.0)))
        usable = cap * (1.0 - float(_setting("DISPATCH_PACE_MARGIN", 0.01)))
        # Below one send a second the window stretches so that it still admits a whole send.
        window = max(1.0, 1.0 / usable)
        limit = max(1, math.floor(usable * window))
        burst = max(1, math.floor(cap * float(_setting("DISPATCH_BUCKET_BURST_SECONDS", 0.01))))
        return cls(key=f"reach:pace:{{{number.pk}}}", window_limit=limit, window_seconds=window, burst=burst,
                   burst_rate=cap * _CATCH_UP)

    def take(self, want: int, *, now_us: int | None = None) -> tuple[int, float]:
        """Returns (granted, seconds to wait before asking again). `now_us` replaces Redis' clock (tests)."""
        args = [self.burst_rate, self.burst, int(self.window_seconds * 1_000_000), self.window_limit, want]
        if now_us is not None:
            args.append(int(now_us))
        granted, wait_us = _script("pace", _PACE_LUA)(keys=[self.key, f"{self.key}:ledger"], args=args)
        return int(granted), int(wait_us) / 1_000_000

    def take_blocking(self, want: int = 1) -> None:
        while want > 0:
            granted, wait = self.take(want)
            want -= granted
            if want > 0:
                time.sleep(max(wait, 0.0005))


def pair_waits(*, phone_number_id: str, recipients: list[str]) -> list[float]:
    """Seconds each recipient must wait on this number's pair limit (0 = may send now; the token is taken)."""
    if not recipients:
        return []
    interval = float(_setting("DISPATCH_PAIR_INTERVAL_SECONDS", 6.0))
    burst = float(_setting("DISPATCH_PAIR_BURST", 20))
    keys = [f"reach:pair:{phone_number_id}:{r}" for r in recipients]
    waits = _script("pair", _PAIR_LUA)(keys=keys, args=[1.0 / interval, burst])
    return [int(w) / 1000 for w in waits]


# --- one event loop per process for the concurrent HTTP client -----------------------------------------


class _LoopThread:
    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def submit(cls, coro) -> Future:
        with cls._lock:
            if cls._loop is None or not cls._loop.is_running():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run():
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="reach-dispatch-loop", daemon=True).start()
                ready.wait(5)
                cls._loop = loop
                atexit.register(cls._close_sender, loop)
        return asyncio.run_coroutine_threadsafe(coro, cls._loop)

    @staticmethod
    def _close_sender(loop: asyncio.AbstractEventLoop) -> None:
        """At exit, close the sender's pooled connections on their loop (else aiohttp reports them unclosed)."""
        from apps.providers.registry import async_whatsapp_sender

        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(async_whatsapp_sender().aclose(), loop).result(timeout=2)


# --- claim ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    message: Message
    kind: str  # accepted | retryable | terminal | deferred
    provider_message_id: str = ""
    error: object | None = None  # ProviderError-like: code, message, upstream_code, retry_after, http_status
    defer_seconds: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    latency_ms: int | None = None


@dataclass
class Batch:
    token: str
    messages: list[Message] = field(default_factory=list)


def _lease() -> timedelta:
    return timedelta(seconds=_setting("DISPATCH_LEASE_SECONDS", 60))


# Everything the send/record steps read; anything else stays in the database (faster claims).
_CLAIM_FIELDS = ("id", "workspace_id", "conversation_id", "contact_id", "phone_number_id", "channel", "type",
                 "to_phone", "content", "media_id", "attempts", "expires_at", "client_reference", "campaign_id",
                 "fallback", "status", "claim_token", "sent_by", "api_key_id", "currency")


def messages_claim(*, phone_number_id: str, limit: int, now: datetime | None = None) -> Batch:
    """Claim up to `limit` due messages of one number, an equal share per campaign (API traffic counts
    as one), interleaved so no campaign starves another on the same number."""
    now = now or timezone.now()
    token = secrets.token_hex(8)
    due = Message.objects.filter(phone_number_id=phone_number_id, status=Message.Status.QUEUED,
                                 next_attempt_at__lte=now)
    groups = list(due.order_by().values_list("campaign_id", flat=True).distinct()[:50])
    if not groups:
        return Batch(token=token)
    share = max(1, math.ceil(limit / len(groups)))
    if connection.vendor == "postgresql":
        return _claim_pg(phone_number_id=phone_number_id, groups=groups, share=share, now=now, token=token)
    per_group: list[list[str]] = []
    with transaction.atomic():
        for campaign_id in groups:
            qs = due.filter(campaign_id=campaign_id).order_by("next_attempt_at", "id")
            if connection.vendor == "postgresql":
                qs = qs.select_for_update(skip_locked=True)
            per_group.append(list(qs.values_list("id", flat=True)[:share]))
        ids = [i for group in per_group for i in group]
        if ids:
            Message.objects.filter(id__in=ids, status=Message.Status.QUEUED).update(
                status=Message.Status.SENDING, claimed_until=now + _lease(), claim_token=token, updated_at=now)
    if not ids:
        return Batch(token=token)
    rows = {m.pk: m for m in Message.objects.filter(id__in=ids, claim_token=token, status=Message.Status.SENDING)
            .only(*_CLAIM_FIELDS)}
    ordered: list[Message] = []
    for i in range(max(len(g) for g in per_group)):  # round robin across campaigns
        for group in per_group:
            if i < len(group) and group[i] in rows:
                ordered.append(rows[group[i]])
    return Batch(token=token, messages=ordered)


_CLAIM_SQL = (
    "UPDATE {table} SET status = 'sending', claimed_until = %s, claim_token = %s, updated_at = %s "
    "WHERE id IN (SELECT id FROM {table} WHERE phone_number_id = %s AND status = 'queued' AND campaign_id = %s "
    "AND next_attempt_at <= %s ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
    "RETURNING {columns}"
)


def _claim_pg(*, phone_number_id: str, groups: list[str], share: int, now: datetime, token: str) -> Batch:
    """One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING per campaign: the claim is a
    single atomic statement, concurrent drainers skip each other's rows."""
    by_attname = {f.attname: f for f in Message._meta.concrete_fields}
    columns = ", ".join(by_attname[name].column for name in _CLAIM_FIELDS)
    sql = _CLAIM_SQL.format(table=Message._meta.db_table, columns=columns)
    per_group = []
    for campaign_id in groups:
        rows = list(Message.objects.raw(sql, [now + _lease(), token, now, phone_number_id, campaign_id, now, share]))
        rows.sort(key=lambda m: (m.pk,))
        per_group.append(rows)
    ordered: list[Message] = []
    for i in range(max((len(g) for g in per_group), default=0)):
        for group in per_group:
            if i < len(group):
                ordered.append(group[i])
    return Batch(token=token, messages=ordered)


# --- prepare payloads ---------------------------------------------------------------------------------


class _Terminal(Exception):
    def __init__(self, code: str, message: str, upstream_code=None, retryable=False, retry_after=None):
        super().__init__(message)
        self.code, self.message, self.upstream_code = code, message, upstream_code
        self.retryable, self.retry_after, self.http_status, self.not_on_whatsapp = retryable, retry_after, None, False


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
    from apps.providers.meta_cloud.payloads import build_send_payload

    content = _meta_content(message, number)
    try:
        return build_send_payload(to=message.to_phone, message_type=message.type, content=content)
    except (ValueError, KeyError, TypeError) as exc:
        raise _Terminal("INVALID_REQUEST", f"Cannot build the request: {exc}")


# --- send ------------------------------------------------------------------------------------------


def _now() -> datetime:
    return timezone.now()


async def _send_live_async(items: list[tuple[Outcome, dict]], *, pacer: NumberPacer, number_meta_id: str,
                           token: str) -> None:
    from apps.providers.base import ProviderError
    from apps.providers.registry import async_whatsapp_sender

    sender = async_whatsapp_sender()

    async def one(outcome: Outcome, payload: dict) -> None:
        outcome.started_at = _now()
        t0 = time.perf_counter()
        try:
            result = await sender.send_message(phone_number_id=number_meta_id, access_token=token, payload=payload)
            outcome.kind, outcome.provider_message_id = "accepted", result.provider_message_id
        except ProviderError as exc:
            outcome.kind, outcome.error = ("retryable" if exc.retryable else "terminal"), exc
        except Exception as exc:  # a bug or an unmapped failure: retry, never lose the message
            logger.exception("send failed unexpectedly")
            outcome.kind = "retryable"
            outcome.error = _Terminal("DISPATCH_ERROR", f"{type(exc).__name__}: {exc}", retryable=True)
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
    from apps.providers.base import ProviderError

    outcome.started_at = _now()
    t0 = time.perf_counter()
    try:
        outcome.provider_message_id = call().provider_message_id
        outcome.kind = "accepted"
    except ProviderError as exc:
        outcome.kind, outcome.error = ("retryable" if exc.retryable else "terminal"), exc
    except Exception as exc:
        logger.exception("send failed unexpectedly")
        outcome.kind = "retryable"
        outcome.error = _Terminal("DISPATCH_ERROR", f"{type(exc).__name__}: {exc}", retryable=True)
    outcome.finished_at = _now()
    outcome.latency_ms = int((time.perf_counter() - t0) * 1000)


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


def _prepare(batch: Batch, ctx: _NumberCtx, now: datetime) -> tuple[list[Outcome], list, list]:
    """Split a claimed batch into: finished already (expired/unbuildable/deferred), WhatsApp sends, SMS sends."""
    done: list[Outcome] = []
    wa: list[tuple[Outcome, dict]] = []
    sms: list[Outcome] = []
    candidates = []
    for message in batch.messages:
        outcome = Outcome(message=message, kind="")
        if message.expires_at and message.expires_at <= now:
            outcome.kind = "terminal"
            outcome.error = _Terminal("MESSAGE_EXPIRED", "The message could not be sent before it expired.")
            done.append(outcome)
        elif message.channel == Message.Channel.SMS:
            sms.append(outcome)
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


def _send_sms(outcomes: list[Outcome]) -> None:
    if not outcomes:
        return
    from apps.providers.sms import get_sms_gateway

    gateway = get_sms_gateway()
    for outcome in outcomes:
        m = outcome.message
        _send_sync(outcome, lambda m=m: gateway.send_sms(to=m.to_phone, text=m.content.get("body", m.body),
                                                          sender=m.content.get("sender") or ""))


def _send_simulated(items: list[tuple[Outcome, dict]], ctx: _NumberCtx) -> None:
    from apps.providers.registry import whatsapp_provider

    provider = whatsapp_provider(simulated=True)
    for outcome, payload in items:
        ctx.pacer.take_blocking(1)
        _send_sync(outcome, lambda p=payload: provider.send_message(
            phone_number_id=ctx.number.meta_phone_number_id, access_token=ctx.token, payload=p))


# --- record --------------------------------------------------------------------------------------------


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after:
        return float(retry_after)
    base = float(_setting("DISPATCH_BACKOFF_BASE_SECONDS", 2.0))
    cap = float(_setting("DISPATCH_BACKOFF_MAX_SECONDS", 900.0))
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * random.uniform(0.8, 1.2)


def _status_events(message: Message, status: str, previous: str, extra: dict | None = None) -> list:
    data = {"message_id": message.pk, "status": status, "previous_status": previous, "to": message.to_phone,
            "conversation_id": message.conversation_id, "client_reference": message.client_reference,
            "campaign_id": message.campaign_id, **(extra or {})}
    return [("message.status_changed", data), (f"message.{status}", data)]


def _error_fields(err) -> dict:
    return {"code": getattr(err, "code", "DISPATCH_ERROR"), "message": getattr(err, "message", str(err))[:2000],
            "upstream_code": getattr(err, "upstream_code", None)}


# The batch travels as one JSON parameter: quoting one string is far cheaper client-side than hundreds of
# placeholders (psycopg's client-side binding walks every one).
_SENT_SQL = (
    "UPDATE {table} AS m SET status = 'sent', provider_message_id = v.wamid, sent_at = v.at, "
    "attempts = m.attempts + 1, claim_token = '', claimed_until = NULL, error_code = '', "
    "error_message = '', upstream_code = NULL, updated_at = %s "
    "FROM json_to_recordset(%s::json) AS v(id text, wamid text, at timestamptz) "
    "WHERE m.id = v.id AND m.status = 'sending' AND m.claim_token = %s RETURNING m.id"
)


def _mark_sent_bulk(accepted: list[Outcome], token: str, now: datetime) -> set[str]:
    """One UPDATE for the whole batch on PostgreSQL; CAS on (sending, claim token)."""
    if not accepted:
        return set()
    if connection.vendor == "postgresql":
        rows = json.dumps([{"id": o.message.pk, "wamid": o.provider_message_id,
                            "at": (o.finished_at or now).isoformat()} for o in accepted])
        sql = _SENT_SQL.format(table=Message._meta.db_table)  # table name from the model, values bound
        with connection.cursor() as cursor:
            cursor.execute(sql, [now, rows, token])
            return {row[0] for row in cursor.fetchall()}
    done = set()
    for o in accepted:
        n = Message.objects.filter(pk=o.message.pk, status=Message.Status.SENDING, claim_token=token).update(
            status=Message.Status.SENT, provider_message_id=o.provider_message_id, sent_at=o.finished_at or now,
            attempts=F("attempts") + 1, claim_token="", claimed_until=None, error_code="", error_message="",
            upstream_code=None, updated_at=now)
        if n:
            done.add(o.message.pk)
    return done


def outcomes_record(*, outcomes: list[Outcome], token: str, now: datetime | None = None) -> dict[str, int]:
    """Write a batch's results in one short transaction. Rows whose claim was lost (lease expired and
    re-claimed) are left alone: the CAS on the claim token refuses them."""
    now = now or timezone.now()
    counts: dict[str, int] = defaultdict(int)
    if not outcomes:
        return counts
    events: dict[str, list] = defaultdict(list)
    attempts: list[MessageAttempt] = []
    kicks: set[str] = set()
    with transaction.atomic():
        accepted = [o for o in outcomes if o.kind == "accepted"]
        sent_ids = _mark_sent_bulk(accepted, token, now)
        counts["sent"] += len(sent_ids)
        for o in accepted:
            m = o.message
            if m.pk in sent_ids:
                events[m.workspace_id] += _status_events(m, "sent", "queued",
                                                         {"provider_message_id": o.provider_message_id})
                attempts.append(_attempt(o, m.attempts + 1, MessageAttempt.Outcome.ACCEPTED))
        for o in outcomes:
            if o.kind not in ("deferred", "retryable", "terminal"):
                continue
            m = o.message
            cas = Message.objects.filter(pk=m.pk, status=Message.Status.SENDING, claim_token=token)
            if o.kind == "deferred":
                if cas.update(status=Message.Status.QUEUED, claim_token="", claimed_until=None,
                              next_attempt_at=now + timedelta(seconds=o.defer_seconds), updated_at=now):
                    counts["deferred"] += 1
                continue
            if o.kind not in ("retryable", "terminal"):
                continue
            err = o.error
            number = m.attempts + 1
            expired = m.expires_at is not None and m.expires_at <= now
            if o.kind == "retryable" and not expired:
                delay = _backoff(number, getattr(err, "retry_after", None))
                if delay >= 0 and (m.expires_at is None or now + timedelta(seconds=delay) < m.expires_at):
                    e = _error_fields(err)
                    if cas.update(status=Message.Status.QUEUED, claim_token="", claimed_until=None,
                                  next_attempt_at=now + timedelta(seconds=delay), attempts=F("attempts") + 1,
                                  error_code=e["code"], error_message=e["message"], upstream_code=e["upstream_code"],
                                  updated_at=now):
                        counts["retried"] += 1
                        attempts.append(_attempt(o, number, MessageAttempt.Outcome.RETRYABLE))
                    continue
                expired = True
            if expired and o.kind == "retryable":
                err = _Terminal("MESSAGE_EXPIRED", "Retries ran past the message's maximum age; last error: "
                                f"{getattr(err, 'code', '')} {getattr(err, 'message', '')}".strip(),
                                upstream_code=getattr(err, "upstream_code", None))
            e = _error_fields(err)
            called = o.started_at is not None
            if cas.update(status=Message.Status.FAILED, failed_at=now, claim_token="", claimed_until=None,
                          attempts=F("attempts") + (1 if called else 0), error_code=e["code"],
                          error_message=e["message"], upstream_code=e["upstream_code"], updated_at=now):
                counts["failed"] += 1
                events[m.workspace_id] += _status_events(m, "failed", "queued", {"error": e})
                if called:
                    attempts.append(_attempt(o, number, MessageAttempt.Outcome.TERMINAL))
                if getattr(err, "not_on_whatsapp", False) and (m.fallback or {}).get("sms"):
                    from apps.conversations.services.fallback import fallback_sms_create

                    fallback_sms_create(message=m, now=now, events=events[m.workspace_id])
        if attempts:
            _attempts_insert(attempts)
        for workspace_id, evts in events.items():
            from apps.core.models import Workspace

            event_append_many(workspace=Workspace(pk=workspace_id), events=evts)
        for pn in kicks:
            transaction.on_commit(lambda pn=pn: dispatch_kick(phone_number_id=pn))
    return counts


_ATTEMPT_COLS = ("message_id", "number", "outcome", "http_status", "error_code", "upstream_code", "error_message",
                 "latency_ms", "started_at", "finished_at")


def _attempts_insert(attempts: list[MessageAttempt]) -> None:
    """COPY on PostgreSQL (an attempt row per send at 1,000 mps); bulk_create elsewhere."""
    if connection.vendor != "postgresql":
        MessageAttempt.objects.bulk_create(attempts, ignore_conflicts=True)
        return
    table = MessageAttempt._meta.db_table
    sql = f"COPY {table} ({', '.join(_ATTEMPT_COLS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for a in attempts:
            copy.write_row([getattr(a, c) for c in _ATTEMPT_COLS])


def _attempt(o: Outcome, number: int, outcome: str) -> MessageAttempt:
    err = o.error
    return MessageAttempt(
        message_id=o.message.pk, number=number, outcome=outcome,
        http_status=getattr(err, "http_status", None) if err else 200,
        error_code=getattr(err, "code", "") if err else "", upstream_code=getattr(err, "upstream_code", None),
        error_message=(getattr(err, "message", "") or "")[:2000] if err else "", latency_ms=o.latency_ms,
        started_at=o.started_at or timezone.now(), finished_at=o.finished_at or timezone.now(),
    )


# --- the drain loop ------------------------------------------------------------------------------------


def _batch_size(ctx: _NumberCtx) -> int:
    seconds = float(_setting("DISPATCH_BATCH_SECONDS", 0.25))
    return int(min(_setting("DISPATCH_BATCH_MAX", 500), max(10, ctx.pacer.rate * seconds)))


def _start_send(batch: Batch, ctx: _NumberCtx, now: datetime):
    """Prepare and launch a batch; returns (outcomes, future or None). Sandbox/SMS sends run inline."""
    done, wa, sms = _prepare(batch, ctx, now)
    outcomes = done + [o for o, _ in wa] + sms
    future = None
    if wa:
        if ctx.simulated:
            _send_simulated(wa, ctx)
        else:
            future = _LoopThread.submit(_send_live_async(
                wa, pacer=ctx.pacer, number_meta_id=ctx.number.meta_phone_number_id, token=ctx.token))
    _send_sms(sms)
    return outcomes, future


def dispatch_drain(*, phone_number_id: str, budget_seconds: float | None = None) -> dict[str, int]:
    """Drain one number's due messages for up to `budget_seconds`, pipelined: claim N+1 and record N-1
    while batch N is on the wire. Safe to run in several workers at once (claims + shared pacer)."""
    ctx = _number_ctx(phone_number_id)
    totals: dict[str, int] = defaultdict(int)
    if ctx is None:
        return totals
    budget = budget_seconds if budget_seconds is not None else float(_setting("DISPATCH_DRAIN_SECONDS", 30))
    deadline = time.monotonic() + budget
    size = _batch_size(ctx)
    fan = _FanOut(phone_number_id=phone_number_id, rate=ctx.pacer.rate)
    try:
        _drain_loop(phone_number_id=phone_number_id, ctx=ctx, size=size, deadline=deadline, fan=fan,
                    totals=totals)
    finally:
        fan.leave()
    if time.monotonic() >= deadline and Message.objects.filter(
            phone_number_id=phone_number_id, status=Message.Status.QUEUED, next_attempt_at__lte=timezone.now()
    ).exists():
        _enqueue(phone_number_id)  # budget spent with work left: hand over to a fresh task
    return totals


def _drain_loop(*, phone_number_id: str, ctx: _NumberCtx, size: int, deadline: float, fan: _FanOut,
                totals: dict[str, int]) -> None:
    in_flight = None  # (batch, outcomes, future): on the wire while the next batch is claimed
    while True:
        current = messages_claim(phone_number_id=phone_number_id, limit=size) \
            if time.monotonic() < deadline else Batch(token="")
        if len(current.messages) >= size:
            fan.busy()  # a full batch means a backlog: bring more drainers if the rate needs them
        if not current.messages and in_flight is None:
            # Idle: let the next on-commit kick through, then look once more so none slips between.
            _release_kick(phone_number_id)
            if time.monotonic() < deadline:
                current = messages_claim(phone_number_id=phone_number_id, limit=size)
            if not current.messages:
                break
        launched = None
        if current.messages:
            _hold_kick(phone_number_id)
            outcomes, future = _start_send(current, ctx, timezone.now())
            launched = (current, outcomes, future)
        if in_flight is not None:
            _finish(in_flight, totals)
        in_flight = launched


class _FanOut:
    """Several drainers per busy number: one process tops out below a high cap (claim + record are CPU),
    so a drainer facing a backlog enqueues another drain task until ceil(rate / DISPATCH_DRAINER_MPS)
    (at most DISPATCH_DRAINERS_MAX) are alive. Live drainers are a Redis sorted set scored by lease
    expiry, so a killed one drops out by itself; the shared NumberPacer keeps the pace across them."""

    def __init__(self, *, phone_number_id: str, rate: float):
        self.pn = phone_number_id
        self.key = f"reach:dispatch:drainers:{phone_number_id}"
        self.me = secrets.token_hex(6)
        per = max(1.0, float(_setting("DISPATCH_DRAINER_MPS", 400)))
        self.target = max(1, min(int(_setting("DISPATCH_DRAINERS_MAX", 4)), math.ceil(rate / per)))
        self.joined = False

    def busy(self) -> None:
        if self.target <= 1:
            return
        try:
            r = get_redis()
            now_ms = int(time.time() * 1000)
            ttl = int(_setting("DISPATCH_KICK_TTL_MS", 2000)) * 5
            pipe = r.pipeline()
            pipe.zremrangebyscore(self.key, "-inf", now_ms)
            pipe.zadd(self.key, {self.me: now_ms + ttl})
            pipe.pexpire(self.key, ttl)
            pipe.zcard(self.key)
            alive = pipe.execute()[-1]
            self.joined = True
            # One spawn at a time (the new drainer registers on its first full batch).
            if alive < self.target and r.set(f"reach:dispatch:spawn:{self.pn}", "1", nx=True, px=1000):
                _enqueue(self.pn)
        except Exception:
            logger.warning("dispatch fan-out failed for %s", self.pn, exc_info=True)

    def leave(self) -> None:
        if not self.joined:
            return
        try:
            get_redis().zrem(self.key, self.me)
        except Exception:
            logger.warning("redis unavailable leaving the drainer set", exc_info=True)


def _finish(in_flight, totals) -> None:
    batch, outcomes, future = in_flight
    if future is not None:
        future.result()
    for key, value in outcomes_record(outcomes=outcomes, token=batch.token).items():
        totals[key] += value


# --- fast path and sweeper -------------------------------------------------------------------------------


def _kick_key(phone_number_id: str) -> str:
    return f"reach:dispatch:kick:{phone_number_id}"


def _hold_kick(phone_number_id: str) -> None:
    """While a drainer is busy, on-commit kicks are absorbed (no pile of drain tasks for one number); if
    the drainer dies the key lapses within DISPATCH_KICK_TTL_MS and the sweeper kicks a new one."""
    try:
        get_redis().set(_kick_key(phone_number_id), "1", px=int(_setting("DISPATCH_KICK_TTL_MS", 2000)))
    except Exception:
        logger.warning("redis unavailable holding the kick key", exc_info=True)


def _release_kick(phone_number_id: str) -> None:
    try:
        get_redis().delete(_kick_key(phone_number_id))
    except Exception:
        logger.warning("redis unavailable releasing the kick key", exc_info=True)


def _enqueue(phone_number_id: str) -> None:
    from apps.conversations.tasks.dispatch import dispatch_number

    dispatch_number.delay(phone_number_id)


def dispatch_kick(*, phone_number_id: str) -> None:
    """On-commit fast path: at most one pending drain task per number; the sweeper covers any loss."""
    try:
        if _setting("DISPATCH_KICK_BACKGROUND", False):
            _background_kicks.submit(phone_number_id)
            return
        _kick_now(phone_number_id)
    except Exception:  # broker or Redis down: the row is the queue, the sweeper will find it
        logger.warning("dispatch kick failed for %s", phone_number_id, exc_info=True)


def _kick_now(phone_number_id: str) -> None:
    try:
        if get_redis().set(_kick_key(phone_number_id), "1", nx=True, px=int(_setting("DISPATCH_KICK_TTL_MS", 2000))):
            _enqueue(phone_number_id)
    except Exception:  # broker or Redis down: the row is the queue, the sweeper will find it
        logger.warning("dispatch kick failed for %s", phone_number_id, exc_info=True)


class _BackgroundKicks:
    """Kicks handed to one thread per process, which sends each distinct number's SET NX once per round.

    A request that sends a message would otherwise wait on a Redis round trip after its commit, and under
    load most of those SET NX find the key already held. The rule that makes a kick safe still holds: the
    SET NX of a round runs after every commit whose kick it carries, so either it enqueues a drain or a
    drainer holds the key and looks once more after releasing it. A process that dies with kicks pending
    leaves them to the sweeper (DISPATCH_SWEEP_SECONDS), as a failed kick would."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending: set[str] = set()
        self._submitted = 0  # kicks submitted so far
        self._sent = 0  # kicks whose round has been sent
        self._thread: threading.Thread | None = None

    def submit(self, phone_number_id: str) -> None:
        with self._changed:
            self._pending.add(phone_number_id)
            self._submitted += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="dispatch-kicks", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending)
            linger = float(_setting("DISPATCH_KICK_LINGER_MS", 0)) / 1000
            if linger > 0:  # under load, the kicks of the next few ms share this round's SET NX
                time.sleep(linger)
            with self._changed:
                numbers, self._pending, upto = self._pending, set(), self._submitted
            for phone_number_id in sorted(numbers):
                _kick_now(phone_number_id)  # logs and leaves to the sweeper what fails
            with self._changed:
                self._sent = upto
                self._changed.notify_all()

    def wait_sent(self, timeout: float = 5.0) -> bool:
        """Block until every kick submitted before this call has been sent (tests, shutdown)."""
        with self._changed:
            target = self._submitted
            return self._changed.wait_for(lambda: self._sent >= target, timeout=timeout)


_background_kicks = _BackgroundKicks()
# A forked child (a Celery prefork worker) starts with no kick thread and a lock no other thread holds.
os.register_at_fork(after_in_child=_background_kicks.__init__)


def leases_recover(*, now: datetime | None = None) -> int:
    """Claims whose lease ran out (the worker died) go back to the queue, in one CAS update."""
    now = now or timezone.now()
    return Message.objects.filter(status=Message.Status.SENDING, claimed_until__lt=now).update(
        status=Message.Status.QUEUED, claim_token="", claimed_until=None, next_attempt_at=now, updated_at=now)


def messages_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Queued messages past their maximum age fail as MESSAGE_EXPIRED."""
    now = now or timezone.now()
    expired = 0
    with transaction.atomic():
        qs = Message.objects.filter(status=Message.Status.QUEUED, expires_at__lte=now).order_by("expires_at")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        events: dict[str, list] = defaultdict(list)
        err = {"code": "MESSAGE_EXPIRED", "message": "The message could not be sent before it expired.",
               "upstream_code": None}
        for m in qs[:limit]:
            if Message.objects.filter(pk=m.pk, status=Message.Status.QUEUED).update(
                    status=Message.Status.FAILED, failed_at=now, error_code=err["code"],
                    error_message=err["message"], updated_at=now):
                events[m.workspace_id] += _status_events(m, "failed", "queued", {"error": err})
                expired += 1
        for workspace_id, evts in events.items():
            from apps.core.models import Workspace

            event_append_many(workspace=Workspace(pk=workspace_id), events=evts)
    return expired


def dispatch_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Beat job: release scheduled messages, recover expired leases, expire stale ones, and enqueue a
    drain for every number with due work (what the on-commit fast path missed)."""
    from apps.conversations.services.sending import messages_release_scheduled

    now = now or timezone.now()
    out = {"released": messages_release_scheduled(now=now), "recovered": leases_recover(now=now),
           "expired": messages_expire(now=now)}
    numbers = list(Message.objects.filter(status=Message.Status.QUEUED, next_attempt_at__lte=now)
                   .order_by().values_list("phone_number_id", flat=True).distinct()[:1000])
    for pn in numbers:
        if pn:
            dispatch_kick(phone_number_id=pn)
    out["kicked"] = len(numbers)
    return out
