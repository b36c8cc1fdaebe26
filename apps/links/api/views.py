"""GET /api/v1/links/{id}: one tracked link with its clicks."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.links.models import TrackedLink
from apps.links.services import link_short_url


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class LinkOut(serializers.Serializer):
    id = serializers.CharField(help_text="lnk_ id")
    url = serializers.URLField(help_text="Where the short link redirects.")
    short_url = serializers.URLField(help_text="REACH_PUBLIC_URL/l/<code>, as sent to the recipient.")
    message_id = serializers.CharField(allow_null=True)
    campaign_id = serializers.CharField(allow_null=True)
    contact_id = serializers.CharField(allow_null=True)
    clicks = serializers.IntegerField(help_text="Every visit.")
    first_clicked_at = serializers.DateTimeField(allow_null=True)
    last_clicked_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


def link_out(link: TrackedLink) -> dict:
    return {"id": link.pk, "url": link.url, "short_url": link_short_url(link.code),
            "message_id": link.message_id or None, "campaign_id": link.campaign_id or None,
            "contact_id": link.contact_id or None, "clicks": link.clicks,
            "first_clicked_at": _ts(link.first_clicked_at), "last_clicked_at": _ts(link.last_clicked_at),
            "created_at": _ts(link.created_at)}


class LinkDetailView(ApiView):
    scopes = {"GET": "messages:read"}

    @extend_schema(operation_id="links_get", summary="Get a tracked link",
                   description="A per-recipient short link made from `{{track:URL}}` in a message body, a "
                               "template's URL-button parameter or a campaign variable, with its click counts.",
                   responses={200: LinkOut, 404: OpenApiResponse(description="NOT_FOUND")}, tags=["links"])
    def get(self, request, pk: str):
        return Response(LinkOut(link_out(self.get_scoped(TrackedLink, pk))).data)
