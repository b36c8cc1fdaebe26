"""API keys: authentication, scopes, sandbox/live separation, WABA binding, revocation."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import services
from apps.core.models import ApiKey, Workspace
from apps.wabas.models import PhoneNumber, Waba

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]


def _client(secret: str | None = None, header: str | None = None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    elif secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _assert_invalid_key(response):
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "INVALID_API_KEY"
    assert body["error"]["request_id"] == response["X-Request-Id"]
    assert response["WWW-Authenticate"] == 'Bearer realm="reach"'


def _waba(ws: Workspace, n: str) -> Waba:
    return Waba.objects.create(workspace=ws, meta_waba_id=f"meta-waba-{n}", name=f"WABA {n}")


def _phone(waba: Waba, n: str) -> PhoneNumber:
    return PhoneNumber.objects.create(workspace=waba.workspace, waba=waba, meta_phone_number_id=f"meta-pn-{n}",
                                      display_phone_number=f"+1555000{n}")


def test_missing_key_is_401():
    _assert_invalid_key(_client().get("/api/v1/_test/wabas"))


@pytest.mark.parametrize("header", [
    "Bearer ak_live_doesnotexist",
    "Bearer ak_test_doesnotexist",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer sk_live_wrongprefix",
    "Bearer " + "ak_live_" + "x" * 200,
    "ak_live_nobearer",
])
def test_unknown_or_malformed_key_is_401(workspace, header):
    _assert_invalid_key(_client(header=header).get("/api/v1/_test/wabas"))


def test_revoked_key_is_401(workspace):
    key, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    assert _client(secret).get("/api/v1/_test/wabas").status_code == 200
    services.api_key_revoke(api_key=key)
    _assert_invalid_key(_client(secret).get("/api/v1/_test/wabas"))


def test_a_live_secret_relabelled_as_test_is_401(workspace):
    _, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    _assert_invalid_key(_client(secret.replace("ak_live_", "ak_test_", 1)).get("/api/v1/_test/wabas"))


def test_key_is_stored_only_as_a_hash_and_last_used_is_recorded(workspace):
    key, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    row = ApiKey.objects.get(pk=key.pk)
    assert secret not in str(row.__dict__)
    assert row.secret_hash == services.hash_api_key(secret)
    assert row.prefix == secret[:14]
    assert row.last_used_at is None
    before = timezone.now()
    _client(secret).get("/api/v1/_test/wabas")
    row.refresh_from_db()
    assert row.last_used_at is not None and row.last_used_at >= before


def test_wrong_scope_is_403(workspace, make_key):
    secret = make_key(workspace, scopes=["messages:read"])
    response = _client(secret).get("/api/v1/_test/wabas")
    assert response.status_code == 403
    body = response.json()["error"]
    assert body["code"] == "INSUFFICIENT_SCOPE"
    assert body["details"] == {"required_scope": "templates:read"}


def test_read_scope_does_not_allow_writes(workspace, make_key):
    secret = make_key(workspace, scopes=["contacts:read"])
    client = _client(secret)
    assert client.get("/api/v1/_test/echo").status_code == 200
    response = client.post("/api/v1/_test/echo", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_SCOPE"


def test_test_key_sees_only_sandbox_data_and_live_key_only_live(workspace, make_key):
    sandbox = Workspace.objects.get(sandbox_of=workspace)
    live_waba, sandbox_waba = _waba(workspace, "1"), _waba(sandbox, "2")
    live_ids = set(Waba.objects.filter(workspace=workspace).values_list("id", flat=True))
    sandbox_ids = set(Waba.objects.filter(workspace=sandbox).values_list("id", flat=True))
    assert live_waba.id in live_ids and sandbox_waba.id in sandbox_ids

    live, test = _client(make_key(workspace)), _client(make_key(workspace, sandbox=True))
    assert {w["id"] for w in live.get("/api/v1/_test/wabas").json()["data"]} == live_ids
    assert {w["id"] for w in test.get("/api/v1/_test/wabas").json()["data"]} == sandbox_ids
    assert live.get(f"/api/v1/_test/wabas/{sandbox_waba.id}").status_code == 404
    assert test.get(f"/api/v1/_test/wabas/{live_waba.id}").status_code == 404
    assert live.get(f"/api/v1/_test/wabas/{live_waba.id}").json() == {"id": live_waba.id}
    assert test.get(f"/api/v1/_test/wabas/{sandbox_waba.id}").json() == {"id": sandbox_waba.id}


def test_foreign_workspace_id_is_404_not_403(workspace, other_workspace, make_key):
    foreign = _waba(other_workspace, "9")
    response = _client(make_key(workspace)).get(f"/api/v1/_test/wabas/{foreign.id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_waba_bound_key_sees_only_its_waba(workspace, make_key, monkeypatch):
    waba_a, waba_b = _waba(workspace, "1"), _waba(workspace, "2")
    phone_a, phone_b = _phone(waba_a, "1"), _phone(waba_b, "2")
    # Key creation checks the WABA through the resolver the wabas app registers.
    monkeypatch.setattr("apps.core.selectors.waba_exists",
                        lambda *, workspace, waba_id: Waba.objects.filter(workspace=workspace, pk=waba_id).exists())
    bound = _client(make_key(workspace, waba_id=waba_a.id))
    assert [w["id"] for w in bound.get("/api/v1/_test/wabas").json()["data"]] == [waba_a.id]
    assert [p["id"] for p in bound.get("/api/v1/_test/phones").json()["data"]] == [phone_a.id]
    assert bound.get(f"/api/v1/_test/wabas/{waba_b.id}").status_code == 404
    unbound = _client(make_key(workspace))
    assert {p["id"] for p in unbound.get("/api/v1/_test/phones").json()["data"]} == {phone_a.id, phone_b.id}


def test_key_bound_to_a_foreign_waba_cannot_be_created(workspace, other_workspace, monkeypatch):
    foreign = _waba(other_workspace, "7")
    monkeypatch.setattr("apps.core.selectors.waba_exists",
                        lambda *, workspace, waba_id: Waba.objects.filter(workspace=workspace, pk=waba_id).exists())
    from apps.core.errors import NotFound

    with pytest.raises(NotFound):
        services.api_key_create(workspace=workspace, name="k", sandbox=False, waba_id=foreign.id)
    assert not ApiKey.objects.filter(workspace=workspace).exists()


def test_session_user_is_authenticated_with_role_scopes_and_csrf(workspace, django_user_model):
    from tests.core import urls

    user = django_user_model.objects.create_user(username="agent", password="pw-123456!")
    services.membership_set(workspace=workspace, user=user, role="agent")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/_test/echo").status_code == 200
    # agents lack templates:write
    forbidden = client.delete(f"/api/v1/_test/wabas/{_waba(workspace, '1').id}")
    assert forbidden.status_code == 403
    # a session write without the CSRF token is refused and the view never runs
    urls.EXECUTIONS.clear()
    response = client.post("/api/v1/_test/echo", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert urls.EXECUTIONS == []
    token = "a" * 32
    client.cookies["csrftoken"] = token
    response = client.post("/api/v1/_test/echo", {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert urls.EXECUTIONS == ["x"]


def test_session_user_without_membership_is_401(db, django_user_model):
    user = django_user_model.objects.create_user(username="lonely", password="pw-123456!")
    client = APIClient()
    client.force_login(user)
    _assert_invalid_key(client.get("/api/v1/_test/echo"))


def test_workspace_endpoint_reports_the_callers_tenant(workspace, make_key):
    body = _client(make_key(workspace, sandbox=True, scopes=["billing:read"])).get("/api/v1/workspace").json()
    key = ApiKey.objects.get(workspace=workspace)
    assert body == {"id": workspace.pk, "name": "Acme", "slug": "acme", "sandbox": True, "plan": "standard",
                    "scopes": ["billing:read"], "waba_id": None, "api_key_id": key.pk, "user_id": None}
    _assert_invalid_key(_client().get("/api/v1/workspace"))


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_bad_key_on_a_write_is_401_not_500(workspace, method):
    # DRF re-reads request.auth when the write's response is finalised (audit, idempotency).
    response = getattr(_client("ak_live_not-a-key"), method)("/api/v1/_test/wabas", {}, format="json")
    _assert_invalid_key(response)
