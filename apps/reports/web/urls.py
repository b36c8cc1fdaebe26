from django.urls import path

from apps.reports.web import views

urlpatterns = [
    path("reports/", views.reports_page, name="reports"),
]
