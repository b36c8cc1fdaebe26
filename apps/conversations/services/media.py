"""Media: uploads (MIME sniffed from content, per-kind limits, sha256), Meta upload per sending number
(cached in MediaUpload), and inbound downloads from Meta (URLs live 5 minutes, so fetch then download)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import filetype
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.conversations.models import Media, MediaUpload
from apps.core.errors import ApplicationError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from apps.core.models import Workspace
from apps.wabas.models import PhoneNumber
from apps.wabas.services import waba_access_token

MB = 1024 * 1024
# MIME -> kind (API.md Media; META.md §7). Sizes are settings-overridable (MEDIA_LIMITS_BYTES).
KIND_BY_MIME = {
    "image/jpeg": "image", "image/png": "image",
    "video/mp4": "video", "video/3gpp": "video",
    "audio/aac": "audio", "audio/mpeg": "audio", "audio/ogg": "audio", "audio/amr": "audio", "audio/mp4": "audio",
    "application/pdf": "document", "application/msword": "document", "application/vnd.ms-excel": "document",
    "application/vnd.ms-powerpoint": "document", "text/plain": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
    "image/webp": "sticker",
}
DEFAULT_LIMITS = {"image": 5 * MB, "video": 16 * MB, "audio": 16 * MB, "document": 100 * MB, "sticker": 500 * 1024}
META_UPLOAD_TTL = timedelta(days=29)  # Meta keeps uploads 30 days; renew a day early
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_BY_EXT = {"doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint"}
EXT_BY_MIME = {"image/jpeg": "jpg", "image/png": "png", "video/mp4": "mp4", "video/3gpp": "3gp", "audio/aac": "aac",
               "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/amr": "amr", "audio/mp4": "m4a",
               "application/pdf": "pdf", "application/msword": "doc", "application/vnd.ms-excel": "xls",
               "application/vnd.ms-powerpoint": "ppt", "text/plain": "txt", "image/webp": "webp",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
               "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx"}


def media_limits() -> dict[str, int]:
    return {**DEFAULT_LIMITS, **getattr(settings, "MEDIA_LIMITS_BYTES", {})}


def sniff_mime(head: bytes, filename: str = "") -> str:
    """MIME from the bytes, never from the client. `filetype` knows the binary formats; old Office files
    share one OLE container (the extension picks which), and plain text has no magic at all."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if head.startswith(_OLE):
        return _OLE_BY_EXT.get(ext, "application/msword")
    kind = filetype.guess(head)
    if kind is not None:
        mime = kind.mime
        if mime == "video/mp4" and ext in ("m4a", "aac"):
            return "audio/mp4"
        if mime == "application/zip" and ext in ("docx", "xlsx", "pptx"):
            return {v: k for k, v in EXT_BY_MIME.items()}[ext]
        return mime
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:  # a multibyte char cut at the sniff boundary is still text
            if exc.start >= len(head) - 3:
                return "text/plain"
    return "application/octet-stream"


def _check(mime: str, size: int) -> str:
    kind = KIND_BY_MIME.get(mime)
    if kind is None:
        raise UnsupportedMediaType(f"{mime} is not a media type WhatsApp accepts.",
                                   details={"field": "file", "content_type": mime})
    limit = media_limits()[kind]
    if size > limit:
        raise PayloadTooLarge(f"{kind} files may be at most {limit} bytes.",
                              details={"field": "file", "limit": limit, "size": size})
    if size == 0:
        raise ValidationFailed("The file is empty.", field="file")
    return kind


def _store(*, workspace: Workspace, data: bytes, mime: str, kind: str, filename: str, source: str,
           meta_media_id: str = "") -> Media:
    sha = hashlib.sha256(data).hexdigest()
    media = Media(workspace=workspace, kind=kind, content_type=mime, size=len(data), sha256=sha,
                  filename=filename[:255], source=source, meta_media_id=meta_media_id)
    media.file.save(f"{workspace.pk}/{media.pk}.{EXT_BY_MIME.get(mime, 'bin')}", ContentFile(data), save=False)
    media.save()
    return media


