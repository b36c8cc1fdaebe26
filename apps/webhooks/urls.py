from django.urls import path

from apps.webhooks import views_email, views_inbound, views_sms

urlpatterns = [
    path("webhooks/meta", views_inbound.meta_webhook, name="webhooks-meta"),
    path("webhooks/sms/twilio/status", views_sms.twilio_status, name="webhooks-sms-twilio-status"),
    path("webhooks/sms/twilio/inbound", views_sms.twilio_inbound, name="webhooks-sms-twilio-inbound"),
    path("webhooks/sms/http/status", views_sms.http_status, name="webhooks-sms-http-status"),
    path("webhooks/sms/http/inbound", views_sms.http_inbound, name="webhooks-sms-http-inbound"),
    path("webhooks/email/<str:token>", views_email.email_inbound, name="webhooks-email-inbound"),
]
