"""PostgreSQL-only: trigram indexes for name/phone search, and a trigger that keeps the consent ledger
append-only even for raw SQL. SQLite skips both (the ORM guard in models.py still applies)."""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # Django's icontains is UPPER(col::text) LIKE UPPER(%s): index that very expression.
    "CREATE INDEX IF NOT EXISTS contact_name_trgm ON contacts_contact USING gin ((UPPER(name::text)) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS contact_phone_trgm ON contacts_contact USING gin (phone gin_trgm_ops)",
    """
    CREATE OR REPLACE FUNCTION contacts_consent_append_only() RETURNS trigger AS $$
    BEGIN
        -- Erasing a contact (contact_delete) removes its ledger with it; nothing else may.
        IF TG_OP = 'DELETE' AND current_setting('reach.consent_erase', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION USING MESSAGE = 'consent records are append-only: ' || TG_OP || ' refused',
            ERRCODE = 'integrity_constraint_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS consent_append_only ON contacts_consentrecord",
    """
    CREATE TRIGGER consent_append_only BEFORE UPDATE OR DELETE ON contacts_consentrecord
    FOR EACH ROW EXECUTE FUNCTION contacts_consent_append_only()
    """,
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS consent_append_only ON contacts_consentrecord",
    "DROP FUNCTION IF EXISTS contacts_consent_append_only()",
    "DROP INDEX IF EXISTS contact_phone_trgm",
    "DROP INDEX IF EXISTS contact_name_trgm",
]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("contacts", "0003_contact_import_and_list_index")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
