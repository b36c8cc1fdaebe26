"""createapikey and bootstrapdemo."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.core import services
from apps.core.models import ApiKey, AuditLog, User, Workspace

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]


def _run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_createapikey_prints_the_secret_alone_on_the_last_line(workspace):
    out, _ = _run("createapikey", "acme", "--sandbox", "--scopes", "contacts:read,messages:send")
    secret = out.rstrip("\n").split("\n")[-1]
    assert secret.startswith("ak_test_") and " " not in secret
    key = ApiKey.objects.get(workspace=workspace)
    assert key.is_sandbox is True
    assert key.scopes == ["contacts:read", "messages:send"]
    assert key.secret_hash == services.hash_api_key(secret)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/_test/echo").status_code == 200
    assert AuditLog.objects.filter(action="cli.create_api_key", target_id=key.pk).count() == 1


def test_createapikey_live_with_default_scopes_by_id(workspace):
    out, _ = _run("createapikey", workspace.pk)
    assert out.strip().split("\n")[-1].startswith("ak_live_")
    assert len(ApiKey.objects.get(workspace=workspace).scopes) == 13


def test_createapikey_errors_write_nothing(workspace):
    with pytest.raises(CommandError, match="No workspace"):
        _run("createapikey", "nope")
    with pytest.raises(CommandError, match="Unknown scopes: bogus:scope"):
        _run("createapikey", "acme", "--scopes", "bogus:scope")
    with pytest.raises(CommandError):
        _run("createapikey", "acme", "--waba", "waba_doesnotexist")
    assert ApiKey.objects.count() == 0


def test_bootstrapdemo_first_run_then_later_runs():
    out, _ = _run("bootstrapdemo")
    lines = out.strip().split("\n")
    login = next(line for line in lines if line.startswith("Admin login: "))
    username, password = login.removeprefix("Admin login: ").split(" / ")
    assert username == "admin"
    assert User.objects.get(username="admin").check_password(password)
    first_key = lines[-1].removeprefix("Sandbox API key: ")
    assert lines[-1].startswith("Sandbox API key: ak_test_")
    demo = Workspace.objects.get(slug="demo", is_sandbox=False)
    assert Workspace.objects.filter(sandbox_of=demo).count() == 1
    assert any(line.startswith("The demo lives in the Sandbox") for line in lines)

    again, _ = _run("bootstrapdemo")
    assert "already in place" in again
    assert "Admin login:" not in again
    second_key = again.strip().split("\n")[-1].removeprefix("Sandbox API key: ")
    assert second_key.startswith("ak_test_") and second_key != first_key
    assert Workspace.objects.filter(slug="demo").count() == 2  # live + sandbox, not duplicated
    assert User.objects.get(username="admin").check_password(password)  # not reset
    for secret in (first_key, second_key):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert client.get("/api/v1/_test/echo").status_code == 200
