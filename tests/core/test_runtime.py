"""core/runtime: the one token bucket (on Redis' clock, or a given one), the doorbell, the loop thread."""

from __future__ import annotations

import asyncio
import uuid

from apps.core.redis import get_redis
from apps.core.runtime.buckets import bucket_take
from apps.core.runtime.doorbell import BackgroundRinger, Doorbell
from apps.core.runtime.loop import LoopThread

T0 = 1_700_000_000_000_000  # us


def _key() -> str:
    return f"test:bucket:{uuid.uuid4().hex}"


def test_a_bucket_starts_full_then_refills_at_its_rate():
    key = _key()
    assert bucket_take([key], rate=10, capacity=5, want=8, now_us=T0) == [(5, 0.1)]
    assert bucket_take([key], rate=10, capacity=5, want=1, now_us=T0 + 50_000) == [(0, 0.05)]
    assert bucket_take([key], rate=10, capacity=5, want=3, now_us=T0 + 250_000) == [(2, 0.05)]
    assert bucket_take([key], rate=10, capacity=5, want=9, now_us=T0 + 60_000_000) == [(5, 0.1)]  # never over


def test_buckets_are_per_key_and_run_on_redis_clock_by_default():
    a, b = _key(), _key()
    assert bucket_take([a, b], rate=1, capacity=1) == [(1, 0.0), (1, 0.0)]
    (granted, wait), = bucket_take([a], rate=1, capacity=1)
    assert granted == 0 and 0.9 < wait <= 1.0


def test_the_doorbell_lets_one_ring_through_until_released():
    rung: list[str] = []
    bell = Doorbell(f"test:bell:{uuid.uuid4().hex}", ttl_ms=lambda: 60_000, enqueue=rung.append)
    bell.ring("n1")
    bell.ring("n1")
    bell.ring("n2")
    assert rung == ["n1", "n2"]
    bell.release("n1")
    bell.hold("n2")
    bell.ring("n1")
    bell.ring("n2")
    assert rung == ["n1", "n2", "n1"]
    assert 0 < get_redis().pttl(bell.key("n2")) <= 60_000


def test_the_background_ringer_rings_each_name_once_per_round():
    rung: list[str] = []
    ringer = BackgroundRinger(rung.append, linger_seconds=lambda: 0.2, name="test-ringer")
    for _ in range(5):
        ringer.submit("a")
        ringer.submit("b")
    assert ringer.wait_sent(5)
    assert rung == ["a", "b"]  # the round gathers for 0.2 s: all ten submits share it


def test_the_loop_thread_runs_coroutines_and_comes_back_after_a_stop():
    runner = LoopThread("test-loop")

    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    assert runner.submit(double(21)).result(timeout=5) == 42
    loop = runner.loop()
    loop.call_soon_threadsafe(loop.stop)
    for _ in range(100):
        if not loop.is_running():
            break
        asyncio.run(asyncio.sleep(0.01))
    assert runner.submit(double(2)).result(timeout=5) == 4
    assert runner.loop() is not loop
