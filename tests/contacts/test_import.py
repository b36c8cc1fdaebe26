import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.contacts import imports
from apps.contacts.models import Contact, ContactImport, ContactTag
from apps.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def run(workspace, data: bytes, **kw):
    return imports.contacts_import_csv(workspace=workspace, fileobj=io.BytesIO(data), **kw)


def upload(api, data: bytes, name="contacts.csv", query=""):
    return api.post(f"/api/v1/contacts/import{query}",
                    {"file": SimpleUploadedFile(name, data, content_type="text/csv")}, format="multipart")


def test_import_creates_contacts_with_tags_and_custom_fields(workspace):
    data = (b"phone,name,email,tags,external_id,plan,city\n"
            b"+44 7700 900001,Ann,ann@example.com,vip;beta,crm-1,gold,Leeds\n"
            b'00447700900002,"Bob, Jr",,"a,b",,,\n')
    report = run(workspace, data)
    assert report.as_dict() == {"rows": 2, "created": 2, "updated": 0, "rejected": 0, "rejected_rows": [],
                                "rejected_rows_truncated": False}
    ann = Contact.objects.get(workspace=workspace, phone="+447700900001")
    assert (ann.name, ann.email, ann.external_id) == ("Ann", "ann@example.com", "crm-1")
    assert ann.custom_fields == {"plan": "gold", "city": "Leeds"}
    assert sorted(ann.tag_rows.values_list("name", flat=True)) == ["beta", "vip"]
    bob = Contact.objects.get(workspace=workspace, phone="+447700900002")
    assert bob.name == "Bob, Jr"
    assert bob.custom_fields == {}
    assert sorted(bob.tag_rows.values_list("name", flat=True)) == ["a", "b"]


def test_reimport_updates_merges_and_keeps_what_is_not_given(workspace):
    run(workspace, b"phone,name,tags,plan\n+447700900001,Ann,vip,gold\n")
    report = run(workspace, b"phone,name,email,tags,city\n+447700900001,,a@b.co,new,York\n+447700900003,C,,,\n")
    assert (report.created, report.updated, report.rejected) == (1, 1, 0)
    ann = Contact.objects.get(phone="+447700900001")
    assert ann.name == "Ann"
    assert ann.email == "a@b.co"
    assert ann.custom_fields == {"plan": "gold", "city": "York"}
    assert sorted(ann.tag_rows.values_list("name", flat=True)) == ["new", "vip"]


def test_malformed_rows_are_reported_with_row_numbers_and_not_written(workspace):
    data = ("phone,name,email,tags\n"
            "+447700900001,Good,,\n"  # row 2
            "not-a-phone,Bad,,\n"  # row 3
            "+44 7700 900001,Dupe,,\n"  # row 4: same as row 2
            "+447700900004,Mail,nope,\n"  # row 5
            "\n"  # blank line: skipped, not a row
            "+447700900006,Extra,,,surprise\n"  # row 7
            f"+447700900007,{'x' * 300},,\n"  # row 8
            f"+447700900008,T,,{'t' * 65}\n"  # row 9
            "+447700900009,Fine,,\n").encode()  # row 10
    report = run(workspace, data)
    assert (report.rows, report.created, report.updated, report.rejected) == (8, 2, 0, 6)
    rejected = {r["row"]: r["reason"] for r in report.rejected_rows}
    assert sorted(rejected) == [3, 4, 5, 7, 8, 9]
    assert rejected[3].startswith("phone:")
    assert rejected[4] == "Duplicate phone within the file (first on row 2)."
    assert rejected[5].startswith("email:")
    assert "fields" in rejected[7]
    assert rejected[8].startswith("name:")
    assert rejected[9].startswith("tags:")
    assert sorted(Contact.objects.values_list("phone", flat=True)) == ["+447700900001", "+447700900009"]
    assert Contact.objects.get(phone="+447700900001").name == "Good"
    assert ContactTag.objects.count() == 0


