from django.urls import path

from apps.conversations.web import views

urlpatterns = [
    path("inbox/", views.inbox_page, name="inbox"),
]
