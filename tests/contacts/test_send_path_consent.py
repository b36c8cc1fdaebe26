"""The consent check as the send path sees it (POST /api/v1/messages, the send policy chain): a
MARKETING template to an opted-out contact is refused with 422 CONTACT_OPTED_OUT; UTILITY still goes.
Runs in the sandbox, whose simulated WABA and number the wabas app provisions."""

import pytest
from django.db import transaction

from apps.contacts import services
from apps.conversations.models import Message
from apps.core.models import Workspace
from tests.message_templates.factories import TemplateFactory

pytestmark = pytest.mark.django_db

BODY = [{"type": "BODY", "text": "Hello {{1}}, see our offers.", "example": {"body_text": [["Ann"]]}}]


@pytest.fixture
def sandbox_setup(workspace):
    sandbox = Workspace.objects.get(sandbox_of=workspace)
    waba = sandbox.wabas.first()
    if waba is None:
        pytest.skip("the wabas app did not provision a sandbox WABA")
    TemplateFactory(waba=waba, name="promo", category="MARKETING", components=BODY)
    TemplateFactory(waba=waba, name="receipt", category="UTILITY", components=BODY)
    contact = services.contact_upsert_by_phone(workspace=sandbox, phone="+447700900123")
    return sandbox, contact


def _send(api, name):
    return api.post("/api/v1/messages", {"to": "+447700900123", "type": "template",
                                         "template": {"name": name, "language": "en_US", "variables": ["Ann"]}},
                    format="json")


def test_marketing_to_an_opted_out_contact_is_refused_utility_still_goes(sandbox_api, sandbox_setup):
    _, contact = sandbox_setup
    with transaction.atomic():
        services.consent_from_inbound_text(contact=contact, text="STOP", inbound_message_id="")
    refused = _send(sandbox_api, "promo")
    assert refused.status_code == 422, refused.json()
    assert refused.json()["error"]["code"] == "CONTACT_OPTED_OUT"
    assert Message.objects.filter(contact=contact).count() == 0
    allowed = _send(sandbox_api, "receipt")
    assert allowed.status_code == 202, allowed.json()
    with transaction.atomic():
        services.consent_from_inbound_text(contact=contact, text="start", inbound_message_id="")
    assert _send(sandbox_api, "promo").status_code == 202
    assert Message.objects.filter(contact=contact).count() == 2


def test_variable_count_mismatch_comes_from_rendering(sandbox_api, sandbox_setup):
    response = sandbox_api.post("/api/v1/messages", {"to": "+447700900123", "type": "template",
                                                     "template": {"name": "receipt", "language": "en_US",
                                                                  "variables": []}}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "TEMPLATE_VARIABLE_COUNT_MISMATCH"
