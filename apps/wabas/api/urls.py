from django.urls import path

from apps.wabas.api import views, views_social

urlpatterns = [
    path("wabas", views.WabaListView.as_view(), name="waba-list"),
    path("wabas/<str:pk>", views.WabaDetailView.as_view(), name="waba-detail"),
    path("phone-numbers", views.PhoneNumberListView.as_view(), name="phone-number-list"),
    path("social-accounts", views_social.SocialAccountListView.as_view(), name="social-account-list"),
    path("social-accounts/<str:pk>", views_social.SocialAccountDetailView.as_view(), name="social-account-detail"),
    path("channels/email", views.EmailChannelView.as_view(), name="email-channel"),
]
