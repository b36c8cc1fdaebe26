"""Time a 100,000-row contact CSV import (bounded, local) and print rows/s, then the query plans of the
contact list's search filters at that size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reach_cont .venv/bin/python bench/contacts_import.py [--rows N]

Runs against the database in DATABASE_URL (migrated first); creates a throwaway workspace and deletes it
at the end. Without DATABASE_URL it uses the embedded SQLite database.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings")


def build_csv(rows: int) -> bytes:
    lines = ["phone,name,email,tags,external_id,plan,city"]
    for i in range(rows):
        lines.append(f"+4477{i:08d},Person {i},p{i}@example.com,{'vip;beta' if i % 10 == 0 else 'regular'},"
                     f"crm-{i},{'gold' if i % 3 == 0 else 'silver'},City {i % 97}")
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench workspace")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from apps.contacts import selectors
    from apps.contacts.imports import contacts_import_csv
    from apps.contacts.models import Contact
    from apps.core.models import Workspace
    from apps.core.services import workspace_create

    call_command("migrate", verbosity=0)
    workspace = workspace_create(name=f"bench {time.time_ns()}")
    data = build_csv(args.rows)
    print(f"database: {connection.vendor}; file: {len(data) / 1e6:.1f} MB, {args.rows} rows")
    db_seconds = [0.0]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            db_seconds[0] += time.perf_counter() - started

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(a busy machine inflates the wall time; the CPU column is this process alone)")
    try:
        for label in ("first import", "re-import"):
            db_seconds[0] = 0.0
            started, cpu = time.perf_counter(), time.process_time()
            with connection.execute_wrapper(timed):
                report = contacts_import_csv(workspace=workspace, fileobj=io.BytesIO(data))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(f"{label:13s}: {wall:6.2f} s wall  {args.rows / wall:7.0f} rows/s  | python CPU {cpu:5.2f} s, "
                  f"waiting on the database {db_seconds[0]:5.2f} s | created={report.created} "
                  f"updated={report.updated} rejected={report.rejected}")
        assert Contact.objects.filter(workspace=workspace).count() == args.rows
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE contacts_contact")
                cursor.execute("ANALYZE contacts_contacttag")
            for label, qs in (
                ("search name", selectors.contact_list(workspace=workspace, search="person 4242")),
                ("search phone", selectors.contact_list(workspace=workspace, search="+44770004242")),
                ("tag", selectors.contact_list(workspace=workspace, tag="vip")),
                ("opted_in", selectors.contact_list(workspace=workspace, opted_in="false")),
            ):
                sql, params = qs.order_by("-pk")[:26].query.sql_with_params()
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("EXPLAIN ANALYZE " + sql, params)
                    plan = [row[0] for row in cursor.fetchall()]
                print(f"\n-- {label}:")
                print("\n".join(plan))
    finally:
        if not args.keep:
            from apps.contacts.models import ContactTag

            with transaction.atomic():  # no ledger rows are created here, so plain deletes are allowed
                ContactTag.objects.filter(workspace=workspace)._raw_delete(ContactTag.objects.db)
                Contact.objects.filter(workspace=workspace)._raw_delete(Contact.objects.db)
                Workspace.objects.filter(sandbox_of=workspace).delete()
                workspace.delete()


if __name__ == "__main__":
    main()
