"""The per-process cache of authenticated API keys: what may be reused, and how a revocation, another
process's revocation and an emptied Redis end a cached entry."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import selectors, services
from apps.core.models import ApiKey
from apps.core.redis import get_redis

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]
URL = "/api/v1/_test/wabas"


@pytest.fixture(autouse=True)
def _fresh_cache():
    selectors.api_keys_forget()
    yield
    selectors.api_keys_forget()


def _get(secret: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get(URL)


def test_a_cached_key_costs_no_query(workspace, django_assert_num_queries):
    _, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    assert selectors.api_key_get_active(secret=secret) is not None
    with django_assert_num_queries(0):
        key = selectors.api_key_get_active(secret=secret)
    assert key.workspace.pk == workspace.pk and key.workspace.sandbox.pk == workspace.sandbox.pk


def test_each_hit_is_a_fresh_object(workspace):
    _, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    first = selectors.api_key_get_active(secret=secret)
    first.workspace.plan = "mutated by one request"
    first.scopes.append("not:a:scope")
    second = selectors.api_key_get_active(secret=secret)
    assert second.workspace.plan == workspace.plan
    assert "not:a:scope" not in second.scopes


def test_a_sandbox_key_resolves_to_the_sandbox_from_the_cache(workspace, django_assert_num_queries):
    _, secret = services.api_key_create(workspace=workspace, name="k", sandbox=True)
    selectors.api_key_get_active(secret=secret)
    with django_assert_num_queries(0):
        key = selectors.api_key_get_active(secret=secret)
    assert key.is_sandbox and key.workspace.pk == workspace.pk


def test_another_process_revocation_is_refused_once_the_generation_is_read(workspace, settings):
    key, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    assert _get(secret).status_code == 200
    # Another process revokes: the row changes and the generation in Redis moves; this process's memory
    # of the key is untouched.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    get_redis().set(selectors.API_KEYS_GENERATION, b"moved-by-another-process")
    settings.API_KEY_GENERATION_CHECK_SECONDS = 3600
    assert _get(secret).status_code == 200  # within the check interval the old generation is trusted
    settings.API_KEY_GENERATION_CHECK_SECONDS = 0
    assert _get(secret).status_code == 401


def test_an_emptied_redis_drops_every_cached_key(workspace, settings):
    settings.API_KEY_GENERATION_CHECK_SECONDS = 0
    key, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    assert _get(secret).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())  # no announcement at all
    get_redis().delete(selectors.API_KEYS_GENERATION)  # as after a restart with an empty dataset
    assert _get(secret).status_code == 401


def test_entries_expire(workspace, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    key, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    assert _get(secret).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert _get(secret).status_code == 401


def test_last_used_is_still_recorded_through_the_cache(workspace):
    key, secret = services.api_key_create(workspace=workspace, name="k", sandbox=False)
    assert _get(secret).status_code == 200
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    assert _get(secret).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at == first  # once a minute, not per request
