"""The dispatcher: claims and leases, retries with Retry-After / backoff with jitter, expiry, terminal
failures and the SMS fallback, fairness across campaigns, pair pacing, and the number's shared pacer."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.services import dispatch
from apps.conversations.services.sending import message_send_internal
from apps.core.models import Event
from apps.core.redis import get_redis
from apps.providers.base import ProviderError, SendResult
from apps.wabas.models import PhoneNumber
from tests.conversations.send_support import contact, live_number, redis_keys_clear

pytestmark = pytest.mark.django_db


class FakeSender:
    """Scripted AsyncGraphSender: `script[to]` is a list of results/errors consumed per call."""

    def __init__(self, script=None):
        self.script = script or {}
        self.calls: list[dict] = []
        self.n = 0

    async def send_message(self, *, phone_number_id, access_token, payload):
        self.calls.append(payload)
        self.n += 1
        queue = self.script.get(payload["to"])
        if queue:
            item = queue.pop(0)
            if isinstance(item, Exception):
                raise item
        return SendResult(provider_message_id=f"wamid.{self.n}", wa_id=payload["to"][1:], message_status=None)


@pytest.fixture(autouse=True)
def _clean_buckets():
    redis_keys_clear()


@pytest.fixture
def sender(monkeypatch):
    fake = FakeSender()
    monkeypatch.setattr("apps.providers.registry.async_whatsapp_sender", lambda: fake)
    return fake


@pytest.fixture
def number(workspace):
    return live_number(workspace, mps=1000)


def _queue(workspace, number, phone="+15557654321", n=1, body="hi", **extra):
    c = contact(workspace, phone)
    out = []
    for _ in range(n):
        m = message_send_internal(workspace=workspace, phone_number=number, contact=c, message_type="text",
                                  content={"body": body}, sent_by="api")
        if extra:
            Message.objects.filter(pk=m.pk).update(**extra)
        out.append(m)
    return out


def _err(code, upstream, retryable, retry_after=None, not_on_whatsapp=False):
    return ProviderError(code=code, message=code.lower(), upstream_code=upstream, retryable=retryable,
                         retry_after=retry_after, http_status=400, not_on_whatsapp=not_on_whatsapp)


def test_accepted_marks_sent_with_events_and_an_attempt_row(workspace, number, sender):
    [m] = _queue(workspace, number)
    totals = dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    assert totals["sent"] == 1
    m.refresh_from_db()
    assert (m.status, m.provider_message_id, m.attempts, m.claim_token, m.claimed_until) == (
        "sent", "wamid.1", 1, "", None)
    assert sender.calls[0]["to"] == "+15557654321" and sender.calls[0]["text"] == {"body": "hi"}
    a = MessageAttempt.objects.get(message=m)
    assert (a.number, a.outcome, a.error_code) == (1, "accepted", "")
    types = list(Event.objects.filter(data__message_id=m.pk).order_by("sequence").values_list("type", "data__status"))
    assert types == [("message.status_changed", "queued"), ("message.status_changed", "sent"),
                     ("message.sent", "sent")]


def test_retryable_honours_retry_after(workspace, number, sender):
    [m] = _queue(workspace, number)
    sender.script["+15557654321"] = [_err("UPSTREAM_RATE_LIMITED", 130429, True, retry_after=7.0)]
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    assert (m.status, m.attempts, m.error_code, m.upstream_code) == ("queued", 1, "UPSTREAM_RATE_LIMITED", 130429)
    assert m.next_attempt_at == now + timedelta(seconds=7)
    assert MessageAttempt.objects.get(message=m).outcome == "retryable"
    assert not Event.objects.filter(type="message.failed").exists()
    # not due yet: a drain leaves it alone; once due it goes out exactly once
    with time_machine.travel(now + timedelta(seconds=6), tick=False):
        assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5).get("sent", 0) == 0
    with time_machine.travel(now + timedelta(seconds=7, milliseconds=1), tick=False):
        assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)["sent"] == 1
    m.refresh_from_db()
    assert (m.status, m.attempts, m.error_code) == ("sent", 2, "")
    assert list(MessageAttempt.objects.filter(message=m).order_by("number").values_list("outcome", flat=True)) == [
        "retryable", "accepted"]


@pytest.mark.parametrize("attempts", [0, 1, 3])
def test_backoff_is_exponential_with_jitter(workspace, number, sender, settings, attempts):
    settings.DISPATCH_BACKOFF_BASE_SECONDS = 2.0
    [m] = _queue(workspace, number, attempts=attempts)
    sender.script["+15557654321"] = [_err("UPSTREAM_UNAVAILABLE", 131000, True)]
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    expected = 2.0 * 2 ** attempts
    delay = (m.next_attempt_at - now).total_seconds()
    assert 0.8 * expected <= delay <= 1.2 * expected
    assert m.attempts == attempts + 1


def test_backoff_jitter_spreads():
    delays = {round(dispatch._backoff(3, None), 3) for _ in range(50)}
    assert len(delays) > 10 and min(delays) >= 6.4 and max(delays) <= 9.6


def test_terminal_error_fails_with_mapped_code(workspace, number, sender):
    [m] = _queue(workspace, number)
    sender.script["+15557654321"] = [_err("INVALID_REQUEST", 100, False)]
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    assert (m.status, m.error_code, m.upstream_code, m.attempts) == ("failed", "INVALID_REQUEST", 100, 1)
    assert m.failed_at is not None and m.fallback_message_id is None
    failed = Event.objects.get(type="message.failed")
    assert failed.data["error"] == {"code": "INVALID_REQUEST", "message": "invalid_request", "upstream_code": 100,
                                    "reason": "invalid_request", "description": "Meta rejected the request as malformed.",
                                    "action": "Check the message fields against the error details; this is a bug "
                                              "if Reach validated it."}
    assert len(sender.calls) == 1


def test_queued_past_max_age_fails_expired_without_a_call(workspace, number, sender):
    [m] = _queue(workspace, number)
    Message.objects.filter(pk=m.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    assert (m.status, m.error_code, m.attempts) == ("failed", "MESSAGE_EXPIRED", 0)
    assert sender.calls == [] and not MessageAttempt.objects.exists()


def test_retry_that_would_land_past_max_age_fails_expired(workspace, number, sender):
    [m] = _queue(workspace, number)
    Message.objects.filter(pk=m.pk).update(expires_at=timezone.now() + timedelta(seconds=3))
    sender.script["+15557654321"] = [_err("UPSTREAM_RATE_LIMITED", 130429, True, retry_after=10)]
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    assert (m.status, m.error_code, m.upstream_code) == ("failed", "MESSAGE_EXPIRED", 130429)


def test_sweeper_expires_stale_queued_messages(workspace, number):
    [m] = _queue(workspace, number)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        out = dispatch.dispatch_sweep()
    m.refresh_from_db()
    assert out["expired"] == 1 and (m.status, m.error_code) == ("failed", "MESSAGE_EXPIRED")


def test_not_on_whatsapp_sends_the_sms_fallback_and_links_it(workspace, number, sender, monkeypatch):
    sent_sms = []

    class Gateway:
        def send_sms(self, *, to, text, sender):
            sent_sms.append((to, text, sender))
            return type("R", (), {"provider_message_id": "sms-1"})()

    monkeypatch.setattr("apps.providers.sms.get_sms_gateway", lambda **kw: Gateway(), raising=False)
    [m] = _queue(workspace, number, fallback={"sms": {"text": "Your code is 1234", "sender": "Acme"}})
    sender.script["+15557654321"] = [_err("RECIPIENT_NOT_ON_WHATSAPP", 131026, False, not_on_whatsapp=True)]
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    assert (m.status, m.error_code) == ("failed", "RECIPIENT_NOT_ON_WHATSAPP")
    sms = m.fallback_message
    assert (sms.channel, sms.status, sms.provider_message_id, sms.body) == ("sms", "sent", "sms-1",
                                                                            "Your code is 1234")
    assert sent_sms == [("+15557654321", "Your code is 1234", "Acme")]
    assert len(sender.calls) == 1  # the SMS did not go through WhatsApp


def test_any_terminal_failure_sends_the_fallback_once(workspace, number, sender):
    """fallback.after = failed means any terminal WhatsApp failure (issue 21), not only not-on-WhatsApp."""
    [m] = _queue(workspace, number, fallback={"sms": {"text": "x"}})
    sender.script["+15557654321"] = [_err("INVALID_REQUEST", 100, False)]
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    [sms] = Message.objects.filter(channel="sms")
    assert (m.status, m.fallback_message_id, sms.fallback_for_id) == ("failed", sms.pk, m.pk)


def test_claims_never_overlap_and_lost_leases_come_back_once(workspace, number, sender):
    msgs = _queue(workspace, number, n=6)
    a = dispatch.messages_claim(phone_number_id=number.pk, limit=4)
    b = dispatch.messages_claim(phone_number_id=number.pk, limit=4)
    assert len(a.messages) == 4 and len(b.messages) == 2
    assert not {m.pk for m in a.messages} & {m.pk for m in b.messages}
    assert dispatch.messages_claim(phone_number_id=number.pk, limit=4).messages == []
    done = [dispatch.Outcome(message=m, kind="accepted", provider_message_id=f"wamid.b{i}")
            for i, m in enumerate(b.messages)]
    assert dispatch.outcomes_record(outcomes=done, token=b.token)["sent"] == 2  # worker B finishes
    # worker A dies holding its claims: nothing happens before the lease ends, nor during the reconciliation
    # window after it (A may have sent them; a status webhook would say so), then the sweeper frees them
    assert dispatch.leases_recover() == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert dispatch.leases_recover() == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=61 + settings.DISPATCH_RECONCILE_SECONDS)):
        assert dispatch.leases_recover() == 4
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    # A wakes up late and tries to record: its claim token no longer matches, nothing is overwritten
    late = [dispatch.Outcome(message=m, kind="accepted", provider_message_id="wamid.late") for m in a.messages]
    assert dispatch.outcomes_record(outcomes=late, token=a.token).get("sent", 0) == 0
    statuses = dict(Message.objects.filter(pk__in=[m.pk for m in msgs]).values_list("pk", "status"))
    assert sorted(statuses.values()) == ["sent"] * 6
    assert not Message.objects.filter(provider_message_id="wamid.late").exists()
    assert len(sender.calls) == 4  # A's four went out once, after the lease
    assert MessageAttempt.objects.count() == 6


def test_fair_share_across_campaigns_on_one_number(workspace, number):
    big = _queue(workspace, number, phone="+15550000001", n=30)
    small = _queue(workspace, number, phone="+15550000002", n=4)
    Message.objects.filter(pk__in=[m.pk for m in big]).update(campaign_id="cmp_big")
    Message.objects.filter(pk__in=[m.pk for m in small]).update(campaign_id="cmp_small")
    api = _queue(workspace, number, phone="+15550000003", n=2)
    batch = dispatch.messages_claim(phone_number_id=number.pk, limit=12)
    by = [m.campaign_id for m in batch.messages]
    assert by.count("cmp_small") == 4 and by.count("") == 2 and by.count("cmp_big") == 4
    assert set(by[:3]) == {"cmp_big", "cmp_small", ""}  # interleaved, not one campaign first
    assert len(api) == 2


def test_pair_pacing_defers_a_burst_to_one_recipient(workspace, number, sender, settings):
    settings.DISPATCH_PAIR_BURST = 2
    msgs = _queue(workspace, number, n=3)
    totals = dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    assert totals["sent"] == 2 and totals["deferred"] == 1
    deferred = Message.objects.get(pk__in=[m.pk for m in msgs], status="queued")
    assert deferred.next_attempt_at > timezone.now() + timedelta(seconds=4)
    assert deferred.attempts == 0 and len(sender.calls) == 2


def _pacer(mps: float, settings, **overrides) -> dispatch.NumberPacer:
    for name, value in overrides.items():
        setattr(settings, name, value)
    return dispatch.NumberPacer.for_number(PhoneNumber(pk="pn_pacer_test", throughput_mps=mps))


def _max_in_window(grants: list[tuple[int, int]], window_us: int) -> int:
    """The most sends granted in any `window_us` (grants: (at_us, count), in time order)."""
    best, total, start = 0, 0, 0
    for at, count in grants:
        total += count
        while grants[start][0] <= at - window_us:
            total -= grants[start][1]
            start += 1
        best = max(best, total)
    return best


T0 = 1_700_000_000_000_000  # a fixed clock for the pacer (microseconds)


def test_pacer_sizes_follow_the_numbers_throughput(settings):
    fast = _pacer(1000, settings)
    assert (fast.window_limit, fast.window_seconds, fast.burst, fast.burst_rate) == (990, 1.0, 10, 1250.0)
    assert fast.rate == 990.0
    slow = _pacer(1, settings, DISPATCH_RATE_FACTOR=0.5)  # half a send a second: one per 2.02 s
    assert slow.window_limit == 1 and slow.window_seconds == pytest.approx(1 / 0.495)
    assert slow.burst == 1


def test_pacer_never_admits_more_than_the_limit_in_any_second_and_loses_nothing_to_late_drainers(settings):
    pacer = _pacer(1000, settings)
    rng = random.Random(7)
    grants, now = [], T0
    while now < T0 + 10_000_000:
        granted, wait = pacer.take(rng.choice([1, 5, 10, 200]), now_us=now)
        if granted:
            grants.append((now, granted))
        step = max(int(wait * 1e6), 500)
        now += step
        if rng.random() < 2 * step / 1e6:  # twice a second the drainer wakes 10-80 ms late (GIL, a busy box)
            now += rng.randint(10_000, 80_000)
    assert _max_in_window(grants, 1_000_000) == 990
    assert max(n for _, n in grants) <= 10  # never more than a burst at once
    # A plain bucket of 10 refilling at 990/s drops every late wake-up's tokens beyond the 10 (about 8%
    # of the time here is spent late); the ledger keeps them for the rest of the second.
    assert sum(n for _, n in grants) >= 0.97 * 990 * 10


def test_pacer_wait_points_at_the_moment_the_ledger_has_room(settings):
    pacer = _pacer(100, settings, DISPATCH_BUCKET_BURST_SECONDS=0.05)  # 99 a second, bursts of 5 at 125/s
    now, total = T0, 0
    while True:
        granted, wait = pacer.take(5, now_us=now)
        total += granted
        if total == 99:
            break
        now += max(int(wait * 1e6), 1)
    assert now < T0 + 800_000  # 5 at once, then 125/s
    now += 8_000  # the bucket has a token again; the ledger has none
    granted, wait = pacer.take(5, now_us=now)
    assert granted == 0 and T0 + 1_000_000 - now - 1000 <= wait * 1e6 <= T0 + 1_000_000 - now + 40_000
    assert pacer.take(5, now_us=T0 + 1_000_000 + 40_000)[0] == 5  # the first grants left the window


def test_pacer_rebuilds_a_lost_sum_from_its_ledger(settings):
    pacer = _pacer(100, settings, DISPATCH_BUCKET_BURST_SECONDS=0.05)  # 99 a second, 5 every 40 ms
    now, total = T0, 0
    for _ in range(24):
        granted, _wait = pacer.take(5, now_us=now)
        total += granted
        now += 40_000
    assert total == 99
    get_redis().delete(pacer.key)  # the hash expired or was evicted; the ledger list survived
    assert pacer.take(5, now_us=now)[0] == 0  # still 99 sends in the last second: nothing more


def test_pacer_is_shared_by_two_workers(settings):
    pacer = _pacer(200, settings, DISPATCH_BUCKET_BURST_SECONDS=0.1)  # 198 a second, bursts of 20 at 250/s
    taken = [0, 0]
    stop = time.monotonic() + 0.9  # inside one window, so the ledger's limit is the exact bound

    def worker(i):
        mine = dispatch.NumberPacer.for_number(PhoneNumber(pk="pn_pacer_test", throughput_mps=200))
        assert mine.key == pacer.key
        while time.monotonic() < stop:
            granted, wait = mine.take(5)
            taken[i] += granted
            if granted < 5:
                time.sleep(min(wait, 0.005))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken[0] > 0 and taken[1] > 0
    assert sum(taken) == 198  # the bucket would give 245 by 0.9 s; the ledger holds the second to 198


def test_drain_paces_to_the_numbers_throughput(workspace, sender, settings):
    settings.DISPATCH_PAIR_BURST = 1000  # pair pacing is not under test here
    number = live_number(workspace, mps=50)
    _queue(workspace, number, n=60)
    t0 = time.monotonic()
    totals = dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=10)
    elapsed = time.monotonic() - t0
    assert totals["sent"] == 60
    assert elapsed >= 1.0  # 49 in the first second (50 less the 1% margin); the 50th waits for the window
    started = sorted(MessageAttempt.objects.filter(message__phone_number=number).values_list("started_at",
                                                                                               flat=True))
    assert (started[49] - started[0]).total_seconds() >= 0.9  # a burst bucket alone: 49 / 62.5 = 0.78 s


def test_sweeper_kicks_numbers_with_due_work(workspace, number, monkeypatch):
    kicked = []
    monkeypatch.setattr(dispatch.kicks, "_enqueue", kicked.append)
    _queue(workspace, number, n=2)
    get_redis().delete(dispatch._kick_key(number.pk))
    out = dispatch.dispatch_sweep()
    assert dispatch.dispatch_kicks_wait()
    assert out["kicked"] == 1 and kicked == [number.pk]
    dispatch.dispatch_sweep()  # the kick key dedupes a second enqueue while one is pending
    assert dispatch.dispatch_kicks_wait()
    assert kicked == [number.pk]


def test_a_busy_drainer_absorbs_kicks_and_releases_them_when_idle(workspace, number, sender, monkeypatch):
    kicked = []
    monkeypatch.setattr(dispatch.kicks, "_enqueue", kicked.append)
    _queue(workspace, number, n=3)
    get_redis().delete(dispatch._kick_key(number.pk))
    dispatch._hold_kick(number.pk)  # as a drainer does each batch
    dispatch.dispatch_kick(phone_number_id=number.pk)
    assert dispatch.dispatch_kicks_wait()
    assert kicked == []
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    assert not get_redis().exists(dispatch._kick_key(number.pk))  # idle: the next commit kicks again
    dispatch.dispatch_kick(phone_number_id=number.pk)
    assert dispatch.dispatch_kicks_wait()
    assert kicked == [number.pk]


def test_sent_at_is_when_the_provider_answered(workspace, number, monkeypatch):
    import asyncio

    class SlowSender(FakeSender):
        async def send_message(self, **kw):
            self.asked_at = timezone.now()
            await asyncio.sleep(0.3)
            return await super().send_message(**kw)

    slow = SlowSender()
    monkeypatch.setattr("apps.providers.registry.async_whatsapp_sender", lambda: slow)
    [m] = _queue(workspace, number)
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    m.refresh_from_db()
    a = MessageAttempt.objects.get(message=m)
    assert m.sent_at == a.finished_at
    assert m.sent_at - slow.asked_at >= timedelta(seconds=0.3)


def test_enqueue_bulk_honours_a_rows_expires_at_within_the_maximum_age(workspace, number):
    from apps.conversations.services.sending import messages_enqueue_bulk
    from tests.conversations.send_support import template

    tpl = template(workspace, number.waba)
    now = timezone.now()
    soon = now + timedelta(hours=1)
    far = now + timedelta(days=30)
    rows = [{"contact": contact(workspace, "+15557650001"), "variables": ["a", "b"], "expires_at": soon},
            {"contact": contact(workspace, "+15557650002"), "variables": ["a", "b"], "expires_at": far},
            {"contact": contact(workspace, "+15557650003"), "variables": ["a", "b"]}]
    ids = messages_enqueue_bulk(workspace=workspace, phone_number=number, template=tpl, rows=rows,
                                campaign_id="cmp_x", now=now)
    got = dict(Message.objects.filter(pk__in=ids).values_list("pk", "expires_at"))
    max_age = now + timedelta(seconds=dispatch._setting("DISPATCH_MAX_AGE_SECONDS", 86400))
    assert [got[i] for i in ids] == [soon, max_age, max_age]


def test_a_backlog_fans_out_to_more_drainers_up_to_the_target(workspace, number, sender, settings, monkeypatch):
    settings.DISPATCH_PAIR_BURST = 1000
    settings.DISPATCH_BATCH_MAX = 10  # full batches = a backlog
    settings.DISPATCH_DRAINER_MPS = 400  # 990 mps -> 3 drainers
    spawned = []
    monkeypatch.setattr(dispatch.kicks, "_enqueue", spawned.append)
    key = f"reach:dispatch:drainers:{number.pk}"
    r = get_redis()
    r.zadd(key, {"other": int(time.time() * 1000) + 60_000})  # one drainer already alive elsewhere
    seen = []
    real_busy = dispatch._FanOut.busy

    def busy(self):
        real_busy(self)
        seen.append(r.zcard(key))
        r.delete(f"reach:dispatch:spawn:{number.pk}")  # as if the spawn window passed

    monkeypatch.setattr(dispatch._FanOut, "busy", busy)
    _queue(workspace, number, n=30)
    totals = dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    assert totals["sent"] == 30
    assert seen and all(n == 2 for n in seen)  # the other one and this one
    assert spawned == [number.pk] * len(seen)  # 2 alive < 3: one spawn per full batch (spawn key reset)
    assert r.zrange(key, 0, -1) == [b"other"]  # this drainer left the set


def test_a_single_drainer_number_does_not_fan_out(workspace, sender, settings, monkeypatch):
    settings.DISPATCH_PAIR_BURST = 1000
    settings.DISPATCH_BATCH_MAX = 10
    number = live_number(workspace, mps=80)
    spawned = []
    monkeypatch.setattr(dispatch.kicks, "_enqueue", spawned.append)
    _queue(workspace, number, n=30)
    assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)["sent"] == 30
    assert spawned == [] and not get_redis().exists(f"reach:dispatch:drainers:{number.pk}")
