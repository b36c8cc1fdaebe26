from django.urls import path

from apps.conversations.api import inbox, organise

urlpatterns = [
    path("conversations", inbox.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/bulk", organise.ConversationBulkView.as_view(), name="conversation-bulk"),
    path("conversations/<str:pk>", inbox.ConversationDetailView.as_view(), name="conversation-detail"),
    path("conversations/<str:pk>/messages", inbox.ConversationMessagesView.as_view(), name="conversation-messages"),
    path("conversations/<str:pk>/notes", inbox.ConversationNotesView.as_view(), name="conversation-notes"),
    path("conversations/<str:pk>/read", inbox.ConversationReadView.as_view(), name="conversation-read"),
    path("conversations/<str:pk>/templates", inbox.ConversationTemplatesView.as_view(),
         name="conversation-templates"),
    path("conversations/<str:pk>/labels", organise.ConversationLabelsView.as_view(), name="conversation-labels"),
    path("conversations/<str:pk>/typing", organise.ConversationTypingView.as_view(), name="conversation-typing"),
    path("inbox/events", inbox.InboxEventsView.as_view(), name="inbox-events"),
    path("inbox/presence", organise.PresenceView.as_view(), name="inbox-presence"),
    path("inbox/views", organise.SavedViewListView.as_view(), name="inbox-view-list"),
    path("inbox/views/<str:pk>", organise.SavedViewDetailView.as_view(), name="inbox-view-detail"),
    path("labels", organise.LabelListView.as_view(), name="label-list"),
    path("labels/<str:pk>", organise.LabelDetailView.as_view(), name="label-detail"),
    path("teams", organise.TeamListView.as_view(), name="team-list"),
    path("teams/<str:pk>", organise.TeamDetailView.as_view(), name="team-detail"),
    path("canned-responses", inbox.CannedResponseListView.as_view(), name="canned-response-list"),
    path("canned-responses/<str:pk>", inbox.CannedResponseDetailView.as_view(), name="canned-response-detail"),
    path("auto-replies", inbox.AutoReplyListView.as_view(), name="auto-reply-list"),
    path("auto-replies/settings", inbox.AutoReplySettingsView.as_view(), name="auto-reply-settings"),
    path("auto-replies/<str:pk>", inbox.AutoReplyDetailView.as_view(), name="auto-reply-detail"),
]
