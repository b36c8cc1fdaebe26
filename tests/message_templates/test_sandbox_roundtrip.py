"""Sandbox round trip: submit → the in-process simulator answers PENDING and queues Meta's
message_template_status_update webhook → the receive road applies it through template_status_apply."""

import pytest

from apps.core.models import Event, Workspace
from apps.message_templates.models import MessageTemplate

pytestmark = pytest.mark.django_db

BODY = {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is ready.", "example": {"body_text": [["A", "B"]]}}


def _process_pending_webhooks() -> int:
    from apps.webhooks.models import InboundWebhook
    from apps.webhooks.services.inbound import inbound_webhook_process

    ids = list(InboundWebhook.objects.filter(processed_at__isnull=True).values_list("pk", flat=True))
    for webhook_id in ids:
        inbound_webhook_process(webhook_id=webhook_id, force=True)
    return len(ids)


@pytest.mark.parametrize("name,status,reason", [("roundtrip_ok", "APPROVED", ""),
                                                 ("reject_roundtrip", "REJECTED", "INVALID_FORMAT")])
def test_simulator_decides_and_the_webhook_updates_the_template(sandbox_api, workspace,
                                                                django_capture_on_commit_callbacks, name, status,
                                                                reason):
    pytest.importorskip("apps.webhooks.services.inbound")
    sandbox = Workspace.objects.get(sandbox_of=workspace)
    waba = sandbox.wabas.filter(is_simulated=True).first()
    if waba is None:
        pytest.skip("no simulated sandbox WABA provisioned")
    with django_capture_on_commit_callbacks(execute=False):
        response = sandbox_api.post(f"/api/v1/wabas/{waba.pk}/templates",
                                    {"name": name, "language": "en_US", "category": "MARKETING",
                                     "components": [BODY]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "PENDING"
    assert _process_pending_webhooks() >= 1
    template = MessageTemplate.objects.get(pk=response.json()["id"])
    assert template.status == status
    assert template.rejection_reason == reason
    assert list(template.status_changes.values_list("to_status", flat=True)) == ["PENDING", status]
    event = Event.objects.filter(workspace=sandbox, type="template.status_changed").order_by("-sequence").first()
    assert (event.data["template_id"], event.data["status"]) == (template.pk, status)
