"""Benchmark (b): sustained dispatch to fakemeta for one number set to --mps (1,000) for --seconds (60),
next to a ceiling measured in the same run: a bare aiohttp sender against the same fake process (on a
number the fake does not throttle), showing the fake is not the bottleneck.

The dispatcher under test is the production code path: `dispatch_drain` (what the Celery task
`dispatch_number` runs) claiming rows from PostgreSQL, pacing with the number's NumberPacer in Redis (a
one-second ledger at the cap less 1%, bursts of 10 ms), sending through AsyncGraphSender, recording results
and events in bulk. `--workers N` runs N drainers at once (separate processes, each its own DB connection)
sharing the one pacer, as N Celery workers would.

The steady rate is counted over whole seconds from 1 s after the first send to 1 s before the last (start-up
and the final in-flight batch left out); "never above" is the busiest of those seconds.

Targets (issue 3): >= 97% of the --mps cap, never above it, zero 130429 and zero 131056.

Measured 2026-12-01 on the shared 2-CPU box, --workers 2, 60 s: 99.0% and 98.7% (busiest seconds 991 and
992), zero 130429/131056, ceiling 12,869-13,402 req/s. With a CPU-burning process beside it (the box
saturated): 97.8%, where the plain 10-token bucket this replaced gave 93.1% (tokens lost on every late wake).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reach_send REDIS_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python bench/dispatch.py --seconds 60 --mps 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings")
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"fakemeta did not start on port {port}")


def setup(*, mps: int, count: int, meta_pn: str):
    from django.db import transaction

    from apps.contacts.models import Contact
    from apps.conversations.services.sending import messages_enqueue_bulk
    from apps.core.services import workspace_create
    from apps.message_templates.models import MessageTemplate
    from apps.wabas.models import PhoneNumber
    from apps.wabas.services import waba_connect

    run = secrets.token_hex(4)
    workspace = workspace_create(name=f"bench dispatch {run}", slug=f"bench-dispatch-{run}", plan="enterprise")
    number = waba_connect(workspace=workspace, meta_waba_id=f"77{secrets.randbelow(10**12):012d}",
                          phone_number_id=meta_pn, display_phone_number="+15550100000", access_token="bench-token")
    PhoneNumber.objects.filter(pk=number.pk).update(throughput_mps=mps)
    number.refresh_from_db()
    template = MessageTemplate.objects.create(workspace=workspace, waba=number.waba, name="bench_notice",
                                              language="en", category="UTILITY", status="APPROVED",
                                              components=[{"type": "BODY", "text": "Hello {{1}}"}])
    base = 10**9 + secrets.randbelow(8 * 10**9)
    chunk = 5000
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        with transaction.atomic():
            contacts = Contact.objects.bulk_create([
                Contact(workspace=workspace, phone=f"+1{base + start + i:010d}"[:12]) for i in range(n)])
            messages_enqueue_bulk(workspace=workspace, phone_number=number, template=template,
                                  rows=[{"contact": c, "variables": [str(i)], "body": f"Hello {i}"}
                                        for i, c in enumerate(contacts)], campaign_id=f"cmp_bench{run}")
    from pg_vacuum import vacuum_analyze

    vacuum_analyze("conversations_message", "conversations_conversation", "core_event")
    return workspace, number


async def bare_sender(url: str, seconds: float, concurrency: int) -> tuple[int, float, dict]:
    import aiohttp

    sent, codes = 0, {}
    deadline = time.perf_counter() + seconds
    body = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "ceiling"}}

    async def client(session, k):
        nonlocal sent
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            payload = json.dumps({**body, "to": f"+1444{k:03d}{i:07d}"})
            async with session.post(url, data=payload, headers={"Authorization": "Bearer bench-token",
                                                                "Content-Type": "application/json"}) as r:
                await r.read()
                codes[r.status] = codes.get(r.status, 0) + 1
                if r.status == 200:
                    sent += 1

    t0 = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session, k) for k in range(concurrency)))
    return sent, time.perf_counter() - t0, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="concurrent drainers sharing the pacer")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument("--ceiling-concurrency", type=int, default=64)
    parser.add_argument("--profile", action="store_true", help="cProfile the drainer's main thread (1 worker)")
    parser.add_argument("--drain", default="", help=argparse.SUPPRESS)  # internal: run one drainer process
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    settings.DISPATCH_DRAINERS_MAX = 1  # the bench runs its drainers itself (--workers), no Celery fan-out
    if args.drain:
        from apps.conversations.services.dispatch import dispatch_drain

        print(json.dumps(dict(dispatch_drain(phone_number_id=args.drain, budget_seconds=args.seconds))))
        return 0
    from django.db import connection
    from django.db.models import Count, Max, Min

    from apps.conversations.models import Message, MessageAttempt
    from apps.conversations.services.dispatch import dispatch_drain
    from apps.providers import registry

    meta_pn = f"66{secrets.randbelow(10**13):013d}"
    ceiling_pn = "5550000000001"
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "manage.py"), "fakemeta", "--host", HOST, "--port", str(port),
         "--number-mps", f"{meta_pn}={args.mps}", "--number-mps", f"{ceiling_pn}=1000000000",
         "--no-window-check", "--lenient-templates"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        base = f"http://{HOST}:{port}"
        settings.META_GRAPH_URL = base
        registry.reset_for_tests()
        count = int(args.mps * args.seconds * 1.1) + 200
        t_setup = time.perf_counter()
        workspace, number = setup(mps=args.mps, count=count, meta_pn=meta_pn)
        print(f"setup: {count} queued template messages on {number.pk} ({args.mps} mps) in "
              f"{time.perf_counter() - t_setup:.1f}s; fakemeta at {base}; db={connection.vendor}")

        ceiling_sent, ceiling_t, ceiling_codes = asyncio.run(bare_sender(
            f"{base}/{settings.META_GRAPH_VERSION}/{ceiling_pn}/messages", args.ceiling_seconds,
            args.ceiling_concurrency))
        ceiling_rate = ceiling_sent / ceiling_t

        results: list[dict] = []
        env = {**os.environ, "META_GRAPH_URL": base}
        t0 = time.perf_counter()
        if args.workers == 1 and args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            results.append(dict(prof.runcall(dispatch_drain, phone_number_id=number.pk, budget_seconds=args.seconds)))
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        elif args.workers == 1:
            results.append(dict(dispatch_drain(phone_number_id=number.pk, budget_seconds=args.seconds)))
        else:  # separate processes, as Celery prefork workers would be; they share the Redis pacer
            procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--drain", number.pk,
                                       "--seconds", str(args.seconds)], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, text=True) for _ in range(args.workers)]
            for p in procs:
                out, _ = p.communicate()
                results.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else {})
        elapsed = time.perf_counter() - t0

        attempts = MessageAttempt.objects.filter(message__phone_number=number)
        accepted = attempts.filter(outcome="accepted")
        span = accepted.aggregate(first=Min("started_at"), last=Max("started_at"))
        sent_total = accepted.count()
        window = (span["last"] - span["first"]).total_seconds() if sent_total > 1 else float("nan")
        first, last = span["first"], span["last"]
        per_second = {}
        for ts in accepted.values_list("started_at", flat=True):
            sec = int((ts - first).total_seconds())
            per_second[sec] = per_second.get(sec, 0) + 1
        # Steady state: the whole seconds from first+1 s to last-1 s (drainer start-up and the final
        # in-flight batch left out). A span ending mid-second would weigh where in its second the pacer is.
        full = [per_second.get(k, 0) for k in range(1, int((last - first).total_seconds()) - 1)]
        inner_rate = sum(full) / len(full) if full else float("nan")
        throttled = dict(attempts.filter(upstream_code__in=[130429, 131056]).values_list("upstream_code")
                         .annotate(n=Count("id")).values_list("upstream_code", "n"))
        statuses = dict(Message.objects.filter(phone_number=number).values_list("status").annotate(n=Count("id"))
                        .values_list("status", "n"))
    finally:
        fake.terminate()
        fake.wait(10)
    rate = sent_total / window if window == window and window > 0 else float("nan")
    print(f"ceiling: bare aiohttp sender -> same fakemeta: {ceiling_rate:8.1f} req/s "
          f"(concurrency {args.ceiling_concurrency}, {ceiling_t:.1f}s, codes {ceiling_codes})")
    print(f"dispatch: {sent_total} accepted in {elapsed:.1f}s with {args.workers} worker(s); "
          f"first->last send {window:.2f}s = {rate:.1f} mps; steady ({len(full)} whole seconds) {inner_rate:.1f} mps "
          f"= {100 * inner_rate / args.mps:.1f}% of {args.mps}")
    if full:
        print(f"per-second sends (whole seconds inside the run): min {min(full)}  max {max(full)}  "
              f"mean {sum(full) / len(full):.1f}")
    print(f"130429: {throttled.get(130429, 0)}   131056: {throttled.get(131056, 0)}   statuses: {statuses}   "
          f"drain totals: {results}")
    ok = inner_rate >= 0.97 * args.mps and (not full or max(full) <= args.mps) and not throttled
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
