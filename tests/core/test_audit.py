"""Audit log: every mutating API call and admin action, with actor, key or user, target, IP, request id."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.core import services
from apps.core.models import ApiKey, AuditLog, Workspace

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]


def test_mutating_api_call_is_audited(workspace, make_key):
    from rest_framework.test import APIClient

    secret = make_key(workspace)
    key = ApiKey.objects.get(workspace=workspace)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post("/api/v1/_test/echo", {"name": "n1"}, format="json", HTTP_X_REQUEST_ID="rid-1",
                           REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 201
    row = AuditLog.objects.get()
    assert row.action == "POST /api/v1/_test/echo"
    assert (row.workspace_id, row.api_key_id, row.actor_user_id) == (workspace.pk, key.pk, None)
    assert (row.target_type, row.target_id, row.status_code) == ("echo", "n1", 201)
    assert (row.ip_address, row.request_id) == ("203.0.113.9", "rid-1")


def test_reads_and_refusals_are_not_audited(workspace, api_client_for):
    client = api_client_for(workspace, scopes=["contacts:read"])
    assert client.get("/api/v1/_test/echo").status_code == 200
    assert client.post("/api/v1/_test/echo", {"name": "x"}, format="json").status_code == 403
    assert AuditLog.objects.count() == 0


def test_sandbox_calls_are_audited_on_the_sandbox_workspace(workspace, sandbox_api):
    sandbox_api.post("/api/v1/_test/echo", {"name": "s"}, format="json")
    assert AuditLog.objects.get().workspace == Workspace.objects.get(sandbox_of=workspace)


@pytest.fixture
def admin_client(db, django_user_model):
    user = django_user_model.objects.create_superuser(username="root", password="pw-123456!", email="r@x.io")
    client = Client()
    client.force_login(user)
    return client, user


def test_admin_workspace_create_makes_the_sandbox_twin_and_is_audited(admin_client):
    client, user = admin_client
    response = client.post("/admin/core/workspace/add/", {
        "name": "Initech", "slug": "initech", "plan": "standard", "settings": "{}",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
    }, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 302, response.content[:2000]
    live = Workspace.objects.get(slug="initech", is_sandbox=False)
    assert Workspace.objects.get(sandbox_of=live).is_sandbox
    row = AuditLog.objects.get(action="admin.add core.Workspace")
    assert (row.actor_user, row.target_id, row.ip_address) == (user, live.pk, "198.51.100.7")
    assert row.request_id.startswith("req_")


def test_admin_key_create_shows_the_secret_once_and_revoke_works(admin_client, workspace):
    client, user = admin_client
    response = client.post("/admin/core/apikey/add/", {
        "workspace": workspace.pk, "name": "Partner", "is_sandbox": "on", "scopes": ["contacts:read"],
        "waba_id": "",
    }, follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get(workspace=workspace)
    shown = [str(m) for m in response.context["messages"]]
    secret_messages = [m for m in shown if "shown only this once" in m]
    assert len(secret_messages) == 1
    secret = re.search(r"ak_test_[A-Za-z0-9_-]{30,}", secret_messages[0]).group(0)
    assert services.hash_api_key(secret) == key.secret_hash
    # the change page never shows it again
    page = client.get(f"/admin/core/apikey/{key.pk}/change/").content.decode()
    assert secret not in page and key.secret_hash not in page
    assert AuditLog.objects.filter(action="admin.create_api_key", target_id=key.pk, actor_user=user).count() == 1

    response = client.post("/admin/core/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]},
                           follow=True)
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditLog.objects.filter(action="admin.revoke_api_key", target_id=key.pk).count() == 1


def test_audit_log_and_events_are_read_only_in_the_admin(admin_client, workspace):
    client, _ = admin_client
    row = services.audit_record(action="x", workspace=workspace)
    assert client.get("/admin/core/auditlog/").status_code == 200
    assert client.get("/admin/core/auditlog/add/").status_code == 403
    page = client.get(f"/admin/core/auditlog/{row.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(f"/admin/core/auditlog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditLog.objects.filter(pk=row.pk).exists()
    assert client.get("/admin/core/event/").status_code == 200
    assert client.get("/admin/core/event/add/").status_code == 403


def test_every_apps_admin_changes_and_actions_are_audited(admin_client, workspace):
    from django.contrib.auth.models import Group

    client, user = admin_client
    assert client.post("/admin/auth/group/add/", {"name": "ops"}).status_code == 302
    group = Group.objects.get(name="ops")
    row = AuditLog.objects.get(action="admin.add auth.Group")
    assert (row.actor_user, row.target_id, row.workspace) == (user, str(group.pk), None)
    assert client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "ops2"}).status_code == 302
    assert AuditLog.objects.filter(action="admin.change auth.Group", target_id=str(group.pk)).count() == 1
    assert client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 302
    assert AuditLog.objects.filter(action="admin.delete auth.Group", target_id=str(group.pk)).count() == 1

    key, _ = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    client.post("/admin/core/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    action = AuditLog.objects.get(action="admin.action:revoke_keys core.ApiKey")
    assert action.details == {"selected": [key.pk], "count": 1}
    assert action.actor_user == user
