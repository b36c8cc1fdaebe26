"""POST /api/v1/messages: 202 body, validation limits, the policy chain order, foreign ids, idempotency,
scheduling and cancel, GET/list, and the hot path's query budget."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.contacts.models import ConsentRecord, Contact
from apps.conversations.models import Conversation, Media, Message
from apps.core.models import Event
from tests.conversations.send_support import TO, contact, live_number, template

pytestmark = pytest.mark.django_db

URL = "/api/v1/messages"


@pytest.fixture
def number(workspace):
    return live_number(workspace)


@pytest.fixture
def in_window(workspace):
    return contact(workspace, inbound_hours_ago=1)


def post(api, body, **headers):
    return api.post(URL, body, format="json", **headers)


def test_text_in_window_is_stored_queued_before_the_202(live_api, workspace, number, in_window,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        r = post(live_api, {"to": "+1 555-765-4321", "text": {"body": "hello"}, "client_reference": "ord-1"})
    assert r.status_code == 202, r.content
    body = r.json()
    assert set(body) == {"id", "status", "channel", "to", "type", "cost_estimate", "currency", "created_at",
                         "client_reference"}
    assert body["status"] == "queued" and body["channel"] == "whatsapp" and body["to"] == TO
    assert body["type"] == "text" and body["cost_estimate"] == "0.0000" and body["currency"] == "USD"
    assert body["id"].startswith("msg_") and body["created_at"].endswith("Z")
    m = Message.objects.get(pk=body["id"])
    assert (m.status, m.phone_number_id, m.contact_id, m.body, m.content) == (
        "queued", number.pk, in_window.pk, "hello", {"body": "hello"})
    assert m.conversation.contact_id == in_window.pk and m.conversation.phone_number_id == number.pk
    ev = Event.objects.get(workspace=workspace, type="message.status_changed")
    assert ev.data["message_id"] == m.pk and ev.data["status"] == "queued"
    assert len(callbacks) >= 1  # the dispatcher fast path is scheduled on commit


def test_template_send_renders_body_and_estimates_cost(live_api, workspace, number):
    workspace.settings = {**workspace.settings, "marketing_requires_opt_in": False}  # a new number may get MARKETING
    workspace.save(update_fields=["settings"])
    template(workspace, number.waba, category="MARKETING")
    r = post(live_api, {"to": "+12125550123", "type": "template",
                        "template": {"name": "order_update", "language": "en", "variables": ["Ann", "A-7"]}})
    assert r.status_code == 202, r.content
    assert r.json()["cost_estimate"] == "0.0275"  # North America marketing 0.0250 + the standard plan's 10 %
    m = Message.objects.get(pk=r.json()["id"])
    assert m.body == "Hi Ann, order A-7 shipped." and m.template_category == "MARKETING"
    assert Contact.objects.filter(workspace=workspace, phone="+12125550123").count() == 1  # upserted with it


def test_template_short_form(live_api, workspace, number):
    template(workspace, number.waba)
    r = post(live_api, {"to": TO, "template": "order_update", "language": "en", "variables": ["Bo", "9"]})
    assert r.status_code == 202, r.content
    m = Message.objects.get(pk=r.json()["id"])
    assert m.content == {"name": "order_update", "language": "en", "variables": ["Bo", "9"]}
    assert m.body == "Hi Bo, order 9 shipped."


BASE = {"to": TO, "type": "text", "text": {"body": "hi"}}
LONG = "x" * 4097


def _ibuttons(n=1, title="Yes", bid="b1"):
    return {"kind": "buttons", "body": "Pick", "buttons": [{"id": f"{bid}{i}", "title": f"{title}{i}"}
                                                             for i in range(n)]}


def _ilist(sections=1, rows=1):
    return {"kind": "list", "body": "Pick", "button": "Open",
            "sections": [{"title": f"S{s}", "rows": [{"id": f"r{s}{r}", "title": "Row"} for r in range(rows)]}
                         for s in range(sections)]}


INVALID = [
    ({"to": None}, "to"),
    ({"to": "12"}, "to"),
    ({"to": "+1555abc4321"}, "to"),
    ({"channel": "fax"}, "channel"),
    ({"type": "telegram"}, "type"),
    ({"type": None, "text": {"body": "a"}, "image": {"link": "https://x.example/a.jpg"}}, "type"),
    ({"type": None, "text": None}, "type"),
    ({"text": None}, "text"),
    ({"text": {"body": ""}}, "text.body"),
    ({"text": {"body": LONG}}, "text.body"),
    ({"text": {"body": 5}}, "text.body"),
    ({"text": {"body": "a", "preview_url": "yes"}}, "text.preview_url"),
    ({"type": "image", "image": {}}, "image.media_id"),
    ({"type": "image", "image": {"media_id": "med_1", "link": "https://x.example/a.jpg"}}, "image.media_id"),
    ({"type": "image", "image": {"link": "http://x.example/a.jpg"}}, "image.link"),
    ({"type": "image", "image": {"link": "ftp://x.example/a.jpg"}}, "image.link"),
    ({"type": "image", "image": {"media_id": "abc"}}, "image.media_id"),
    ({"type": "image", "image": {"link": "https://x.example/a.jpg", "caption": "c" * 1025}}, "image.caption"),
    ({"type": "audio", "audio": {"link": "https://x.example/a.mp3", "caption": "no"}}, "audio.caption"),
    ({"type": "sticker", "sticker": {"link": "https://x.example/a.webp", "caption": "no"}}, "sticker.caption"),
    ({"type": "video", "video": {"link": "https://x.example/a.mp4", "filename": "v.mp4"}}, "video.filename"),
    ({"type": "document", "document": {"link": "https://x.example/a.pdf", "filename": "f" * 256}},
     "document.filename"),
    ({"type": "location", "location": {"latitude": 91, "longitude": 0}}, "location.latitude"),
    ({"type": "location", "location": {"latitude": -90.5, "longitude": 0}}, "location.latitude"),
    ({"type": "location", "location": {"latitude": 0, "longitude": 180.1}}, "location.longitude"),
    ({"type": "location", "location": {"latitude": 0}}, "location.longitude"),
    ({"type": "location", "location": {"latitude": True, "longitude": 0}}, "location.latitude"),
    ({"type": "interactive", "interactive": {"kind": "carousel", "body": "x"}}, "interactive.kind"),
    ({"type": "interactive", "interactive": _ibuttons(0)}, "interactive.buttons"),
    ({"type": "interactive", "interactive": _ibuttons(4)}, "interactive.buttons"),
    ({"type": "interactive", "interactive": _ibuttons(1, title="t" * 20)}, "interactive.buttons[0].title"),
    ({"type": "interactive", "interactive": _ibuttons(1, bid="i" * 256)}, "interactive.buttons[0].id"),
    ({"type": "interactive", "interactive": {**_ibuttons(2), "buttons": [{"id": "a", "title": "Same"},
                                                                      {"id": "b", "title": "Same"}]}},
     "interactive.buttons[1].title"),
    ({"type": "interactive", "interactive": {**_ibuttons(1), "body": "b" * 1025}}, "interactive.body"),
    ({"type": "interactive", "interactive": {**_ibuttons(1), "header_text": "h" * 61}}, "interactive.header_text"),
    ({"type": "interactive", "interactive": {**_ibuttons(1), "footer": "f" * 61}}, "interactive.footer"),
    ({"type": "interactive", "interactive": _ilist(sections=11)}, "interactive.sections"),
    ({"type": "interactive", "interactive": _ilist(sections=2, rows=6)}, "interactive.sections[1].rows"),
    ({"type": "interactive", "interactive": _ilist(sections=1, rows=11)}, "interactive.sections[0].rows"),
    ({"type": "interactive", "interactive": {**_ilist(), "button": "b" * 21}}, "interactive.button"),
    ({"type": "interactive", "interactive": {**_ilist(), "body": "b" * 4097}}, "interactive.body"),
    ({"type": "interactive", "interactive": {**_ilist(), "sections": [
        {"title": "t" * 25, "rows": [{"id": "r", "title": "x"}]}]}}, "interactive.sections[0].title"),
    ({"type": "interactive", "interactive": {**_ilist(), "sections": [
        {"rows": [{"id": "r" * 201, "title": "x"}]}]}}, "interactive.sections[0].rows[0].id"),
    ({"type": "interactive", "interactive": {**_ilist(), "sections": [
        {"rows": [{"id": "r", "title": "x" * 25}]}]}}, "interactive.sections[0].rows[0].title"),
    ({"type": "interactive", "interactive": {**_ilist(), "sections": [
        {"rows": [{"id": "r", "title": "x", "description": "d" * 73}]}]}},
     "interactive.sections[0].rows[0].description"),
    ({"type": "reaction", "reaction": {"emoji": "👍"}}, "reaction.message_id"),
    ({"type": "reaction", "reaction": {"message_id": "msg_x", "emoji": 1}}, "reaction.emoji"),
    ({"type": "contacts", "contacts": []}, "contacts"),
    ({"type": "contacts", "contacts": [{"name": {"formatted_name": "A"}}] * 6}, "contacts"),
    ({"type": "contacts", "contacts": [{"phones": []}]}, "contacts[0].name"),
    ({"type": "contacts", "contacts": [{"name": {}}]}, "contacts[0].name.formatted_name"),
    ({"type": "template", "template": {"language": "en"}}, "template.name"),
    ({"type": "template", "template": {"name": "x"}}, "template.language"),
    ({"type": "template", "template": {"name": "x", "language": "en", "variables": "a"}}, "template.variables"),
    ({"type": "template", "template": {"name": "x", "language": "en", "variables": [True]}},
     "template.variables[0]"),
    ({"type": "template", "template": {"name": "x", "language": "en", "components": {"a": 1}}},
     "template.components"),
    ({"scheduled_at": "tomorrow"}, "scheduled_at"),
    ({"scheduled_at": "2020-01-01T00:00:00Z"}, "scheduled_at"),
    ({"client_reference": "r" * 256}, "client_reference"),
    ({"fallback": {"sms": {}}}, "fallback.sms.text"),
    ({"fallback": {"email": {"to": "x"}}}, "fallback.email"),
    ({"fallback": {"sms": {"text": "t" * 1601}}}, "fallback.sms.text"),
    ({"channel": "sms", "type": "image", "image": {"link": "https://x.example/a.jpg"}}, "type"),
    ({"phone_number_id": 5}, "phone_number_id"),
]


@pytest.mark.parametrize(("change", "field"), INVALID, ids=[f"{i}-{f}" for i, (_, f) in enumerate(INVALID)])
def test_every_validation_limit_is_400_naming_the_field(live_api, workspace, number, in_window, change, field):
    body = copy.deepcopy(BASE)
    for key, value in change.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    if body.get("type") != "text":
        body.pop("text", None) if "text" not in change else None
    r = post(live_api, body)
    assert r.status_code == 400, r.content
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_FAILED" and err["details"]["field"] == field, err
    assert not Message.objects.exists() and not Event.objects.filter(type__startswith="message.").exists()


VALID = [
    {"type": "image", "image": {"link": "https://x.example/a.jpg", "caption": "c" * 1024}},
    {"type": "document", "document": {"link": "https://x.example/a.pdf", "filename": "f.pdf", "caption": "x"}},
    {"type": "audio", "audio": {"link": "https://x.example/a.mp3"}},
    {"type": "sticker", "sticker": {"link": "https://x.example/a.webp"}},
    {"type": "video", "video": {"link": "https://x.example/a.mp4"}},
    {"type": "location", "location": {"latitude": -90, "longitude": 180, "name": "Pole"}},
    {"type": "interactive", "interactive": _ibuttons(3, title="t" * 18)},
    {"type": "interactive", "interactive": _ilist(sections=2, rows=5)},
    {"type": "contacts", "contacts": [{"name": {"formatted_name": "A"}}] * 5},
    {"text": {"body": "x" * 4096}},  # type inferred
    {"location": {"latitude": 1, "longitude": 2}},  # type inferred
]


@pytest.mark.parametrize("payload", VALID, ids=range(len(VALID)))
def test_limits_at_the_edge_are_accepted(live_api, workspace, number, in_window, payload):
    r = post(live_api, {"to": TO, **payload})
    assert r.status_code == 202, r.content
    assert Message.objects.get().type == (payload.get("type") or next(iter(payload)))


def test_outside_window_422_with_last_inbound_and_nothing_written(live_api, workspace, number):
    c = contact(workspace, inbound_hours_ago=25)
    r = post(live_api, BASE)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "OUTSIDE_24H_WINDOW" and err["details"]["field"] == "type"
    assert err["details"]["last_inbound_at"] == c.last_inbound_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not Message.objects.exists() and not Conversation.objects.exists()


def test_unknown_contact_is_outside_window_with_null_last_inbound(live_api, number):
    r = post(live_api, BASE)
    assert r.status_code == 422 and r.json()["error"]["details"]["last_inbound_at"] is None
    assert not Contact.objects.exists()


def test_policy_order_sender_before_template_before_window_before_consent(live_api, workspace, number):
    c = contact(workspace, inbound_hours_ago=30, opted_in=False)
    ConsentRecord.objects.create(workspace=workspace, contact=c, status="opt_out", source="api")
    template(workspace, number.waba, category="MARKETING", status="PAUSED")
    tpl = {"to": TO, "template": {"name": "order_update", "language": "en", "variables": ["a", "b"]}}
    # 1. sender resolution beats everything after it
    r = post(live_api, {**tpl, "phone_number_id": "pn_unknown"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "PHONE_NOT_FOUND")
    # 2. template status beats consent
    assert post(live_api, tpl).json()["error"]["code"] == "TEMPLATE_NOT_APPROVED"
    # 3. window (free-form) beats consent; 4. consent for MARKETING
    assert post(live_api, BASE).json()["error"]["code"] == "OUTSIDE_24H_WINDOW"
    from apps.message_templates.models import MessageTemplate

    MessageTemplate.objects.update(status="APPROVED")
    r = post(live_api, tpl)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "CONTACT_OPTED_OUT")
    r = post(live_api, {**tpl, "template": {**tpl["template"], "variables": ["only-one"]}})
    assert r.json()["error"]["code"] == "TEMPLATE_VARIABLE_COUNT_MISMATCH"
    r = post(live_api, {**tpl, "template": {**tpl["template"], "language": "fr"}})
    assert r.json()["error"]["code"] == "TEMPLATE_LANGUAGE_MISMATCH"
    r = post(live_api, {**tpl, "template": {**tpl["template"], "name": "nope"}})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "TEMPLATE_NOT_FOUND")
    assert not Message.objects.exists()
    # UTILITY goes to opted-out contacts (outside the window too: templates are the way back in)
    template(workspace, number.waba, name="utility_one", category="UTILITY")
    r = post(live_api, {"to": TO, "template": {"name": "utility_one", "language": "en", "variables": ["a", "b"]}})
    assert r.status_code == 202


def test_sender_required_when_several_numbers_and_pin_by_either_id(live_api, workspace, number, in_window):
    second = live_number(workspace, meta_waba_id="2222", phone_number_id="3333", display="+15550000003")
    r = post(live_api, BASE)
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "phone_number_id"
    r = post(live_api, {**BASE, "phone_number_id": "3333"})
    assert r.status_code == 202 and Message.objects.get(pk=r.json()["id"]).phone_number_id == second.pk
    r = post(live_api, {**BASE, "phone_number_id": number.pk})
    assert Message.objects.get(pk=r.json()["id"]).phone_number_id == number.pk


def test_waba_bound_key_sees_only_its_number(api_client_for, workspace, number, in_window):
    second = live_number(workspace, meta_waba_id="2222", phone_number_id="3333", display="+15550000003")
    api = api_client_for(workspace, waba_id=second.waba_id)
    r = post(api, BASE)  # one visible number: no pin needed
    assert r.status_code == 202 and Message.objects.get().phone_number_id == second.pk
    r = post(api, {**BASE, "phone_number_id": number.pk})
    assert r.json()["error"]["code"] == "PHONE_NOT_FOUND"


def test_foreign_ids_are_404(live_api, workspace, other_workspace, number, in_window, api_client_for):
    theirs = live_number(other_workspace, meta_waba_id="9999", phone_number_id="8888", display="+15550000008")
    r = post(live_api, {**BASE, "phone_number_id": theirs.pk})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "PHONE_NOT_FOUND")
    other_api = api_client_for(other_workspace)
    contact(other_workspace)
    their_msg = post(other_api, BASE).json()["id"]
    assert live_api.get(f"{URL}/{their_msg}").status_code == 404
    assert live_api.post(f"{URL}/{their_msg}/cancel").status_code == 404
    r = post(live_api, {"to": TO, "reaction": {"message_id": their_msg, "emoji": "👍"}})
    assert (r.status_code, r.json()["error"]["details"]["field"]) == (404, "reaction.message_id")
    media = Media.objects.create(workspace=other_workspace, kind="image", file="x.jpg", content_type="image/jpeg",
                                 size=1, sha256="0" * 64)
    r = post(live_api, {"to": TO, "image": {"media_id": media.pk}})
    assert (r.status_code, r.json()["error"]["details"]["field"]) == (404, "image.media_id")
    assert Message.objects.filter(workspace=workspace).count() == 0


def test_sandbox_key_sends_from_the_simulated_number(sandbox_api, workspace):
    sandbox = workspace.sandbox
    contact(sandbox)
    r = post(sandbox_api, BASE)
    assert r.status_code == 202, r.content
    m = Message.objects.get(pk=r.json()["id"])
    assert m.workspace_id == sandbox.pk and m.phone_number.waba.is_simulated


def test_idempotency_key_replays_without_a_second_row(live_api, number, in_window):
    r1 = post(live_api, BASE, HTTP_IDEMPOTENCY_KEY="k-1")
    r2 = post(live_api, BASE, HTTP_IDEMPOTENCY_KEY="k-1")
    assert r1.status_code == r2.status_code == 202
    assert r2.json() == r1.json() and r2["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1
    r3 = post(live_api, {**BASE, "text": {"body": "other"}}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert r3.status_code == 422 and Message.objects.count() == 1


def test_scheduled_then_released_on_time_by_the_sweeper(live_api, workspace, number, in_window):
    from apps.conversations.services.dispatch import dispatch_sweep

    start = timezone.now()
    with time_machine.travel(start, tick=False):
        at = (start + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = post(live_api, {**BASE, "scheduled_at": at})
        assert r.status_code == 202 and r.json()["status"] == "scheduled" and r.json()["scheduled_at"] == at
        m = Message.objects.get()
        assert dispatch_sweep()["released"] == 0
    with time_machine.travel(start + timedelta(minutes=9, seconds=59), tick=False):
        assert dispatch_sweep()["released"] == 0
        assert Message.objects.get().status == "scheduled"
    with time_machine.travel(start + timedelta(minutes=10, seconds=1), tick=False):
        assert dispatch_sweep()["released"] == 1
    m.refresh_from_db()
    assert m.status == "queued"
    statuses = list(Event.objects.filter(type="message.status_changed").order_by("sequence")
                    .values_list("data__status", flat=True))
    assert statuses == ["scheduled", "queued"]


def test_cancel_only_scheduled(live_api, number, in_window):
    at = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mid = post(live_api, {**BASE, "scheduled_at": at}).json()["id"]
    r = live_api.post(f"{URL}/{mid}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    r = live_api.post(f"{URL}/{mid}/cancel")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "CONFLICT")
    queued = post(live_api, BASE).json()["id"]
    assert live_api.post(f"{URL}/{queued}/cancel").status_code == 409
    assert Message.objects.get(pk=queued).status == "queued"
    from apps.conversations.services.dispatch import dispatch_sweep

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert dispatch_sweep()["released"] == 0
    assert Message.objects.get(pk=mid).status == "canceled"


def test_get_and_list_with_filters(live_api, workspace, number, in_window):
    a = post(live_api, {**BASE, "client_reference": "A"}).json()["id"]
    contact(workspace, phone="+15550001111")
    b = post(live_api, {**BASE, "to": "+15550001111"}).json()["id"]
    Message.objects.filter(pk=b).update(status="failed", error_code="RECIPIENT_NOT_ON_WHATSAPP",
                                        upstream_code=131026, error_message="x")
    got = live_api.get(f"{URL}/{b}").json()
    assert got["status"] == "failed" and got["error"] == {
        "code": "RECIPIENT_NOT_ON_WHATSAPP", "message": "x", "upstream_code": 131026,
        "reason": "recipient_not_on_whatsapp",
        "description": "The person cannot receive WhatsApp messages (no WhatsApp, an old app, or terms not accepted).",
        "action": "Reach them another way (SMS fallback) and check the number."}
    assert {"sent_at", "delivered_at", "read_at", "failed_at", "provider_message_id", "attempts", "cost",
            "conversation_id", "campaign_id", "client_reference", "fallback_message_id"} <= set(got)
    ids = lambda q: [m["id"] for m in live_api.get(f"{URL}?{q}").json()["data"]]  # noqa: E731
    assert ids("status=failed") == [b]
    assert ids("status=queued") == [a]
    assert ids("client_reference=A") == [a]
    assert ids("to=%2B15550001111") == [b]
    assert ids("") == [b, a]
    page = live_api.get(f"{URL}?limit=1").json()
    assert len(page["data"]) == 1 and page["next_cursor"]
    assert live_api.get(f"{URL}?status=bogus").status_code == 400


def test_send_hot_path_query_budget(live_api, workspace, number, in_window, django_assert_max_num_queries):
    post(live_api, BASE)  # warm caches (content types, first-use lookups)
    # On PostgreSQL, ONE statement: the sender, contact and conversation read as its guard, then the
    # message, the conversation bump, the audit row and the event (its sequence and row). SQLite: the
    # read, one write each, the counter bump and the savepoint pair. The API key and "does this
    # workspace have webhook subscriptions" come from the process's memory.
    from django.db import connection

    # Plus the savepoint pair around the send's try (a lost deadlock runs again), because this test runs
    # inside a transaction; a request outside one sends the one statement alone (test_send_single_statement).
    with django_assert_max_num_queries(3 if connection.vendor == "postgresql" else 10):
        r = post(live_api, BASE)
    assert r.status_code == 202


def test_template_send_query_budget(live_api, workspace, number, in_window, django_assert_max_num_queries):
    """A template send to a known contact with a conversation (bench/wallet_send.py's road): on PostgreSQL
    the sender, contact, conversation AND the template candidates in one read (send_targets), then the one
    statement that reserves and writes; plus the savepoint pair of this test's transaction."""
    from django.db import connection

    Conversation.objects.create(workspace=workspace, contact=in_window, phone_number=number,
                                state=Conversation.State.OPEN)
    template(workspace, number.waba)
    body = {"to": TO, "template": {"name": "order_update", "language": "en", "variables": ["Ann", "7"]}}
    assert post(live_api, body).status_code == 202  # warm caches
    with django_assert_max_num_queries(4 if connection.vendor == "postgresql" else 14):
        r = post(live_api, body)
    assert r.status_code == 202, r.content


def test_a_send_joins_the_open_conversation_and_a_resolved_one_stays_closed(live_api, workspace, number, in_window):
    first = Message.objects.get(pk=post(live_api, BASE).json()["id"])
    second = Message.objects.get(pk=post(live_api, BASE).json()["id"])
    assert first.conversation_id == second.conversation_id
    Conversation.objects.filter(pk=first.conversation_id).update(state=Conversation.State.RESOLVED)
    third = Message.objects.get(pk=post(live_api, BASE).json()["id"])
    assert third.conversation_id != first.conversation_id
    assert Conversation.objects.get(pk=third.conversation_id).state == Conversation.State.OPEN
    conversation = Conversation.objects.get(pk=third.conversation_id)
    assert conversation.last_message_preview == "hi" and conversation.last_message_at is not None


def test_sms_sends_keep_a_conversation_of_their_own(live_api, workspace, number, in_window):
    whatsapp = Message.objects.get(pk=post(live_api, BASE).json()["id"])
    r = post(live_api, {"to": TO, "channel": "sms", "type": "text", "text": {"body": "by sms"}})
    assert r.status_code == 202, r.content
    sms = Message.objects.get(pk=r.json()["id"])
    assert sms.conversation_id != whatsapp.conversation_id
    assert Conversation.objects.get(pk=sms.conversation_id).channel_kind == "sms"
    again = Message.objects.get(pk=post(live_api, {"to": TO, "channel": "sms", "type": "text",
                                                   "text": {"body": "again"}}).json()["id"])
    assert again.conversation_id == sms.conversation_id


def test_a_new_recipient_gets_a_contact_and_a_conversation(live_api, workspace, number):
    template(workspace, number.waba)
    r = post(live_api, {"to": "+15550001111", "type": "template",
                        "template": {"name": "order_update", "language": "en", "variables": ["A", "1"]}})
    assert r.status_code == 202, r.content
    message = Message.objects.get(pk=r.json()["id"])
    assert message.contact.phone == "+15550001111"
    assert message.conversation.contact_id == message.contact_id


def test_a_send_is_audited_once_in_its_own_transaction_and_a_refusal_too(live_api, workspace, number, in_window):
    from apps.core.models import AuditLog

    accepted = post(live_api, BASE, HTTP_X_REQUEST_ID="req-audit-1")
    assert accepted.status_code == 202
    [record] = AuditLog.objects.filter(request_id="req-audit-1")
    assert (record.action, record.status_code, record.target_type, record.target_id, record.workspace_id) == (
        "POST /api/v1/messages", 202, "message", accepted.json()["id"], workspace.pk)
    Contact.objects.filter(pk=in_window.pk).update(last_inbound_at=timezone.now() - timedelta(days=2))
    refused = post(live_api, BASE, HTTP_X_REQUEST_ID="req-audit-2")
    assert refused.status_code == 422
    [record] = AuditLog.objects.filter(request_id="req-audit-2")
    assert (record.status_code, record.target_id) == (422, "")
