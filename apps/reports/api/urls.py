from django.urls import path

from apps.reports.api import views

urlpatterns = [
    path("reports/messaging", views.MessagingReportView.as_view(), name="reports-messaging"),
    path("reports/billing", views.BillingReportView.as_view(), name="reports-billing"),
    path("analytics/usage", views.UsageAnalyticsView.as_view(), name="analytics-usage"),
]
