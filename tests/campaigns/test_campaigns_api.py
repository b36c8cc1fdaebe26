from datetime import timedelta

from django.utils import timezone

from apps.campaigns.models import Campaign
from tests.campaigns.factories import make_contacts, make_number, make_template


def _audience(api, flt=None):
    return api.post("/api/v1/audiences", {"name": "all", "filter": flt or {}}, format="json").json()["id"]


def _body(audience_id, number, **extra):
    body = {"name": "Diwali", "template": {"name": "promo", "language": "en"}, "audience_id": audience_id,
            "phone_number_id": number.pk,
            "variables": {"1": "{{contact.name|there}}", "2": "{{contact.custom_fields.city|Reach}}"}}
    body.update(extra)
    return body


def test_create_draft_and_scheduled(live_api, workspace, number, template):
    make_contacts(workspace, 2)
    aud = _audience(live_api)
    r = live_api.post("/api/v1/campaigns", _body(aud, number), format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["id"].startswith("cmp_")
    assert body["status"] == "draft"
    assert body["template"] == {"name": "promo", "language": "en", "category": "MARKETING"}
    assert body["stats"]["total"] == 0
    at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    r = live_api.post("/api/v1/campaigns", _body(aud, number, schedule_at=at.strftime("%Y-%m-%dT%H:%M:%SZ")),
                      format="json")
    assert r.status_code == 201
    assert r.json()["status"] == "scheduled"
    assert r.json()["schedule_at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    listing = live_api.get("/api/v1/campaigns").json()["data"]
    assert [c["status"] for c in listing] == ["scheduled", "draft"]
    assert all(c["stats"]["total"] == 0 for c in listing)


def test_create_rejects_what_would_fail_later(live_api, workspace, number, template):
    aud = _audience(live_api)
    make_template(number, name="pending_one", status="PENDING")
    cases = [
        (_body(aud, number, template={"name": "nope", "language": "en"}), 404, "TEMPLATE_NOT_FOUND"),
        (_body(aud, number, template={"name": "pending_one", "language": "en"}), 422, "TEMPLATE_NOT_APPROVED"),
        (_body(aud, number, variables={"1": "{{contact.name}}"}), 422, "TEMPLATE_VARIABLE_COUNT_MISMATCH"),
        (_body(aud, number, variables={"1": "{{contact.shoe_size}}", "2": "x"}), 400, "VALIDATION_FAILED"),
        (_body(aud, number, schedule_at="2001-01-01T00:00:00Z"), 400, "VALIDATION_FAILED"),
        (_body("aud_nope", number), 404, "NOT_FOUND"),
        (_body(aud, number, phone_number_id="pn_nope"), 404, "PHONE_NOT_FOUND"),
    ]
    for body, status, code in cases:
        r = live_api.post("/api/v1/campaigns", body, format="json")
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), body
    assert Campaign.objects.count() == 0


def test_transitions_and_conflicts(live_api, workspace, number, template):
    aud = _audience(live_api)
    cid = live_api.post("/api/v1/campaigns", _body(aud, number), format="json").json()["id"]
    r = live_api.post(f"/api/v1/campaigns/{cid}/pause")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "CONFLICT"
    assert r.json()["error"]["details"]["status"] == "draft"
    assert live_api.post(f"/api/v1/campaigns/{cid}/resume").status_code == 409
    assert live_api.post(f"/api/v1/campaigns/{cid}/start").json()["status"] == "running"
    assert live_api.post(f"/api/v1/campaigns/{cid}/start").status_code == 409
    assert live_api.post(f"/api/v1/campaigns/{cid}/pause").json()["status"] == "paused"
    assert live_api.post(f"/api/v1/campaigns/{cid}/resume").json()["status"] == "running"
    assert live_api.post(f"/api/v1/campaigns/{cid}/cancel").json()["status"] == "canceled"
    for action in ("start", "pause", "resume", "cancel"):
        r = live_api.post(f"/api/v1/campaigns/{cid}/{action}")
        assert r.status_code == 409, action
        assert r.json()["error"]["details"]["status"] == "canceled"


def test_foreign_campaign_ids_are_404(live_api, api_client_for, workspace, other_workspace):
    other_number = make_number(other_workspace)
    make_template(other_number)
    other = api_client_for(other_workspace)
    other_aud = _audience(other)
    cid = other.post("/api/v1/campaigns", _body(other_aud, other_number), format="json").json()["id"]
    for method, path in [("get", f"/api/v1/campaigns/{cid}"), ("post", f"/api/v1/campaigns/{cid}/start"),
                         ("post", f"/api/v1/campaigns/{cid}/cancel"), ("post", f"/api/v1/campaigns/{cid}/preflight")]:
        r = getattr(live_api, method)(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "NOT_FOUND"
    # Someone else's audience or number cannot be borrowed either.
    number = make_number(workspace)
    make_template(number)
    r = live_api.post("/api/v1/campaigns", _body(other_aud, number), format="json")
    assert r.status_code == 404
    r = live_api.post("/api/v1/campaigns", _body(_audience(live_api), other_number), format="json")
    assert r.json()["error"]["code"] == "PHONE_NOT_FOUND"
    assert Campaign.objects.get(pk=cid).status == "draft"
    assert Campaign.objects.filter(workspace=workspace).count() == 0


def test_scopes(api_client_for, workspace, number, template):
    reader = api_client_for(workspace, scopes=["campaigns:read"])
    writer = api_client_for(workspace, scopes=["campaigns:write", "campaigns:read"])
    aud = _audience(writer)
    r = reader.post("/api/v1/campaigns", _body(aud, number), format="json")
    assert r.status_code == 403
    cid = writer.post("/api/v1/campaigns", _body(aud, number), format="json").json()["id"]
    assert reader.get(f"/api/v1/campaigns/{cid}").status_code == 200
    assert reader.post(f"/api/v1/campaigns/{cid}/start").status_code == 403
    assert Campaign.objects.get(pk=cid).status == "draft"
    nobody = api_client_for(workspace, scopes=["messages:send"])
    assert nobody.get(f"/api/v1/campaigns/{cid}").status_code == 403
