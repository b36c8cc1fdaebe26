from django.urls import path

from apps.conversations.api import messages

urlpatterns = [
    path("messages", messages.MessagesView.as_view(), name="message-list"),
    path("messages/<str:pk>", messages.MessageDetailView.as_view(), name="message-detail"),
    path("messages/<str:pk>/cancel", messages.MessageCancelView.as_view(), name="message-cancel"),
]