def test_wrong_encoding_rows_are_rejected_the_rest_imported(workspace):
    data = "phone,name\n+447700900001,Zoë\n+447700900002,Plain\n".encode("latin-1")
    report = run(workspace, data)
    assert (report.created, report.rejected) == (1, 1)
    assert report.rejected_rows[0]["row"] == 2
    assert "UTF-8" in report.rejected_rows[0]["reason"]
    assert list(Contact.objects.values_list("name", flat=True)) == ["Plain"]


def test_utf16_and_utf8_bom_files_are_read(workspace):
    report = run(workspace, "phone,name\n+447700900001,Zoë\n".encode("utf-16"))
    assert report.created == 1
    report = run(workspace, "\ufeffPhone,Name\n+447700900002,Łukasz\n".encode())
    assert report.created == 1
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Zoë", "Łukasz"]


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"name,email\nAnn,a@b.co\n", "phone"),
    (b"phone,phone\n+447700900001,+447700900002\n", "Duplicate header"),
    ("phone,nom\n".encode("utf-16-be"), "binary"),  # UTF-16 without BOM: NUL bytes
])
def test_file_level_problems_fail_before_writing_anything(workspace, data, message):
    with pytest.raises(ValidationFailed) as exc:
        run(workspace, data)
    assert message in exc.value.message
    assert exc.value.details["field"] == "file"
    assert Contact.objects.count() == 0


def test_ten_megabytes_of_binary_junk_is_refused_cleanly(live_api):
    junk = os.urandom(10 * 1024 * 1024)
    response = upload(live_api, junk, name="junk.csv")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["field"] == "file"
    assert Contact.objects.count() == 0


def test_ten_megabytes_of_text_junk_under_a_valid_header_rejects_every_row(workspace):
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ;:!?+-_'"
    table = bytes(alphabet[i % len(alphabet)] if i else ord("\n") for i in range(256))  # ~256-char lines
    junk = os.urandom(10 * 1024 * 1024).translate(table)
    report = run(workspace, b"phone,name\n" + junk)
    assert report.created == report.updated == 0
    assert report.rejected == report.rows > 20000
    assert len(report.rejected_rows) == imports.MAX_REPORTED_REJECTIONS
    assert report.as_dict()["rejected_rows_truncated"] is True
    assert Contact.objects.count() == 0


def test_a_failing_batch_writes_none_of_its_rows(workspace, monkeypatch):
    real = imports._write_batch_postgres if connection.vendor == "postgresql" else imports._write_batch_portable
    calls = {"n": 0}

    def flaky(*, workspace, rows, by):
        calls["n"] += 1
        result = real(workspace=workspace, rows=rows, by=by)
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return result

    monkeypatch.setattr(imports, "_write_batch_postgres", flaky)
    monkeypatch.setattr(imports, "_write_batch_portable", flaky)
    data = "phone,tags\n" + "".join(f"+4477009{i:05d},t{i}\n" for i in range(10))
    with pytest.raises(RuntimeError):
        run(workspace, data.encode(), batch_size=4)
    # batch 1 (rows 0-3) committed whole; batch 2 (rows 4-7) rolled back whole, tags included
    assert sorted(Contact.objects.values_list("phone", flat=True)) == [f"+4477009{i:05d}" for i in range(4)]
    assert ContactTag.objects.count() == 4


def test_api_import_answers_with_the_report(live_api, workspace):
    response = upload(live_api, b"phone,name\n+447700900001,Ann\nbad,Bob\n")
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["rejected"]) == (1, 0, 1)
    assert body["rejected_rows"][0]["row"] == 3
    assert upload(live_api, b"").status_code == 400
    missing = live_api.post("/api/v1/contacts/import", {}, format="multipart")
    assert missing.status_code == 400
    assert missing.json()["error"]["details"]["field"] == "file"


