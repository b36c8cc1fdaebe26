from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from apps.core import views as core_views

API_APPS = ["core", "wabas", "contacts", "message_templates", "billing", "conversations", "campaigns", "webhooks", "links"]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include([path("", include(f"apps.{app}.api.urls")) for app in API_APPS])),
    path("admin/", admin.site.urls),
    path("", include("apps.webhooks.urls")),
    path("", include("apps.links.urls")),
    path("", include("apps.conversations.web.urls")),
    path("", include("apps.core.web_urls")),
]

handler404 = "apps.core.views.handler404"
handler500 = "apps.core.views.handler500"
