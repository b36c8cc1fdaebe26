from django.urls import path

from apps.links.api.views import LinkDetailView

urlpatterns = [
    path("links/<str:pk>", LinkDetailView.as_view(), name="link-detail"),
]
