"""Templates read layer."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import (
    ApplicationError,
    TemplateLanguageMismatch,
    TemplateNotApproved,
    TemplateNotFound,
    ValidationFailed,
)
from apps.core.models import Workspace
from apps.message_templates.models import MessageTemplate
from apps.message_templates.rendering import template_view as template_view  # the card a customer sees


def normalize_language(language: str) -> str:
    """Meta spells locales `en_US`; people also send `en-US` or `EN_us`."""
    code = (language or "").strip().replace("-", "_")
    if "_" in code:
        lang, region = code.split("_", 1)
        return f"{lang.lower()}_{region.upper()}"
    return code.lower()


def template_list(*, workspace: Workspace, waba=None, status: str | None = None, category: str | None = None,
                  language: str | None = None, name: str | None = None, waba_id: str = "") -> QuerySet:
    qs = MessageTemplate.objects.filter(workspace=workspace).select_related("waba")
    if waba is not None:
        qs = qs.filter(waba=waba)
    if waba_id:  # a WABA-bound key
        qs = qs.filter(waba_id=waba_id)
    if status:
        if status.upper() not in MessageTemplate.Status.values:
            raise ValidationFailed("Unknown template status.", field="status")
        qs = qs.filter(status=status.upper())
    if category:
        if category.upper() not in MessageTemplate.Category.values:
            raise ValidationFailed("Unknown template category.", field="category")
        qs = qs.filter(category=category.upper())
    if language:
        qs = qs.filter(language=normalize_language(language))
    if name:
        qs = qs.filter(name=name)
    return qs


def template_send_candidates(*, workspace: Workspace, waba, name: str) -> list[MessageTemplate]:
    """The rows template_for_send chooses among: this workspace's templates of this name, of this WABA.
    The send API reads the same rows with its sender (conversations.selectors.sending.send_targets;
    tests/conversations/test_send_targets.py pins the two reads together)."""
    qs = MessageTemplate.objects.filter(workspace=workspace, name=name)
    if waba is not None:
        qs = qs.filter(waba=waba)
    return list(qs)


def template_for_send(*, workspace: Workspace, waba, name: str, language: str,
                      candidates: list[MessageTemplate] | None = None) -> MessageTemplate:
    """The approved (name, language) template of this WABA, or the precise reason there is none.
    candidates: template_send_candidates' rows when the caller already read them."""
    if candidates is None:
        candidates = template_send_candidates(workspace=workspace, waba=waba, name=name)
    if not candidates:
        raise TemplateNotFound(f"No template named {name!r}.", details={"field": "template.name"})
    language = normalize_language(language)
    exact = next((t for t in candidates if normalize_language(t.language) == language), None)
    approved = sorted(t.language for t in candidates if t.status == MessageTemplate.Status.APPROVED)
    if exact is None or (exact.status != MessageTemplate.Status.APPROVED and approved):
        raise TemplateLanguageMismatch(
            f"Template {name!r} has no approved translation in {language!r}.",
            details={"field": "template.language", "approved_languages": approved},
        )
    refusal = template_send_refusal(exact)
    if refusal is not None:
        raise refusal
    return exact


def template_send_refusal(template) -> ApplicationError | None:
    """Why this template may not be sent now, or None. The one statement of the rule: queueing asks it
    through template_for_send and the dispatcher asks it again before each send (a template PAUSED or
    DISABLED after queueing stops its pending sends). `template`: anything with status, name, language."""
    if template.status == MessageTemplate.Status.APPROVED:
        return None
    return TemplateNotApproved(f"Template {template.name!r} ({template.language}) is {template.status}.",
                               details={"field": "template.name", "status": template.status})


def template_history(*, template: MessageTemplate):
    return template.status_changes.all()
