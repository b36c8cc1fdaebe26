from rest_framework.permissions import BasePermission

from apps.core.tenancy import Tenant


class HasTenant(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(getattr(request, "auth", None), Tenant)
