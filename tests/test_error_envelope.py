"""Every error under /api/ has the API.md envelope with request_id: never HTML, never a stack trace."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]


def _envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code
    assert error["request_id"] == response["X-Request-Id"]
    assert error["request_id"]
    text = response.content.decode()
    assert "Traceback" not in text and "<html" not in text.lower() and "secret internals" not in text
    return error


@pytest.fixture
def api(live_api):
    return live_api


def test_validation_error_names_the_field(api):
    error = _envelope(api.post("/api/v1/_test/echo", {"name": "x" * 21}, format="json"), 400, "VALIDATION_FAILED")
    assert error["details"]["field"] == "name"
    assert error["details"]["errors"] == [{"field": "name", "message": "Ensure this field has no more than 20 characters."}]


def test_invalid_json(api):
    response = api.generic("POST", "/api/v1/_test/echo", '{"name": ', content_type="application/json")
    _envelope(response, 400, "INVALID_JSON")


def test_unknown_route_authenticated_and_anonymous(api):
    _envelope(api.get("/api/v1/no/such/route"), 404, "NOT_FOUND")
    _envelope(Client().get("/api/v1/no/such/route"), 404, "NOT_FOUND")
    _envelope(Client().post("/api/unversioned", data="{}", content_type="application/json"), 404, "NOT_FOUND")


def test_wrong_method_is_405_not_a_scope_error(api):
    response = api.put("/api/v1/_test/echo", {"name": "x"}, format="json")
    _envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response["Allow"]


def test_wrong_method_on_a_plain_django_route(api):

    response = Client().post("/api/v1/schema", data="{}", content_type="application/json")
    _envelope(response, 405, "METHOD_NOT_ALLOWED")


@override_settings(API_MAX_BODY_BYTES=1000)
def test_oversized_body(api):
    from tests.core import urls

    urls.EXECUTIONS.clear()
    response = api.post("/api/v1/_test/echo", {"name": "x", "pad": "y" * 2000}, format="json")
    error = _envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"limit_bytes": 1000}
    assert urls.EXECUTIONS == []


def test_missing_key(db):
    _envelope(APIClient().get("/api/v1/_test/echo"), 401, "INVALID_API_KEY")


def test_insufficient_scope(workspace, api_client_for):
    _envelope(api_client_for(workspace, scopes=["billing:read"]).get("/api/v1/_test/echo"), 403, "INSUFFICIENT_SCOPE")


@override_settings(DEBUG=False)
def test_forced_500_in_an_api_view(api, caplog):
    _envelope(api.get("/api/v1/_test/boom"), 500, "INTERNAL_ERROR")
    assert "secret internals" in caplog.text  # logged for the operator, not shown to the client


@override_settings(DEBUG=False)
def test_forced_500_in_a_plain_django_view_under_api():
    client = Client(raise_request_exception=False)
    _envelope(client.get("/api/v1/_test/plain-boom"), 500, "INTERNAL_ERROR")


@override_settings(DEBUG=True)
def test_forced_500_never_shows_the_debug_page_even_with_debug_on(api):
    client = Client(raise_request_exception=False)
    _envelope(client.get("/api/v1/_test/plain-boom"), 500, "INTERNAL_ERROR")
    _envelope(api.get("/api/v1/_test/boom"), 500, "INTERNAL_ERROR")


def test_request_id_is_echoed_when_valid_and_replaced_when_not(api):
    response = api.get("/api/v1/_test/echo", HTTP_X_REQUEST_ID="client-req-123")
    assert response["X-Request-Id"] == "client-req-123"
    response = api.get("/api/v1/_test/echo", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert response["X-Request-Id"].startswith("req_")
    error = _envelope(api.get("/api/v1/nowhere", HTTP_X_REQUEST_ID="abc.def"), 404, "NOT_FOUND")
    assert error["request_id"] == "abc.def"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/admin/login/", "/nowhere-html", "/api/v1/schema"])
def test_every_response_has_a_request_id(db, path):
    response = Client().get(path)
    assert response["X-Request-Id"]


def test_non_api_404_is_not_json(db):
    response = Client().get("/nowhere-html")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