def media_create(*, workspace: Workspace, upload, filename: str = "") -> Media:
    """POST /api/v1/media. `upload` is a Django UploadedFile (streamed; only the head is sniffed)."""
    size = upload.size
    hard_max = max(media_limits().values())
    if size > hard_max:
        raise PayloadTooLarge(details={"field": "file", "limit": hard_max, "size": size})
    upload.seek(0)
    head = upload.read(8192)
    name = filename or getattr(upload, "name", "") or ""
    mime = sniff_mime(head, name)
    kind = _check(mime, size)
    upload.seek(0)
    data = upload.read()
    return _store(workspace=workspace, data=data, mime=mime, kind=kind, filename=name, source=Media.Source.UPLOAD)


def media_store_attachment(*, workspace: Workspace, data: bytes, filename: str) -> Media | None:
    """A file that came with an inbound email, in the media store like an inbound WhatsApp file; None when
    its type or size is not one the media store takes (the mail keeps its name)."""
    mime = sniff_mime(data[:8192], filename)
    try:
        kind = _check(mime, len(data))
    except ApplicationError:
        return None
    return _store(workspace=workspace, data=data, mime=mime, kind=kind, filename=filename,
                  source=Media.Source.INBOUND)


def media_meta_id_for_number(*, media: Media, phone_number: PhoneNumber) -> str:
    """Meta's media id for this file on this number: uploaded on first use, cached until near expiry.
    Runs outside transactions (network); a racing upload loses the unique constraint and reuses the winner."""
    now = timezone.now()
    cached = MediaUpload.objects.filter(media=media, phone_number=phone_number, expires_at__gt=now).first()
    if cached is not None:
        return cached.meta_media_id
    from apps.providers.registry import whatsapp_provider

    provider = whatsapp_provider(simulated=phone_number.waba.is_simulated)
    with media.file.open("rb") as fh:
        data = fh.read()
    meta_id = provider.upload_media(phone_number_id=phone_number.meta_phone_number_id,
                                    access_token=waba_access_token(phone_number.waba), data=data,
                                    mime_type=media.content_type, filename=media.filename or media.file.name)
    try:
        with transaction.atomic():
            MediaUpload.objects.update_or_create(media=media, phone_number=phone_number, defaults={
                "meta_media_id": meta_id, "expires_at": now + META_UPLOAD_TTL})
    except IntegrityError:
        pass
    return meta_id


def media_download_inbound(*, workspace: Workspace, phone_number: PhoneNumber, meta_media_id: str,
                           mime_type: str = "", sha256: str = "") -> Media:
    """For the receive road: fetch Meta's short-lived URL, download it with the bearer token, store it.
    Idempotent per (workspace, meta_media_id). Raises ProviderError on upstream failure (callers retry)."""
    existing = Media.objects.filter(workspace=workspace, meta_media_id=meta_media_id,
                                    source=Media.Source.INBOUND).first()
    if existing is not None:
        return existing
    from apps.providers.registry import whatsapp_provider

    provider = whatsapp_provider(simulated=phone_number.waba.is_simulated)
    token = waba_access_token(phone_number.waba)
    info = provider.get_media(media_id=meta_media_id, access_token=token)
    data = provider.download_media(url=info["url"], access_token=token, max_bytes=media_limits()["document"])
    mime = (mime_type or info.get("mime_type") or "").split(";")[0].strip() or sniff_mime(data[:8192])
    kind = KIND_BY_MIME.get(mime) or mime.split("/")[0] if mime else "document"
    if kind not in DEFAULT_LIMITS:
        kind = "document"
    expected = sha256 or info.get("sha256") or ""
    media = _store(workspace=workspace, data=data, mime=mime, kind=kind, filename="", source=Media.Source.INBOUND,
                   meta_media_id=meta_media_id)
    if expected and not sha256_matches(expected=expected, hexdigest=media.sha256):
        # Meta's sha256 is of the file it holds; a mismatch means a truncated or swapped download.
        import logging

        logging.getLogger("reach.media").warning("sha256 mismatch for inbound media %s", meta_media_id)
    return media


def sha256_matches(*, expected: str, hexdigest: str) -> bool:
    """Meta (and the simulator) send the digest base64-encoded; accept hex too."""
    import base64

    expected = expected.strip()
    if expected.lower() == hexdigest.lower():
        return True
    try:
        return expected == base64.b64encode(bytes.fromhex(hexdigest)).decode()
    except ValueError:
        return False