def test_async_import_runs_in_a_task_with_progress(live_api, workspace, settings, tmp_path, monkeypatch,
                                                   django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    enqueued = []
    monkeypatch.setattr(imports, "_enqueue", enqueued.append)
    data = "phone,name\n" + "".join(f"+4477009{i:05d},P{i}\n" for i in range(5000))
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(live_api, data.encode(), query="?async=true")
    assert response.status_code == 202
    import_id = response.json()["id"]
    assert response.json()["status"] == "pending"
    assert enqueued == [import_id]
    assert Contact.objects.count() == 0  # nothing imported until the task runs
    record = imports.contact_import_run(import_id=import_id)
    assert record.status == ContactImport.Status.DONE
    assert record.created_count == 5000
    assert record.progress_percent == 100
    assert not os.path.exists(record.file_path)
    body = live_api.get(f"/api/v1/contacts/imports/{import_id}").json()
    assert (body["status"], body["created"], body["progress_percent"]) == ("done", 5000, 100)
    # running it again is a no-op (claimed by compare-and-set)
    assert imports.contact_import_run(import_id=import_id).created_count == 5000
    assert Contact.objects.filter(workspace=workspace).count() == 5000


def test_an_upload_over_a_few_megabytes_is_asynchronous_without_asking(live_api, workspace, settings, tmp_path,
                                                                      monkeypatch, django_capture_on_commit_callbacks):
    """No `async`: a file over CONTACT_IMPORT_SYNC_MAX_BYTES (4 MB by default) answers 202 with the import's id
    and progress at once instead of holding the request for minutes; a small one is still imported inline."""
    settings.MEDIA_ROOT = tmp_path
    enqueued = []
    monkeypatch.setattr(imports, "_enqueue", enqueued.append)
    assert settings.CONTACT_IMPORT_SYNC_MAX_BYTES == 4 * 1024 * 1024
    filler = "x" * 200
    rows = "".join(f"+4477{i:08d},P{i},{filler}\n" for i in range(20_000))  # ~4.5 MB
    data = ("phone,name,note\n" + rows).encode()
    assert len(data) > settings.CONTACT_IMPORT_SYNC_MAX_BYTES
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(live_api, data)
    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("imp_") and enqueued == [body["id"]]
    assert (body["status"], body["progress_percent"], body["created"]) == ("pending", 0, 0)
    assert Contact.objects.count() == 0
    assert ContactImport.objects.get(pk=body["id"]).total_bytes == len(data)
    small = upload(live_api, b"phone,name\n+447700900001,Ann\n")
    assert (small.status_code, small.json()["created"]) == (200, 1)


def test_opted_in_column_appends_import_consent_rows_only_when_it_changes_something(workspace):
    from apps.contacts.models import ConsentRecord
    from apps.core.models import Event

    data = (b"phone,opted_in\n+447700900001,no\n+447700900002,yes\n+447700900003,\n+447700900004,maybe\n")
    report = run(workspace, data)
    assert (report.created, report.rejected) == (3, 1)
    assert report.rejected_rows[0]["reason"].startswith("opted_in:")
    states = dict(Contact.objects.values_list("phone", "opted_in"))
    assert states == {"+447700900001": False, "+447700900002": True, "+447700900003": None}  # None: no row
    records = ConsentRecord.objects.order_by("contact__phone")
    assert [(r.contact.phone, r.status, r.source) for r in records] == [
        ("+447700900001", "opt_out", "import"), ("+447700900002", "opt_in", "import")]
    assert records[0].note == "CSV import, row 2"
    assert Event.objects.filter(workspace=workspace, type="contact.opted_out").count() == 1
    assert Event.objects.filter(workspace=workspace, type="contact.opted_in").count() == 1
    run(workspace, data)  # same file again: nothing changes state, nothing is appended
    assert ConsentRecord.objects.count() == 2
    run(workspace, b"phone,opted_in\n+447700900001,true\n")
    assert Contact.objects.get(phone="+447700900001").opted_in is True
    assert ConsentRecord.objects.count() == 3
