import pytest

from apps.core.models import Workspace

pytestmark = pytest.mark.django_db


def test_workspace_is_created_with_its_sandbox_twin(workspace):
    sandbox = Workspace.objects.get(sandbox_of=workspace)
    assert sandbox.is_sandbox is True
    assert sandbox.slug == workspace.slug


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-Id"].startswith("req_")


def test_unknown_api_route_has_the_error_envelope(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["request_id"] == response["X-Request-Id"]
