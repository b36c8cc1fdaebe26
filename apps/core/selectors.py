"""Core read layer."""

from __future__ import annotations

from django.db.models import Model, QuerySet

from apps.core import hooks
from apps.core.models import ApiKey, Event, Membership, User, Workspace
from apps.core.tenancy import ROLE_SCOPES, Tenant

SESSION_WORKSPACE_KEY = "reach_workspace_id"
SESSION_SANDBOX_KEY = "reach_sandbox"


def api_key_get_active(*, secret: str) -> ApiKey | None:
    if not secret.startswith(("ak_live_", "ak_test_")) or len(secret) > 128:
        return None
    from apps.core.services import hash_api_key

    key = (
        ApiKey.objects.select_related("workspace", "workspace__sandbox")
        .filter(secret_hash=hash_api_key(secret), revoked_at__isnull=True)
        .first()
    )
    if key is None or key.is_sandbox != secret.startswith("ak_test_"):
        return None
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
    WABA-bound key, by the model's TENANT_WABA_PATH."""
    qs = model_or_qs if isinstance(model_or_qs, QuerySet) else model_or_qs._default_manager.all()
    qs = qs.filter(workspace=tenant.workspace)
    waba_path = getattr(qs.model, "TENANT_WABA_PATH", None)
    if tenant.waba_id and waba_path:
        qs = qs.filter(**{waba_path: tenant.waba_id})
    return qs


def events_after(*, workspace: Workspace, after_sequence: int, limit: int = 500) -> list[Event]:
    return list(
        Event.objects.filter(workspace=workspace, sequence__gt=after_sequence).order_by("sequence")[:limit]
    )


def waba_exists(*, workspace: Workspace, waba_id: str) -> bool:
    resolver = hooks.waba_resolver()
    return bool(resolver and resolver(workspace, waba_id))
