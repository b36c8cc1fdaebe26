"""The console pages through Django's test client: who may open what, every write through the API's services,
the secrets shown once, the admin closed to workspace staff. Browser flows: test_browser.py."""

from __future__ import annotations

import io
import json

import pytest
from django.core import mail

from apps.contacts import imports
from apps.contacts.models import ConsentRecord, Contact, ContactImport
from apps.core.models import ApiKey, Membership, User
from apps.webhooks.models import WebhookSubscription
from tests.conversations.inbox_support import make_agent, session_client

pytestmark = pytest.mark.django_db

PAGES = ["/contacts/", "/contacts/import/", "/templates/", "/templates/new/", "/campaigns/", "/campaigns/new/",
         "/campaigns/audiences/", "/settings/keys/", "/settings/webhooks/", "/settings/team/"]


@pytest.fixture
def owner(workspace):
    return make_agent(workspace, username="olivia", role="owner")


@pytest.mark.parametrize("sandbox", [False, True])
def test_every_page_opens_for_an_owner_with_the_shared_top_bar(workspace, owner, sandbox):
    client = session_client(owner, workspace, sandbox=sandbox)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for link in ('href="/inbox/"', 'href="/contacts/"', 'href="/templates/"', 'href="/campaigns/"',
                     'href="/reports/"', 'href="/settings/"'):
            assert link in html, (url, link)
        assert ('class="sandbox-ribbon"' in html) is sandbox
        assert 'href="/admin/"' not in html  # only platform superusers get the admin link


def test_pages_need_login(client):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_an_agent_reads_contacts_but_cannot_open_settings_or_write_templates(workspace):
    agent = make_agent(workspace, username="adam", role="agent")
    client = session_client(agent, workspace)
    assert client.get("/contacts/").status_code == 200
    for url in ("/settings/keys/", "/settings/team/", "/settings/webhooks/", "/templates/new/", "/campaigns/new/"):
        assert client.get(url).status_code == 403, url
    assert client.post("/settings/keys/", {"name": "x", "scopes": ["messages:send"]}).status_code == 403
    assert not ApiKey.objects.exists()


def test_forms_need_the_csrf_token(workspace, owner):
    client = session_client(owner, workspace, csrf=True)
    assert client.post("/settings/keys/", {"name": "x", "scopes": ["messages:send"]}).status_code == 403
    assert not ApiKey.objects.exists()


