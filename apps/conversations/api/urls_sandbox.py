from django.urls import path

from apps.conversations.api import views_sandbox

urlpatterns = [
    path("sandbox/inbound", views_sandbox.SandboxInboundView.as_view(), name="sandbox-inbound"),
    path("sandbox/contacts/<str:pk>/age-window", views_sandbox.SandboxAgeWindowView.as_view(),
         name="sandbox-age-window"),
]
