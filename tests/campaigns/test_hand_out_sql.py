"""The set-based hand-out (PostgreSQL) gives exactly what the recipient-by-recipient one gives: the same
variables, bodies, skips, costs and rows, for tricky contact values too; Python work per batch is constant."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from ulid import ULID

from apps.campaigns import services, variables
from apps.campaigns.models import CampaignRecipient
from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.core.ids import new_id_batch_prefix
from apps.message_templates.rendering import template_render
from tests.campaigns.factories import make_contacts, make_template

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based hand-out is PostgreSQL's")

SPEC = {
    "1": "{{contact.first_name|there}}",
    "2": "{{contact.custom_fields.city|}}",
    "3": "Hi {{contact.name}} / {{ contact.email | none }} [{{contact.external_id|-}}] {{contact.phone}}",
    "4": "{{contact.custom_fields.Zone|far away}}",
}
REQUIRED_CITY = {"1": "{{contact.custom_fields.city}}", "2": "{{contact.first_name}}"}

# (name, email, external_id, custom_fields, phone)
TRICKY = [
    ("  Ann  Lee ", "ann@example.com", "X1", {"city": "Delhi"}, "+447700900001"),
    ("\u00a0Bob\u2003Ray\u3000", "", "", {"city": "  "}, "+447700900002"),
    ("", "", "", {}, "+447700900003"),
    ("Ann\tLee", " e@x.io ", "  ", {"city": None, "Zone": " z\n"}, "+447700900004"),
    (" ", "", "id 7", {"city": "Pune\n", "zone": "lower-case key"}, "+14155550123"),
    ("O'Brien {{2}} %s", "", "", {"city": "{{1}} 100%"}, "+4915112345678"),
    ("Émile\u200b", "", "", {"city": "\u2028Nice\u2029"}, "+5511912345678"),
]


def _make(workspace, rows=TRICKY):
    return [Contact.objects.create(workspace=workspace, name=n, email=e, external_id=x, custom_fields=cf, phone=p,
                                   opted_in=True)  # opted in: the template is MARKETING
            for n, e, x, cf, p in rows]


def _sql_rendered(workspace, spec):
    compiled = variables.compile_spec(spec)
    r = variables.sql_render(compiled)
    cols = ", ".join(sql for sql, _ in r.values)
    params = [p for _, ps in r.values for p in ps] + r.missing[1] + r.unsupported[1] + [workspace.pk]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.id, ARRAY[{cols}], {r.missing[0]}, {r.unsupported[0]} "  # noqa: S608
                       "FROM contacts_contact c WHERE c.workspace_id = %s", params)
        return compiled, r, {cid: (vals, missing, unsupported) for cid, vals, missing, unsupported in cursor}


@pytest.mark.parametrize("spec", [SPEC, REQUIRED_CITY], ids=["defaults", "required"])
def test_sql_renderer_matches_python_renderer(workspace, spec):
    contacts = _make(workspace)
    compiled, r, rendered = _sql_rendered(workspace, spec)
    assert len(rendered) == len(contacts)
    for contact in contacts:
        vals, missing, unsupported = rendered[contact.pk]
        expected = variables.render(compiled, variables.contact_values(contact))
        assert unsupported is False
        assert missing is (expected is None), contact.name
        if expected is not None:
            assert dict(zip(r.keys, vals, strict=True)) == {str(i + 1): v for i, v in enumerate(expected)}


def test_sql_renderer_flags_values_python_renders_differently(workspace):
    contacts = _make(workspace, [
        ("a", "", "", {"city": 5}, "+447700900011"),
        ("b", "", "", {"city": True}, "+447700900012"),
        ("c", "", "", {"city": ["x"]}, "+447700900013"),
        ("d", "", "", {"city": "ok", "other": 1.5}, "+447700900014"),  # a field the spec does not read
    ])
    _, _, rendered = _sql_rendered(workspace, SPEC)
    assert [rendered[c.pk][2] for c in contacts] == [True, True, True, False]


def _campaign(tenant, number, spec=SPEC, **extra):
    audience = services.audience_create(workspace=tenant.workspace, name="aud", filter={})
    return services.campaign_create(tenant=tenant, data={
        "name": "c", "template": {"name": "t4", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": spec, **extra})


# Every column but the ids, the campaign's own id and the insert's clock (bulk_create's auto_now).
_COMPARED = [f.name for f in Message._meta.concrete_fields
             if f.name not in ("id", "campaign_id", "created_at", "updated_at")]
_CONVERSATION_COMPARED = [f.name for f in Conversation._meta.concrete_fields
                          if f.name not in ("id", "created_at", "updated_at")]


def _run(tenant, number, settings, *, sql: bool, spec=SPEC, valid_until=None, now=None):
    """One form's hand-out of a fresh campaign at one `now` (both forms stamp it alike), as
    ({contact: recipient status}, {contact: message columns})."""
    settings.CAMPAIGN_HAND_OUT_SQL = sql
    now = now or timezone.now()
    campaign = _campaign(tenant, number, spec, valid_until=valid_until)
    services.campaign_start(campaign=campaign, now=now)
    services.campaign_step(campaign_id=campaign.pk, now=now)
    recipients = dict(CampaignRecipient.objects.filter(campaign=campaign).values_list("contact_id", "status"))
    # Every recipient the hand-out moved carries the batch's time; the expansion's skips carry none.
    assert set(CampaignRecipient.objects.filter(campaign=campaign).exclude(updated_at=None)
               .values_list("updated_at", flat=True)) <= {now}
    messages = {m["contact"]: m for m in Message.objects.filter(campaign_id=campaign.pk).values(*_COMPARED)}
    return campaign, recipients, messages


@pytest.mark.parametrize("spec", [SPEC, REQUIRED_CITY], ids=["defaults", "required"])
def test_sql_hand_out_writes_what_the_python_hand_out_writes(tenant, workspace, number, settings, spec):
    make_template(number, name="t4", body="{{1}}|{{2}}|{{3}}|{{4}}|{{1}}" if spec is SPEC else "{{1}} in {{2}}")
    contacts = _make(workspace)
    opted_out = Contact.objects.create(workspace=workspace, phone="+447700900099", name="Out", opted_in=False)
    no_phone = Contact.objects.create(workspace=workspace, phone=None, name="Nobody")
    valid_until = timezone.now() + timedelta(hours=2)
    now = timezone.now()
    _, py_recipients, py_messages = _run(tenant, number, settings, sql=False, spec=spec, valid_until=valid_until,
                                         now=now)
    conversations = Conversation.objects.count()
    campaign, sql_recipients, sql_messages = _run(tenant, number, settings, sql=True, spec=spec,
                                                  valid_until=valid_until, now=now)
    assert sql_recipients == py_recipients
    assert py_recipients[opted_out.pk] == "skipped_opted_out" and py_recipients[no_phone.pk] == "skipped_invalid"
    assert sql_messages == py_messages  # same bodies, variables, costs, expiry, conversations (reused)
    assert Conversation.objects.count() == conversations
    assert len(sql_messages) == sum(1 for s in sql_recipients.values() if s == "queued") >= 3
    template = campaign.template
    for contact in contacts:
        rendered = variables.render(variables.compile_spec(spec), variables.contact_values(contact))
        if rendered is not None:
            assert sql_messages[contact.pk]["body"] == template_render(template=template, variables=rendered)
            assert sql_messages[contact.pk]["content"] == {"name": "t4", "language": "en", "variables": rendered}
    linked = dict(CampaignRecipient.objects.filter(campaign=campaign, status="queued")
                  .values_list("contact_id", "message_id"))
    assert linked == dict(Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", "pk"))


def test_sql_hand_out_opens_the_conversations_the_python_hand_out_opens(tenant, workspace, number, settings):
    """Without a validity window (expiry = now + the maximum age) and with no open conversation to reuse: the
    same message columns, and conversations opened alike (the Python run's are resolved before the SQL run)."""
    make_template(number, name="t4", body="{{1}}|{{2}}|{{3}}|{{4}}|{{1}}")
    _make(workspace)
    now = timezone.now()
    _, py_recipients, py_messages = _run(tenant, number, settings, sql=False, now=now)
    py_conversations = {c["contact"]: c for c in Conversation.objects.values(*_CONVERSATION_COMPARED)}
    resolved = Conversation.objects.update(state="resolved")
    _, sql_recipients, sql_messages = _run(tenant, number, settings, sql=True, now=now)
    sql_conversations = {c["contact"]: c for c in Conversation.objects.exclude(state="resolved")
                         .values(*_CONVERSATION_COMPARED)}
    assert resolved == len(py_messages) == len(sql_messages) >= 3
    assert sql_recipients == py_recipients
    assert {k: {**m, "conversation": None} for k, m in sql_messages.items()} == \
        {k: {**m, "conversation": None} for k, m in py_messages.items()}
    assert sql_conversations == py_conversations
    assert {c["state"] for c in sql_conversations.values()} == {"open"}
    for contact_id, message in sql_messages.items():
        assert sql_conversations[contact_id] == Conversation.objects.filter(pk=message["conversation"]).values(
            *_CONVERSATION_COMPARED).get()


def test_sql_hand_out_opens_conversations_and_named_variables(tenant, workspace, number, settings):
    make_template(number, name="t4", body="Hello {{first}}, from {{city}}")
    number.waba.templates.filter(name="t4").update(parameter_format="NAMED")
    contacts = _make(workspace)[:3]
    settings.CAMPAIGN_HAND_OUT_SQL = True
    campaign = _campaign(tenant, number, {"first": "{{contact.first_name|you}}", "city": "{{contact.custom_fields.city|Reach}}"})
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    msgs = {m.contact_id: m for m in Message.objects.filter(campaign_id=campaign.pk)}
    assert msgs[contacts[0].pk].content["variables"] == {"first": "Ann", "city": "Delhi"}
    assert msgs[contacts[0].pk].body == "Hello Ann, from Delhi"
    assert msgs[contacts[1].pk].body == "Hello Bob\u2003Ray, from Reach"
    for contact in contacts:
        conv = Conversation.objects.get(contact=contact)
        assert msgs[contact.pk].conversation_id == conv.pk
        assert (conv.workspace_id, conv.phone_number_id, conv.state, conv.channel_kind) == (
            workspace.pk, number.pk, "open", "whatsapp")
        assert str(ULID.from_str(conv.pk[4:])) == conv.pk[4:]


def test_sql_hand_out_ids_are_ulids_in_recipient_order(tenant, workspace, number, settings):
    make_template(number, name="t4", body="{{1}}|{{2}}|{{3}}|{{4}}")
    make_contacts(workspace, 30)
    settings.CAMPAIGN_HAND_OUT_SQL = True
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    ids = list(CampaignRecipient.objects.filter(campaign=campaign).order_by("id").values_list("message_id", flat=True))
    assert len(ids) == 30 and ids == sorted(ids) and len(set(ids)) == 30
    for mid in ids:
        assert mid.startswith("msg_") and str(ULID.from_str(mid[4:])) == mid[4:]
    prefixes = {new_id_batch_prefix("msg") for _ in range(2000)}
    assert len(prefixes) == 2000  # one millisecond's prefixes differ (ULID() alone is monotonic there)


@pytest.mark.parametrize("size", [5, 60])
def test_sql_hand_out_queries_do_not_grow_with_the_batch(tenant, workspace, number, settings, size):
    make_template(number, name="t4", body="{{1}}|{{2}}|{{3}}|{{4}}")
    make_contacts(workspace, size)
    settings.CAMPAIGN_HAND_OUT_SQL = True
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_materialize(campaign=campaign)
    with CaptureQueriesContext(connection) as captured:
        assert services.campaign_hand_out_batch(campaign_id=campaign.pk, limit=1000) == size
    statements = [q["sql"].split()[0] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    # the share lock, the campaign, the pick, the one statement: as many for 60 recipients as for 5
    assert statements == ["SELECT", "SELECT", "WITH", "WITH"]


def test_a_batch_holding_a_non_string_value_is_rendered_by_python(tenant, workspace, number, settings):
    make_template(number, name="t4", body="{{1}}|{{2}}|{{3}}|{{4}}")
    odd = Contact.objects.create(workspace=workspace, phone="+447700900021", name="N", custom_fields={"city": 42}, opted_in=True)
    fine = Contact.objects.create(workspace=workspace, phone="+447700900022", name="M", custom_fields={"city": "Leeds"}, opted_in=True)
    settings.CAMPAIGN_HAND_OUT_SQL = True
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    variables_by_contact = dict(Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", "content"))
    assert variables_by_contact[odd.pk]["variables"][1] == "42"
    assert variables_by_contact[fine.pk]["variables"][1] == "Leeds"


def test_sql_hand_out_classifies_like_the_policy_for_a_utility_template(tenant, workspace, number, settings):
    """recipient_classify's consent rule is MARKETING only: both forms queue an opted-out contact for UTILITY."""
    make_template(number, name="t4", category="UTILITY", body="{{1}} in {{2}}")
    _make(workspace)
    opted_out = Contact.objects.create(workspace=workspace, phone="+447700900099", name="Out", opted_in=False)
    valid_until = timezone.now() + timedelta(hours=2)
    now = timezone.now()
    _, py_recipients, py_messages = _run(tenant, number, settings, sql=False, spec=REQUIRED_CITY,
                                         valid_until=valid_until, now=now)
    _, sql_recipients, sql_messages = _run(tenant, number, settings, sql=True, spec=REQUIRED_CITY,
                                           valid_until=valid_until, now=now)
    assert sql_recipients == py_recipients and sql_messages == py_messages
    assert py_recipients[opted_out.pk] == "skipped_missing_variable"  # no city: variables come after consent
    assert "skipped_opted_out" not in set(py_recipients.values())
