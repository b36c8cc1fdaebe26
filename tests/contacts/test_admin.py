import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.contacts import imports, services
from apps.contacts.models import ConsentRecord, Contact, ContactImport
from apps.core.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser(username="root", email="root@example.com", password="pw-123456")
    client.force_login(user)
    return client


def test_admin_import_page_queues_a_task_and_reports_progress(admin_client, workspace, settings, tmp_path,
                                                             monkeypatch, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    enqueued = []
    monkeypatch.setattr(imports, "_enqueue", enqueued.append)
    page = admin_client.get("/admin/contacts/contactimport/upload/")
    assert page.status_code == 200
    assert b'type="file"' in page.content
    csv = b"phone,name\n+447700900001,Ann\nbad,Bob\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/contacts/contactimport/upload/", {
            "workspace": workspace.pk, "file": SimpleUploadedFile("c.csv", csv, content_type="text/csv")})
    assert response.status_code == 302
    record = ContactImport.objects.get()
    assert enqueued == [record.pk]
    progress_url = f"/admin/contacts/contactimport/{record.pk}/progress/"
    assert admin_client.get(progress_url).json()["status"] == "pending"
    imports.contact_import_run(import_id=record.pk)
    state = admin_client.get(progress_url).json()
    assert (state["status"], state["percent"], state["created"], state["rejected"]) == ("done", 100, 1, 1)
    assert state["rejected_rows"][0]["row"] == 3
    detail = admin_client.get(f"/admin/contacts/contactimport/{record.pk}/change/")
    assert detail.status_code == 200
    assert b"<progress" in detail.content
    assert Contact.objects.filter(workspace=workspace).count() == 1


def test_admin_shows_contacts_with_read_only_consent_history(admin_client, workspace):
    contact = services.contact_upsert_by_phone(workspace=workspace, phone="+447700900001", name="Ann")
    record = services.consent_record(contact=contact, status="opt_out", source="admin", note="called us")
    assert admin_client.get("/admin/contacts/contact/").status_code == 200
    page = admin_client.get(f"/admin/contacts/contact/{contact.pk}/change/")
    assert page.status_code == 200
    assert b"called us" in page.content
    assert admin_client.get(f"/admin/contacts/consentrecord/{record.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/contacts/consentrecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ConsentRecord.objects.filter(pk=record.pk).exists()
    assert admin_client.get("/admin/contacts/consentrecord/add/").status_code == 403


def test_admin_template_sync_action(admin_client, workspace, monkeypatch):
    from apps.message_templates import services as template_services
    from tests.message_templates.factories import TemplateFactory, WabaFactory

    waba = WabaFactory(workspace=workspace)
    template = TemplateFactory(waba=waba, status="PENDING", meta_template_id="5")
    remote = [{"id": "5", "name": template.name, "language": "en_US", "status": "APPROVED", "category": "UTILITY",
               "components": template.components}]

    class Fake:
        def list_templates(self, **kw):
            return remote

    monkeypatch.setattr(template_services, "_provider", lambda waba: Fake())
    response = admin_client.post("/admin/message_templates/messagetemplate/", {
        "action": "sync_from_meta", "_selected_action": [template.pk]}, follow=True)
    assert response.status_code == 200
    template.refresh_from_db()
    assert template.status == "APPROVED"
    page = admin_client.get(f"/admin/message_templates/messagetemplate/{template.pk}/change/")
    assert page.status_code == 200
    assert b"APPROVED" in page.content
