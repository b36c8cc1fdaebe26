"""The per-subscription delivery cap's token bucket on a frozen clock (passed as `now`; production runs on
Redis' clock): one second's worth of burst, then
the rate, never more after an idle spell, and refunds come back. (The burst test at the receiver can
only bound arrivals from above; the bucket's exact shape is pinned here, where timing cannot vary.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import time_machine

from apps.core.ids import new_id
from apps.webhooks.services.outbound import ratecap


def test_a_full_bucket_gives_one_seconds_worth_then_the_rate():
    sub = new_id("whs")
    with time_machine.travel(datetime(2026, 11, 22, 6, 0, tzinfo=UTC), tick=False) as clock:
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=100, want=500) == 100
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=100, want=500) == 0
        clock.shift(0.25)
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=100, want=500) == 25
        clock.shift(0.125)  # 12.5 tokens (binary-exact shifts keep the arithmetic exact)
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=100, want=4) == 4  # never more than asked
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=100, want=500) == 8  # whole tokens only
        clock.shift(60)  # an idle minute banks one second's worth, not 6000
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=100, want=500) == 100
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=100, want=500) == 0


def test_refunded_tokens_can_be_taken_again():
    sub = new_id("whs")
    with time_machine.travel(datetime(2026, 11, 22, 6, 0, tzinfo=UTC), tick=False):
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=10, want=10) == 10
        ratecap.refund(subscription_id=sub, tokens=3)  # claimed fewer rows than granted
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=10, want=10) == 3
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=10, want=10) == 0


def test_a_rate_below_one_still_lets_one_through():
    sub, other = new_id("whs"), new_id("whs")
    with time_machine.travel(datetime(2026, 11, 22, 6, 0, tzinfo=UTC), tick=False) as clock:
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=0.5, want=5) == 1
        clock.shift(1)
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=0.5, want=5) == 0
        clock.shift(1)
        assert ratecap.take(now=time.time(), subscription_id=sub, rate=0.5, want=5) == 1
        assert ratecap.take(now=time.time(), subscription_id=other, rate=0.5, want=5) == 1  # buckets are per subscription
