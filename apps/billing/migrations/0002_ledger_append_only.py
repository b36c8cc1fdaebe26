"""PostgreSQL: the wallet ledger is append-only, enforced by a trigger (UPDATE and DELETE refused, even in
raw SQL). SQLite skips it (tests/billing checks the PostgreSQL refusal)."""

from django.db import migrations

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION USING MESSAGE = 'the wallet ledger is append-only: ' || TG_OP || ' refused',
            ERRCODE = 'integrity_constraint_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS ledger_append_only ON billing_ledgerentry",
    """
    CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only()
    """,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS ledger_append_only ON billing_ledgerentry",
    "DROP FUNCTION IF EXISTS billing_ledger_append_only()",
]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_wallet_ledger_rate_card")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
