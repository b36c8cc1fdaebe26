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
from apps.message_templates.models import MessageTemplate
from tests.conversations.send_support import TO, live_number, template


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


def test_template_candidates_are_template_for_sends_rows(workspace, other_workspace):
    """A template send reads its candidates with the sender (one round trip); they must be the rows
    template_send_candidates reads: this workspace's, this number's WABA's, this name's, every status and
    language, loaded as the ORM loads them."""
    from apps.message_templates.selectors import template_send_candidates

    number = live_number(workspace)
    other_waba = live_number(workspace, meta_waba_id="102290129340399", phone_number_id="106540352242923",
                             display="+15550783882").waba
    foreign = live_number(other_workspace, meta_waba_id="102290129340400", phone_number_id="106540352242924",
                          display="+15550783883").waba
    template(workspace, number.waba, name="promo", language="en")
    template(workspace, number.waba, name="promo", language="pt_BR", status="PAUSED", category="MARKETING",
             parameter_format="NAMED", body="Oi {{first_name}}")
    template(workspace, number.waba, name="other", language="en")
    template(workspace, other_waba, name="promo", language="es")
    template(other_workspace, foreign, name="promo", language="fr")
    fields = [f.attname for f in MessageTemplate._meta.concrete_fields]
    for name in ("promo", "other", "missing"):
        targets = send_targets(workspace=workspace, waba_id=number.waba_id, phone_number_id=number.pk, to=TO,
                               channel_kind="whatsapp", template_name=name)
        orm = sorted(template_send_candidates(workspace=workspace, waba=number.waba, name=name), key=lambda t: t.pk)
        if connection.vendor != "postgresql":  # the embedded database reads them in template_for_send
            assert targets.templates is None
            continue
        got = sorted(targets.templates, key=lambda t: t.pk)
        assert [t.pk for t in got] == [t.pk for t in orm]
        for mine, theirs in zip(got, orm, strict=True):
            assert {f: getattr(mine, f) for f in fields} == {f: getattr(theirs, f) for f in fields}
    # Without a template name nothing else is read.
    assert send_targets(workspace=workspace, waba_id="", phone_number_id=number.pk, to=TO,
                        channel_kind="whatsapp").templates is None
