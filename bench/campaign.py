"""Benchmark: a 100,000-recipient campaign.

1. Materialisation: time for `campaign_materialize` (the launch's audience expansion into CampaignRecipient
   rows) next to the ceiling, a raw PostgreSQL `INSERT … SELECT` of the same rows into a table built
   `LIKE campaigns_campaignrecipient INCLUDING ALL` (same unique constraint and indexes). Median of --runs.
2. Hand-out (with --hand-out): a fresh campaign's --recipients recipients (the MARKETING template "Hi {{1}}, news
   from {{2}}!" with {{contact.first_name|there}} and {{contact.custom_fields.city|Reach}}) materialised, then
   all handed out by `campaign_hand_out_batch` in a loop (batches of CAMPAIGN_BATCH_SIZE, no dispatcher
   running), once with the SQL form and once with the Python form (CAMPAIGN_HAND_OUT_SQL; a fresh campaign
   each, same audience, each from no messages and no conversations), next to the ceiling: one raw
   `INSERT … SELECT` of as many message rows (every column, bodies from plain SQL concatenation) into a table
   built `LIKE conversations_message INCLUDING ALL`. Reports rows/s of each and the ratios to the ceiling.
   Median of --runs.
3. Send rate (unless --skip-send): the campaign runs against `manage.py fakemeta` (a subprocess on a free
   loopback port) with the number at --mps; one pump process (campaign_pump) and --feeders processes
   (campaign_feed) hand recipients to the dispatcher, --workers processes run dispatch_drain. Reports the sustained rate from the messages'
   sent_at, the busiest second (by sent_at, the answer's time, and by the attempts' started_at, the request's
   time, which is the pace Meta sees), and how many attempts failed with 130429 (throughput) or 131056 (pair
   rate).

Needs PostgreSQL and Redis; use a database of its own (it is dropped and recreated with --fresh):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reach_camp_bench REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/campaign.py --fresh --recipients 100000 --mps 1000 --workers 3 --feeders 0

On 2 cores the pump alone feeds 1,000 mps (the hand-out is one set-based statement per batch); every extra
feeder process polls and takes CPU from the dispatchers.

Hand-out figures, 2026-12-03, on the shared 2-core machine with other work running (so the absolute rates
wander; compare the ratios within one pass), CAMPAIGN_BATCH_SIZE 500, medians of 3 runs:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reach_ho_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/campaign.py --fresh --recipients 30000 --hand-out --skip-send --runs 3

                      INSERT…SELECT ceiling   SQL form              Python form           Python / SQL
    30,000, pass 1    12,340 rows/s           2,042 rows/s  0.165×  856 rows/s    0.069×  0.42
    30,000, pass 2    26,617 rows/s           4,042 rows/s  0.152×  1,139 rows/s  0.043×  0.28
    100,000 (once)    20,938 rows/s           2,184 rows/s  0.104×  959 rows/s    0.046×  0.44

(the 100,000 pass: the same command with --recipients 100000; its first run shared the CPU with a test run.)
Issue 15's rule, "the campaign's SQL renderer stays only if the Python form is under 0.5× INSERT…SELECT":
the Python form is 0.04–0.07× the ceiling, so the SQL renderer (`_hand_out_sql`, variables.sql_render,
writer.messages_enqueue_query) stays; it hands out 2.3–3.6× as fast as the Python form. It is pinned to the
Python form by tests/campaigns/test_hand_out_sql.py (every message column but ids and insert timestamps, the
recipients' statuses and times, the conversations it opens) and tests/conversations/test_writer.py (the
batch statement against messages_enqueue_bulk). Neither form is near the ceiling: the ceiling is one
statement with no conversations to find or open, no recipients to lock and link, no batches.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from urllib.parse import urlparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings")
PN_META_ID, WABA_META_ID = "900100200300", "900100200399"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"fakemeta did not start on {port}")


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith("reach_") or "bench" not in name:
        raise SystemExit(f"--fresh drops the database; refusing for {name!r} (name it reach_*bench*)")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django():
    import django

    django.setup()


# --- seeding -----------------------------------------------------------------------------------------


def seed(recipients: int, mps: int):
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.contacts.models import Contact
    from apps.core import services as core
    from apps.core.models import Workspace
    from apps.message_templates.models import MessageTemplate
    from apps.wabas.models import PhoneNumber
    from apps.wabas.services import waba_connect

    ws = Workspace.objects.filter(slug="bench-campaign", is_sandbox=False).first()
    if ws is None:
        ws = core.workspace_create(name="Bench campaign", slug="bench-campaign")
    number = waba_connect(workspace=ws, meta_waba_id=WABA_META_ID, phone_number_id=PN_META_ID,
                          display_phone_number="+15550100001", access_token="bench-token")
    PhoneNumber.objects.filter(pk=number.pk).update(throughput_mps=mps, messaging_tier="TIER_UNLIMITED")
    MessageTemplate.objects.get_or_create(
        workspace=ws, waba=number.waba, name="bench_promo", language="en",
        defaults={"category": "MARKETING", "status": "APPROVED",
                  "components": [{"type": "BODY", "text": "Hi {{1}}, news from {{2}}!"}]},
    )
    have = Contact.objects.filter(workspace=ws).count()
    t = time.perf_counter()
    batch = []
    for i in range(have, recipients):
        batch.append(Contact(workspace=ws, phone=f"+4477{i:08d}", wa_id=f"4477{i:08d}", name=f"Person {i}",
                             custom_fields={"city": ("Delhi", "Pune", "Leeds")[i % 3]}))
        if len(batch) == 10000:
            Contact.objects.bulk_create(batch)
            batch = []
    if batch:
        Contact.objects.bulk_create(batch)
    print(f"seeded {recipients - have} contacts in {time.perf_counter() - t:.1f}s (workspace {ws.pk})", flush=True)
    return ws, PhoneNumber.objects.get(pk=number.pk)


def new_campaign(ws, number, name: str):
    from apps.campaigns import services
    from apps.campaigns.models import Audience
    from apps.core.models import API_SCOPES
    from apps.core.tenancy import Tenant

    audience = Audience.objects.filter(workspace=ws, name="everyone").first() or services.audience_create(
        workspace=ws, name="everyone", filter={})
    tenant = Tenant(workspace=ws, scopes=frozenset(API_SCOPES))
    return services.campaign_create(tenant=tenant, data={
        "name": name, "template": {"name": "bench_promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk,
        "variables": {"1": "{{contact.first_name|there}}", "2": "{{contact.custom_fields.city|Reach}}"},
    })


# --- 1. materialisation -----------------------------------------------------------------------------------


def bench_materialize(ws, number, runs: int) -> dict:
    """Ceiling: the raw statement into the very same table (same FKs, unique constraint and indexes) for a
    campaign row of its own; also shown, a copy of the table without foreign keys (LIKE … INCLUDING ALL)."""
    from django.db import connection, transaction

    from apps.campaigns import services
    from apps.campaigns.models import Campaign, CampaignRecipient

    table = CampaignRecipient._meta.db_table
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_recipient_nofk")
        cur.execute(f"CREATE TABLE bench_recipient_nofk (LIKE {table} INCLUDING ALL)")
        cur.execute("SELECT count(*) FROM contacts_contact WHERE workspace_id = %s", [ws.pk])  # warm the cache
        expected = cur.fetchone()[0]

    def raw_into(target: str, campaign_id: str) -> float:
        t = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {target} (campaign_id, contact_id, status) "
                "SELECT %s, id, 'pending' FROM contacts_contact WHERE workspace_id = %s",
                [campaign_id, ws.pk],
            )
            assert cur.rowcount == expected
        return time.perf_counter() - t

    def reset() -> None:
        # TRUNCATE (no dead tuples) so every run starts alike; this database holds bench data only.
        with connection.cursor() as cur:
            cur.execute(f"TRUNCATE {table}, bench_recipient_nofk")

    raw_times, nofk_times, ours_times = [], [], []
    for run in range(runs):
        reset()
        ceiling = new_campaign(ws, number, f"ceiling {run}")
        raw_times.append(raw_into(table, ceiling.pk))
        reset()
        nofk_times.append(raw_into("bench_recipient_nofk", "cmp_ceiling"))
        reset()
        campaign = new_campaign(ws, number, f"materialize {run}")
        Campaign.objects.filter(pk=campaign.pk).update(status="running")
        t = time.perf_counter()
        added = services.campaign_materialize(campaign=campaign)
        ours_times.append(time.perf_counter() - t)
        assert added == expected, (added, expected)
        Campaign.objects.filter(pk__in=[campaign.pk, ceiling.pk]).update(status="canceled")
        print(f"  run {run + 1}: raw INSERT…SELECT {raw_times[-1]:.3f}s (no-FK copy {nofk_times[-1]:.3f}s), "
              f"campaign_materialize {ours_times[-1]:.3f}s", flush=True)
    reset()
    with connection.cursor() as cur:
        cur.execute("DROP TABLE bench_recipient_nofk")
        cur.execute(f"VACUUM ANALYZE {table}")
    raw, ours = statistics.median(raw_times), statistics.median(ours_times)
    return {"rows": expected, "raw_insert_select_s": round(raw, 3), "campaign_materialize_s": round(ours, 3),
            "speed_vs_ceiling": round(raw / ours, 3),
            "raw_no_fk_table_s": round(statistics.median(nofk_times), 3),
            "speed_vs_no_fk_table": round(statistics.median(nofk_times) / ours, 3),
            "raw_runs": [round(x, 3) for x in raw_times], "ours_runs": [round(x, 3) for x in ours_times]}


# --- 1b. hand-out: the Python form, the SQL form and the INSERT … SELECT ceiling ----------------------------


def _ceiling_insert(*, target: str, campaign, template, now) -> int:
    """The message rows a hand-out writes, as ONE raw statement: every column of the messages table, the body
    and variables rendered by plain SQL concatenation (the bench template's two variables, no per-row checks),
    the conversation id made up (the `LIKE` copy has no foreign keys). Returns the rows written."""
    from django.db import connection

    from apps.campaigns.models import CampaignRecipient
    from apps.conversations.models import Message

    v1 = "coalesce(nullif(split_part(btrim(coalesce(c.name, '')), ' ', 1), ''), 'there')"
    v2 = "coalesce(nullif(btrim(coalesce(c.custom_fields ->> 'city', '')), ''), 'Reach')"
    explicit = {
        "id": ("'msg_bench_' || r.id", []),
        "workspace": ("%s", [campaign.workspace_id]),
        "conversation": ("'cnv_bench_' || c.id", []),
        "contact": ("c.id", []),
        "phone_number": ("%s", [campaign.phone_number_id]),
        "direction": ("%s", [Message.Direction.OUTBOUND.value]),
        "channel": ("%s", [Message.Channel.WHATSAPP.value]),
        "type": ("%s", ["template"]),
        "to_phone": ("c.phone", []),
        "content": (f"jsonb_build_object('name', %s::text, 'language', %s::text, 'variables', "
                    f"jsonb_build_array({v1}, {v2}))", [template.name, template.language]),
        "body": (f"'Hi ' || {v1} || ', news from ' || {v2} || '!'", []),
        "template": ("%s", [template.pk]),
        "template_category": ("%s", [template.category]),
        "status": ("%s", [Message.Status.QUEUED.value]),
        "campaign_id": ("%s", [campaign.pk]),
        "sent_by": ("%s", ["campaign"]),
        "next_attempt_at": ("%s", [now]),
        "expires_at": ("%s", [now]),
        "cost_estimate": ("%s", [0]),
    }
    columns, exprs, params = [], [], []
    for field in Message._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        cast = field.cast_db_type(connection)
        if field.name in explicit:
            sql, values = explicit[field.name]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            sql, values = "%s", [now]
        else:
            sql, values = "%s", [field.get_db_prep_save(field.get_default(), connection)]
        exprs.append(f"{sql}::{cast}" if sql == "%s" else sql)
        params.extend(values)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {target} ({', '.join(columns)}) SELECT {', '.join(exprs)} "
            f"FROM {CampaignRecipient._meta.db_table} r JOIN contacts_contact c ON c.id = r.contact_id "
            "WHERE r.campaign_id = %s AND r.status = 'pending'",
            [*params, campaign.pk],
        )
        return cur.rowcount


def bench_hand_out(ws, number, runs: int) -> dict:
    """All of a fresh campaign's recipients handed out by `campaign_hand_out_batch` in a loop (batches of
    CAMPAIGN_BATCH_SIZE, no dispatcher running), once with the SQL form and once with the Python form
    (CAMPAIGN_HAND_OUT_SQL), each from no messages and no conversations (both open one per contact); and the
    ceiling, one raw INSERT … SELECT of as many message rows into a table `LIKE conversations_message
    INCLUDING ALL`. Median of --runs."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import override_settings
    from django.utils import timezone

    from apps.campaigns import services
    from apps.campaigns.models import Campaign, CampaignRecipient
    from apps.conversations.models import Conversation, Message

    msg_table, recipient_table = Message._meta.db_table, CampaignRecipient._meta.db_table
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_message_nofk")
        cur.execute(f"CREATE TABLE bench_message_nofk (LIKE {msg_table} INCLUDING ALL)")

    def reset() -> None:
        # TRUNCATE (no dead tuples) so every form starts alike; this database holds bench data only.
        with connection.cursor() as cur:
            cur.execute(f"TRUNCATE {msg_table}, {Conversation._meta.db_table}, {recipient_table}, "
                        "bench_message_nofk CASCADE")

    def materialized(name: str):
        campaign = new_campaign(ws, number, name)
        Campaign.objects.filter(pk=campaign.pk).update(status="running")
        services.campaign_materialize(campaign=campaign)
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {recipient_table}")
        campaign.refresh_from_db()
        return campaign

    def hand_out(form: str, run: int) -> tuple[float, int]:
        reset()
        campaign = materialized(f"hand-out {form} {run}")
        with override_settings(CAMPAIGN_HAND_OUT_SQL=form == "sql"):
            t = time.perf_counter()
            while services.campaign_hand_out_batch(campaign_id=campaign.pk, limit=settings.CAMPAIGN_BATCH_SIZE):
                pass
            elapsed = time.perf_counter() - t
        written = Message.objects.filter(campaign_id=campaign.pk).count()
        Campaign.objects.filter(pk=campaign.pk).update(status="canceled")
        return elapsed, written

    times: dict[str, list[float]] = {"ceiling": [], "sql": [], "python": []}
    rows = None
    for run in range(runs):
        reset()
        campaign = materialized(f"hand-out ceiling {run}")
        t = time.perf_counter()
        with transaction.atomic():
            rows = _ceiling_insert(target="bench_message_nofk", campaign=campaign, template=campaign.template,
                                   now=timezone.now())
        times["ceiling"].append(time.perf_counter() - t)
        Campaign.objects.filter(pk=campaign.pk).update(status="canceled")
        for form in ("sql", "python"):
            elapsed, written = hand_out(form, run)
            assert written == rows, (form, written, rows)
            times[form].append(elapsed)
        print(f"  run {run + 1}: raw INSERT…SELECT {times['ceiling'][-1]:.3f}s, SQL form {times['sql'][-1]:.3f}s, "
              f"Python form {times['python'][-1]:.3f}s ({rows} messages)", flush=True)
    reset()
    with connection.cursor() as cur:
        cur.execute("DROP TABLE bench_message_nofk")
    median = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: rows / v for k, v in median.items()}
    return {
        "messages": rows, "batch_size": settings.CAMPAIGN_BATCH_SIZE,
        "ceiling_rows_per_s": round(rate["ceiling"]), "sql_rows_per_s": round(rate["sql"]),
        "python_rows_per_s": round(rate["python"]),
        "python_vs_ceiling": round(rate["python"] / rate["ceiling"], 3),
        "sql_vs_ceiling": round(rate["sql"] / rate["ceiling"], 3),
        "python_vs_sql": round(rate["python"] / rate["sql"], 3),
        "runs_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
    }