def test_api_key_created_in_the_page_is_shown_once_and_works(workspace, owner):
    client = session_client(owner, workspace)
    response = client.post("/settings/keys/", {"name": "CRM", "environment": "sandbox",
                                               "scopes": ["contacts:read", "messages:read"]})
    assert response.status_code == 201
    key = ApiKey.objects.get()
    secret = response.context["created"]["secret"]
    assert secret.startswith("ak_test_") and secret in response.content.decode()
    assert (key.name, key.is_sandbox, key.scopes, key.created_by) == ("CRM", True, ["contacts:read", "messages:read"],
                                                                       owner)
    assert secret not in client.get("/settings/keys/").content.decode()  # never again
    api = client.__class__()
    assert api.get("/api/v1/contacts", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert api.get("/api/v1/messages", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert api.post("/api/v1/contacts", {"phone": "+14155550100"}, content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 403  # no contacts:write
    assert client.post(f"/settings/keys/{key.pk}/revoke").status_code == 302
    assert api.get("/api/v1/contacts", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_api_key_with_an_unknown_scope_is_refused_and_nothing_is_written(workspace, owner):
    response = session_client(owner, workspace).post("/settings/keys/", {"name": "x", "scopes": ["root"]})
    assert response.status_code == 400
    assert "Unknown scopes: root" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_keys_of_another_workspace_cannot_be_revoked(workspace, other_workspace, owner, make_key):
    make_key(other_workspace)
    foreign = ApiKey.objects.get()
    assert session_client(owner, workspace).post(f"/settings/keys/{foreign.pk}/revoke").status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_webhook_subscription_secret_once_and_ssrf_refused(workspace, owner, settings):
    client = session_client(owner, workspace)
    bad = client.post("/settings/webhooks/", {"url": "http://127.0.0.1:9/x", "events": ["message.sent"]})
    assert bad.status_code == 400
    assert not WebhookSubscription.objects.exists()
    response = client.post("/settings/webhooks/", {"url": "https://93.184.216.34/reach",
                                                   "events": ["message.sent", "message.delivered"]})
    assert response.status_code == 201
    sub = WebhookSubscription.objects.get()
    assert sub.events == ["message.delivered", "message.sent"] or sub.events == ["message.sent", "message.delivered"]
    assert response.context["created"]["secret"].startswith("whsec_")
    page = client.get(f"/settings/webhooks/{sub.pk}/")
    assert page.status_code == 200 and "whsec_" not in page.content.decode()


def test_team_invite_change_role_remove(workspace, owner, django_capture_on_commit_callbacks):
    client = session_client(owner, workspace)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/team/", {"email": "Bea@Example.com", "role": "admin"})
    assert response.status_code == 302
    bea = User.objects.get(email="bea@example.com")
    assert not bea.has_usable_password()
    membership = Membership.objects.get(user=bea)
    assert membership.role == "admin"
    assert len(mail.outbox) == 1 and "/reset/" in mail.outbox[0].body
    link = mail.outbox[0].body.split("testserver", 1)[1].split()[0]
    invited = client.__class__()
    form_page = invited.get(link, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"] is True
    done = invited.post(form_page.redirect_chain[-1][0], {"new_password1": "a-fresh-long-pw-77",
                                                           "new_password2": "a-fresh-long-pw-77"})
    assert done["Location"] == "/reset/done/"
    bea.refresh_from_db()
    assert bea.check_password("a-fresh-long-pw-77")
    client.post(f"/settings/team/{membership.pk}", {"role": "agent"})
    membership.refresh_from_db()
    assert membership.role == "agent"
    # an admin cannot make owners, and the last owner cannot be removed or demoted
    admin = make_agent(workspace, username="adele", role="admin")
    admin_client = session_client(admin, workspace)
    admin_client.post(f"/settings/team/{membership.pk}", {"role": "owner"})
    membership.refresh_from_db()
    assert membership.role == "agent"
    own = Membership.objects.get(user=owner)
    client.post(f"/settings/team/{own.pk}", {"role": "agent"})
    admin_client.post(f"/settings/team/{own.pk}", {"action": "remove"})
    own.refresh_from_db()
    assert own.role == "owner"
    client.post(f"/settings/team/{membership.pk}", {"action": "remove"})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert client.post("/settings/team/", {"email": "not-an-email", "role": "agent"}).status_code == 400
    assert not User.objects.filter(username="not-an-email").exists()


def test_contact_edit_consent_and_export(workspace, owner):
    contact = Contact.objects.create(workspace=workspace, phone="+14155550101", wa_id="14155550101", name="Ann")
    client = session_client(owner, workspace)
    response = client.post(f"/contacts/{contact.pk}/", {"name": "Ann Lee", "email": "ann@example.com",
                                                        "tags": "vip, news", "cf_key": ["city", ""],
                                                        "cf_value": ["Lisbon", ""]})
    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.name, contact.email, contact.custom_fields) == ("Ann Lee", "ann@example.com", {"city": "Lisbon"})
    bad = client.post(f"/contacts/{contact.pk}/", {"name": "X", "email": "nope", "tags": ""})
    assert bad.status_code == 400
    contact.refresh_from_db()
    assert contact.name == "Ann Lee"
    client.post(f"/contacts/{contact.pk}/consent", {"status": "opt_out", "note": "asked by phone"})
    record = ConsentRecord.objects.get(contact=contact)
    assert (record.status, record.source, record.note, record.user) == ("opt_out", "admin", "asked by phone", owner)
    contact.refresh_from_db()
    assert contact.opted_in is False
    listing = client.get("/contacts/", {"tag": "vip", "opted_in": "false", "field": "city=Lisbon"})
    assert list(listing.context["page_obj"]) == [contact]
    assert list(client.get("/contacts/", {"field": "city=Porto"}).context["page_obj"]) == []
    export = b"".join(client.get("/contacts/export.csv", {"tag": "vip"}).streaming_content).decode()
    assert export.splitlines() == ["phone,name,email,tags,external_id,opted_in,city",
                                   "+14155550101,Ann Lee,ann@example.com,news;vip,,false,Lisbon"]


def test_contacts_of_another_workspace_are_not_found(workspace, other_workspace, owner):
    foreign = Contact.objects.create(workspace=other_workspace, phone="+14155550102", name="Zed")
    client = session_client(owner, workspace)
    assert client.get(f"/contacts/{foreign.pk}/").status_code == 404
    assert client.post(f"/contacts/{foreign.pk}/consent", {"status": "opt_out"}).status_code == 404
    assert not ConsentRecord.objects.exists()


def test_csv_import_reports_progress_and_rejected_rows(workspace, owner, django_capture_on_commit_callbacks,
                                                       settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    enqueued = []
    monkeypatch.setattr(imports, "_enqueue", enqueued.append)  # the worker's part runs below, by hand
    client = session_client(owner, workspace)
    upload = io.BytesIO(b"phone,name\n+14155550103,Bo\nnot-a-phone,Bad\n")
    upload.name = "people.csv"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/contacts/import/", {"file": upload})
    assert response.status_code == 302
    record = ContactImport.objects.get()
    assert enqueued == [record.pk] and response["Location"] == f"/contacts/imports/{record.pk}/"
    assert client.get(response["Location"], HTTP_ACCEPT="application/json").json()["status"] == "pending"
    imports.contact_import_run(import_id=record.pk)
    state = client.get(response["Location"], HTTP_ACCEPT="application/json").json()
    assert (state["status"], state["created"], state["rejected"]) == ("done", 1, 1)
    assert state["rejected_rows"][0]["row"] == 3
    assert Contact.objects.filter(workspace=workspace).count() == 1


def test_template_rules_are_the_api_validator(workspace, owner):
    client = session_client(owner, workspace)
    answer = client.post("/templates/validate", json.dumps({
        "name": "Bad Name", "language": "en", "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hi {{1}}"}]}), content_type="application/json").json()
    fields = {e["field"] for e in answer["errors"]}
    assert fields == {"name", "components[0].text", "components[0].example.body_text"}
    ok = client.post("/templates/validate", json.dumps({
        "name": "hello", "language": "en", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hi {{1}}, thanks.", "example": {"body_text": [["Ann"]]}}]}),
        content_type="application/json").json()
    assert ok == {"errors": []}


def test_staff_of_workspace_b_sees_none_of_a_in_the_admin(workspace, other_workspace, make_key):
    Contact.objects.create(workspace=workspace, phone="+14155550104", name="Alpha secret")
    make_key(workspace)
    staff_b = make_agent(other_workspace, username="bob", role="owner", staff=True)
    client = session_client(staff_b, other_workspace)
    for url in ("/admin/", "/admin/contacts/contact/", "/admin/core/apikey/", "/admin/conversations/message/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    assert "Alpha secret" not in client.get("/admin/contacts/contact/", follow=True).content.decode()
    assert 'href="/admin/"' not in client.get("/inbox/").content.decode()
    root = User.objects.create_superuser("root", "root@example.com", "pw-x-123456")
    admin_client = session_client(root)
    assert "Alpha secret" in admin_client.get("/admin/contacts/contact/").content.decode()


def test_campaign_wizard_to_preflight_schedule_and_start(workspace, owner, django_capture_on_commit_callbacks):
    from apps.campaigns.models import Audience, Campaign
    from tests.campaigns.factories import make_contacts, make_number, make_template

    number = make_number(workspace)
    template = make_template(number)
    make_contacts(workspace, 3, tags=["vip"], custom_fields={"city": "Lisbon"})
    make_contacts(workspace, 2, start=10)
    client = session_client(owner, workspace)
    assert client.get("/campaigns/audiences/size", {"f_tags": "vip"}).json() == {"size": 3}
    wizard = client.get("/campaigns/new/")
    assert "custom_fields.city" in wizard.content.decode()
    form = {"name": "Spring", "template_id": template.pk, "audience_mode": "filter", "audience_name": "VIPs",
            "f_tags": "vip", "var_1_field": "first_name", "var_1_default": "friend",
            "var_2_field": "__text__", "var_2_default": "Acme", "phone_number_id": number.pk}
    refused = client.post("/campaigns/new/", {**form, "var_2_field": ""})
    assert refused.status_code == 400
    assert not Audience.objects.exists() and not Campaign.objects.exists()  # one transaction: nothing half-made
    response = client.post("/campaigns/new/", form)
    campaign = Campaign.objects.get()
    assert response["Location"] == f"/campaigns/{campaign.pk}/"
    assert (campaign.status, campaign.variables, campaign.audience.filter) == (
        "draft", {"1": "{{contact.first_name|friend}}", "2": "Acme"}, {"tags_any": ["vip"]})
    page = client.get(response["Location"])
    assert page.context["preflight"]["recipients"] == 3
    assert client.post(f"/campaigns/{campaign.pk}/schedule", {"schedule_at": "2001-01-01T10:00"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    client.post(f"/campaigns/{campaign.pk}/schedule", {"schedule_at": "2099-01-01T10:00"})
    campaign.refresh_from_db()
    assert (campaign.status, campaign.schedule_at.isoformat()) == ("scheduled", "2099-01-01T10:00:00+00:00")
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/campaigns/{campaign.pk}/start")
    campaign.refresh_from_db()
    assert campaign.status == "running"
    stats = client.get(f"/campaigns/{campaign.pk}/stats.json").json()
    assert stats["status"] == "running" and set(stats["series"]) == {"started_at", "bucket_seconds", "sent",
                                                                      "delivered"}
    agent = make_agent(workspace, username="ali", role="agent")
    assert session_client(agent, workspace).post(f"/campaigns/{campaign.pk}/pause").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "running"


def test_template_submitted_from_the_builder_reaches_the_simulator(workspace, owner):
    from apps.message_templates.models import MessageTemplate

    client = session_client(owner, workspace, sandbox=True)
    waba = workspace.sandbox.wabas.get()
    payload = {"name": "console_shipping_note", "language": "en", "category": "UTILITY", "parameter_format": "positional",
               "components": [{"type": "BODY", "text": "Order {{1}} ships today.",
                               "example": {"body_text": [["A1"]]}},
                              {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]}]}
    bad = client.post("/templates/new/", {"waba_id": waba.pk, "payload": json.dumps({**payload, "name": "Bad"})})
    assert bad.status_code == 400 and not MessageTemplate.objects.exists()
    response = client.post("/templates/new/", {"waba_id": waba.pk, "payload": json.dumps(payload)})
    template = MessageTemplate.objects.get()
    assert response["Location"] == f"/templates/{template.pk}/"
    assert (template.workspace, template.status, bool(template.meta_template_id)) == (workspace.sandbox, "PENDING",
                                                                                       True)
    assert "console_shipping_note" in client.get("/templates/").content.decode()
    detail = client.get(response["Location"]).content.decode()
    assert 'id="tpl-status">PENDING<' in detail and "submitted" in detail


def test_a_campaign_the_empty_wallet_paused_says_so_in_plain_words(workspace, owner):
    """The hand-out pauses with the code `insufficient_balance` (a live wallet opens at 0); the live page and its
    poll explain the wallet hold from that code, and only from it: a pause whose words mention the wallet is not
    taken for one."""
    from apps.billing import services as billing
    from apps.campaigns import services as campaign_services
    from apps.campaigns.models import Campaign
    from apps.core.models import API_SCOPES
    from apps.core.tenancy import Tenant
    from tests.campaigns.factories import make_contacts, make_number, make_template

    number = make_number(workspace)
    make_template(number)
    make_contacts(workspace, 2)
    wallet = billing.wallet_get_or_create(workspace=workspace)
    billing.wallet_adjust(workspace=workspace, amount=-wallet.available, note="empty")  # whatever the fixture gave
    tenant = Tenant(workspace=workspace, scopes=frozenset(API_SCOPES))
    audience = campaign_services.audience_create(workspace=workspace, name="all", filter={})
    campaign = campaign_services.campaign_create(tenant=tenant, data={
        "name": "Wallet", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.first_name|there}}", "2": "Acme"}})
    campaign_services.campaign_start(campaign=campaign)
    assert campaign_services.campaign_step(campaign_id=campaign.pk) == "paused"  # the real, empty wallet refused
    campaign.refresh_from_db()
    assert campaign.pause_reason == Campaign.PAUSE_INSUFFICIENT_BALANCE
    client = session_client(owner, workspace)
    wallet_words = "Paused because the wallet cannot pay for the next messages"
    html = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert wallet_words in html and "insufficient_balance" not in html
    holds = client.get(f"/campaigns/{campaign.pk}/stats.json").json()["holds"]
    assert len(holds) == 1 and holds[0].startswith(wallet_words)
    pt = client.get(f"/campaigns/{campaign.pk}/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
    assert "carteira" in pt and wallet_words not in pt

    Campaign.objects.filter(pk=campaign.pk).update(pause_reason="Top up the wallet balance first", auto_paused=False)
    holds = client.get(f"/campaigns/{campaign.pk}/stats.json").json()["holds"]
    assert holds == ["Paused: Top up the wallet balance first"]
