from django.urls import path

from apps.conversations.api import flows, messages

urlpatterns = [
    path("messages", messages.MessagesView.as_view(), name="message-list"),
    path("messages/<str:pk>", messages.MessageDetailView.as_view(), name="message-detail"),
    path("messages/<str:pk>/cancel", messages.MessageCancelView.as_view(), name="message-cancel"),
    path("flows/<str:flow_id>/responses", flows.FlowResponsesView.as_view(), name="flow-responses"),
]
