from django.urls import path

from apps.core.api import views

urlpatterns = [
    path("workspace", views.WorkspaceCurrentView.as_view(), name="workspace-current"),
]
