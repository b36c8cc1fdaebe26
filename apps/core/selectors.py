"""Core read layer."""

from __future__ import annotations

import functools
import json
import secrets
import time

from django.conf import settings
from django.db.models import Model, QuerySet

from apps.core import hooks
from apps.core.models import ApiKey, Event, Membership, User, Workspace
from apps.core.scoping import waba_scoped
from apps.core.tenancy import ROLE_SCOPES, Tenant

SESSION_WORKSPACE_KEY = "reach_workspace_id"
SESSION_SANDBOX_KEY = "reach_sandbox"


# Authenticated keys, per process: secret hash -> (monotonic expiry, key generation, rows). A hit needs the
# key generation in Redis to be the one the entry was cached under: api_key_revoke sets a new generation,
# so a revoked key is refused by the revoking process at once and by every other one within
# API_KEY_GENERATION_CHECK_SECONDS (the most a process goes without asking Redis), and an emptied Redis
# gets a new generation, which drops every entry. Entries also expire after API_KEY_CACHE_SECONDS, the
# most a workspace change made in the admin waits to be seen. Fresh model instances are built per
# request, so no two requests share a mutable object.
_key_cache: dict[str, tuple[float, bytes, tuple]] = {}
_KEY_CACHE_MAX = 10_000
API_KEYS_GENERATION = "reach:apikeys:generation"
_generation_seen: list = [0.0, None]  # [monotonic time of the last read, generation]


def api_keys_forget() -> None:
    """This process's cached keys and generation go (a key was revoked)."""
    _key_cache.clear()
    _generation_seen[:] = [0.0, None]


def api_keys_generation() -> bytes | None:
    from apps.core.redis import get_redis

    now = time.monotonic()
    if _generation_seen[1] is not None and now - _generation_seen[0] < settings.API_KEY_GENERATION_CHECK_SECONDS:
        return _generation_seen[1]
    try:
        client = get_redis()
        generation = client.get(API_KEYS_GENERATION)
        if generation is None:
            client.set(API_KEYS_GENERATION, secrets.token_hex(8), nx=True)
            generation = client.get(API_KEYS_GENERATION)
    except Exception:  # no Redis, no cache: every request reads the key from the database
        return None
    _generation_seen[:] = [now, generation]
    return generation


class _JsonValue(str):
    """A cached JSON field value, kept as its text: each request decodes its own copy (json.loads is
    several times cheaper than copy.deepcopy)."""


def _key_rows(key: ApiKey) -> tuple:
    def values(obj):  # copies, so the caller's object and the cache share no mutable JSON value
        return tuple(_JsonValue(json.dumps(v)) if isinstance(v, (dict, list)) else v
                     for v in (getattr(obj, f.attname) for f in obj._meta.concrete_fields))

    sandbox = getattr(key.workspace, "sandbox", None) if not key.workspace.is_sandbox else None
    return values(key), values(key.workspace), values(sandbox) if sandbox is not None else None


@functools.cache
def _attnames(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _key_from_rows(rows: tuple) -> ApiKey:
    def fresh(values):  # JSON values (scopes, settings) are mutable: each request gets its own
        return tuple(json.loads(v) if type(v) is _JsonValue else v for v in values)

    key_values, workspace_values, sandbox_values = (fresh(r) if r is not None else None for r in rows)
    key = ApiKey.from_db("default", _attnames(ApiKey), key_values)
    workspace = Workspace.from_db("default", _attnames(Workspace), workspace_values)
    if sandbox_values is not None:
        workspace.sandbox = Workspace.from_db("default", _attnames(Workspace), sandbox_values)
    key.workspace = workspace
    return key


def api_key_cache_refresh(key: ApiKey) -> None:
    """After the key's row changed (api_key_touch's last_used_at), so hits do not see the old values."""
    hit = _key_cache.get(key.secret_hash)
    if hit is not None:
        _key_cache[key.secret_hash] = (hit[0], hit[1], _key_rows(key))


def api_key_get_active(*, secret: str) -> ApiKey | None:
    if not secret.startswith(("ak_live_", "ak_test_")) or len(secret) > 128:
        return None
    from apps.core.services import hash_api_key

    digest = hash_api_key(secret)
    generation = api_keys_generation()
    hit = _key_cache.get(digest)
    if hit is not None and generation is not None and hit[1] == generation and hit[0] > time.monotonic():
        return _key_from_rows(hit[2])
    key = (
        ApiKey.objects.select_related("workspace", "workspace__sandbox")
        .filter(secret_hash=digest, revoked_at__isnull=True)
        .first()
    )
    if key is None or key.is_sandbox != secret.startswith("ak_test_"):
        return None
    if generation is not None:
        if len(_key_cache) >= _KEY_CACHE_MAX:
            _key_cache.clear()
        _key_cache[digest] = (time.monotonic() + settings.API_KEY_CACHE_SECONDS, generation, _key_rows(key))
    return key


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, workspace__is_sandbox=False).select_related("workspace")


def tenant_for_session(*, user: User, session) -> Tenant | None:
    """The workspace a browser user is working in: the one chosen in the session, else their first."""
    memberships = memberships_for_user(user=user)
    chosen = session.get(SESSION_WORKSPACE_KEY)
    membership = memberships.filter(workspace_id=chosen).first() if chosen else None
    membership = membership or memberships.order_by("created_at").first()
    if membership is None:
        return None
    workspace = membership.workspace
    if session.get(SESSION_SANDBOX_KEY):
        workspace = Workspace.objects.get(sandbox_of=workspace)
    return Tenant(workspace=workspace, scopes=ROLE_SCOPES[membership.role], user=user, role=membership.role)


def tenant_queryset(model_or_qs: type[Model] | QuerySet, *, tenant: Tenant) -> QuerySet:
    """Every tenant query starts here: filters by the caller's workspace (live or sandbox) and, for a
    WABA-bound key, by the model's WABA binding (apps.core.scoping: an undeclared model shows nothing)."""
    qs = model_or_qs if isinstance(model_or_qs, QuerySet) else model_or_qs._default_manager.all()
    return waba_scoped(qs.filter(workspace=tenant.workspace), waba_id=tenant.waba_id)


def events_after(*, tenant: Tenant, after_sequence: int, limit: int = 500) -> tuple[list[Event], int | None]:
    """(the events after `after_sequence` the caller may see, in order; the first sequence of the
    workspace's log after it, whoever may see it: a caller tells a pruned log from a filtered one by it)."""
    first = (Event.objects.filter(workspace=tenant.workspace, sequence__gt=after_sequence).order_by("sequence")
             .values_list("sequence", flat=True).first())
    if first is None:
        return [], None
    rows = tenant_queryset(Event, tenant=tenant).filter(sequence__gt=after_sequence).order_by("sequence")
    return list(rows[:limit]), first


def waba_exists(*, workspace: Workspace, waba_id: str) -> bool:
    resolver = hooks.waba_resolver()
    return bool(resolver and resolver(workspace, waba_id))


def api_keys_for(*, workspace: Workspace) -> QuerySet[ApiKey]:
    """A workspace's keys, live and sandbox (both belong to the live row), newest first."""
    return ApiKey.objects.filter(workspace=workspace.live).select_related("created_by").order_by("-created_at")


def workspace_members(*, workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.filter(workspace=workspace.live).select_related("user").order_by("created_at")
