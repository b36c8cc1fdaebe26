"""send_targets reads the sender, contact and conversation in one raw query; its objects must be what the
ORM would have loaded (JSON decoded, datetimes aware on every database: the embedded SQLite default
returned naive datetimes, and a send to a known contact failed with a 500). It reads only the fields the
send road uses; the others are deferred, loaded as the ORM loads them if anything asks."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.selectors.sending import send_targets
from tests.conversations.send_support import TO, live_number


def test_objects_are_loaded_as_the_orm_loads_them(workspace):
    number = live_number(workspace)
    Contact.objects.create(workspace=workspace, phone=TO, last_inbound_at=timezone.now(), opted_in=True,
                           custom_fields={"tier": "gold", "n": 2})
    targets = send_targets(workspace=workspace, waba_id="", phone_number_id=None, to=TO, channel_kind="whatsapp")
    orm = Contact.objects.get(workspace=workspace, phone=TO)
    contact = targets.contact
    with CaptureQueriesContext(connection) as queries:  # what the send road reads is already loaded
        assert targets.number.pk == number.pk and targets.number.waba.pk == number.waba_id
        assert targets.number.throughput_mps == number.throughput_mps
        assert timezone.is_aware(contact.last_inbound_at) and contact.last_inbound_at == orm.last_inbound_at
        assert contact.opted_in is True and contact.phone == TO
    assert len(queries) == 0
    # The rest is deferred and loads like any ORM field.
    assert contact.custom_fields == {"tier": "gold", "n": 2}
    assert contact.created_at == orm.created_at
    assert timezone.is_aware(targets.number.created_at)
    assert targets.conversation_id is None
