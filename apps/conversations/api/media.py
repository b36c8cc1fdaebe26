"""POST /api/v1/media, GET /api/v1/media/{id}, GET /api/v1/media/{id}/content (own workspace only)."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework.response import Response

from apps.conversations.api.schemas_inbox import MediaOut, MediaUploadIn
from apps.conversations.models import Media
from apps.conversations.services.media import media_create
from apps.core.api.base import ApiView
from apps.core.api.docs import api_doc
from apps.core.api.parsers import StrictMultiPartParser as MultiPartParser
from apps.core.errors import ValidationFailed


def media_out(media: Media, request) -> dict:
    return {"id": media.pk, "kind": media.kind, "content_type": media.content_type, "size": media.size,
            "sha256": media.sha256, "filename": media.filename or None,
            "url": request.build_absolute_uri(f"/api/v1/media/{media.pk}/content"),
            "created_at": media.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")}


class MediaUploadView(ApiView):
    scopes = {"POST": "messages:send"}
    parser_classes = [MultiPartParser]

    @api_doc(operation_id="media_upload", summary="Upload media",
             description="Multipart `file` (and optional `filename`); the MIME type is sniffed from the content, "
             "not trusted from the client. Send the returned `id` as `media_id` in a message.",
             request={"multipart/form-data": MediaUploadIn}, responses={201: MediaOut}, errors=(415,))
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("Send the file as multipart field `file`.", field="file")
        filename = request.data.get("filename") or ""
        if len(filename) > 255:
            raise ValidationFailed("filename: at most 255 characters.", field="filename")
        media = media_create(workspace=self.tenant.workspace, upload=upload, filename=filename)
        self.audit_target = ("media", media.pk)
        return Response(media_out(media, request), status=201)


class MediaDetailView(ApiView):
    scopes = {"GET": "messages:read"}

    @api_doc(operation_id="media_get", summary="Get media metadata",
             description="Kind, MIME type, size, SHA-256 and the download URL.", responses={200: MediaOut})
    def get(self, request, pk: str):
        return Response(media_out(self.get_scoped(Media, pk), request))


class MediaContentView(ApiView):
    scopes = {"GET": "messages:read"}

    @api_doc(operation_id="media_download", summary="Download media",
             description="The stored bytes with their MIME type (images and stickers inline, others as an "
             "attachment).", responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="The file.")})
    def get(self, request, pk: str):
        media = self.get_scoped(Media, pk)
        response = FileResponse(media.file.open("rb"), content_type=media.content_type)
        response["Content-Length"] = str(media.size)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Disposition"] = "inline" if media.kind in ("image", "sticker") else \
            f'attachment; filename="{(media.filename or media.pk).replace(chr(34), "")}"'
        return response