# --- 2. send rate ---------------------------------------------------------------------------------------


def role_pump(campaign_id: str, seconds: float) -> None:
    from apps.campaigns import services

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = services.campaign_pump(campaign_id=campaign_id, max_seconds=30)
        if result in ("completed", "stopped", "paused", "canceled"):
            print(f"pump: {result}", flush=True)
            return
        if result == "claimed":
            time.sleep(0.5)


def role_feed(campaign_id: str, seconds: float) -> None:
    from apps.campaigns import services

    services.campaign_feed(campaign_id=campaign_id, max_seconds=seconds)


def role_dispatch(phone_number_id: str, campaign_id: str, seconds: float) -> None:
    from apps.campaigns.models import Campaign
    from apps.conversations.services.dispatch import dispatch_drain, leases_recover

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dispatch_drain(phone_number_id=phone_number_id, budget_seconds=10)
        if Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first() != "running":
            return
        leases_recover()
        time.sleep(0.05)


def bench_send(ws, number, *, mps: int, workers: int, feeders: int, timeout: float) -> dict:
    from django.db import connection
    from django.db.models import Count, Max, Min

    from apps.campaigns import selectors, services
    from apps.campaigns.models import Campaign
    from apps.conversations.models import Message, MessageAttempt

    port = free_port()
    # The bench runs the feeders as processes itself (there is no Celery worker here to take the pump's tasks).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CAMPAIGN_PUMP_FEEDERS": "0"}
    fake = subprocess.Popen(
        [sys.executable, "manage.py", "fakemeta", "--port", str(port), "--number-mps", f"{PN_META_ID}={mps}",
         "--lenient-templates", "--no-window-check"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    procs = []
    try:
        wait_port(port)
        campaign = new_campaign(ws, number, "send rate")
        env["META_GRAPH_URL"] = f"http://127.0.0.1:{port}"
        services.campaign_start(campaign=campaign)
        connection.close()
        started = time.time()
        me = os.path.abspath(__file__)
        procs.append(subprocess.Popen([sys.executable, me, "--role", "pump", "--campaign", campaign.pk,
                                       "--timeout", str(timeout)], cwd=ROOT, env=env))
        for _ in range(feeders):
            procs.append(subprocess.Popen([sys.executable, me, "--role", "feed", "--campaign", campaign.pk,
                                           "--timeout", str(timeout)], cwd=ROOT, env=env))
        for _ in range(workers):
            procs.append(subprocess.Popen([sys.executable, me, "--role", "dispatch", "--campaign", campaign.pk,
                                           "--phone-number", number.pk, "--timeout", str(timeout)], cwd=ROOT, env=env))
        while time.time() - started < timeout:
            status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
            if status != "running":
                break
            time.sleep(1)
        wall = time.time() - started
        campaign.refresh_from_db()
        stats = selectors.campaign_stats(campaign=campaign)
        msgs = Message.objects.filter(campaign_id=campaign.pk)
        span = msgs.filter(sent_at__isnull=False).aggregate(first=Min("sent_at"), last=Max("sent_at"),
                                                            n=Count("id"))
        with connection.cursor() as cur:
            cur.execute(
                "SELECT date_trunc('second', sent_at) s, count(*) FROM conversations_message "
                "WHERE campaign_id = %s AND sent_at IS NOT NULL GROUP BY 1 ORDER BY 1", [campaign.pk])
            per_second = [row[1] for row in cur.fetchall()]
            # The pace Meta sees: requests started per second (sent_at is when the answer came back, so a
            # stalled process stamps a burst of answers in one second that went out over several).
            cur.execute(
                "SELECT date_trunc('second', a.started_at) s, count(*) FROM conversations_messageattempt a "
                "JOIN conversations_message m ON m.id = a.message_id WHERE m.campaign_id = %s GROUP BY 1 ORDER BY 1",
                [campaign.pk])
            per_second_started = [row[1] for row in cur.fetchall()]
        upstream = dict(
            MessageAttempt.objects.filter(message__campaign_id=campaign.pk, upstream_code__in=(130429, 131056))
            .values_list("upstream_code").annotate(n=Count("id"))
        )
        n = span["n"] or 0
        duration = (span["last"] - span["first"]).total_seconds() if n > 1 else 0
        steady = per_second[1:-1]
        return {
            "campaign_status": campaign.status, "wall_seconds": round(wall, 1), "stats": stats,
            "sent": n, "send_span_seconds": round(duration, 2),
            "sustained_mps": round(n / duration, 1) if duration else None,
            "steady_mean_mps": round(statistics.mean(steady), 1) if steady else None,
            "busiest_second": max(per_second) if per_second else 0,
            "seconds_over_limit": sum(1 for c in per_second if c > mps),
            "busiest_second_by_request_start": max(per_second_started) if per_second_started else 0,
            "request_start_seconds_over_limit": sum(1 for c in per_second_started if c > mps),
            "errors_130429": upstream.get(130429, 0), "errors_131056": upstream.get(131056, 0),
            "target_mps": mps,
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        fake.terminate()
        fake.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--mps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="dispatcher processes")
    parser.add_argument("--feeders", type=int, default=0, help="extra hand-out processes next to the pump")
    parser.add_argument("--runs", type=int, default=3, help="materialisation (and hand-out) runs (median)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the bench database first")
    parser.add_argument("--skip-send", action="store_true")
    parser.add_argument("--hand-out", action="store_true",
                        help="also time the hand-out: SQL form, Python form and the INSERT … SELECT ceiling")
    parser.add_argument("--role", choices=["pump", "feed", "dispatch"], help=argparse.SUPPRESS)
    parser.add_argument("--campaign", help=argparse.SUPPRESS)
    parser.add_argument("--phone-number", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role:
        setup_django()
        if args.role == "pump":
            role_pump(args.campaign, args.timeout)
        elif args.role == "feed":
            role_feed(args.campaign, args.timeout)
        else:
            role_dispatch(args.phone_number, args.campaign, args.timeout)
        return

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("DATABASE_URL must point at a PostgreSQL database of its own")
    if args.fresh:
        recreate_database(url)
    setup_django()
    ws, number = seed(args.recipients, args.mps)
    print("materialisation:", flush=True)
    report = {"materialize": bench_materialize(ws, number, args.runs)}
    print(json.dumps(report["materialize"]), flush=True)
    if args.hand_out:
        print("hand-out:", flush=True)
        report["hand_out"] = bench_hand_out(ws, number, args.runs)
        print(json.dumps(report["hand_out"]), flush=True)
    if not args.skip_send:
        print(f"send rate at {args.mps} mps: 1 pump + {args.feeders} feeder(s), {args.workers} dispatcher(s):",
              flush=True)
        report["send"] = bench_send(ws, number, mps=args.mps, workers=args.workers, feeders=args.feeders,
                                    timeout=args.timeout)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
