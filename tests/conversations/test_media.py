"""POST /api/v1/media (sniffed MIME, per-kind limits, sha256, 413/415), workspace-only downloads, upload to
Meta on first use per number (cached), inbound download from Meta over a real socket."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.conversations.models import Media, MediaUpload, Message
from apps.conversations.services import dispatch
from apps.conversations.services.media import media_download_inbound, media_meta_id_for_number, sniff_mime
from apps.conversations.services.sending import message_send_internal
from apps.providers import registry
from apps.providers.simulator.testing import start_fakemeta_in_thread
from tests.conversations.send_support import contact, live_number, redis_keys_clear

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 100
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" + b"x" * 100
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 100
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 100
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 100
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 200
TXT = "Plain text, naïve café ✓\n".encode() * 10
GIF = b"GIF89a" + b"\x00" * 100
ZIP = b"PK\x03\x04" + b"\x00" * 100


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def upload(api, data, name="f.bin", **extra):
    return api.post("/api/v1/media", {"file": SimpleUploadedFile(name, data, content_type="application/x-lie"),
                                      **extra}, format="multipart")


@pytest.mark.parametrize(("data", "name", "mime", "kind"), [
    (JPEG, "a.png", "image/jpeg", "image"),  # the name lies; the bytes win
    (PNG, "a.jpg", "image/png", "image"),
    (PDF, "a.pdf", "application/pdf", "document"),
    (WEBP, "s.webp", "image/webp", "sticker"),
    (MP4, "v.mp4", "video/mp4", "video"),
    (MP3, "a.mp3", "audio/mpeg", "audio"),
    (OLE, "old.doc", "application/msword", "document"),
    (OLE, "old.xls", "application/vnd.ms-excel", "document"),
    (TXT, "notes.txt", "text/plain", "document"),
])
def test_upload_sniffs_the_type_and_stores_the_file(live_api, workspace, data, name, mime, kind):
    r = upload(live_api, data, name)
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["content_type"], body["kind"], body["size"]) == (mime, kind, len(data))
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["id"].startswith("med_")
    assert body["url"].endswith(f"/api/v1/media/{body['id']}/content")
    media = Media.objects.get(pk=body["id"])
    assert media.workspace_id == workspace.pk and media.file.read() == data
    got = live_api.get(f"/api/v1/media/{body['id']}/content")
    assert got.status_code == 200 and b"".join(got.streaming_content) == data and got["Content-Type"] == mime


@pytest.mark.parametrize(("data", "name"), [(GIF, "a.gif"), (ZIP, "a.zip"), (b"\x00\x01\x02binary\x00", "x.bin")])
def test_unsupported_types_are_415_and_nothing_stored(live_api, data, name):
    r = upload(live_api, data, name)
    assert (r.status_code, r.json()["error"]["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert not Media.objects.exists()


def test_per_kind_size_limits_are_413(live_api, settings):
    settings.MEDIA_LIMITS_BYTES = {"image": 100, "sticker": 50}
    r = upload(live_api, JPEG, "a.jpg")
    assert (r.status_code, r.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert upload(live_api, WEBP, "s.webp").status_code == 413
    assert upload(live_api, PDF, "a.pdf").status_code == 201  # documents keep their own limit
    assert Media.objects.count() == 1


def test_missing_file_is_400(live_api):
    r = live_api.post("/api/v1/media", {"filename": "x"}, format="multipart")
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "file"


def test_files_only_for_their_own_workspace(live_api, sandbox_api, workspace, other_workspace, api_client_for):
    mid = upload(live_api, JPEG, "a.jpg").json()["id"]
    theirs = api_client_for(other_workspace)
    assert theirs.get(f"/api/v1/media/{mid}/content").status_code == 404
    assert theirs.get(f"/api/v1/media/{mid}").status_code == 404
    assert sandbox_api.get(f"/api/v1/media/{mid}/content").status_code == 404  # sandbox is another tenant
    assert live_api.get(f"/api/v1/media/{mid}").json()["id"] == mid


def test_sniffing_edge_cases():
    assert sniff_mime("é".encode()[:1] + b"", "") == "text/plain"  # a cut multibyte char at the boundary
    assert sniff_mime(b"", "") == "application/octet-stream"
    assert sniff_mime(OLE, "deck.ppt") == "application/vnd.ms-powerpoint"


@pytest.fixture
def fake(settings):
    handle = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, enforce_window=False,
                                      pair_limit_enabled=False)
    handle.register_number(phone_number_id="106540352242922", waba_id="102290129340398",
                           display_phone_number="+15550783881")
    settings.META_GRAPH_URL = handle.base_url
    registry.reset_for_tests()
    redis_keys_clear()
    yield handle
    handle.stop()
    registry.reset_for_tests()


def test_media_is_uploaded_to_meta_once_per_number_and_sent_by_id(live_api, workspace, fake):
    number = live_number(workspace)
    mid = upload(live_api, JPEG, "a.jpg").json()["id"]
    media = Media.objects.get(pk=mid)
    c = contact(workspace)
    m1 = message_send_internal(workspace=workspace, phone_number=number, contact=c, message_type="image",
                               content={"media_id": mid, "caption": "look"}, sent_by="api")
    m2 = message_send_internal(workspace=workspace, phone_number=number, contact=c, message_type="image",
                               content={"media_id": mid}, sent_by="api")
    assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)["sent"] == 2
    upload_row = MediaUpload.objects.get(media=media, phone_number=number)
    assert upload_row.meta_media_id
    assert fake.stats()["requests"] == 3  # one upload, two sends
    assert media_meta_id_for_number(media=media, phone_number=number) == upload_row.meta_media_id
    assert fake.stats()["requests"] == 3  # cached
    assert set(Message.objects.filter(pk__in=[m1.pk, m2.pk]).values_list("status", flat=True)) == {"sent"}


def test_inbound_media_is_downloaded_with_the_token_and_stored(workspace, fake):
    from apps.providers.meta_cloud.client import GraphClient

    number = live_number(workspace)
    meta_id = GraphClient().upload_media(phone_number_id=number.meta_phone_number_id,
                                         access_token="EAAG-test-token", data=PDF, mime_type="application/pdf",
                                         filename="in.pdf")
    media = media_download_inbound(workspace=workspace, phone_number=number, meta_media_id=meta_id,
                                   mime_type="application/pdf", sha256=hashlib.sha256(PDF).hexdigest())
    assert (media.source, media.kind, media.content_type, media.size) == ("inbound", "document",
                                                                         "application/pdf", len(PDF))
    assert media.file.read() == PDF and media.sha256 == hashlib.sha256(PDF).hexdigest()
    again = media_download_inbound(workspace=workspace, phone_number=number, meta_media_id=meta_id)
    assert again.pk == media.pk and Media.objects.count() == 1


def test_inbound_sha256_accepts_base64_and_hex():
    import base64

    from apps.conversations.services.media import sha256_matches

    digest = hashlib.sha256(PDF)
    hexd = digest.hexdigest()
    assert sha256_matches(expected=base64.b64encode(digest.digest()).decode(), hexdigest=hexd) is True
    assert sha256_matches(expected=hexd, hexdigest=hexd) is True
    assert sha256_matches(expected=hexd.upper(), hexdigest=hexd) is True
    assert sha256_matches(expected=base64.b64encode(b"x" * 32).decode(), hexdigest=hexd) is False
    assert sha256_matches(expected="0" * 64, hexdigest=hexd) is False
