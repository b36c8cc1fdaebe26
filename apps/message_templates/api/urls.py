from django.urls import path

from apps.message_templates.api import views

urlpatterns = [
    path("wabas/<str:pk>/templates", views.WabaTemplatesView.as_view(), name="waba-templates"),
    path("templates", views.TemplateListView.as_view(), name="template-list"),
    path("templates/<str:pk>", views.TemplateDetailView.as_view(), name="template-detail"),
]
