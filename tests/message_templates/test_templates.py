import pytest
from django.core.management import call_command
from django.db import transaction

from apps.core.errors import (
    TemplateLanguageMismatch,
    TemplateNotApproved,
    TemplateNotFound,
    TemplateVariableCountMismatch,
)
from apps.core.models import Event, Workspace
from apps.message_templates import services
from apps.message_templates.models import MessageTemplate, TemplateStatusChange
from apps.message_templates.rendering import template_render
from apps.message_templates.selectors import template_for_send
from tests.message_templates.factories import TemplateFactory, WabaFactory

pytestmark = pytest.mark.django_db

VALID = {"name": "order_ready", "language": "en_US", "category": "UTILITY", "components": [
    {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is ready.", "example": {"body_text": [["Ann", "A1"]]}}]}


class FakeMeta:
    """Stands in for the provider (GraphClient / SandboxProvider contract)."""

    def __init__(self):
        self.created: list[dict] = []
        self.remote: list[dict] = []
        self.fail: Exception | None = None

    def create_template(self, **kwargs):
        if self.fail:
            raise self.fail
        self.created.append(kwargs)
        return {"id": f"77{len(self.created)}", "status": "PENDING", "category": kwargs["category"]}

    def list_templates(self, **kwargs):
        if self.fail:
            raise self.fail
        return self.remote


@pytest.fixture
def meta(monkeypatch):
    fake = FakeMeta()
    monkeypatch.setattr(services, "_provider", lambda waba: fake)
    return fake


@pytest.fixture
def waba(workspace):
    return WabaFactory(workspace=workspace, is_simulated=False)


def test_post_validates_submits_and_answers_201_pending(live_api, waba, meta, workspace):
    response = live_api.post(f"/api/v1/wabas/{waba.pk}/templates", VALID, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["id"].startswith("tpl_")
    assert (body["name"], body["language"], body["category"]) == ("order_ready", "en_US", "UTILITY")
    assert meta.created[0]["waba_id"] == waba.meta_waba_id
    assert meta.created[0]["parameter_format"] == "positional"
    template = MessageTemplate.objects.get(pk=body["id"])
    assert template.meta_template_id == "771"
    assert list(template.status_changes.values_list("from_status", "to_status")) == [("", "PENDING")]


def test_post_returns_every_violation_and_submits_nothing(live_api, waba, meta):
    bad = {"name": "Bad-Name", "language": "en_US", "category": "SPAM", "components": [
        {"type": "BODY", "text": "{{1}} " + "x" * 1030}, {"type": "FOOTER", "text": "f" * 70}]}
    response = live_api.post(f"/api/v1/wabas/{waba.pk}/templates", bad, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert error["details"]["field"] == "name"
    fields = {e["field"] for e in error["details"]["errors"]}
    assert {"name", "category", "components[0].text", "components[0].example.body_text",
            "components[1].text"} <= fields
    assert meta.created == []
    assert MessageTemplate.objects.count() == 0


def test_duplicate_name_and_language_is_refused_locally(live_api, waba, meta):
    assert live_api.post(f"/api/v1/wabas/{waba.pk}/templates", VALID, format="json").status_code == 201
    again = live_api.post(f"/api/v1/wabas/{waba.pk}/templates", VALID, format="json")
    assert again.status_code == 400
    assert again.json()["error"]["details"]["field"] == "name"
    same_content = dict(VALID, name="order_ready_copy")
    dup = live_api.post(f"/api/v1/wabas/{waba.pk}/templates", same_content, format="json")
    assert dup.status_code == 400
    assert dup.json()["error"]["details"]["field"] == "components"
    assert len(meta.created) == 1


def test_meta_refusal_is_502_and_nothing_is_stored(live_api, waba, meta):
    from apps.providers.base import ProviderError

    err = ProviderError.__new__(ProviderError)
    Exception.__init__(err, "bad")
    err.code, err.message, err.upstream_code = "INVALID_REQUEST", "Invalid parameter", 100
    meta.fail = err
    response = live_api.post(f"/api/v1/wabas/{waba.pk}/templates", VALID, format="json")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "UPSTREAM_ERROR"
    assert response.json()["error"]["details"]["meta_code"] == 100
    assert MessageTemplate.objects.count() == 0


def test_foreign_and_sandbox_wabas_answer_404(live_api, sandbox_api, other_workspace, api_client_for, meta):
    foreign = WabaFactory(workspace=other_workspace)
    for path in (f"/api/v1/wabas/{foreign.pk}/templates", "/api/v1/wabas/waba_nope/templates"):
        assert live_api.get(path).status_code == 404
        assert live_api.post(path, VALID, format="json").status_code == 404
    mine = WabaFactory(workspace=Workspace.objects.get(sandbox_of__slug="acme"))
    assert live_api.get(f"/api/v1/wabas/{mine.pk}/templates").status_code == 404  # the sandbox's, not live's
    assert sandbox_api.get(f"/api/v1/wabas/{mine.pk}/templates").status_code == 200
    assert meta.created == []


def test_lists_filter_and_waba_bound_keys_see_only_their_waba(workspace, api_client_for, waba):
    other_waba = WabaFactory(workspace=workspace)
    a = TemplateFactory(waba=waba, name="alpha", category="MARKETING", status="APPROVED", language="en_US")
    b = TemplateFactory(waba=waba, name="alpha", category="MARKETING", status="PENDING", language="fr")
    c = TemplateFactory(waba=other_waba, name="beta", category="UTILITY", status="REJECTED")
    api = api_client_for(workspace)

    def ids(path):
        response = api.get(path)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["data"]}

    assert ids("/api/v1/templates") == {a.pk, b.pk, c.pk}
    assert ids(f"/api/v1/wabas/{waba.pk}/templates") == {a.pk, b.pk}
    assert ids("/api/v1/templates?status=approved") == {a.pk}
    assert ids("/api/v1/templates?category=UTILITY") == {c.pk}
    assert ids("/api/v1/templates?language=fr") == {b.pk}
    assert ids("/api/v1/templates?name=alpha") == {a.pk, b.pk}
    assert api.get("/api/v1/templates?status=bogus").status_code == 400
    bound = api_client_for(workspace, waba_id=other_waba.pk)
    assert {r["id"] for r in bound.get("/api/v1/templates").json()["data"]} == {c.pk}
    assert bound.get(f"/api/v1/wabas/{waba.pk}/templates").status_code == 404
    assert bound.get(f"/api/v1/templates/{a.pk}").status_code == 404
    detail = api.get(f"/api/v1/templates/{a.pk}").json()
    assert detail["name"] == "alpha" and detail["history"] == []


def test_scopes(workspace, api_client_for, waba, meta):
    reader = api_client_for(workspace, scopes=["templates:read"])
    assert reader.get(f"/api/v1/wabas/{waba.pk}/templates").status_code == 200
    assert reader.post(f"/api/v1/wabas/{waba.pk}/templates", VALID, format="json").status_code == 403
    assert api_client_for(workspace, scopes=["contacts:read"]).get("/api/v1/templates").status_code == 403
    assert meta.created == []


def test_sandbox_submission_goes_through_the_simulator(sandbox_api, workspace):
    sandbox = Workspace.objects.get(sandbox_of=workspace)
    waba = sandbox.wabas.filter(is_simulated=True).first()
    if waba is None:
        pytest.skip("the sandbox provisioner (wabas app) did not create a simulated WABA")
    with transaction.atomic():
        response = sandbox_api.post(f"/api/v1/wabas/{waba.pk}/templates", dict(VALID, name="sim_check"),
                                    format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "PENDING"
    assert MessageTemplate.objects.get(pk=response.json()["id"]).meta_template_id != ""


# --- status webhooks ---------------------------------------------------------------------------------


def test_status_webhooks_move_the_template_and_emit(waba, workspace):
    template = TemplateFactory(waba=waba, status="PENDING", meta_template_id="555")
    services.template_status_apply(waba_meta_id=waba.meta_waba_id, meta_template_id=555, name=template.name,
                                   language="en_US", event="APPROVED", reason="NONE")
    template.refresh_from_db()
    assert template.status == "APPROVED"
    services.template_status_apply(waba_meta_id=waba.meta_waba_id, meta_template_id=555, event="APPROVED")
    assert Event.objects.filter(workspace=workspace, type="template.status_changed").count() == 1  # idempotent
    for event, reason in (("PAUSED", ""), ("DISABLED", ""), ("REJECTED", "INVALID_FORMAT")):
        services.template_status_apply(waba_meta_id=waba.meta_waba_id, meta_template_id="555", event=event,
                                       reason=reason)
    template.refresh_from_db()
    assert (template.status, template.rejection_reason) == ("REJECTED", "INVALID_FORMAT")
    history = list(template.status_changes.values_list("from_status", "to_status"))
    assert history == [("PENDING", "APPROVED"), ("APPROVED", "PAUSED"), ("PAUSED", "DISABLED"),
                       ("DISABLED", "REJECTED")]
    events = Event.objects.filter(workspace=workspace, type="template.status_changed").order_by("sequence")
    assert [e.data["status"] for e in events] == ["APPROVED", "PAUSED", "DISABLED", "REJECTED"]
    assert events.last().data["reason"] == "INVALID_FORMAT"
    assert events.last().data["previous_status"] == "DISABLED"


def test_status_for_unknown_waba_or_event_changes_nothing(waba):
    template = TemplateFactory(waba=waba, status="PENDING", meta_template_id="556")
    assert services.template_status_apply(waba_meta_id="999", meta_template_id="556", event="APPROVED") is None
    services.template_status_apply(waba_meta_id=waba.meta_waba_id, meta_template_id="556", event="WHATEVER")
    template.refresh_from_db()
    assert template.status == "PENDING"
    assert TemplateStatusChange.objects.count() == 0


def test_a_template_made_outside_reach_is_learnt_from_its_webhook(waba):
    services.template_status_apply(waba_meta_id=waba.meta_waba_id, meta_template_id="42", name="from_bm",
                                   language="en_US", event="APPROVED", category="MARKETING")
    template = MessageTemplate.objects.get(waba=waba, name="from_bm")
    assert (template.status, template.category, template.meta_template_id) == ("APPROVED", "MARKETING", "42")


def test_category_and_quality_updates(waba, workspace):
    template = TemplateFactory(waba=waba, category="UTILITY", meta_template_id="557")
    services.template_category_apply(waba_meta_id=waba.meta_waba_id, meta_template_id=557, new_category="UTILITY",
                                     correct_category="MARKETING")
    template.refresh_from_db()
    assert template.category == "UTILITY"  # a notice only
    services.template_category_apply(waba_meta_id=waba.meta_waba_id, meta_template_id=557,
                                     previous_category="UTILITY", new_category="MARKETING")
    services.template_category_apply(waba_meta_id=waba.meta_waba_id, meta_template_id=557,
                                     previous_category="UTILITY", new_category="MARKETING")
    template.refresh_from_db()
    assert template.category == "MARKETING"
    services.template_quality_apply(waba_meta_id=waba.meta_waba_id, meta_template_id=557, new_score="RED",
                                    previous_score="GREEN")
    template.refresh_from_db()
    assert template.quality_score == "RED"
    changes = [e.data["change"] for e in Event.objects.filter(workspace=workspace,
                                                             type="template.status_changed").order_by("sequence")]
    assert changes == ["category_notice", "category", "quality"]


# --- sync ---------------------------------------------------------------------------------------------


def test_sync_is_idempotent_and_marks_vanished_templates(waba, meta, workspace):
    gone = TemplateFactory(waba=waba, name="gone", meta_template_id="1")
    kept = TemplateFactory(waba=waba, name="kept", status="PENDING", meta_template_id="2")
    meta.remote = [
        {"id": "2", "name": "kept", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": kept.components},
        {"id": "3", "name": "new_one", "language": "pt_BR", "status": "REJECTED", "category": "MARKETING",
         "components": [{"type": "BODY", "text": "Oi"}], "parameter_format": "NAMED"},
    ]
    assert services.template_sync(waba=waba) == {"created": 1, "updated": 1, "unchanged": 0, "deleted": 1}
    kept.refresh_from_db()
    gone.refresh_from_db()
    assert kept.status == "APPROVED"
    assert gone.status == "DELETED"
    new = MessageTemplate.objects.get(waba=waba, name="new_one")
    assert (new.language, new.status, new.parameter_format) == ("pt_BR", "REJECTED", "NAMED")
    events_before = Event.objects.filter(workspace=workspace).count()
    assert services.template_sync(waba=waba) == {"created": 0, "updated": 0, "unchanged": 2, "deleted": 0}
    assert Event.objects.filter(workspace=workspace).count() == events_before


def test_synctemplates_command_and_beat_registration(waba, meta, settings):
    from io import StringIO

    meta.remote = [{"id": "9", "name": "cmd", "language": "en", "status": "APPROVED", "category": "UTILITY",
                    "components": []}]
    out = StringIO()
    call_command("synctemplates", stdout=out)
    assert "created=1" in out.getvalue()
    call_command("synctemplates", "--waba", waba.meta_waba_id, stdout=out)
    assert "unchanged=1" in out.getvalue()
    assert settings.CELERY_BEAT_SCHEDULE["templates-sync"]["task"] == \
        "apps.message_templates.tasks.templates_sync_all_task"


# --- send-path helpers ----------------------------------------------------------------------------------


def test_template_for_send(waba, workspace):
    TemplateFactory(waba=waba, name="promo", language="en_US", status="APPROVED")
    TemplateFactory(waba=waba, name="promo", language="fr", status="PENDING")
    TemplateFactory(waba=waba, name="waiting", language="en_US", status="PAUSED")
    assert template_for_send(workspace=workspace, waba=waba, name="promo", language="en-us").language == "en_US"
    with pytest.raises(TemplateNotFound):
        template_for_send(workspace=workspace, waba=waba, name="nope", language="en_US")
    with pytest.raises(TemplateLanguageMismatch) as exc:
        template_for_send(workspace=workspace, waba=waba, name="promo", language="de")
    assert exc.value.details["approved_languages"] == ["en_US"]
    with pytest.raises(TemplateLanguageMismatch):
        template_for_send(workspace=workspace, waba=waba, name="promo", language="fr")
    with pytest.raises(TemplateNotApproved):
        template_for_send(workspace=workspace, waba=waba, name="waiting", language="en_US")
    other = WabaFactory(workspace=workspace)
    with pytest.raises(TemplateNotFound):
        template_for_send(workspace=workspace, waba=other, name="promo", language="en_US")


def test_render_positional_named_header_and_footer(waba):
    positional = TemplateFactory(waba=waba, components=[
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hello {{1}}, order {{2}} ships {{1}}."},
        {"type": "FOOTER", "text": "Reply STOP to opt out"}])
    text = template_render(template=positional, variables=["Ann", "A1"],
                           components=[{"type": "header", "parameters": [{"type": "text", "text": "A1"}]}])
    assert text == "Order A1\nHello Ann, order A1 ships Ann.\nReply STOP to opt out"
    with pytest.raises(TemplateVariableCountMismatch):
        template_render(template=positional, variables=["Ann", "A1"])  # header parameter missing
    body_only = TemplateFactory(waba=waba)
    assert template_render(template=body_only, variables=["Ann", 7]) == "Hello Ann, your order 7 has shipped."
    with pytest.raises(TemplateVariableCountMismatch) as exc:
        template_render(template=body_only, variables=["Ann"])
    assert (exc.value.details["expected"], exc.value.details["given"]) == (2, 1)
    with pytest.raises(TemplateVariableCountMismatch):
        template_render(template=body_only, variables={"name": "Ann"})
    from_components = template_render(template=body_only, variables=None, components=[
        {"type": "body", "parameters": [{"type": "text", "text": "Bo"}, {"type": "text", "text": "B2"}]}])
    assert from_components == "Hello Bo, your order B2 has shipped."
    named = TemplateFactory(waba=waba, parameter_format="NAMED", components=[
        {"type": "BODY", "text": "Hi {{first_name}}, code {{code}} ok"}])
    assert template_render(template=named, variables={"first_name": "Ann", "code": "X"}) == "Hi Ann, code X ok"
    with pytest.raises(TemplateVariableCountMismatch) as exc:
        template_render(template=named, variables={"first_name": "Ann"})
    assert exc.value.details["missing"] == ["code"]
    with pytest.raises(TemplateVariableCountMismatch):
        template_render(template=named, variables=["Ann", "X"])
    static = TemplateFactory(waba=waba, components=[{"type": "BODY", "text": "No variables here."}])
    assert template_render(template=static, variables=None) == "No variables here."
    with pytest.raises(TemplateVariableCountMismatch):
        template_render(template=static, variables=["extra"])
