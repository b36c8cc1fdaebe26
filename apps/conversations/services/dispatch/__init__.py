"""The dispatcher: the Message row is the queue.

- Claim: compare-and-set queued -> sending with a lease (`claimed_until`) and a claim token; on PostgreSQL
  the candidates are picked with SELECT ... FOR UPDATE SKIP LOCKED in a short transaction, so concurrent
  drainers never claim the same row. A killed worker's claims come back after the lease (sweeper).
- Pace: per sender number a Redis one-second ledger at PhoneNumber.throughput_mps with a small burst bucket
  (NumberPacer), shared by every worker (one Lua script, Redis' own clock), plus a per-recipient pair
  bucket (Meta's 1 msg / 6 s with bursts).
- Fair: a batch takes an equal share from every campaign (and from the API traffic) due on the number.
- Prepare: the template rule is asked again (message_templates.selectors.template_send_refusal, on the
  status the claim read with the row): a template paused or disabled since queueing fails its messages
  with TEMPLATE_NOT_APPROVED and no provider call.
- Send: outside any transaction, one paced loop on one event loop per process; live numbers through
  AsyncGraphSender (aiohttp, concurrent), simulated numbers through the in-process SandboxProvider (same
  loop), SMS via the gateway.
- Record: one short transaction per batch; an attempt row per call; events for every status change.
  Retryable errors go back to queued with `next_attempt_at` (Retry-After, else exponential with ±20%
  jitter); past `expires_at` the message fails as MESSAGE_EXPIRED; terminal errors fail it with the mapped
  code and trigger `fallback.sms` when the recipient is not on WhatsApp.
The claim/send/record steps are pipelined: the next batch is claimed and the last one recorded while
the current one is on the wire, so the number's pace never waits for the database.

The package by concern: pacing (NumberPacer, pair limit), claim, prepare (payloads, the template re-check),
send (the one paced send loop), recording, fallback (the SMS fallback's one call site), kicks (the
doorbell), drain (the loop and its fan-out) and sweep. Status moves are apps.conversations.services.
transitions; process machinery is apps.core.runtime.
"""

from apps.conversations.services.dispatch.base import Batch, Outcome, _setting
from apps.conversations.services.dispatch.claim import _CLAIM_FIELDS, messages_claim
from apps.conversations.services.dispatch.drain import _FanOut, dispatch_drain
from apps.conversations.services.dispatch.fallback import fallback_sms_create
from apps.conversations.services.dispatch.kicks import (
    _background_kicks,
    _hold_kick,
    _kick_key,
    _release_kick,
    dispatch_kick,
    dispatch_kicks_wait,
)
from apps.conversations.services.dispatch.pacing import NumberPacer, pair_waits
from apps.conversations.services.dispatch.recording import _backoff, outcomes_record
from apps.conversations.services.dispatch.sweep import dispatch_sweep, leases_recover, messages_expire

__all__ = [
    "Batch", "NumberPacer", "Outcome", "_CLAIM_FIELDS", "_FanOut", "_background_kicks", "_backoff", "_hold_kick",
    "_kick_key", "_release_kick", "_setting", "dispatch_drain", "dispatch_kick", "dispatch_kicks_wait",
    "dispatch_sweep", "fallback_sms_create", "leases_recover", "messages_claim", "messages_expire",
    "outcomes_record", "pair_waits",
]
