from django.urls import path

from apps.links.views import link_visit

urlpatterns = [path("l/<str:code>", link_visit, name="link-visit")]
