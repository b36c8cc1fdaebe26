"""Benchmark (b'), the Celery path: one kick on a number with a backlog, a real Celery worker (prefork,
--concurrency processes) draining it. Shows the automatic fan-out (drainers alive per number, from the
Redis set) and the achieved rate, per-second max and 130429/131056 count against fakemeta at --mps.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reach_perf REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python bench/dispatch_celery.py --messages 15000 --concurrency 3

Uses the Celery broker of REDIS_URL: run it against a Redis DB of your own (tasks left there are drained).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=15000)
    parser.add_argument("--mps", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=3, help="Celery worker processes")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()

    import dispatch as bench  # bench/dispatch.py: setup() and the port helpers

    port = bench.free_port()
    meta_pn = f"66{secrets.randbelow(10**13):013d}"
    os.environ["META_GRAPH_URL"] = f"http://{bench.HOST}:{port}"
    fake = subprocess.Popen([sys.executable, "manage.py", "fakemeta", "--host", bench.HOST, "--port", str(port),
                             "--number-mps", f"{meta_pn}={args.mps}", "--no-window-check", "--lenient-templates"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import django

    django.setup()
    from django.db.models import Max, Min

    from apps.conversations.models import Message, MessageAttempt
    from apps.conversations.services.dispatch import dispatch_kick
    from apps.core.redis import get_redis

    worker = None
    try:
        bench.wait_port(port)
        _, number = bench.setup(mps=args.mps, count=args.messages, meta_pn=meta_pn)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "reach", "worker", "-P", "prefork", "-c", str(args.concurrency),
             "--without-mingle", "--without-gossip", "-l", "WARNING"],
            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        time.sleep(4)
        dispatch_kick(phone_number_id=number.pk)
        t0, peak = time.time(), 0
        while time.time() - t0 < args.timeout:
            sent = Message.objects.filter(phone_number=number, status="sent").count()
            alive = get_redis().zcard(f"reach:dispatch:drainers:{number.pk}")
            peak = max(peak, alive)
            print(f"t={time.time() - t0:5.1f}s sent={sent} drainers={alive}", flush=True)
            if sent >= args.messages:
                break
            time.sleep(2)
        accepted = MessageAttempt.objects.filter(message__phone_number=number, outcome="accepted")
        span = accepted.aggregate(a=Min("started_at"), b=Max("started_at"))
        n = accepted.count()
        if n < 2:
            print("nothing sent")
            return 1
        window = (span["b"] - span["a"]).total_seconds()
        per: dict[int, int] = {}
        for ts in accepted.values_list("started_at", flat=True):
            k = int((ts - span["a"]).total_seconds())
            per[k] = per.get(k, 0) + 1
        full = [v for k, v in per.items() if 1 <= k < int(window) - 1] or [0]
        throttled = MessageAttempt.objects.filter(message__phone_number=number,
                                                  upstream_code__in=[130429, 131056]).count()
        print(f"celery path: {n} sent, first->last {window:.2f}s = {n / window:.1f} mps; whole seconds: "
              f"min {min(full)} max {max(full)}; peak drainers {peak}; 130429/131056: {throttled}")
        return 0
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGKILL)  # the worker's own process group (started above)
            worker.wait(15)
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    sys.exit(main())
