import pytest
from django.db import DatabaseError, connection, transaction

from apps.contacts import selectors, services
from apps.contacts.models import ConsentRecord, Contact, LedgerImmutable
from apps.core.models import Event, Workspace
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(workspace):
    return ContactFactory(workspace=workspace, phone="+447700900001")


def test_consent_record_appends_updates_the_cache_and_emits(contact, workspace):
    with transaction.atomic():
        record = services.consent_record(contact=contact, status="opt_out", source="api", note="asked by phone",
                                         api_key_id="ak_1")
    contact.refresh_from_db()
    assert contact.opted_in is False
    assert contact.consent_updated_at == record.created_at
    assert selectors.contact_is_opted_out(contact=contact) is True
    assert selectors.contact_opted_in_from_ledger(contact=contact) is False
    event = Event.objects.get(workspace=workspace, type="contact.opted_out")
    assert event.data["contact_id"] == contact.pk
    assert event.data["consent"]["note"] == "asked by phone"
    assert event.data["consent"]["api_key_id"] == "ak_1"
    services.consent_record(contact=contact, status="opt_in", source="admin")
    contact.refresh_from_db()
    assert contact.opted_in is True
    assert Event.objects.filter(workspace=workspace, type="contact.opted_in").count() == 1
    assert list(ConsentRecord.objects.filter(contact=contact).order_by("id").values_list("status", flat=True)) == [
        "opt_out", "opt_in"]


def test_consent_record_rejects_unknown_values_and_writes_nothing(contact):
    from apps.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.consent_record(contact=contact, status="maybe", source="api")
    with pytest.raises(ValidationFailed):
        services.consent_record(contact=contact, status="opt_out", source="telepathy")
    assert ConsentRecord.objects.count() == 0
    assert Event.objects.filter(type__startswith="contact.").count() == 0


def test_a_failed_transaction_rolls_back_row_cache_and_event(contact):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.consent_record(contact=contact, status="opt_out", source="api")
        raise RuntimeError("caller failed later")
    contact.refresh_from_db()
    assert contact.opted_in is None  # no row, as before
    assert ConsentRecord.objects.count() == 0
    assert Event.objects.filter(type="contact.opted_out").count() == 0


