from apps.campaigns.models import Audience, AudienceMember
from apps.contacts.models import Contact
from tests.campaigns.factories import make_contacts


def test_filter_audience_by_tags_fields_and_consent(live_api, workspace):
    make_contacts(workspace, 3, start=0, tags=["vip", "delhi"], custom_fields={"city": "Delhi"})
    make_contacts(workspace, 2, start=10, tags=["vip"], custom_fields={"city": "Pune"})
    make_contacts(workspace, 1, start=20, tags=["delhi"], custom_fields={"city": "Delhi"}, opted_in=False)
    make_contacts(workspace, 4, start=30)

    def size(flt):
        r = live_api.post("/api/v1/audiences", {"name": "a", "filter": flt}, format="json")
        assert r.status_code == 201, r.json()
        return r.json()["size"]

    assert size({}) == 10
    assert size({"tags_any": ["vip", "delhi"]}) == 6
    assert size({"tags_all": ["vip", "delhi"]}) == 3
    assert size({"custom_fields": {"city": "Delhi"}}) == 4
    assert size({"custom_fields": {"city": "Delhi"}, "opted_in": True}) == 3
    assert size({"opted_in": False}) == 1
    assert size({"tags_any": ["vip"], "custom_fields": {"city": "Pune"}}) == 2
    assert size({"custom_fields": {"city": "Nowhere"}}) == 0


def test_audience_size_is_live_and_previewed(live_api, workspace):
    make_contacts(workspace, 2, tags=["new"])
    r = live_api.post("/api/v1/audiences", {"name": "new ones", "filter": {"tags_any": ["new"]}}, format="json")
    aud_id = r.json()["id"]
    assert aud_id.startswith("aud_")
    make_contacts(workspace, 3, start=100, tags=["new"])
    body = live_api.get(f"/api/v1/audiences/{aud_id}").json()
    assert body["size"] == 5
    assert len(body["preview"]) == 5
    assert {p["phone"] for p in body["preview"]} >= {"+447700900000", "+447700900100"}
    listing = live_api.get("/api/v1/audiences").json()
    assert [a["id"] for a in listing["data"]] == [aud_id]


def test_bad_filter_is_rejected_and_nothing_written(live_api, workspace):
    r = live_api.post("/api/v1/audiences", {"name": "x", "filter": {"tags_any": "vip"}}, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "filter.tags_any"
    r = live_api.post("/api/v1/audiences", {"name": "x", "filter": {"colour": "red"}}, format="json")
    assert r.status_code == 400
    assert Audience.objects.count() == 0


def test_csv_upload_creates_contacts_and_reports_rejects(live_api, workspace):
    existing = make_contacts(workspace, 1)[0]
    csv = (
        "phone,name\n"
        f"{existing.phone},Known\n"
        "+91 98123-45678,Asha\n"
        "0091 9812345678,Asha again\n"
        "not-a-phone,Bob\n"
        "+1 (415) 555-0134,\n"
        "\n"
    ).encode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("list.csv", csv, content_type="text/csv")
    r = live_api.post("/api/v1/audiences", {"name": "uploaded", "file": upload}, format="multipart")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["kind"] == "list"
    assert body["size"] == 3
    report = body["import"]
    assert report["rows"] == 5
    assert report["accepted"] == 3
    assert report["created"] == 2
    assert report["duplicates"] == 1
    assert report["rejected_count"] == 1
    assert report["rejected"][0]["row"] == 5
    assert report["rejected"][0]["value"] == "not-a-phone"
    assert Contact.objects.filter(workspace=workspace, phone="+919812345678", name="Asha").exists()
    assert Contact.objects.filter(workspace=workspace).count() == 3
    assert AudienceMember.objects.filter(audience_id=body["id"]).count() == 3


def test_csv_without_header_takes_first_column(live_api, workspace):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("l.csv", b"+447700900001\n+447700900002\n", content_type="text/csv")
    r = live_api.post("/api/v1/audiences", {"name": "plain", "file": upload}, format="multipart")
    assert r.status_code == 201
    assert r.json()["size"] == 2


def test_foreign_audience_is_404_and_scopes_enforced(live_api, api_client_for, workspace, other_workspace):
    other = api_client_for(other_workspace)
    aud = other.post("/api/v1/audiences", {"name": "theirs", "filter": {}}, format="json").json()["id"]
    r = live_api.get(f"/api/v1/audiences/{aud}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"
    sandbox = api_client_for(workspace, sandbox=True)
    mine = live_api.post("/api/v1/audiences", {"name": "mine", "filter": {}}, format="json").json()["id"]
    assert sandbox.get(f"/api/v1/audiences/{mine}").status_code == 404
    reader = api_client_for(workspace, scopes=["campaigns:read"])
    r = reader.post("/api/v1/audiences", {"name": "no", "filter": {}}, format="json")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    assert reader.get(f"/api/v1/audiences/{mine}").status_code == 200
