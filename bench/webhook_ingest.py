"""Benchmark (c): POST /webhooks/meta ingestion against a running Reach server, next to a hello-world
view of the same server as the ceiling (GET /healthz: same middleware stack, no database).

Three phases, loopback only, each bounded in time:
  1. ceiling: closed loop, `--concurrency` clients hammering GET /healthz for `--ceiling-seconds`;
  2. max ingest: the same closed loop on POST /webhooks/meta (signed, every body unique);
  3. steady: open loop at `--rate` requests/s (320 by default) for `--duration` seconds; latency is
     measured from each request's *scheduled* send time, so a stalled server cannot hide its queue
     (no coordinated omission).

Targets (issue 3): max ingest >= 0.5 x ceiling; at 320 req/s, p99 <= 250 ms and everything accepted.

    python manage.py serve --port 8055 --web-only        # or with the worker, as you run it
    .venv/bin/python bench/webhook_ingest.py --url http://127.0.0.1:8055 --app-secret "$META_APP_SECRET"
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
import sys
import time
import uuid
from urllib.parse import urlsplit

import aiohttp


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(i: int, run: str) -> bytes:
    """A realistic Meta status webhook (~600 bytes); the wamid makes every body unique."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "bench-unrouted"},
            "statuses": [{"id": f"wamid.bench.{run}.{i}", "status": "delivered", "timestamp": str(int(time.time())),
                          "recipient_id": "16505551234",
                          "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular",
                                      "category": "marketing"}}]}}]}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.codes: dict[int | str, int] = {}

    def add(self, code, latency: float) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1
        self.latencies.append(latency)

    def ok(self, expected: int = 200) -> int:
        return self.codes.get(expected, 0)

    def line(self, label: str, seconds: float) -> str:
        lat = [x * 1000 for x in self.latencies]
        return (f"{label:<28} {self.ok() / seconds:8.1f} ok/s  n={len(lat):6d}  "
                f"p50={pct(lat, .50):7.1f} ms  p99={pct(lat, .99):7.1f} ms  "
                f"max={max(lat) if lat else float('nan'):7.1f} ms  codes={self.codes}")


async def one(session: aiohttp.ClientSession, method: str, url: str, *, body: bytes | None, headers: dict,
              stats: Stats, started: float) -> None:
    try:
        async with session.request(method, url, data=body, headers=headers) as resp:
            await resp.read()
            code: int | str = resp.status
    except Exception as exc:  # counted, never fatal: a benchmark reports failures
        code = type(exc).__name__
    stats.add(code, time.perf_counter() - started)


async def closed_loop(session, method: str, url: str, *, seconds: float, concurrency: int, make) -> tuple[Stats, float]:
    stats = Stats()
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def client() -> None:
        while time.perf_counter() < deadline:
            body, headers = make(next(counter))
            await one(session, method, url, body=body, headers=headers, stats=stats, started=time.perf_counter())

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return stats, time.perf_counter() - t0


async def open_loop(session, method: str, url: str, *, rate: float, seconds: float, make,
                    max_in_flight: int) -> tuple[Stats, float]:
    stats = Stats()
    total = int(rate * seconds)
    gate = asyncio.Semaphore(max_in_flight)
    tasks = []
    t0 = time.perf_counter()

    async def fire(i: int, scheduled: float) -> None:
        async with gate:
            body, headers = make(i)
            await one(session, method, url, body=body, headers=headers, stats=stats, started=scheduled)

    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i, scheduled)))
    await asyncio.gather(*tasks)
    return stats, time.perf_counter() - t0


def _loopback_only(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        sys.exit(f"refusing to load-test {host!r}: loopback addresses only")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--app-secret", default=os.environ.get("META_APP_SECRET", "reach-dev-app-secret"))
    parser.add_argument("--rate", type=float, default=320.0)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the steady phase")
    parser.add_argument("--ceiling-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32, help="clients in the closed-loop phases")
    parser.add_argument("--max-in-flight", type=int, default=512)
    parser.add_argument("--steady-ceiling", action="store_true",
                        help="also run the steady open loop against GET /healthz (the box's own limit)")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    _loopback_only(base)
    run = uuid.uuid4().hex[:10]

    def hello(_i):
        return None, {}

    def webhook(i):
        body = webhook_body(i, run)
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, args.app_secret)}

    def webhook_steady(i):
        return webhook(10**8 + i)

    connector = aiohttp.TCPConnector(limit=args.max_in_flight, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for _ in range(120):  # wait (bounded) for the server to come up
            try:
                async with session.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        # Warm up connections, imports and the DB pool; a bad secret fails fast here.
        warm, _ = await closed_loop(session, "POST", f"{base}/webhooks/meta", seconds=1.0, concurrency=4,
                                    make=lambda i: webhook(10**9 + i))
        if warm.ok() == 0:
            print(f"warm-up got no 200 from /webhooks/meta: {warm.codes} (wrong --app-secret?)")
            return 2
        ceiling, t_ceiling = await closed_loop(session, "GET", f"{base}/healthz", seconds=args.ceiling_seconds,
                                               concurrency=args.concurrency, make=hello)
        ingest_max, t_max = await closed_loop(session, "POST", f"{base}/webhooks/meta",
                                              seconds=args.ceiling_seconds, concurrency=args.concurrency,
                                              make=webhook)
        steady, t_steady = await open_loop(session, "POST", f"{base}/webhooks/meta", rate=args.rate,
                                           seconds=args.duration, make=webhook_steady,
                                           max_in_flight=args.max_in_flight)
        steady_hello = None
        if args.steady_ceiling:  # the same open loop on the no-op view: is the box itself able to?
            steady_hello, t_steady_hello = await open_loop(session, "GET", f"{base}/healthz", rate=args.rate,
                                                           seconds=args.duration, make=hello,
                                                           max_in_flight=args.max_in_flight)
    ceiling_rate = ceiling.ok() / t_ceiling
    max_rate = ingest_max.ok() / t_max
    steady_rate = steady.ok() / t_steady
    p99 = pct([x * 1000 for x in steady.latencies], .99)
    print(f"server {base}  closed-loop concurrency={args.concurrency}  steady rate={args.rate:g}/s "
          f"for {args.duration:g}s")
    print(ceiling.line("ceiling GET /healthz", t_ceiling))
    print(ingest_max.line("max POST /webhooks/meta", t_max))
    print(steady.line(f"steady {args.rate:g}/s POST", t_steady))
    if steady_hello is not None:
        print(steady_hello.line(f"steady {args.rate:g}/s GET /healthz", t_steady_hello))
    ratio = max_rate / ceiling_rate if ceiling_rate else float("nan")
    offered = int(args.rate * args.duration)
    print(f"max ingest / ceiling = {ratio:.2f} (target >= 0.5); steady accepted {steady.ok()}/{offered} "
          f"= {steady_rate:.1f}/s, p99 {p99:.1f} ms (target <= 250 ms, all accepted)")
    passed = ratio >= 0.5 and p99 <= 250 and steady.ok() == offered
    print("PASS" if passed else "MISS")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
