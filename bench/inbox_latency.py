"""Benchmark: latency from `POST /webhooks/meta` to the event arriving on a connected inbox WebSocket,
at a steady inbound rate, with sequence numbers proving nothing was lost or reordered; next to a bare
Channels group_send round trip through the same channel layer (the floor).

Topology (all loopback, PostgreSQL + Redis from DATABASE_URL / REDIS_URL):
  Daphne A (`manage.py serve --web-only`)  <- the agent's WebSocket /ws/inbox/ (session cookie)
  Daphne B (`manage.py serve --web-only`)  <- signed inbound webhooks, POST /webhooks/meta
  Celery worker (threads)                   processes the stored webhooks; the after-commit event listener
                                            group_sends each committed event through channels-redis to A.
So every event crosses processes exactly as it does behind a load balancer.

Latency runs from each request's *scheduled* send time (open loop, no coordinated omission) to the
moment the WebSocket frame carrying its `message.inbound` event is read. Every frame's sequences must
be contiguous and strictly increasing; the run fails if one is missing, repeated or out of order.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reach_inbox REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/inbox_latency.py --rate 20 --duration 30

Measured 2026-11-30 (quiet 2-CPU box, one threads worker, tables vacuumed first: bench/pg_vacuum.py):
at 20/s p50 29-34 ms, p99 38-44 ms, zero lost (46-50 ms before the vacuum step, on a bloated queue
table); at 50/s the worker saturates (one inbound text costs ~20 ms of Python): p99 231 ms, zero lost.

Measured 2026-12-03 with --agents 20, after the receive road went batch-wise (a drain's known senders locked
and their wamids and conversations read once per batch; each message's three writes in one round trip:
1.55 queries per message in a batch of 20 returning customers, was ~7), on the same 2-CPU box while other
work held the load average at 8-11 (the bare group_send floor itself had p99 17-105 ms then, so these are
not the code's quiet-box numbers; the CPU seconds per process are the load-independent part):
  50/s, before: p50 3783 ms, p99 5131 ms, worker 8.2 CPU s;  after: p50 305 ms, p99 1997 ms, worker 5.7 CPU s.
  100/s, after: p50 333 ms, p99 1560 ms, worker 6.4 CPU s, web 4.0 + 4.3 CPU s; zero lost, none reordered.
  100/s, final (fan-out frames encoded once), load 5.5-5.9: p50 136 ms, p90 233 ms, p99 464 ms, zero lost,
  none reordered (floor p99 214 ms in the same run). p99 <= 50 ms not shown on this shared box.

Measured 2026-12-03 evening, after the web process applies the webhooks it stored (apps/webhooks/applier.py;
INBOUND_APPLY_IN_WEB) and a batch marks its rows in one UPDATE (bulk_update's CASEs were 2.4 ms of Python per
message), --rate 100 --duration 20 --agents 20 --ports 8160,8161, load average 4-6 (a 10M-row generation and
other benches beside it): p50 130-227 ms, p90 242-714 ms, p99 545-1650 ms (8 runs; median p50 156, p99 857),
zero lost, none reordered; INBOUND_APPLY_IN_WEB=false in the same minutes: p50 916-2742, p99 2204-5132 ms;
main before the change: p50 2602, p99 5979 ms. Applying costs ~3.0 ms CPU per message (was 5.4), measured on
its own. INBOX_PUSH_LINGER_MS=0 was erratic and worse at the 20 sockets (p50 228-2709 ms: 20x more frames).
p99 <= 50 ms is still not shown here: the bench client alone burns 11-17 CPU s of the box's 2 cores. A GIL
switch interval of 0.5 ms in every process (sys.setswitchinterval) did not help (p99 893-1906 ms beside 1023).

Measured 2026-12-03 19:08-19:12 on the quiet box (load average 1.2-1.8), --rate 100 --duration 20 --agents 20,
alternating: INBOUND_APPLY_IN_WEB=true p99 382, 214, 674 ms (p50 107, 73, 91); false (the worker) p99 152,
327 ms (p50 62, 90); zero lost and in order in every run. The box is saturated either way (about 1.8 of its 2
cores: the bench client alone 14-17 CPU s per run), and applying in the web process makes one GIL accept
and apply, so the default is false. p99 <= 50 ms at 100/s is not shown on this box.

Measured 2026-12-03 22:00 UTC, quiet box (load average 1.0-1.8), after push rounds became "at most
one per INBOX_PUSH_LINGER_MS" (a push after a quiet spell no longer waits 20 ms), the idle drain waits on its
doorbell (INBOUND_WEBHOOK_DRAIN_IDLE_SECONDS) and a batch stopped re-locking its claimed rows:
  same session, before: --rate 100 --agents 20: p50 60-99 ms, p99 151-244 ms (3 runs);
  after: p50 46.5, 53.9, 54.1 ms, p99 88.5, 144.6, 151.3 ms, zero lost, in order;
  --rate 20 --agents 1: p50 22.2, 25.2 ms, p99 36.0 (and one 109.4) ms (was p50 29-34);
  --rate 10 --agents 1: p50 23.6 ms (42-45 ms with the fixed linger).
Where the 100/s time goes now (py-spy, per-batch timings): webhooks reach the worker in batches of ~2.3 rows,
and a batch costs ~9 ms of worker CPU before its first message (phone number, contact locks, wamids, current
conversations, auto-reply check, events, marks: one ORM query each) plus ~1.5-2 ms per message, so a webhook
waits 20-35 ms (p50) from its row to its commit while every process shares the 2 saturated cores.

Measured 2026-12-03 23:50 - 2026-12-04 00:15 UTC, quiet box (load average 1.4-2.3), --rate 100 --duration 20 --agents 20:
- The p99 was mostly the run's start: the first 50 timed messages each create their customer's contact and
  conversation (about 10 ms of worker time each instead of ~2), all within the first half second, so they
  queue in batches of 10-12 (stored -> committed up to 243 ms; read from the rows' received_at/processed_at).
  They are 2.5% of the (agent, message) frames, so they alone set the p99. The output now gives returning
  customers apart, and --warm-customers lets every customer write once before the clock.
  Before the change below: all p99 202-210 ms, returning customers 101-136 ms; --warm-customers 107-132 ms.
- Channels' consumer dispatch hopped to the process's one sync thread (aclose_old_connections) before every
  handler, so each of the 20 agents' pushes queued behind that thread. The inbox consumer now skips the hop.
  --warm-customers, after (6 runs): p50 44-54 ms, p99 76-119 ms (median ~90); the push road alone (commit ->
  socket) p50 20-24 -> 16-17 ms. Stored -> committed in the worker: p50 ~32, p99 ~70 ms: what is left.
- INBOX_PUSH_LINGER_MS=5 beside 20 (4 runs each, alternating): push road alone p50 7 ms instead of 17, but the
  end-to-end p99 the same (91-104 ms against 76-119), so the default stays 20.
p99 <= 50 ms at 100/s with 20 agents is not shown on this box.

Measured 2026-12-04 02:45-04:10 UTC, same box (load average 1.0-2.4; the VM's host steals time now and then,
so runs minutes apart differ by 1.5x: read the ranges, not one run), --rate 100 --duration 20 --agents 20:
- Push rounds at most one per 5 ms instead of 20 (INBOX_PUSH_LINGER_MS, now 5), --warm-customers, 13 runs
  without a profiler attached: push road alone p50 5-7 ms (16-17 with 20); end to end p50 21-50 ms, p99
  48-82 ms and one 132 (median 64; 2 of the 13 at or under 50); with 20 in the same hour p99 58-76 ms (3
  runs). 0, 2 and 10 ms were no better (p99 52-101 ms, 2 runs each).
- A batch now creates its new senders' contacts in one INSERT and opens their conversations in another
  (in process: 10 first messages 133 -> 48 ms a batch). The default run (every customer new at the clock's
  start) is then no worse than the warm one: p99 74, 97, 86 ms beside --warm-customers 82, 88, 85 ms,
  alternating, in a noisier hour (all ~200 ms before, against ~100 warm).
- The receive batch's five hot reads compile their SQL once per shape (core.sql.CompiledRead): in process a
  batch of two returning customers 16-17 -> 10-12 ms, its CPU 9.5-10 -> 5.2-6 ms. Then, alternating cold and
  --warm-customers: p99 89, 60, 63 ms cold and 62, 104, 50 ms warm (worker 12.2-13.3 CPU s a run, was 14-15).
- Then the channel layer: Redis pub/sub (channels-redis's RedisPubSubChannelLayer: one PUBLISH per push, each
  web process hands it to its sockets) against the list layer, alternating, --warm-customers:
  pub/sub p50 23.9, 24.2, 24.4 ms, p99 45.1, 47.9, 43.3 ms; lists p50 29.2, 29.5, 40.5 ms, p99 55.5, 50.6,
  72.4 ms; zero lost, in order, in all six; the WebSocket process 8.3-9.0 CPU s against 10.5-11.7. Pub/sub
  is now the default (CHANNEL_LAYER=lists goes back). Before the compiled reads it measured no better (p99
  51 and 105 ms): the worker was then the bottleneck.
- Tried and not kept: psycopg server-side binding (more round trips: execute_together's statements go one
  by one), two drainers with batches of 3 (p99 132-144 ms: they queue on the workspace's counter).
Where a webhook's time goes now: the worker, stored -> processed p50 15-30 ms, p99 35-70 ms; in process a
batch of 1-2 returning customers costs 10-14 ms of which 6-8.5 ms is Python (the ORM compiling and building
~10 queries: a small query costs 0.3-0.7 ms to compile alone), and the box's two cores are 85% busy at 100/s
(worker 0.65, PostgreSQL 0.34, web A 0.30, web B 0.21, this client 0.16 cores). p99 <= 50 ms at 100/s is
shown in some runs, not reliably, on this box (before the two changes above).

Final, 2026-12-04 04:20-04:50 UTC, every default (pub/sub layer, linger 5, compiled reads; the last step the
new contacts' INSERT built once), --rate 100 --duration 20 --agents 20 --ports 8160,8161:
  --warm-customers: p99 44.9, 44.7, 44.2, then 46.0, 39.3, 47.7 ms (p50 21.5-25.9 ms): 6 of 6 at or under 50
  (and 3 of 3 in the pub/sub comparison above: 45.1, 47.9, 43.3);
  default (each customer's first message inside the run): before the last step p99 54.3, 38.5, 53.0 ms
  (returning customers 44.3, 38.3, 43.9); after it 36.0, 40.3, 64.3 ms (p50 17.9-20.2 ms; the 64 ms run had a
  host stall: max 149 ms, and its returning customers alone p99 69).
  Zero lost and none out of order in every run. Worker 11.3-12.6 CPU s a run (was 14-15.6 this morning),
  WebSocket process 7.7-9.2 (was 8.9-10.4 with linger 5 on the list layer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def inbound_body(*, waba: str, pnid: str, i: int, run: str, customers: int) -> bytes:
    wa_id = f"1650555{(i % customers):04d}"
    payload = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": pnid},
        "contacts": [{"profile": {"name": f"Bench {i % customers}"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": f"wamid.inboxbench.{run}.{i}", "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": f"bench {run} {i}"}}]}}]}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def setup_world(run: str, agents: int = 1):
    """A workspace with one live number and `agents` agents, plus a session cookie for each."""
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore

    from apps.core import services as core
    from apps.core.models import Membership, User
    from apps.core.selectors import SESSION_SANDBOX_KEY, SESSION_WORKSPACE_KEY
    from apps.wabas.services import waba_connect

    workspace = core.workspace_create(name=f"Inbox bench {run}", slug=f"inbox-bench-{run}")
    waba, pnid = f"77{int(time.time())}", f"88{int(time.time() * 1000)}"
    waba_connect(workspace=workspace, meta_waba_id=waba, phone_number_id=pnid, display_phone_number="+15550001111",
                 access_token="EAAG-bench", name="bench")
    keys = []
    for n in range(agents):
        user = User.objects.create_user(username=f"bench-{run}-{n}", password=uuid.uuid4().hex)
        Membership.objects.create(workspace=workspace, user=user, role="agent")
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session[SESSION_WORKSPACE_KEY] = workspace.pk
        session[SESSION_SANDBOX_KEY] = False
        session.save()
        keys.append(session.session_key)
    return workspace, waba, pnid, keys


def start_processes(env: dict, log_dir: Path, ports: tuple[int, int] | None = None
                    ) -> tuple[list[subprocess.Popen], int, int]:
    ws_port, post_port = ports or (free_port(), free_port())
    procs = []
    for port in (ws_port, post_port):
        log = open(log_dir / f"inbox-bench-daphne-{port}.log", "w")  # noqa: SIM115
        procs.append(subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--web-only"],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    log = open(log_dir / "inbox-bench-worker.log", "w")  # noqa: SIM115
    procs.append(subprocess.Popen([sys.executable, "-m", "celery", "-A", "reach", "worker",
                                   "-P", env.get("BENCH_WORKER_POOL", "threads"),
                                   "-c", str(env.get("BENCH_WORKER_CONCURRENCY", "4")), "--without-mingle",
                                   "--without-gossip", "-l", "WARNING"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs, ws_port, post_port


async def wait_healthy(port: int, timeout: float = 90) -> None:  # a loaded box starts slowly
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server on {port} did not come up")


async def floor_round_trip(n: int, rate: float) -> list[float]:
    """Bare channels-redis: group_send to a group with one member, timed until that member reads it."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = f"inbox-bench-floor-{uuid.uuid4().hex[:8]}"
    await layer.group_add(group, channel)
    latencies = []
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(n):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await layer.group_send(group, {"type": "bench.ping", "i": i})
        message = await layer.receive(channel)
        assert message["i"] == i
        latencies.append(time.perf_counter() - scheduled)
    await layer.group_discard(group, channel)
    return latencies


