from __future__ import annotations

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from apps.core import selectors, services
from apps.core.errors import InvalidApiKey
from apps.core.ratelimit import auth_failure_hit, client_address
from apps.core.tenancy import Tenant


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer ak_live_…|ak_test_…`. A present but bad key is a 401, never a fallback.
    It raises DRF's AuthenticationFailed (rendered as INVALID_API_KEY): DRF marks the request
    unauthenticated only for its own exceptions, and any other would be raised again when the response
    is finalised (a 500 for every write with a bad key)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._failed(request)
        api_key = selectors.api_key_get_active(secret=token.strip())
        if api_key is None:
            self._failed(request)
        last_used_at = api_key.last_used_at
        services.api_key_touch(api_key=api_key, now=timezone.now())
        if api_key.last_used_at != last_used_at:
            selectors.api_key_cache_refresh(api_key)
        workspace = api_key.workspace.sandbox if api_key.is_sandbox else api_key.workspace
        tenant = Tenant(
            workspace=workspace, scopes=frozenset(api_key.scopes), api_key=api_key, waba_id=api_key.waba_id
        )
        return (None, tenant)

    @staticmethod
    def _failed(request):
        """401, or 429 once the client address used up its failures (ratelimit.auth_failure_hit). Only
        failures are counted, so a valid key costs nothing here."""
        wait = auth_failure_hit(address=client_address(request) or "unknown")
        if wait is not None:
            raise Throttled(wait=wait)
        raise AuthenticationFailed(InvalidApiKey.default_message)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="reach"'


class WorkspaceSessionAuthentication(SessionAuthentication):
    """The inbox and admin call the same API with the Django session (CSRF enforced)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        tenant = selectors.tenant_for_session(user=user, session=request._request.session)
        if tenant is None:
            return None
        return (user, tenant)
