from django.urls import path

from apps.wabas.api import views

urlpatterns = [
    path("wabas", views.WabaListView.as_view(), name="waba-list"),
    path("wabas/<str:pk>", views.WabaDetailView.as_view(), name="waba-detail"),
    path("phone-numbers", views.PhoneNumberListView.as_view(), name="phone-number-list"),
    path("channels/email", views.EmailChannelView.as_view(), name="email-channel"),
]
