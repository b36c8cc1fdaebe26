from django.urls import path

from apps.contacts.api import views

urlpatterns = [
    path("contacts", views.ContactListView.as_view(), name="contact-list"),
    path("contacts/import", views.ContactImportView.as_view(), name="contact-import"),
    path("contacts/imports/<str:pk>", views.ContactImportDetailView.as_view(), name="contact-import-detail"),
    path("contacts/<str:pk>", views.ContactDetailView.as_view(), name="contact-detail"),
    path("contacts/<str:pk>/consents", views.ContactConsentsView.as_view(), name="contact-consents"),
    path("contacts/<str:pk>/block", views.ContactBlockView.as_view(), name="contact-block"),
    path("contacts/<str:pk>/unblock", views.ContactUnblockView.as_view(), name="contact-unblock"),
]
