"""Consent by opt-in: a workspace with `marketing_requires_opt_in` (new workspaces have it) sends MARKETING
only to contacts with an opt-in row in the ledger; `opted_in` on POST/PATCH /contacts writes that row
(source `api`, the key as evidence); the CSV import's `opted_in` column carries its evidence; existing
workspaces keep their old behaviour through the migration. Runs in the sandbox (simulated number)."""

import importlib
import io

import pytest
from django.apps import apps as django_apps

from apps.contacts import services
from apps.contacts.models import ConsentRecord, Contact
from apps.conversations.models import Message
from apps.core.models import ApiKey, Workspace
from apps.core.services import workspace_create
from tests.message_templates.factories import TemplateFactory

pytestmark = pytest.mark.django_db

BODY = [{"type": "BODY", "text": "Hello {{1}}, see our offers.", "example": {"body_text": [["Ann"]]}}]
PHONE = "+447700900123"


@pytest.fixture
def sandbox(workspace):
    sandbox = Workspace.objects.get(sandbox_of=workspace)
    waba = sandbox.wabas.get()
    TemplateFactory(waba=waba, name="promo", category="MARKETING", components=BODY)
    TemplateFactory(waba=waba, name="receipt", category="UTILITY", components=BODY)
    return sandbox


def _send(api, name, to=PHONE):
    return api.post("/api/v1/messages", {"to": to, "type": "template",
                                         "template": {"name": name, "language": "en_US", "variables": ["Ann"]}},
                    format="json")


def test_new_workspaces_require_an_opt_in_for_marketing():
    assert workspace_create(name="Fresh", slug="fresh").settings["marketing_requires_opt_in"] is True


def test_marketing_to_a_contact_without_an_opt_in_row_is_refused(sandbox_api, sandbox):
    contact = services.contact_upsert_by_phone(workspace=sandbox, phone=PHONE)
    refused = _send(sandbox_api, "promo")
    assert refused.status_code == 422, refused.json()
    assert refused.json()["error"]["code"] == "CONTACT_NOT_OPTED_IN"
    assert refused.json()["error"]["details"] == {"field": "to"}
    assert Message.objects.count() == 0
    never_seen = _send(sandbox_api, "promo", to="+447700900999")  # no contact at all: no opt-in either
    assert never_seen.json()["error"]["code"] == "CONTACT_NOT_OPTED_IN"
    assert Message.objects.count() == 0
    assert _send(sandbox_api, "receipt").status_code == 202  # UTILITY needs no opt-in
    assert sandbox_api.patch(f"/api/v1/contacts/{contact.pk}", {"opted_in": True}, format="json").status_code == 200
    assert _send(sandbox_api, "promo").status_code == 202
    assert Message.objects.count() == 2


def test_a_workspace_that_turned_it_off_sends_marketing_without_a_row(sandbox_api, sandbox, workspace):
    workspace.settings = {**workspace.settings, "marketing_requires_opt_in": False}
    workspace.save(update_fields=["settings"])
    services.contact_upsert_by_phone(workspace=sandbox, phone=PHONE)
    assert _send(sandbox_api, "promo").status_code == 202


def test_opted_in_on_create_and_update_writes_api_ledger_rows_with_the_key(live_api, workspace):
    created = live_api.post("/api/v1/contacts", {"phone": PHONE, "name": "Ann", "opted_in": True}, format="json")
    assert created.status_code == 201
    assert created.json()["opted_in"] is True
    key = ApiKey.objects.get(workspace=workspace)
    rows = list(ConsentRecord.objects.values_list("status", "source", "api_key_id"))
    assert rows == [("opt_in", "api", key.pk)]
    cid = created.json()["id"]
    again = live_api.patch(f"/api/v1/contacts/{cid}", {"opted_in": True}, format="json")
    assert again.json()["opted_in"] is True
    assert ConsentRecord.objects.count() == 1  # no change, no row
    out = live_api.patch(f"/api/v1/contacts/{cid}", {"opted_in": False}, format="json")
    assert out.status_code == 200 and out.json()["opted_in"] is False
    history = live_api.get(f"/api/v1/contacts/{cid}/consents").json()["data"]
    assert [(h["status"], h["source"], h["api_key_id"]) for h in history] == [
        ("opt_out", "api", key.pk), ("opt_in", "api", key.pk)]
    plain = live_api.post("/api/v1/contacts", {"phone": "+447700900124"}, format="json").json()
    assert plain["opted_in"] is False  # never said: not opted in
    assert Contact.objects.get(pk=plain["id"]).opted_in is None


def test_the_import_carries_the_opt_in_and_its_evidence(live_api, workspace):
    csv = (b"phone,name,opted_in,opted_in_evidence\n"
           b"+447700900001,Ann,yes,web form 2026-03-01 from 203.0.113.9\n"
           b"+447700900002,Bob,,\n")
    response = live_api.post("/api/v1/contacts/import", {"file": io.BytesIO(csv)}, format="multipart")
    assert response.status_code == 200, response.content
    record = ConsentRecord.objects.get()
    assert (record.status, record.source) == ("opt_in", "import")
    assert record.note == "CSV import, row 2: web form 2026-03-01 from 203.0.113.9"
    assert record.api_key_id == ApiKey.objects.get(workspace=workspace).pk
    states = dict(Contact.objects.values_list("phone", "opted_in"))
    assert states == {"+447700900001": True, "+447700900002": None}


def test_the_migration_keeps_existing_workspaces_as_they_were(db):
    migration = importlib.import_module("apps.contacts.migrations.0006_contact_waba_and_consent_without_row")
    old = Workspace.objects.create(name="Old", slug="old")  # made before the setting existed
    chosen = Workspace.objects.create(name="Chose", slug="chose", settings={"marketing_requires_opt_in": True})
    silent = Contact.objects.create(workspace=old, phone=PHONE, opted_in=True)  # the old default, no row
    migration.forward(django_apps, None)
    old.refresh_from_db()
    chosen.refresh_from_db()
    silent.refresh_from_db()
    assert old.settings == {"marketing_requires_opt_in": False}
    assert chosen.settings == {"marketing_requires_opt_in": True}
    assert silent.opted_in is None  # "no row" is no longer stored as opted in
