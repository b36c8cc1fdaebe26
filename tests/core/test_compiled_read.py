"""CompiledRead (apps/core/sql.py): a hot read's SQL compiled once per shape and run with new values. Each read
that uses it is pinned here to its queryset: the same rows, the same field values, the same related objects
already loaded, the same deferred fields. And the helper refuses what it cannot replay faithfully."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.contacts import services as contact_services
from apps.contacts.models import Contact
from apps.conversations.models import AutoReplyRule, Conversation, Message
from apps.conversations.services import receiving, threads
from apps.core.sql import CompiledRead
from apps.wabas import selectors as waba_selectors
from tests.webhooks.inbound_support import connect_number, deliver, text_payload

pytestmark = pytest.mark.django_db


def _loaded(obj) -> tuple:
    """What an instance holds without another query: its loaded field values and its cached relations."""
    deferred = obj.get_deferred_fields()
    values = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.attname not in deferred}
    related = {name: _loaded(value) for name, value in sorted(obj._state.fields_cache.items()) if value is not None}
    return type(obj).__name__, obj.pk, values, sorted(deferred), related


def _same(compiled: list, queryset) -> None:
    expected = list(queryset)
    assert [_loaded(o) for o in compiled] == [_loaded(o) for o in expected]
    assert compiled, "a pin over no rows proves nothing"


@pytest.fixture
def world(workspace, other_workspace):
    number = connect_number(workspace)
    connect_number(other_workspace, meta_waba_id="102290129340399", phone_number_id="106540352242923",
                   display="+15550783882")
    for n, wa_id in enumerate(("16505550101", "16505550102", "16505550103")):
        deliver(text_payload(wamid=f"wamid.cr{n}", body=f"hi {n}", wa_id=wa_id))
    AutoReplyRule.objects.create(workspace=workspace, kind="welcome", reply_text="Hi", enabled=True)
    AutoReplyRule.objects.create(workspace=workspace, kind="keyword", reply_text="No", enabled=False)
    return workspace, number


def test_the_phone_number_read_is_its_queryset_with_waba_and_workspace_loaded(world):
    workspace, number = world
    compiled = waba_selectors.phone_number_by_meta_id(number.meta_phone_number_id)
    _same([compiled], waba_selectors._phone_number_by_meta_id_query(number.meta_phone_number_id))
    with CaptureQueriesContext(connection) as queries:
        assert (compiled.workspace.pk, compiled.waba.meta_waba_id) == (workspace.pk, number.waba.meta_waba_id)
    assert len(queries) == 0
    assert waba_selectors.phone_number_by_meta_id("999999999999999") is None


def test_the_sender_lock_is_its_queryset_in_phone_order_and_locks(world):
    workspace, _ = world
    phones = ["+16505550103", "+16505550101", "+16505550199"]  # one has no row
    with CaptureQueriesContext(connection) as queries:
        locked = contact_services.contacts_lock_by_phone(workspace=workspace, senders=[(p, None) for p in phones])
    assert ("FOR UPDATE" in queries[-1]["sql"]) is connection.features.has_select_for_update
    assert list(locked) == ["+16505550101", "+16505550103"]
    _same(list(locked.values()), Contact.objects.filter(workspace=workspace, phone__in=phones).order_by("phone"))


def test_the_current_conversations_read_is_its_queryset_for_any_number_of_contacts(world, other_workspace):
    workspace, number = world
    contacts = list(Contact.objects.filter(workspace=workspace).order_by("phone"))
    for size in (1, 2, 3):  # one compiled shape per list length
        ids = [c.pk for c in contacts[:size]]
        compiled = threads.conversations_current(workspace=workspace, contact_ids=ids, phone_number=number)
        _same(sorted(compiled.values(), key=lambda c: c.created_at),
              threads._current_query(workspace.pk, ids, number.pk, "whatsapp"))
    resolved = Conversation.objects.filter(contact=contacts[0]).get()
    Conversation.objects.filter(pk=resolved.pk).update(state="resolved")
    assert contacts[0].pk not in threads.conversations_current(workspace=workspace, contact_ids=[contacts[0].pk],
                                                               phone_number=number)
    # Another tenant's contact ids find nothing here; a number of None (a social thread) is its own shape.
    assert threads.conversations_current(workspace=other_workspace, contact_ids=[c.pk for c in contacts],
                                         phone_number=number) == {}
    assert threads.conversations_current(workspace=workspace, contact_ids=[contacts[1].pk], phone_number=None) == {}


def test_the_stored_wamids_read_is_its_queryset_with_the_same_fields_deferred(world):
    workspace, _ = world
    wamids = ["wamid.cr0", "wamid.cr2", "wamid.unknown"]
    compiled = receiving._stored_wamids(workspace_id=workspace.pk, wamids=wamids)
    _same(sorted(compiled, key=lambda m: m.pk), receiving._stored_wamids_query(workspace.pk, wamids).order_by("pk"))
    assert {m.provider_message_id for m in compiled} == {"wamid.cr0", "wamid.cr2"}
    assert "body" in compiled[0].get_deferred_fields()
    assert receiving._stored_wamids(workspace_id=workspace.pk, wamids=[]) == []


def test_the_auto_reply_read_sees_only_enabled_rules_of_the_workspace(world, other_workspace):
    workspace, _ = world
    _same(receiving._an_auto_reply_rule(workspace_id=workspace.pk), receiving._auto_reply_rule_query(workspace.pk))
    assert receiving._workspace_has_auto_replies(workspace.pk) is True
    assert receiving._workspace_has_auto_replies(other_workspace.pk) is False
    AutoReplyRule.objects.filter(workspace=workspace).update(enabled=False)
    assert receiving._workspace_has_auto_replies(workspace.pk) is False


def test_a_value_the_orm_would_change_on_its_way_is_refused():
    """startswith sends "value%": replaying the marker's slot with a bare value would match exactly instead."""
    read = CompiledRead(lambda prefix: Contact.objects.filter(phone__startswith=prefix))
    with pytest.raises(TypeError, match="unchanged"):
        read(prefix="+1650")


def test_values_are_parameters_not_sql(world):
    workspace, _ = world
    hostile = "x' OR '1'='1"
    assert receiving._stored_wamids(workspace_id=workspace.pk, wamids=[hostile]) == []
    assert waba_selectors.phone_number_by_meta_id(hostile) is None
    assert Message.objects.filter(workspace=workspace).count() == 3


def test_a_long_list_runs_as_the_plain_queryset_and_leaves_no_shape_behind(world):
    """A campaign chunk opens conversations for hundreds of contacts: one cached SQL per list length would grow
    with every odd-sized chunk, so such a read is the queryset itself."""
    workspace, number = world
    contacts = list(Contact.objects.filter(workspace=workspace))
    ids = [c.pk for c in contacts] + [f"ct_missing{n}" for n in range(CompiledRead.MAX_LIST)]
    shapes = len(threads._current_read._shapes)
    compiled = threads.conversations_current(workspace=workspace, contact_ids=ids, phone_number=number)
    assert len(threads._current_read._shapes) == shapes
    _same(sorted(compiled.values(), key=lambda c: c.created_at),
          threads._current_query(workspace.pk, ids, number.pk, "whatsapp"))
