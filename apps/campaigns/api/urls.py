from django.urls import path

from apps.campaigns.api import views

urlpatterns = [
    path("audiences", views.AudienceListView.as_view(), name="audience-list"),
    path("audiences/<str:pk>", views.AudienceDetailView.as_view(), name="audience-detail"),
    path("campaigns", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<str:pk>", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<str:pk>/preflight", views.CampaignPreflightView.as_view(), name="campaign-preflight"),
    *[
        path(f"campaigns/<str:pk>/{action}", views.CAMPAIGN_ACTION_VIEWS[action].as_view(action_name=action),
             name=f"campaign-{action}")
        for action in ("start", "pause", "resume", "cancel")
    ],
]
