"""Shared fixtures. Tests run against whatever DATABASE_URL / REDIS_URL say (PostgreSQL and Redis in
CI), else the embedded default (SQLite + in-process Redis)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.core import services
from apps.core.redis import get_redis


@pytest.fixture(autouse=True, scope="session")
def _clean_redis():
    # REDIS_URL points at the run's own logical database (tests/settings.py).
    get_redis().flushdb()
    yield


@pytest.fixture
def workspace(db):
    return services.workspace_create(name="Acme", slug="acme")


@pytest.fixture
def other_workspace(db):
    return services.workspace_create(name="Globex", slug="globex")


@pytest.fixture
def make_key():
    def _make(workspace, *, sandbox: bool = False, scopes=None, waba_id: str = ""):
        _, secret = services.api_key_create(workspace=workspace, name="test", sandbox=sandbox, scopes=scopes,
                                            waba_id=waba_id)
        return secret

    return _make


@pytest.fixture
def api_client_for(make_key):
    """api_client_for(workspace, sandbox=False, scopes=None) -> an APIClient carrying a fresh key."""

    def _client(workspace, **kwargs):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(workspace, **kwargs)}")
        return client

    return _client


@pytest.fixture
def live_api(workspace, api_client_for):
    return api_client_for(workspace)


@pytest.fixture
def sandbox_api(workspace, api_client_for):
    return api_client_for(workspace, sandbox=True)
