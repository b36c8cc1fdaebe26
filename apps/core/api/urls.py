from django.urls import path

from apps.core.api import views, views_mobile

urlpatterns = [
    path("workspace", views.WorkspaceCurrentView.as_view(), name="workspace-current"),
    path("auth/token", views_mobile.AuthTokenView.as_view(), name="auth-token"),
    path("auth/tokens", views_mobile.AuthTokenListView.as_view(), name="auth-tokens"),
    path("auth/tokens/<str:pk>", views_mobile.AuthTokenDetailView.as_view(), name="auth-token-detail"),
    path("devices", views_mobile.DevicesView.as_view(), name="devices"),
    path("devices/<str:pk>", views_mobile.DeviceDetailView.as_view(), name="device-detail"),
    path("me/push-preferences", views_mobile.PushPreferenceView.as_view(), name="push-preferences"),
]
