"""The one status mover: forward only, its timestamps and error fields, its events once; the dispatcher's
fast `sent` form pinned to the plain form; a template paused after queueing stops its sends; and no other
module of apps/ writes Message.status."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Message
from apps.conversations.services import dispatch, transitions
from apps.conversations.services.sending import message_send_internal
from apps.core.models import Event
from apps.message_templates.services import template_status_apply
from tests.conversations.send_support import contact, live_number, redis_keys_clear, template

pytestmark = pytest.mark.django_db
S = Message.Status


@pytest.fixture(autouse=True)
def _clean_buckets():
    redis_keys_clear()


@pytest.fixture
def number(workspace):
    return live_number(workspace, mps=1000)


def _message(workspace, number, phone="+15557654321", **fields) -> Message:
    person = Contact.objects.filter(workspace=workspace, phone=phone).first() or contact(workspace, phone)
    m = message_send_internal(workspace=workspace, phone_number=number, contact=person,
                              message_type="text", content={"body": "hi"}, sent_by="api")
    if fields:
        Message.objects.filter(pk=m.pk).update(**fields)
    return Message.objects.get(pk=m.pk)


def _status_events(message_id: str) -> list[tuple[str, str | None, str]]:
    return [(e.type, e.data["previous_status"], e.data["status"])
            for e in Event.objects.filter(data__message_id=message_id).order_by("sequence")
            if e.data.get("previous_status") is not None]


def _receipt(message: Message, to: str, at) -> bool:
    changed = transitions.message_receipt_apply(message=message, to=to, at=at)
    transitions.messages_receipts_save(messages=[message], now=timezone.now())
    return changed


def test_the_ladder():
    assert [s for s in S.values if transitions.may_move(S.SENT, s)] == [S.DELIVERED, S.READ, S.FAILED]
    assert [s for s in S.values if transitions.may_move(S.READ, s)] == []
    for final in (S.FAILED, S.CANCELED, S.RECEIVED):
        assert [s for s in S.values if transitions.may_move(final, s)] == []
    assert [s for s in S.values if transitions.may_move(S.SCHEDULED, s)] == [S.QUEUED, S.SENT, S.DELIVERED,
                                                                            S.READ, S.FAILED, S.CANCELED]
    assert [s for s in S.values if transitions.may_move(S.SENDING, s)] == [S.QUEUED, S.SENT, S.DELIVERED,
                                                                          S.READ, S.FAILED]
    assert not transitions.may_move(S.DELIVERED, S.FAILED)


def test_read_then_delivered_keeps_read_and_the_earliest_times(workspace, number):
    m = _message(workspace, number, status=S.SENT, sent_at=timezone.now(), provider_message_id="wamid.x")
    t0 = timezone.now()
    assert _receipt(m, S.READ, t0 + timedelta(seconds=5)) is True
    assert _receipt(m, S.DELIVERED, t0 + timedelta(seconds=3)) is True  # a fact: delivered earlier
    m.refresh_from_db()
    assert (m.status, m.delivered_at, m.read_at) == (S.READ, t0 + timedelta(seconds=3), t0 + timedelta(seconds=5))
    assert _receipt(m, S.DELIVERED, t0 + timedelta(seconds=4)) is False
    assert _receipt(m, S.FAILED, t0 + timedelta(seconds=6)) is False  # failed never follows delivered or read
    m.refresh_from_db()
    assert m.status == S.READ and m.failed_at is None and m.error_code == ""


def test_failed_is_final(workspace, number):
    m = _message(workspace, number, status=S.SENT, sent_at=timezone.now(), provider_message_id="wamid.y")
    at = timezone.now()
    assert transitions.message_transition(message=m, to=S.FAILED, at=at,
                                          error={"code": "NOT_ON_WHATSAPP", "message": "no", "upstream_code": 131026})
    before = Event.objects.count()
    assert transitions.message_transition(message=m, to=S.QUEUED) is False
    assert transitions.message_transition(message=m, to=S.FAILED) is False
    assert _receipt(m, S.DELIVERED, at + timedelta(seconds=1)) is True  # the time is kept, the status is not
    m.refresh_from_db()
    assert (m.status, m.failed_at, m.error_code, m.error_message, m.upstream_code) == (
        S.FAILED, at, "NOT_ON_WHATSAPP", "no", 131026)
    assert m.delivered_at == at + timedelta(seconds=1)
    assert Event.objects.count() == before


def test_a_move_sets_its_timestamp_and_emits_its_events_once(workspace, number):
    m = _message(workspace, number, status=S.SCHEDULED, scheduled_at=timezone.now() + timedelta(hours=1))
    at = timezone.now()
    assert transitions.message_transition(message=m, to=S.CANCELED, at=at) is True
    assert transitions.message_transition(message=m, to=S.CANCELED, at=at) is False
    stale = Message.objects.get(pk=m.pk)
    stale.status = S.SCHEDULED  # a writer that read before the cancel: the CAS refuses it
    assert transitions.message_transition(message=stale, to=S.QUEUED) is False
    m.refresh_from_db()
    assert (m.status, m.canceled_at) == (S.CANCELED, at)
    assert _status_events(m.pk) == [("message.status_changed", "scheduled", "canceled")]


def test_the_dispatcher_moves_emit_public_statuses_only(workspace, number):
    m = _message(workspace, number)
    now = timezone.now()
    batch = dispatch.messages_claim(phone_number_id=number.pk, limit=10)
    (claimed,) = batch.messages
    assert claimed.status == S.SENDING and claimed.template_status is None
    assert transitions.messages_release_claims(messages=[claimed], token=batch.token, now=now,
                                               next_attempt_at=now) == [claimed]
    batch = dispatch.messages_claim(phone_number_id=number.pk, limit=10)
    events: dict = {}
    item = transitions.Sent(message=batch.messages[0], provider_message_id="wamid.z", at=now)
    assert transitions.messages_mark_sent(items=[item], token=batch.token, now=now, events=events) == {m.pk}
    transitions.events_flush(events)
    # queued -> sending -> queued -> sending is internal: only queued -> sent is told.
    assert _status_events(m.pk) == [("message.status_changed", "queued", "sent"), ("message.sent", "queued", "sent")]


_COLUMNS = ("status", "provider_message_id", "sent_at", "attempts", "claim_token", "claimed_until", "error_code",
            "error_message", "upstream_code")


def _sent_by(workspace, number, *, fast: bool, phone: str):
    """Three claimed messages, two accepted and one whose claim was lost, recorded by one form: whether the
    right ones moved, the rows (sent_at as an offset from now, whether a lease is held) and the events (ids
    aside)."""
    for _ in range(3):
        _message(workspace, number, phone=phone, error_code="X", error_message="earlier", upstream_code=1)
    batch = dispatch.messages_claim(phone_number_id=number.pk, limit=10)
    now = timezone.now()
    events: dict = {}
    items = [transitions.Sent(message=m, provider_message_id=f"wamid.{i}", at=now - timedelta(seconds=i))
             for i, m in enumerate(sorted(batch.messages, key=lambda m: m.pk))]
    lost = items.pop()  # its claim was lost: the CAS must refuse it in both forms
    Message.objects.filter(pk=lost.message.pk).update(claim_token="other")
    done = transitions.messages_mark_sent(items=items + [lost], token=batch.token, now=now, events=events,
                                          fast=fast)
    rows = [(*r[:2], r[2] - now if r[2] else None, *r[3:5], r[5] is None, *r[6:]) for r in Message.objects.filter(
        pk__in=[i.message.pk for i in items + [lost]]).order_by("pk").values_list(*_COLUMNS)]
    ignored = ("message_id", "contact_id", "conversation_id", "to", "timestamp", "sent_at")
    evts = [(t, {k: v for k, v in d.items() if k not in ignored}) for t, d in events[workspace.pk]]
    return done == {i.message.pk for i in items}, rows, evts


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast form is PostgreSQL's")
def test_the_fast_sent_form_writes_what_the_plain_form_writes(workspace, number):
    ok_fast, rows_fast, events_fast = _sent_by(workspace, number, fast=True, phone="+15550000001")
    Message.objects.all().delete()
    ok_plain, rows_plain, events_plain = _sent_by(workspace, number, fast=False, phone="+15550000002")
    assert ok_fast and ok_plain
    assert rows_fast == rows_plain
    assert [r[0] for r in rows_fast] == [S.SENT, S.SENT, S.SENDING]
    assert events_fast == events_plain and len(events_fast) == 4


def test_the_plain_sent_form_runs_on_every_database(workspace, number):
    ok, rows, events = _sent_by(workspace, number, fast=False, phone="+15550000003")
    assert ok
    assert [r[0] for r in rows].count(S.SENT) == 2 and [r[0] for r in rows].count(S.SENDING) == 1
    assert [t for t, _ in events] == ["message.status_changed", "message.sent"] * 2


# --- the template re-check at dispatch ----------------------------------------------------------------


class FakeSender:
    def __init__(self):
        self.calls: list[dict] = []

    async def send_message(self, *, phone_number_id, access_token, payload):
        from apps.providers.base import SendResult

        self.calls.append(payload)
        return SendResult(provider_message_id=f"wamid.{len(self.calls)}", wa_id="1", message_status=None)


@pytest.mark.parametrize("event", ["PAUSED", "DISABLED", "PENDING_DELETION"])
def test_a_template_paused_after_queueing_stops_its_sends(workspace, number, monkeypatch, event):
    fake = FakeSender()
    monkeypatch.setattr("apps.providers.registry.async_whatsapp_sender", lambda: fake)
    tpl = template(workspace, number.waba)
    MessageTemplate = type(tpl)
    tpl.meta_template_id = "9001"
    tpl.save(update_fields=["meta_template_id"])
    m = message_send_internal(workspace=workspace, phone_number=number, contact=contact(workspace),
                              message_type="template", sent_by="api",
                              content={"name": "order_update", "language": "en", "variables": ["Ana", "42"]})
    other = _message(workspace, number, phone="+15550000009")  # a text on the same number still goes
    template_status_apply(waba_meta_id=number.waba.meta_waba_id, meta_template_id="9001", event=event)
    tpl.refresh_from_db()
    assert tpl.status != MessageTemplate.Status.APPROVED

    totals = dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)

    assert dict(totals) == {"sent": 1, "failed": 1}
    assert [c["type"] for c in fake.calls] == ["text"]  # no provider call for the template
    other.refresh_from_db()
    assert other.status == S.SENT
    m.refresh_from_db()
    assert (m.status, m.error_code, m.attempts) == (S.FAILED, "TEMPLATE_NOT_APPROVED", 0)
    assert m.error_message == f"Template 'order_update' (en) is {tpl.status}."
    assert not m.attempt_rows.exists()
    failed = Event.objects.get(type="message.failed", data__message_id=m.pk)
    assert failed.data["error"] == {"code": "TEMPLATE_NOT_APPROVED", "upstream_code": None,
                                    "message": f"Template 'order_update' (en) is {tpl.status}.",
                                    "reason": "template_not_approved",
                                    "description": "The template was no longer approved when the message was due "
                                                   "(paused, disabled or being deleted).",
                                    "action": "Wait for the template to be approved again (or use another), then "
                                              "resend."}
    assert Event.objects.filter(type="message.status_changed", data__message_id=m.pk,
                                data__status="failed").count() == 1


def test_an_approved_template_is_sent(workspace, number, monkeypatch):
    fake = FakeSender()
    monkeypatch.setattr("apps.providers.registry.async_whatsapp_sender", lambda: fake)
    template(workspace, number.waba)
    m = message_send_internal(workspace=workspace, phone_number=number, contact=contact(workspace),
                              message_type="template", sent_by="api",
                              content={"name": "order_update", "language": "en", "variables": ["Ana", "42"]})
    assert dict(dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)) == {"sent": 1}
    m.refresh_from_db()
    assert m.status == S.SENT and [c["type"] for c in fake.calls] == ["template"]


# --- one place ------------------------------------------------------------------------------------------


_APPS = Path(__file__).resolve().parents[2] / "apps"
_MOVER = _APPS / "conversations" / "services" / "transitions.py"
_MESSAGE_NAMES = re.compile(r"^(m|msg|message|messages?_?\w*|sms|\w+_message)$")


def _mentions_message(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "Message" for n in ast.walk(node))


def _status_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            keys = {k.arg for k in node.keywords}
            if name == "update" and "status" in keys and _mentions_message(node.func.value):
                found.append(f"{where} Message update(status=)")
            if name == "bulk_update" and _mentions_message(node.func.value):
                found.append(f"{where} Message bulk_update")
            if name == "save" and any(k.arg == "update_fields" and "status" in ast.unparse(k.value)
                                      for k in node.keywords) and isinstance(node.func.value, ast.Name) \
                    and _MESSAGE_NAMES.match(node.func.value.id):
                found.append(f"{where} message.save(update_fields=[status])")
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(t, ast.Attribute) and t.attr == "status" and isinstance(t.value, ast.Name) \
                        and _MESSAGE_NAMES.match(t.value.id):
                    found.append(f"{where} {t.value.id}.status =")
        # Raw SQL: the messages are the conversations app's table.
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "conversations" in path.parts \
                and re.search(r"\bSET\s+status\b", node.value, re.I):
            found.append(f"{where} SQL SET status")
    return found


def test_no_other_module_moves_message_status():
    offenders = [w for p in sorted(_APPS.rglob("*.py")) if p != _MOVER and "migrations" not in p.parts
                 for w in _status_writes(p)]
    assert offenders == []


def test_the_scan_sees_a_status_write(tmp_path):
    (tmp_path / "conversations").mkdir()
    bad = tmp_path / "conversations" / "probe.py"
    bad.write_text("def f(message, Message):\n    message.status = 'sent'\n"
                   "    Message.objects.filter(pk=1).update(status='sent')\n"
                   "    sql = \"UPDATE x SET status = 'sent'\"\n")
    assert [w.split(" ", 1)[1] for w in _status_writes(bad)] == [
        "message.status =", "Message update(status=)", "SQL SET status"]


def _recording_queries(workspace, number, n: int, phone: str) -> int:
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    for _ in range(n):
        _message(workspace, number, phone=phone)
    batch = dispatch.messages_claim(phone_number_id=number.pk, limit=100)
    now = timezone.now()
    outcomes = [dispatch.Outcome(message=m, kind="accepted", provider_message_id=f"wamid.{phone}.{i}",
                                 started_at=now, finished_at=now, latency_ms=1)
                for i, m in enumerate(batch.messages)]
    with CaptureQueriesContext(conn) as queries:
        assert dispatch.outcomes_record(outcomes=outcomes, token=batch.token)["sent"] == n
    return len(queries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement forms are PostgreSQL's")
def test_recording_a_sent_batch_costs_the_same_queries_whatever_its_size(workspace, number):
    assert _recording_queries(workspace, number, 2, "+15550000011") == \
        _recording_queries(workspace, number, 20, "+15550000012") == 4  # UPDATE, COPY, the event append
