"""Fault suite: Reach on its own PostgreSQL + Redis, under load, while its processes are killed and its stores
restarted; then the counts that must be 0.

It starts everything itself, on loopback only, and stops it all at the end:
- a private PostgreSQL cluster (initdb under --workdir, run as the `postgres` user, port --pg-port, 5442) and a
  private redis-server (port --redis-port, 6392): the suite restarts and flushes them, never a shared server;
- fakemeta (the fake Graph API, port --meta-port) posting signed status webhooks to the web process;
- the production process split: `manage.py serve --web-only` (port --web-port), `celery worker`, `celery beat`;
- a webhook sink (a subscription for every event of both workspaces).

Load: an API client sends template messages (POST /api/v1/messages with an Idempotency-Key, retried on
connection errors and 5xx as a client would) for --seconds; meanwhile a campaign to --recipients contacts is
launched on a second number. Faults, on a timeline: SIGKILL the web process, SIGKILL the worker (twice, the second
mid-campaign), restart PostgreSQL (fast shutdown: every connection cut), FLUSHALL and restart Redis
mid-campaign. Each killed process is started again.

Then, once everything settled (or --settle seconds passed), it counts:
- accepted messages lost: a 202 whose message is missing or not in a final state;
- messages sent to Meta more than once: fakemeta's count of sends per biz_opaque_callback_data (our id);
- webhook deliveries lost: public events of the two workspaces the sink never received;
- campaign recipients doubled or skipped: contacts with more than one campaign message, or none / unfinished.

    .venv/bin/python bench/faults.py                      # the full run (about 2-3 minutes)
    .venv/bin/python bench/faults.py --seconds 12 --recipients 60 --quick   # what the slow test runs

Needs the PostgreSQL server binaries (initdb, pg_ctl) and redis-server on PATH. Exit status 1 if any count is
not 0. --json prints the result as JSON (the slow test reads it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
APP_SECRET = "faults-app-secret"
PN_API, WABA_API = "900000000000001", "910000000000001"
PN_CMP, WABA_CMP = "900000000000002", "910000000000002"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- private stores ----------------------------------------------------------------------------------


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


class PrivatePostgres:
    def __init__(self, workdir: Path, port: int):
        self.dir, self.port = workdir / "pg", port
        self.sock = workdir / "pgsock"
        self.logfile = workdir / "pg.log"

    def _as_postgres(self, args: list[str]) -> None:
        cmd = args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        for path in (self.dir, self.sock):
            shutil.rmtree(path, ignore_errors=True)
        self.sock.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir.parent, "postgres")
            shutil.chown(self.sock, "postgres")
        self._as_postgres([pg_bin("initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self.start()

    def _ctl(self, *args: str) -> None:
        self._as_postgres([pg_bin("pg_ctl"), "-D", str(self.dir), "-l", str(self.logfile), "-w", "-t", "60",
                           "-o", f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 "
                                 f"-c max_connections=200 -c fsync=off", *args])

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "fast", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/reach_faults"


class PrivateRedis:
    def __init__(self, workdir: Path, port: int):
        self.port, self.dir, self.proc = port, workdir, None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def flush_and_restart(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "FLUSHALL"], capture_output=True)
        self.proc.kill()
        self.proc.wait()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


# --- the webhook sink ----------------------------------------------------------------------------------


class Sink:
    def __init__(self):
        self.ids: Counter = Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event_id = json.loads(body)["id"]
                except (ValueError, KeyError, TypeError):
                    event_id = None
                if event_id:
                    with sink.lock:
                        sink.ids[event_id] += 1
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:  # the sender gave up waiting (a loaded machine): it retries, the id counts once
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


# --- processes ----------------------------------------------------------------------------------------


class Procs:
    def __init__(self, env: dict, workdir: Path, web_port: int):
        self.env, self.workdir, self.web_port = env, workdir, web_port
        self.procs: dict[str, subprocess.Popen] = {}
        self.commands = {
            "web": [sys.executable, "manage.py", "serve", "--web-only", "--port", str(web_port)],
            "worker": [sys.executable, "-m", "celery", "-A", "reach", "worker", "--pool", "threads", "-c", "6",
                       "--without-mingle", "--without-gossip", "-l", "warning"],
            "beat": [sys.executable, "-m", "celery", "-A", "reach", "beat", "-l", "warning",
                     "--schedule", str(workdir / "beat-schedule")],
        }

    def start(self, name: str) -> None:
        out = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(self.commands[name], cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def wait_web(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout  # a deadline only: a loaded 2-core machine boots Django slowly
        while time.monotonic() < deadline:
            if self.procs["web"].poll() is not None:
                break
            try:
                if requests.get(f"http://127.0.0.1:{self.web_port}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        tail = (self.workdir / "web.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the web process did not come up:\n{tail}")


# --- seeding (in this process, against the private database) --------------------------------------------


def seed(recipients: int, sink_url: str) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.billing import services as billing
    from apps.campaigns import services as campaigns
    from apps.contacts.models import Contact
    from apps.contacts.services import contact_consent_set
    from apps.core import services as core
    from apps.core.models import API_SCOPES
    from apps.core.tenancy import Tenant
    from apps.message_templates.models import MessageTemplate
    from apps.wabas.models import PhoneNumber
    from apps.wabas.services import waba_connect
    from apps.webhooks.services import outbound

    out = {}
    for key, pn, waba in (("api", PN_API, WABA_API), ("cmp", PN_CMP, WABA_CMP)):
        ws = core.workspace_create(name=f"Faults {key}", slug=f"faults-{key}")
        number = waba_connect(workspace=ws, meta_waba_id=waba, phone_number_id=pn,
                              display_phone_number=f"+1555{pn[-7:]}", access_token="faults-token")
        PhoneNumber.objects.filter(pk=number.pk).update(throughput_mps=80, messaging_tier="TIER_UNLIMITED")
        MessageTemplate.objects.create(workspace=ws, waba=number.waba, name="faults_note", language="en",
                                       category="UTILITY" if key == "api" else "MARKETING", status="APPROVED",
                                       components=[{"type": "BODY", "text": "Hi {{1}}, note {{2}}."}])
        outbound.subscription_create(workspace=ws, url=sink_url, events=["*"])
        billing.wallet_topup(workspace=ws, amount="1000000", note="fault suite")  # a live wallet opens at 0
        out[key] = {"workspace": ws, "number": number}
    _, out["api"]["key"] = core.api_key_create(workspace=out["api"]["workspace"], name="faults", sandbox=False)
    ws = out["cmp"]["workspace"]
    Contact.objects.bulk_create([Contact(workspace=ws, phone=f"+4477{i:08d}", wa_id=f"4477{i:08d}",
                                         name=f"Person {i}", opted_in=True) for i in range(recipients)])
    for contact in Contact.objects.filter(workspace=ws):  # marketing needs an opt-in on record
        contact_consent_set(contact=contact, opted_in=True)
    audience = campaigns.audience_create(workspace=ws, name="everyone", filter={})
    out["campaign"] = campaigns.campaign_create(
        tenant=Tenant(workspace=ws, scopes=frozenset(API_SCOPES)),
        data={"name": "faults", "template": {"name": "faults_note", "language": "en"}, "audience_id": audience.pk,
              "phone_number_id": out["cmp"]["number"].pk, "variables": {"1": "{{contact.first_name|there}}",
                                                                         "2": "x"}})
    return out


# --- load -----------------------------------------------------------------------------------------------


class ApiLoad:
    """Template sends, one logical message per Idempotency-Key, retried until 202 (or a 4xx) like a client."""

    def __init__(self, base: str, key: str, threads: int = 4):
        self.base, self.key, self.threads = base, key, threads
        self.accepted: dict[str, str] = {}  # idempotency key -> message id
        self.refused: Counter = Counter()
        self.retried: Counter = Counter()  # why a request was sent again: a status code or an exception name
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.n = 0

    def _one(self, session: requests.Session, i: int) -> None:
        key = str(uuid.uuid4())
        body = {"to": f"+1555{3000000 + i:07d}", "template": {"name": "faults_note", "language": "en",
                                                               "variables": ["Ann", str(i)]}}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = session.post(f"{self.base}/api/v1/messages", json=body, timeout=15,
                                 headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": key})
            except requests.RequestException as exc:
                self.retried[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            if r.status_code == 202:
                with self.lock:
                    self.accepted[key] = r.json()["id"]
                return
            if r.status_code >= 500 or r.status_code in (409, 429):
                self.retried[f"{r.status_code} {r.text[:80]}"] += 1
                time.sleep(0.2)
                continue
            self.refused[r.status_code] += 1
            return
        self.refused["gave_up"] += 1

    def _run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            with self.lock:
                i = self.n
                self.n += 1
            self._one(session, i)
            time.sleep(0.05)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for t in threads:
            t.start()
        return threads


# --- the run --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/reach-faults")
    parser.add_argument("--pg-port", type=int, default=5442)
    parser.add_argument("--redis-port", type=int, default=6392)
    parser.add_argument("--web-port", type=int, default=8120)
    parser.add_argument("--meta-port", type=int, default=9120)
    parser.add_argument("--seconds", type=float, default=40.0, help="API load duration (the faults fit in it)")
    parser.add_argument("--recipients", type=int, default=400)
    parser.add_argument("--settle", type=float, default=120.0, help="max seconds to wait for everything to finish")
    parser.add_argument("--min-accepted", type=int, default=10,
                        help="keep the API load going (at most 180 s more) until this many sends were accepted")
    parser.add_argument("--quick", action="store_true", help="short lease and reconciliation window")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    pg, redis = PrivatePostgres(workdir, args.pg_port), PrivateRedis(workdir, args.redis_port)
    log(f"private PostgreSQL on {args.pg_port}, Redis on {args.redis_port} under {workdir}")
    pg.init()
    redis.start()
    try:
        return _run(args, workdir, pg, redis)
    finally:
        redis.stop()
        pg.stop()


def _run(args, workdir: Path, pg: PrivatePostgres, redis: PrivateRedis) -> int:
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(args.pg_port), "-U", "postgres", "-qc",
                    "CREATE DATABASE reach_faults"], check=True)
    sink = Sink()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
    env.update(
        DATABASE_URL=pg.url, REDIS_URL=redis.url, DJANGO_SETTINGS_MODULE="reach.settings", PYTHONUNBUFFERED="1",
        META_GRAPH_URL=f"http://127.0.0.1:{args.meta_port}", META_APP_SECRET=APP_SECRET,
        REACH_ALLOW_HTTP_WEBHOOKS="1", REACH_VAR_DIR=str(workdir / "var"),
        # Short leases so recovery happens inside the run; the reconciliation window must still outlast the
        # outages the suite makes (a killed web process misses status webhooks that Meta retries with a
        # growing backoff), or a send Meta did report would count as unreported.
        DISPATCH_LEASE_SECONDS="3" if args.quick else "10", DISPATCH_RECONCILE_SECONDS="20" if args.quick else "30",
        INBOUND_WEBHOOK_LEASE_SECONDS="15" if args.quick else "30",
        INBOUND_STATUS_ORPHAN_GRACE_SECONDS="120", IDEMPOTENCY_IN_FLIGHT_SECONDS="15",
    )
    os.environ.update(env)
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    data = seed(args.recipients, sink.url)
    from django.db import connections

    connections.close_all()
    fake = subprocess.Popen(
        [sys.executable, "manage.py", "fakemeta", "--port", str(args.meta_port), "--app-secret", APP_SECRET,
         "--webhook-url", f"http://127.0.0.1:{args.web_port}/webhooks/meta", "--lenient-templates",
         "--no-window-check", "--no-pair-limit", "--status-delays", "0.05,0.3,0.8", "--webhook-max-attempts", "14"],
        cwd=ROOT, env=env, stdout=(workdir / "fakemeta.log").open("wb"), stderr=subprocess.STDOUT)
    meta = f"http://127.0.0.1:{args.meta_port}"
    procs = Procs(env, workdir, args.web_port)
    result: dict = {}
    try:
        up = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{meta}/_admin/stats", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > up or fake.poll() is not None:
                    raise RuntimeError("fakemeta did not come up") from None
                time.sleep(0.1)
        for pn, waba in ((PN_API, WABA_API), (PN_CMP, WABA_CMP)):
            requests.post(f"{meta}/_admin/numbers", json={"phone_number_id": pn, "waba_id": waba,
                                                          "display_phone_number": f"+1555{pn[-7:]}"}, timeout=5)
        for name in ("web", "worker", "beat"):
            procs.start(name)
        procs.wait_web()
        load = ApiLoad(f"http://127.0.0.1:{args.web_port}", data["api"]["key"])
        t0 = time.monotonic()
        threads = load.start()
        s = args.seconds
        timeline = [
            (0.10 * s, "SIGKILL web", lambda: (procs.kill("web"), procs.start("web"))),
            (0.20 * s, "SIGKILL worker", lambda: (procs.kill("worker"), procs.start("worker"))),
            (0.30 * s, "restart PostgreSQL", pg.restart),
            (0.40 * s, "launch the campaign", lambda: _launch(data["campaign"])),
            (0.50 * s, "FLUSHALL + restart Redis", redis.flush_and_restart),
            (0.60 * s, "SIGKILL worker (mid-campaign)", lambda: (procs.kill("worker"), procs.start("worker"))),
            (0.70 * s, "SIGKILL web", lambda: (procs.kill("web"), procs.start("web"))),
        ]
        faults = []
        for at, name, action in timeline:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            log(name)
            action()
            faults.append(name)
        time.sleep(max(0.0, s - (time.monotonic() - t0)))
        # A restarted web process boots slowly on a loaded machine: keep the client going until some sends
        # went through the faulted system (bounded).
        until = time.monotonic() + 180
        while len(load.accepted) < args.min_accepted and time.monotonic() < until:
            time.sleep(0.5)
        load.stop.set()
        for t in threads:
            t.join(timeout=90)
        log(f"load stopped: {len(load.accepted)} accepted; settling (up to {args.settle:.0f} s)")
        result = _settle_and_count(data, load, sink, meta, args.settle)
        result["faults"] = faults
    finally:
        procs.stop_all()
        fake.terminate()
        fake.wait(timeout=10)
        connections.close_all()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_table(result)
    zero = ("accepted_lost", "sent_to_meta_more_than_once", "webhook_deliveries_lost", "campaign_doubled",
            "campaign_skipped")
    return 0 if all(result.get(k) == 0 for k in zero) else 1


def _launch(campaign) -> None:
    from django.db import connections

    from apps.campaigns import services

    for attempt in range(30):  # PostgreSQL may still be coming back
        try:
            services.campaign_start(campaign=campaign)
            return
        except Exception:  # noqa: BLE001
            connections.close_all()
            time.sleep(0.5)
            if attempt == 29:
                raise


def _settle_and_count(data: dict, load: ApiLoad, sink: Sink, meta: str, settle: float) -> dict:
    from django.db import connections

    from apps.campaigns.models import Campaign, CampaignRecipient
    from apps.conversations.models import Message
    from apps.core.events import event_type_is_public
    from apps.core.models import Event
    from apps.webhooks.models import WebhookDelivery

    final = ("sent", "delivered", "read", "failed")
    campaign = data["campaign"]
    deadline = time.monotonic() + settle
    while True:
        try:
            ids = list(load.accepted.values())
            unfinished = Message.objects.filter(pk__in=ids).exclude(status__in=final).count()
            cmp_unfinished = Message.objects.filter(campaign_id=campaign.pk).exclude(status__in=final).count()
            cmp_status = Campaign.objects.get(pk=campaign.pk).status
            pending = WebhookDelivery.objects.exclude(status="delivered").count()
            meta_pending = requests.get(f"{meta}/_admin/stats", timeout=5).json().get("pending_webhooks", 0)
            done = not unfinished and not cmp_unfinished and cmp_status == "completed" and not pending \
                and not meta_pending
        except Exception as exc:  # noqa: BLE001
            connections.close_all()
            log(f"settle check failed: {exc}")
            done = False
        if done or time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(2)  # the sink answers before the sender records the delivery
    ids = list(load.accepted.values())
    found = dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))
    lost = [i for i in ids if found.get(i) not in final]
    sends = requests.get(f"{meta}/_admin/sends", timeout=5).json()
    workspaces = [data["api"]["workspace"].pk, data["cmp"]["workspace"].pk]
    public = [(pk, t) for pk, t in Event.objects.filter(workspace_id__in=workspaces).values_list("pk", "type")
              if event_type_is_public(t)]
    missing = [pk for pk, _ in public if pk not in sink.ids]
    contacts = data["cmp"]["workspace"].contacts.count() if hasattr(data["cmp"]["workspace"], "contacts") else None
    per_contact = Counter(Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", flat=True))
    recipients = CampaignRecipient.objects.filter(campaign_id=campaign.pk)
    finished_recipients = set(Message.objects.filter(campaign_id=campaign.pk, status__in=final)
                              .values_list("contact_id", flat=True))
    skipped = recipients.exclude(contact_id__in=finished_recipients).count()
    stats = requests.get(f"{meta}/_admin/stats", timeout=5).json()
    return {
        "api_sends_accepted": len(ids), "api_refused": dict(load.refused), "api_retried": dict(load.retried),
        "accepted_lost": len(lost), "accepted_lost_sample": lost[:5],
        "statuses": dict(Counter(found.values())),
        "sent_to_meta_distinct": sends["distinct"], "sent_to_meta_more_than_once": len(sends["repeated"]),
        "repeated_sample": dict(list(sends["repeated"].items())[:5]),
        "repeated_attempts": _attempts_of(list(sends["repeated"])[:5]),
        "public_events": len(public), "webhook_deliveries_lost": len(missing),
        "webhook_deliveries_duplicated": sum(1 for n in sink.ids.values() if n > 1),
        "campaign_status": Campaign.objects.get(pk=campaign.pk).status, "campaign_contacts": contacts,
        "campaign_recipients": recipients.count(), "campaign_messages": sum(per_contact.values()),
        "campaign_doubled": sum(1 for n in per_contact.values() if n > 1), "campaign_skipped": skipped,
        "meta_webhooks": {k: v for k, v in stats.items() if k.startswith("webhooks") or k == "sends"},
    }


def _attempts_of(ids: list[str]) -> dict:
    """For a message sent more than once: its attempt rows, to tell which road sent it again."""
    from apps.conversations.models import MessageAttempt

    out: dict = {}
    for a in MessageAttempt.objects.filter(message_id__in=ids).order_by("message_id", "number"):
        out.setdefault(a.message_id, []).append(
            f"#{a.number} {a.outcome} {a.error_code} {a.started_at:%H:%M:%S.%f}"[:-3])
    return out


def _print_table(r: dict) -> None:
    rows = [
        ("API messages accepted (202)", r.get("api_sends_accepted")),
        ("accepted messages lost", r.get("accepted_lost")),
        ("messages sent to Meta (distinct ids)", r.get("sent_to_meta_distinct")),
        ("messages sent to Meta more than once", r.get("sent_to_meta_more_than_once")),
        ("public events / webhook deliveries lost", f"{r.get('public_events')} / {r.get('webhook_deliveries_lost')}"),
        ("Meta status webhooks dropped (fakemeta gave up posting)", r.get("meta_webhooks", {}).get("webhooks_failed", 0)),
        ("campaign recipients / messages", f"{r.get('campaign_recipients')} / {r.get('campaign_messages')}"),
        ("campaign recipients doubled", r.get("campaign_doubled")),
        ("campaign recipients skipped", r.get("campaign_skipped")),
        ("campaign status", r.get("campaign_status")),
    ]
    print("| count | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nfaults: {', '.join(r.get('faults', []))}")
    print(f"final statuses of accepted messages: {r.get('statuses')}; refused: {r.get('api_refused')}; "
          f"client retries: {r.get('api_retried')}")
    print(f"fakemeta: {r.get('meta_webhooks')}; duplicated webhook deliveries (at-least-once): "
          f"{r.get('webhook_deliveries_duplicated')}")


if __name__ == "__main__":
    sys.exit(main())
