"""Claims with a lease, written once: a compare-and-set that marks up to N due rows as taken until a
deadline, so a killed worker's rows come back when the lease runs out and concurrent workers never take
the same row. On PostgreSQL one statement (UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
RETURNING); elsewhere the ids are read and the update repeats the conditions (the CAS is what makes it
safe)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import QuerySet


def lease_until(seconds: float, now: datetime) -> datetime:
    return now + timedelta(seconds=seconds)


def skip_locked_claim_sql(*, table: str, set_sql: str, where_sql: str, order_sql: str, returning: str,
                          with_sql: str = "", from_sql: str = "") -> str:
    """The one-statement claim. Parameters in order: those of `with_sql`, `set_sql`, `where_sql`, then the
    limit. Table and column names come from the models, values are bound. `with_sql`/`from_sql` join a CTE
    to the UPDATE (e.g. one that relaxes synchronous_commit for this statement only)."""
    head = f"WITH {with_sql} " if with_sql else ""
    joined = f" FROM {from_sql}" if from_sql else ""
    return (f"{head}UPDATE {table} SET {set_sql}{joined} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
            f"WHERE {where_sql} ORDER BY {order_sql} LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {returning}")


def claim_ids(due: QuerySet, *, limit: int, recheck: QuerySet, update: dict) -> list:
    """The portable claim, in one short transaction: the ids of up to `limit` rows of `due` (in its order;
    SKIP LOCKED where the database has it), then one UPDATE of those still matching `recheck` (the
    compare-and-set). Returns the ids read; the caller reloads what the CAS kept when it needs the rows."""
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            recheck.filter(pk__in=ids).update(**update)
    return ids
