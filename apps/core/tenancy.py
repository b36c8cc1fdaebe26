"""Who is calling and on which tenant: the one object every API view and service receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.core.models import API_SCOPES, ApiKey, Membership, User, Workspace

ROLE_SCOPES = {
    Membership.Role.AGENT: frozenset(
        {"messages:send", "messages:read", "templates:read", "contacts:read", "contacts:write",
         "inbox:read", "inbox:write", "campaigns:read", "reports:read"}
    ),
    Membership.Role.ADMIN: frozenset(API_SCOPES),
    Membership.Role.OWNER: frozenset(API_SCOPES),
}


@dataclass(frozen=True)
class Tenant:
    workspace: Workspace  # the live workspace or its sandbox twin; every query filters by it
    scopes: frozenset[str]
    api_key: ApiKey | None = None
    user: User | None = None
    role: str | None = None
    waba_id: str = ""  # when set, only this WABA's numbers, templates and traffic are visible
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def is_sandbox(self) -> bool:
        return self.workspace.is_sandbox

    @property
    def live_workspace(self) -> Workspace:
        return self.workspace.live

    @property
    def actor_label(self) -> str:
        if self.user is not None:
            return f"user:{self.user.pk}"
        if self.api_key is not None:
            return f"api_key:{self.api_key.pk}"
        return "system"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
