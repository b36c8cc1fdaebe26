from django.urls import path

from apps.webhooks.api import views_outbound as v

urlpatterns = [
    path("webhook-subscriptions", v.SubscriptionListView.as_view(), name="webhook-subscription-list"),
    path("webhook-subscriptions/<str:pk>", v.SubscriptionDetailView.as_view(), name="webhook-subscription-detail"),
    path("webhook-subscriptions/<str:pk>/rotate-secret", v.SubscriptionRotateSecretView.as_view(),
         name="webhook-subscription-rotate-secret"),
    path("webhook-subscriptions/<str:pk>/deliveries", v.SubscriptionDeliveriesView.as_view(),
         name="webhook-subscription-deliveries"),
    path("webhook-subscriptions/<str:pk>/test", v.SubscriptionTestView.as_view(), name="webhook-subscription-test"),
    path("webhook-subscriptions/<str:pk>/redeliver-failed", v.SubscriptionRedeliverFailedView.as_view(),
         name="webhook-subscription-redeliver-failed"),
    path("webhook-deliveries/<str:pk>", v.DeliveryDetailView.as_view(), name="webhook-delivery-detail"),
    path("webhook-deliveries/<str:pk>/redeliver", v.DeliveryRedeliverView.as_view(),
         name="webhook-delivery-redeliver"),
]
