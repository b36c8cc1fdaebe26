from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from apps.core import views as core_views

API_APPS = ["core", "wabas", "contacts", "message_templates", "billing", "conversations", "campaigns", "webhooks", "reports", "links"]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("api/v1/schema", core_views.SchemaView.as_view(), name="api-schema"),
    # The reference (Redoc) and the "try it with your sandbox key" console (Swagger UI), both offline.
    path("api/docs", core_views.offline(SpectacularRedocView.as_view(url_name="api-schema",
                                                                     template_name="api/redoc.html")), name="api-docs"),
    path("api/docs/", core_views.offline(SpectacularRedocView.as_view(url_name="api-schema",
                                                                      template_name="api/redoc.html"))),
    path("api/docs/try", core_views.offline(SpectacularSwaggerView.as_view(url_name="api-schema",
                                                                           template_name="api/swagger.html")),
         name="api-docs-try"),
    path("api/v1/", include([path("", include(f"apps.{app}.api.urls")) for app in API_APPS])),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # gettext()/ngettext()/interpolate() for the pages' scripts, from locale/*/djangojs.po
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("apps.webhooks.urls")),
    path("", include("apps.links.urls")),
    path("", include("apps.conversations.web.urls")),
    path("", include("apps.reports.web.urls")),
    path("", include("apps.core.web_urls")),
    path("", include("apps.console.urls")),
]

handler404 = "apps.core.views.handler404"
handler500 = "apps.core.views.handler500"
