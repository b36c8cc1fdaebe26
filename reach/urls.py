from importlib import import_module

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from apps.core import views as core_views

API_APPS = ["core", "wabas", "contacts", "message_templates", "billing", "conversations", "campaigns", "webhooks"]


def _optional(module: str) -> list:
    try:
        return [path("", include(module))] if import_module(module) else []
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return []
        raise


api_v1 = []
for app in API_APPS:
    api_v1 += _optional(f"apps.{app}.api.urls")

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    *_optional("apps.webhooks.urls"),
    *_optional("apps.conversations.web.urls"),
    *_optional("apps.core.web_urls"),
]

handler404 = "apps.core.views.handler404"
handler500 = "apps.core.views.handler500"