def test_ledger_is_immutable_through_the_orm(contact):
    record = services.consent_record(contact=contact, status="opt_out", source="api")
    record.note = "edited"
    with pytest.raises(LedgerImmutable):
        record.save()
    with pytest.raises(LedgerImmutable):
        record.delete()
    with pytest.raises(LedgerImmutable):
        ConsentRecord.objects.filter(pk=record.pk).update(status="opt_in")
    with pytest.raises(LedgerImmutable):
        ConsentRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(LedgerImmutable):
        ConsentRecord.objects.all().delete()
    with pytest.raises(LedgerImmutable):
        ConsentRecord.objects.bulk_update([record], ["note"])
    fresh = ConsentRecord.objects.get(pk=record.pk)
    assert (fresh.status, fresh.note) == ("opt_out", "")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_ledger_is_immutable_even_for_raw_sql_on_postgres(contact):
    record = services.consent_record(contact=contact, status="opt_out", source="api")
    for sql in ("UPDATE contacts_consentrecord SET status = 'opt_in' WHERE id = %s",
                "DELETE FROM contacts_consentrecord WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [record.pk])
    assert ConsentRecord.objects.get(pk=record.pk).status == "opt_out"


def test_erasing_the_contact_is_the_one_way_its_ledger_goes(contact):
    services.consent_record(contact=contact, status="opt_out", source="api")
    services.contact_delete(contact=contact)
    assert ConsentRecord.objects.count() == 0
    assert Contact.objects.count() == 0
    if connection.vendor == "postgresql":  # the escape hatch is transaction-local
        with connection.cursor() as cur:
            cur.execute("SELECT current_setting('reach.consent_erase', true)")
            assert cur.fetchone()[0] in (None, "", "off")


def test_stop_word_from_inbound_records_keyword_evidence(contact, workspace):
    with transaction.atomic():
        assert services.consent_from_inbound_text(contact=contact, text="  Stop ", inbound_message_id="msg_1") == \
            "opt_out"
    record = ConsentRecord.objects.get(contact=contact)
    assert (record.source, record.inbound_message_id, record.status) == ("keyword", "msg_1", "opt_out")
    assert Event.objects.filter(workspace=workspace, type="contact.opted_out").count() == 1
    with transaction.atomic():
        assert services.consent_from_inbound_text(contact=contact, text="ARRÊT", inbound_message_id="msg_2") == \
            "opt_out"
        assert services.consent_from_inbound_text(contact=contact, text="stop sending please",
                                                  inbound_message_id="msg_3") is None
        assert services.consent_from_inbound_text(contact=contact, text="start", inbound_message_id="msg_4") == \
            "opt_in"
    contact.refresh_from_db()
    assert contact.opted_in is True
    assert ConsentRecord.objects.filter(contact=contact).count() == 3


def test_meta_user_preferences_stop_and_resume(workspace):
    with transaction.atomic():
        record = services.consent_from_meta_preference(workspace=workspace, wa_id="447700900009", bsuid=None,
                                                       value="stop")
    contact = Contact.objects.get(workspace=workspace, phone="+447700900009")
    assert contact.opted_in is False
    assert record.source == "meta_user_preferences"
    services.consent_from_meta_preference(workspace=workspace, wa_id="447700900009", bsuid=None, value="resume")
    contact.refresh_from_db()
    assert contact.opted_in is True
    assert services.consent_from_meta_preference(workspace=workspace, wa_id="447700900009", bsuid=None,
                                                 value="weird") is None
    assert ConsentRecord.objects.filter(contact=contact).count() == 2


def test_opt_out_confirmation_text_is_a_workspace_setting(workspace):
    sandbox = Workspace.objects.get(sandbox_of=workspace)
    assert selectors.opt_out_confirmation_text(workspace=workspace) is None
    workspace.settings = {"opt_out_confirmation_text": "You are unsubscribed. Reply START to resume."}
    workspace.save(update_fields=["settings"])
    sandbox.refresh_from_db()
    assert selectors.opt_out_confirmation_text(workspace=workspace) == \
        "You are unsubscribed. Reply START to resume."
    assert selectors.opt_out_confirmation_text(workspace=sandbox) == "You are unsubscribed. Reply START to resume."


def test_consents_api_appends_and_lists_with_evidence(live_api, workspace):
    cid = live_api.post("/api/v1/contacts", {"phone": "+447700900001"}, format="json").json()["id"]
    response = live_api.post(f"/api/v1/contacts/{cid}/consents", {"status": "opt_out", "note": "form 12"},
                             format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "opt_out"
    assert body["source"] == "api"
    assert body["api_key_id"].startswith("key_")
    assert live_api.get(f"/api/v1/contacts/{cid}").json()["opted_in"] is False
    live_api.post(f"/api/v1/contacts/{cid}/consents", {"status": "opt_in"}, format="json")
    history = live_api.get(f"/api/v1/contacts/{cid}/consents").json()["data"]
    assert [row["status"] for row in history] == ["opt_in", "opt_out"]
    assert live_api.get(f"/api/v1/contacts/{cid}").json()["opted_in"] is True
    bad = live_api.post(f"/api/v1/contacts/{cid}/consents", {"status": "opt_out", "source": "keyword"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["field"] == "source"
    assert ConsentRecord.objects.count() == 2


def test_inbound_upsert_by_phone_then_bsuid(workspace):
    contact, created = services.contact_upsert_from_inbound(workspace=workspace, phone=None, wa_id="5215512345678",
                                                            bsuid="MX.123", profile_name="Lupe")
    assert created is True
    assert contact.phone == "+525512345678"
    again, created = services.contact_upsert_from_inbound(workspace=workspace, phone="+525512345678", wa_id=None,
                                                          bsuid="MX.123", profile_name="Other")
    assert (again.pk, created, again.name) == (contact.pk, False, "Lupe")
    by_bsuid, created = services.contact_upsert_from_inbound(workspace=workspace, phone=None, wa_id=None,
                                                             bsuid="US.999", profile_name=None)
    assert created is True and by_bsuid.phone is None
    filled, created = services.contact_upsert_from_inbound(workspace=workspace, phone="+14155550100", wa_id=None,
                                                           bsuid="US.999", profile_name="Sam")
    assert (filled.pk, created, filled.phone, filled.name) == (by_bsuid.pk, False, "+14155550100", "Sam")


def test_contact_upsert_by_phone_is_idempotent_and_fills_only_empty_names(workspace):
    a = services.contact_upsert_by_phone(workspace=workspace, phone="+44 7700 900001")
    b = services.contact_upsert_by_phone(workspace=workspace, phone="00447700900001", name="Ann")
    c = services.contact_upsert_by_phone(workspace=workspace, phone="447700900001", name="Other")
    assert a.pk == b.pk == c.pk
    assert Contact.objects.get(pk=a.pk).name == "Ann"


def test_last_inbound_moves_forward_only(contact):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    services.contact_inbound_recorded(contact=contact, at=now)
    services.contact_inbound_recorded(contact=contact, at=now - timedelta(hours=1))
    contact.refresh_from_db()
    assert contact.last_inbound_at == now
