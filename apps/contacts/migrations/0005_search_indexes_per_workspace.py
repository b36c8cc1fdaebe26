"""PostgreSQL-only: the search always filters by workspace, so the trigram indexes lead with workspace_id
(btree_gin lets a GIN index hold the plain equality column). Replaces 0004's name/phone trigram indexes."""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    "DROP INDEX IF EXISTS contact_name_trgm",
    "DROP INDEX IF EXISTS contact_phone_trgm",
    # Django's icontains is UPPER(col::text) LIKE UPPER(...): index that very expression.
    "CREATE INDEX IF NOT EXISTS contact_ws_name_trgm ON contacts_contact "
    "USING gin (workspace_id, (UPPER(name::text)) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS contact_ws_phone_trgm ON contacts_contact "
    "USING gin (workspace_id, phone gin_trgm_ops)",
]

BACKWARD = [
    "DROP INDEX IF EXISTS contact_ws_phone_trgm",
    "DROP INDEX IF EXISTS contact_ws_name_trgm",
]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("contacts", "0004_postgres_search_and_ledger_guard")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
