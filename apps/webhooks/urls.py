from django.urls import path

from apps.webhooks import views_inbound

urlpatterns = [
    path("webhooks/meta", views_inbound.meta_webhook, name="webhooks-meta"),
]
