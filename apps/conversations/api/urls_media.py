from django.urls import path

from apps.conversations.api import media

urlpatterns = [
    path("media", media.MediaUploadView.as_view(), name="media-upload"),
    path("media/<str:pk>", media.MediaDetailView.as_view(), name="media-detail"),
    path("media/<str:pk>/content", media.MediaContentView.as_view(), name="media-content"),
]
