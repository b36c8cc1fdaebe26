"""Base classes for every /api/v1 view: tenant resolution, scopes, rate limits, idempotency, audit.

A view declares `scopes = {"GET": "contacts:read", "POST": "contacts:write"}` and reads the caller's
tenant from `self.tenant`. Objects are fetched with `self.get_scoped(Model, pk)`, which filters by the
tenant's workspace (and WABA binding), so a foreign id answers 404 like an unknown one.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import transaction
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import services
from apps.core.errors import InsufficientScope, NotFound, RateLimited
from apps.core.idempotency import (
    Replay,
    idempotency_begin,
    idempotency_complete,
    parse_idempotency_key,
    request_fingerprint,
)
from apps.core.pagination import paginate
from apps.core.ratelimit import rate_limit_hit
from apps.core.selectors import tenant_queryset
from apps.core.tenancy import Tenant

logger = logging.getLogger("reach.api")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# `scopes = {"GET": ANY_SCOPE}`: any authenticated caller (e.g. "who am I"); a missing entry still means 403.
ANY_SCOPE = "*any*"


class _ReplayResponse(Exception):
    def __init__(self, replay: Replay):
        self.replay = replay


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


class ApiView(APIView):
    scopes: dict[str, str] = {}
    audit_action: str | None = None  # defaults to "<METHOD> <route>"

    # --- request lifecycle ---------------------------------------------------------------
    def initial(self, request, *args, **kwargs):
        self._idem_record = None
        self._rate = None
        self.audit_target: tuple[str, str] | None = None
        super().initial(request, *args, **kwargs)
        tenant: Tenant = request.auth
        self._rate = rate_limit_hit(
            key_id=tenant.api_key.pk if tenant.api_key else f"user:{tenant.user.pk}",
            plan=tenant.live_workspace.plan,
        )
        if not self._rate.allowed:
            raise RateLimited(details={"retry_after": self._rate.retry_after})
        method = "GET" if request.method == "HEAD" else request.method
        required = self.scopes.get(method) or self.scopes.get("*")
        implemented = method.lower() in self.http_method_names and hasattr(self, method.lower())
        # An unimplemented method falls through to dispatch's 405; it must not look like a scope problem.
        if method != "OPTIONS" and implemented and required != ANY_SCOPE and (
            required is None or not tenant.has_scope(required)
        ):
            raise InsufficientScope(details={"required_scope": required})
        if request.method in MUTATING:
            key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
            if key is not None:
                outcome = idempotency_begin(
                    workspace=tenant.workspace, key=key,
                    fingerprint=request_fingerprint(
                        method=request.method, path=request.get_full_path(), body=self._body_digest_source(request)
                    ),
                )
                if isinstance(outcome, Replay):
                    raise _ReplayResponse(outcome)
                self._idem_record = outcome
                # The handler's writes and the stored answer commit together (finalize_response).
                self._idem_atomic = transaction.atomic()
                self._idem_atomic.__enter__()

    def dispatch(self, request, *args, **kwargs):
        self._idem_atomic = None
        try:
            return super().dispatch(request, *args, **kwargs)
        except BaseException as exc:
            self._idem_atomic_exit(exc)  # an unhandled error: nothing the handler wrote is kept
            raise

    def _idem_atomic_exit(self, exc: BaseException | None = None) -> None:
        atomic, self._idem_atomic = getattr(self, "_idem_atomic", None), None
        if atomic is not None:
            atomic.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)

    def _body_digest_source(self, request) -> bytes:
        content_type = request.content_type or ""
        if content_type.startswith("multipart/"):
            digest = hashlib.sha256()
            for name in sorted(request.data.keys()):
                for value in request.data.getlist(name):
                    digest.update(name.encode())
                    if hasattr(value, "chunks"):
                        for chunk in value.chunks():
                            digest.update(chunk)
                        value.seek(0)
                    else:
                        digest.update(str(value).encode())
            return digest.digest()
        return request._request.body

    def handle_exception(self, exc):
        if isinstance(exc, _ReplayResponse):
            response = Response(status=exc.replay.status)
            response.replayed_body = exc.replay.body
            for key, value in exc.replay.headers.items():
                response[key] = value
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        replayed_body = getattr(response, "replayed_body", None)
        response = super().finalize_response(request, response, *args, **kwargs)
        if replayed_body is not None:
            response.content = replayed_body
            response["Content-Type"] = response.get("Content-Type") or "application/json"
            response._is_rendered = True
        if self._rate_headers_allowed():
            for key, value in self._rate.headers().items():
                response[key] = value
        if replayed_body is None and request.method in MUTATING and getattr(request, "auth", None) is not None:
            if hasattr(response, "render") and not getattr(response, "_is_rendered", False):
                response.render()
            if getattr(self, "_idem_record", None) is not None:
                if response.status_code >= 500:  # no answer: the writes go, the key is released
                    transaction.set_rollback(True)
                    self._idem_atomic_exit()
                idempotency_complete(
                    record=self._idem_record, status=response.status_code, body=response.content,
                    headers=dict(response.items()),
                )
            self._audit(request, response)
            self._idem_atomic_exit()
        return response

    def _rate_headers_allowed(self) -> bool:
        return getattr(self, "_rate", None) is not None

    def audit_entry(self, *, status_code: int, target_type: str = "", target_id: str = "") -> dict:
        """The audit record of this request, as audit_record's arguments."""
        request, tenant = self.request, self.request.auth
        route = getattr(request.resolver_match, "route", request.path)
        return {"action": self.audit_action or f"{request.method} /{route}", "workspace": tenant.workspace,
                "actor_user": tenant.user, "api_key": tenant.api_key, "target_type": target_type,
                "target_id": target_id, "status_code": status_code, "ip_address": _client_ip(request),
                "request_id": getattr(request._request, "request_id", "")}

    def audit_in_write(self, *, status_code: int, target_type: str) -> dict:
        """For a view whose service records the audit inside its own transaction (one commit, not two);
        the service fills in the target id. The response is then not audited again."""
        self.audit_recorded = True
        return self.audit_entry(status_code=status_code, target_type=target_type)

    def _audit(self, request, response) -> None:
        if not isinstance(request.auth, Tenant) or response.status_code in (401, 403, 429):
            return
        if getattr(self, "audit_recorded", False) and response.status_code < 400:
            return
        target_type, target_id = self.audit_target or ("", self.kwargs.get("pk", ""))
        try:
            services.audit_record(**self.audit_entry(status_code=response.status_code, target_type=target_type,
                                                     target_id=target_id))
        except Exception:  # the audit must never turn a done write into an error
            logger.exception("audit record failed")

    # --- helpers for subclasses --------------------------------------------------------------
    @property
    def tenant(self) -> Tenant:
        return self.request.auth

    def scoped(self, model_or_qs):
        return tenant_queryset(model_or_qs, tenant=self.tenant)

    def get_scoped(self, model_or_qs, pk, *, message: str | None = None):
        obj = self.scoped(model_or_qs).filter(pk=pk).first()
        if obj is None:
            raise NotFound(message)
        return obj

    def paginated(self, queryset, serialize, *, newest_first: bool = True, default_limit=25, max_limit=100):
        items, next_cursor = paginate(
            queryset, params=self.request.query_params, newest_first=newest_first,
            default_limit=default_limit, max_limit=max_limit,
        )
        return Response({"data": [serialize(item) for item in items], "next_cursor": next_cursor})