async def run_bench(args) -> int:
    from django.conf import settings

    run = uuid.uuid4().hex[:8]
    # The floor first, on a quiet layer: the same Redis, the same channel layer settings.
    floor = await floor_round_trip(min(int(args.rate * args.duration), 1000), args.rate)
    workspace, waba, pnid, session_keys = await asyncio.to_thread(setup_world, run, args.agents)
    from pg_vacuum import vacuum_analyze

    await asyncio.to_thread(vacuum_analyze, "webhooks_inboundwebhook", "conversations_message",
                            "conversations_conversation", "contacts_contact", "core_event")
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    log_dir = ROOT / "var"
    log_dir.mkdir(exist_ok=True)
    procs, ws_port, post_port = start_processes(env, log_dir, args.ports)
    try:
        await wait_healthy(ws_port)
        await wait_healthy(post_port)
        await asyncio.sleep(2)  # let the worker connect to the broker
        secret = settings.META_APP_SECRET
        total = int(args.rate * args.duration)
        sent_at: dict[int, float] = {}
        received_at: dict[int, float] = {}
        sequences: list[int] = []
        statuses: list[int] = []
        problems: list[str] = []
        push_lag: list[float] = []  # event row written (inside the worker's transaction) -> frame read
        direct_sent: dict[int, float] = {}
        direct_recv: dict[int, float] = {}

        origin = f"http://127.0.0.1:{ws_port}"
        async with aiohttp.ClientSession(cookies={"sessionid": session_keys[0]}) as http:
            ws = await http.ws_connect(f"ws://127.0.0.1:{ws_port}/ws/inbox/", headers={"Origin": origin},
                                       heartbeat=None)
            hello = await ws.receive_json(timeout=5)
            assert hello["type"] == "hello", hello
            # The other agents: their own sessions, each stream checked for gaps and order like the first.
            others = []
            for key in session_keys[1:]:
                other_http = aiohttp.ClientSession(cookies={"sessionid": key})
                other_ws = await other_http.ws_connect(f"ws://127.0.0.1:{ws_port}/ws/inbox/",
                                                       headers={"Origin": origin}, heartbeat=None)
                other_hello = await other_ws.receive_json(timeout=5)
                others.append((other_http, other_ws, other_hello))
            start_seq = max([hello["sequence"]] + [h["sequence"] for _, _, h in others])
            await ws.send_json({"resume_after": start_seq})
            for _, other_ws, _ in others:
                await other_ws.send_json({"resume_after": start_seq})
            other_sequences: list[list[int]] = [[] for _ in others]
            other_latest: list[dict[int, float]] = [{} for _ in others]

            async def other_reader(k: int, other_ws):
                async for frame in other_ws:
                    now = time.perf_counter()
                    data = json.loads(frame.data)
                    if data.get("type") == "reset":
                        problems.append(f"agent {k + 1}: reset")
                    if data.get("type") != "events":
                        continue
                    for event in data["events"]:
                        other_sequences[k].append(event["sequence"])
                        if event["type"] == "message.inbound":
                            parts = event["data"].get("body", "").split()
                            if len(parts) == 3 and parts[1] == run:
                                other_latest[k][int(parts[2])] = now

            other_tasks = [asyncio.create_task(other_reader(k, o[1])) for k, o in enumerate(others)]
            done = asyncio.Event()

            async def reader():
                async for frame in ws:
                    now = time.perf_counter()
                    wall = time.time()
                    data = json.loads(frame.data)
                    if data.get("type") == "reset":
                        problems.append(f"reset at {data}")
                        continue
                    if data.get("type") != "events":
                        continue
                    for event in data["events"]:
                        sequences.append(event["sequence"])
                        if event["type"] == "inbox.bench":
                            direct_recv[event["data"]["i"]] = now
                        if event["type"] == "message.inbound":
                            body = event["data"].get("body", "")
                            parts = body.split()
                            if len(parts) == 3 and parts[1] == run:
                                i = int(parts[2])
                                if i in received_at:
                                    problems.append(f"message {i} delivered twice")
                                received_at[i] = now
                                created = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
                                push_lag.append(wall - created.timestamp())
                    if len(received_at) >= total:
                        done.set()

            reader_task = asyncio.create_task(reader())
            post_url = f"http://127.0.0.1:{post_port}/webhooks/meta"
            # Warm-up: one message through the whole road, so a slow worker start is not measured.
            warm = inbound_body(waba=waba, pnid=pnid, i=total, run=run, customers=args.customers)
            async with http.post(post_url, data=warm, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": sign(warm, secret)}) as r:
                assert r.status == 200, r.status
            deadline = time.monotonic() + 90
            while total not in received_at and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if total not in received_at:
                raise RuntimeError("the warm-up message never reached the WebSocket; see var/inbox-bench-*.log")
            del received_at[total]
            if args.warm_customers:  # every customer known before the clock starts: the steady state alone
                for k in range(args.customers):
                    body = inbound_body(waba=waba, pnid=pnid, i=total + 1 + k, run=run, customers=args.customers)
                    async with http.post(post_url, data=body, headers={
                            "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}) as r:
                        assert r.status == 200, r.status
                warm_ids = {total + 1 + k for k in range(args.customers)}
                deadline = time.monotonic() + 90
                while not warm_ids <= received_at.keys() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                for k in warm_ids:
                    received_at.pop(k, None)
                for seen in other_latest:
                    for k in warm_ids | {total}:
                        seen.pop(k, None)
                await asyncio.sleep(0.5)
            interval = 1.0 / args.rate
            t0 = time.perf_counter() + 0.2

            async def post(i: int):
                body = inbound_body(waba=waba, pnid=pnid, i=i, run=run, customers=args.customers)
                scheduled = t0 + i * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at[i] = scheduled
                async with http.post(post_url, data=body, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}) as r:
                    statuses.append(r.status)

            posters = [asyncio.create_task(post(i)) for i in range(total)]
            await asyncio.gather(*posters)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=args.drain_timeout)
            await asyncio.sleep(0.3)  # anything late or duplicated shows up here

            # Phase 2: the inbox road alone. Commit an event here (a transaction in this process, like any
            # writer) and time it to the WebSocket: listener, channels-redis, consumer; no receive road.
            from apps.core.events import UnknownEventType, event_type_register, event_types_known

            try:
                event_types_known(["inbox.bench"])
            except UnknownEventType:  # the bench's own internal type (not public: no webhook sees it)
                event_type_register("inbox.bench", public=False, description="The inbox bench's probe event.",
                                    schema={"type": "object", "properties": {"i": {"type": "integer"}},
                                            "required": ["i"], "additionalProperties": False},
                                    example={"i": 0})

            def commit_one(i: int) -> None:
                from django.db import transaction

                from apps.core.services import event_append

                with transaction.atomic():
                    event_append(workspace=workspace, type="inbox.bench", data={"i": i})

            direct_total = min(total, 500)
            t1 = time.perf_counter() + 0.1
            for i in range(direct_total):
                scheduled = t1 + i * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                direct_sent[i] = scheduled
                await asyncio.to_thread(commit_one, i)
            deadline = time.monotonic() + 10
            while len(direct_recv) < direct_total and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            await ws.close()
            reader_task.cancel()
            for task in other_tasks:
                task.cancel()
            for other_http, other_ws, _ in others:
                await other_ws.close()
                await other_http.close()
    finally:
        cpu = {name: _cpu_seconds(p.pid) for name, p in zip(("web (WebSockets)", "web (webhooks)", "worker"), procs,
                                                        strict=True)}
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    expected = list(range(sequences[0], sequences[0] + len(sequences))) if sequences else []
    in_order_from_start = bool(sequences) and sequences[0] == start_seq + 1
    in_order = sequences == expected and in_order_from_start
    lost = total - len(received_at)
    latencies = [received_at[i] - sent_at[i] for i in received_at]
    # Every agent's copy counts: the p99 is over all (agent, message) frames.
    for k, seen in enumerate(other_latest):
        latencies += [seen[i] - sent_at[i] for i in seen if i in sent_at]
        lost += sum(1 for i in sent_at if i not in seen)
        seqs = [q for q in other_sequences[k] if q > start_seq]
        if seqs != list(range(start_seq + 1, start_seq + 1 + len(seqs))):
            in_order = False
            problems.append(f"agent {k + 2}: sequences not contiguous/in order")
    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    # A customer's first message creates the contact and opens the conversation (the slower road); without
    # --warm-customers the first `customers` messages are all such, in the run's first moments.
    first_contact = set() if args.warm_customers else set(range(min(args.customers, total)))
    returning = [received_at[i] - sent_at[i] for i in received_at if i not in first_contact]
    for seen in other_latest:
        returning += [seen[i] - sent_at[i] for i in seen if i in sent_at and i not in first_contact]
    layer_cfg = settings.CHANNEL_LAYERS["default"]
    print(f"inbox latency bench  run={run}  rate={args.rate}/s  duration={args.duration}s  messages={total}  "
          f"customers={args.customers}{' (known before the clock)' if args.warm_customers else ''}  "
          f"agents connected={args.agents}")
    capacity = layer_cfg.get("CONFIG", {}).get("capacity")
    print(f"  channel layer: {layer_cfg['BACKEND'].rsplit('.', 1)[-1]}{f' capacity={capacity}' if capacity else ''}"
          f"  (ws on :{ws_port}, webhooks on :{post_port}, worker apart)")
    print(f"  webhook answers: {sum(1 for s in statuses if s == 200)}/{total} x 200")
    print(f"  POST /webhooks/meta -> WebSocket: p50 {ms(pct(latencies, 0.5))}  p90 {ms(pct(latencies, 0.9))}  "
          f"p99 {ms(pct(latencies, 0.99))}  max {ms(max(latencies) if latencies else float('nan'))}")
    if first_contact:
        print(f"    returning customers only (without each customer's first message): p50 {ms(pct(returning, 0.5))}  "
              f"p90 {ms(pct(returning, 0.9))}  p99 {ms(pct(returning, 0.99))}")
    print(f"  of which event written -> WebSocket (commit, listener, channels-redis, consumer): "
          f"p50 {ms(pct(push_lag, 0.5))}  p99 {ms(pct(push_lag, 0.99))}")
    direct = [direct_recv[i] - direct_sent[i] for i in direct_recv]
    print(f"  inbox road alone (commit an event -> WebSocket, {len(direct_recv)}/{len(direct_sent)} arrived): "
          f"p50 {ms(pct(direct, 0.5))}  p99 {ms(pct(direct, 0.99))}")
    print(f"  floor (bare group_send round trip): p50 {ms(pct(floor, 0.5))}  p99 {ms(pct(floor, 0.99))}")
    print(f"  events received: {len(sequences)} (sequences {sequences[0] if sequences else '-'}..."
          f"{sequences[-1] if sequences else '-'}), contiguous and in order: {in_order}; lost inbound: {lost}")
    # CPU time is what a busy machine does not distort: wall-clock latency on a shared 2-core box does.
    cpu["bench client (this process)"] = _cpu_seconds(os.getpid())
    print("  CPU seconds over the whole run: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
          + f"; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for problem in problems[:10]:
        print("  PROBLEM:", problem)
    ok = in_order and lost == 0 and not problems and len(direct_recv) == len(direct_sent)
    target = pct(latencies, 0.99) <= 0.050 if latencies else False
    print(f"  verdict: {'OK' if ok else 'FAILED'} (zero lost, no reorder); p99 <= 50 ms: {'yes' if target else 'no'}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="inbound webhooks per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of steady load")
    parser.add_argument("--customers", type=int, default=50, help="distinct senders the messages rotate over")
    parser.add_argument("--warm-customers", action="store_true",
                        help="one message from every customer before the clock starts, so no timed message "
                             "creates a contact (without it the first `customers` timed messages do)")
    parser.add_argument("--agents", type=int, default=1, help="agents connected to the inbox (each its own socket)")
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--ports", type=lambda v: tuple(int(p) for p in v.split(",")), default=None,
                        help="WS_PORT,WEBHOOK_PORT for the two web processes (default: any free ports)")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        print("needs DATABASE_URL (PostgreSQL) and REDIS_URL: the processes share the database and channel layer")
        return 2
    import django

    django.setup()
    return asyncio.run(run_bench(args))


if __name__ == "__main__":
    sys.exit(main())
