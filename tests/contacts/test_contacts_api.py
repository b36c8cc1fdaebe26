import pytest

from apps.contacts.models import Contact, ContactTag
from apps.core.models import AuditLog

pytestmark = pytest.mark.django_db


def _create(api, **body):
    return api.post("/api/v1/contacts", body, format="json")


def test_post_creates_then_upserts_the_same_normalised_phone(live_api, workspace):
    first = _create(live_api, phone="+91 98123-45678", name="Asha", tags=["vip"], custom_fields={"plan": "gold"})
    assert first.status_code == 201
    body = first.json()
    assert body["phone"] == "+919812345678"
    assert body["name"] == "Asha"
    assert body["tags"] == ["vip"]
    assert body["custom_fields"] == {"plan": "gold"}
    assert body["opted_in"] is False  # no consent row: not opted in
    assert body["id"].startswith("con_")
    assert body["created_at"].endswith("Z")
    again = _create(live_api, phone="00919812345678", email="asha@example.com")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert again.json()["email"] == "asha@example.com"
    assert again.json()["name"] == "Asha"
    assert again.json()["tags"] == ["vip"]  # tags untouched when not sent
    assert Contact.objects.filter(workspace=workspace).count() == 1


def test_post_rejects_a_bad_phone_and_writes_nothing(live_api, workspace):
    response = _create(live_api, phone="12ab")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["field"] == "phone"
    assert Contact.objects.count() == 0


@pytest.mark.parametrize("body,field", [
    ({"phone": "+447700900001", "custom_fields": {"a": 1}}, "custom_fields.a"),
    ({"phone": "+447700900001", "custom_fields": ["x"]}, "custom_fields"),
    ({"phone": "+447700900001", "tags": "vip"}, "tags"),
    ({"phone": "+447700900001", "tags": [""]}, "tags[0]"),
    ({"phone": "+447700900001", "email": "nope"}, "email"),
    ({"name": "No phone"}, "phone"),
])
def test_post_validation(live_api, body, field):
    response = live_api.post("/api/v1/contacts", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == field
    assert Contact.objects.count() == 0


def test_idempotency_key_replays_the_upsert(live_api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "abc-1"}
    first = live_api.post("/api/v1/contacts", {"phone": "+447700900001"}, format="json", **headers)
    second = live_api.post("/api/v1/contacts", {"phone": "+447700900001"}, format="json", **headers)
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert Contact.objects.count() == 1


def test_patch_replaces_tags_and_merges_custom_fields(live_api):
    cid = _create(live_api, phone="+447700900001", tags=["a", "b"], custom_fields={"x": "1", "y": "2"}).json()["id"]
    response = live_api.patch(f"/api/v1/contacts/{cid}",
                              {"tags": ["c"], "custom_fields": {"y": "3", "z": "4"}, "name": "Zed",
                               "external_id": "crm-9"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["tags"] == ["c"]
    assert body["custom_fields"] == {"x": "1", "y": "3", "z": "4"}
    assert body["name"] == "Zed"
    assert body["external_id"] == "crm-9"
    assert sorted(ContactTag.objects.values_list("name", flat=True)) == ["c"]


def test_patch_refuses_non_string_custom_values_and_changes_nothing(live_api):
    cid = _create(live_api, phone="+447700900001", custom_fields={"x": "1"}).json()["id"]
    response = live_api.patch(f"/api/v1/contacts/{cid}", {"custom_fields": {"x": {"nested": 1}}, "name": "N"},
                              format="json")
    assert response.status_code == 400
    contact = Contact.objects.get(pk=cid)
    assert contact.custom_fields == {"x": "1"}
    assert contact.name == ""


def test_get_and_delete(live_api):
    cid = _create(live_api, phone="+447700900001").json()["id"]
    assert live_api.get(f"/api/v1/contacts/{cid}").json()["phone"] == "+447700900001"
    live_api.post(f"/api/v1/contacts/{cid}/consents", {"status": "opt_out"}, format="json")
    assert live_api.delete(f"/api/v1/contacts/{cid}").status_code == 204
    assert live_api.get(f"/api/v1/contacts/{cid}").status_code == 404
    assert not Contact.objects.filter(pk=cid).exists()


def test_list_filters_and_cursor(live_api):
    a = _create(live_api, phone="+447700900001", name="Alice Smith", tags=["vip"]).json()["id"]
    b = _create(live_api, phone="+447700900002", name="Bob Jones").json()["id"]
    c = _create(live_api, phone="+33612345678", name="Chloé", tags=["vip", "fr"], opted_in=True).json()["id"]
    live_api.post(f"/api/v1/contacts/{b}/consents", {"status": "opt_out"}, format="json")

    def ids(query):
        response = live_api.get(f"/api/v1/contacts{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["data"]]

    assert ids("") == [c, b, a]
    assert ids("?search=smith") == [a]
    assert ids("?search=%2B3361") == [c]
    assert ids("?search=7700900002") == [b]
    assert ids("?tag=vip") == [c, a]
    assert ids("?opted_in=false") == [b, a]  # opted out, and never opted in (no consent row)
    assert ids("?opted_in=true") == [c]
    page = live_api.get("/api/v1/contacts?limit=2").json()
    assert [r["id"] for r in page["data"]] == [c, b]
    rest = live_api.get(f"/api/v1/contacts?limit=2&cursor={page['next_cursor']}").json()
    assert [r["id"] for r in rest["data"]] == [a]
    assert rest["next_cursor"] is None
    assert live_api.get("/api/v1/contacts?opted_in=maybe").status_code == 400
    assert ids("?phone=0033612345678") == [c]
    assert live_api.get("/api/v1/contacts?phone=xyz").status_code == 400
    live_api.patch(f"/api/v1/contacts/{a}", {"external_id": "crm-1"}, format="json")
    assert ids("?external_id=crm-1") == [a]


def test_foreign_workspace_and_sandbox_ids_answer_404(live_api, sandbox_api, other_workspace, api_client_for):
    cid = _create(live_api, phone="+447700900001").json()["id"]
    other = api_client_for(other_workspace)
    for client in (other, sandbox_api):
        assert client.get(f"/api/v1/contacts/{cid}").status_code == 404
        assert client.patch(f"/api/v1/contacts/{cid}", {"name": "x"}, format="json").status_code == 404
        assert client.delete(f"/api/v1/contacts/{cid}").status_code == 404
        assert client.get(f"/api/v1/contacts/{cid}/consents").status_code == 404
        assert client.post(f"/api/v1/contacts/{cid}/consents", {"status": "opt_out"},
                           format="json").status_code == 404
        assert client.get("/api/v1/contacts").json()["data"] == []
    assert Contact.objects.get(pk=cid).name == ""
    assert Contact.objects.get(pk=cid).opted_in is None


def test_sandbox_contacts_are_separate(live_api, sandbox_api):
    live = _create(live_api, phone="+447700900001").json()["id"]
    sandbox = _create(sandbox_api, phone="+447700900001")
    assert sandbox.status_code == 201
    assert sandbox.json()["id"] != live


def test_scopes(workspace, api_client_for):
    reader = api_client_for(workspace, scopes=["contacts:read"])
    assert reader.get("/api/v1/contacts").status_code == 200
    response = reader.post("/api/v1/contacts", {"phone": "+447700900001"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    nobody = api_client_for(workspace, scopes=["messages:send"])
    assert nobody.get("/api/v1/contacts").status_code == 403
    assert Contact.objects.count() == 0


def test_writes_are_audited(live_api):
    cid = _create(live_api, phone="+447700900001").json()["id"]
    assert AuditLog.objects.filter(target_type="contact", target_id=cid).count() == 1
