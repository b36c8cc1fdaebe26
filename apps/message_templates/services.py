"""Templates write layer: create (validate locally, submit to Meta), sync from Meta, and apply Meta's
status / category / quality webhooks. Every status change appends history and `template.status_changed`."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.errors import UpstreamError, ValidationFailed
from apps.core.models import Workspace
from apps.core.services import event_append
from apps.message_templates.events import template_status_changed
from apps.message_templates.models import MessageTemplate, TemplateStatusChange
from apps.message_templates.rendering import component

# Part of this module's surface: other apps render a template's text through services.
from apps.message_templates.rendering import template_render as template_render
from apps.message_templates.selectors import normalize_language
from apps.message_templates.validation import send_components_check, template_validate
from apps.wabas.models import Waba

logger = logging.getLogger("reach.templates")

# Meta events that land on a status other than their own name.
EVENT_STATUS = {"REINSTATED": "APPROVED", "UNARCHIVED": "APPROVED"}


def _provider(waba: Waba):
    from apps.providers.registry import whatsapp_provider

    return whatsapp_provider(simulated=waba.is_simulated)


def _access_token(waba: Waba) -> str:
    from apps.wabas.services import waba_access_token

    return waba_access_token(waba) if waba.access_token_encrypted else ""


def _upstream_error(exc: Exception) -> UpstreamError:
    details = {"provider_code": getattr(exc, "code", None), "meta_code": getattr(exc, "upstream_code", None)}
    return UpstreamError(f"Meta refused the template: {getattr(exc, 'message', str(exc))}", details=details)


def template_serialize(template: MessageTemplate) -> dict[str, Any]:
    return {
        "id": template.pk,
        "waba_id": template.waba_id,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "parameter_format": template.parameter_format.lower(),
        "components": template.components,
        "status": template.status,
        "rejection_reason": template.rejection_reason or None,
        "quality_score": template.quality_score or None,
        "meta_template_id": template.meta_template_id or None,
        "created_at": _iso(template.created_at),
        "updated_at": _iso(template.updated_at),
    }


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _record_change(*, template: MessageTemplate, previous: str, reason: str, change: str, **extra) -> None:
    TemplateStatusChange.objects.create(template=template, from_status=previous, to_status=template.status,
                                        reason=reason)
    event_append(workspace=template.workspace, type="template.status_changed",
                 data=template_status_changed(template=template, previous_status=previous, change=change, **extra))


def _duplicate_content(*, waba: Waba, language: str, name: str, components: list) -> bool:
    body = (component(components, "BODY") or {}).get("text")
    footer = (component(components, "FOOTER") or {}).get("text")
    if not body:
        return False
    for other in MessageTemplate.objects.filter(waba=waba, language=language).exclude(name=name).only(
            "components").iterator():
        if (component(other.components, "BODY") or {}).get("text") == body and \
                (component(other.components, "FOOTER") or {}).get("text") == footer:
            return True
    return False


def send_components_require(*, template: MessageTemplate, components: list | None, field: str,
                            allow_body: bool = True) -> None:
    """A send's (or a campaign's) Meta-shaped components against the approved template (validation's
    send_components_check): 400 VALIDATION_FAILED listing every violation, nothing written."""
    errors = send_components_check(template_components=template.components, components=components, field=field,
                                   allow_body=allow_body)
    if errors:
        first = errors[0]
        raise ValidationFailed(f"The template's components break {len(errors)} rule(s); first: {first['field']}: "
                               f"{first['message']}", details={"field": first["field"], "errors": errors})


def template_create(*, workspace: Workspace, waba: Waba, data: dict) -> MessageTemplate:
    """Validate every rule locally (all violations at once), then submit to Meta; 201 PENDING."""
    cleaned, errors = template_validate(data)
    if not errors and MessageTemplate.objects.filter(waba=waba, name=cleaned["name"],
                                                     language=cleaned["language"]).exists():
        errors.append({"field": "name", "message": "A template with this name and language already exists."})
    if not errors and _duplicate_content(waba=waba, language=cleaned["language"], name=cleaned["name"],
                                         components=cleaned["components"]):
        errors.append({"field": "components", "message": "Another template already has this body and footer."})
    if errors:
        first = errors[0]
        raise ValidationFailed(
            f"The template breaks {len(errors)} rule(s); first: {first['field']}: {first['message']}",
            details={"field": first["field"], "errors": errors},
        )
    from apps.providers.base import ProviderError

    try:
        answer = _provider(waba).create_template(  # library templates come back with Meta's components
            waba_id=waba.meta_waba_id, access_token=_access_token(waba), name=cleaned["name"],
            language=cleaned["language"], category=cleaned["category"], components=cleaned["components"],
            parameter_format=cleaned["parameter_format"].lower(),
            **{k: cleaned[k] for k in ("library_template_name", "library_template_button_inputs") if k in cleaned},
        )
    except ProviderError as exc:
        raise _upstream_error(exc) from exc
    if not cleaned["components"] and isinstance(answer.get("components"), list):
        cleaned["components"] = answer["components"]  # a library template: Meta's own text and buttons
    status = str(answer.get("status") or "PENDING").upper()
    if status not in MessageTemplate.Status.values:
        status = MessageTemplate.Status.PENDING
    category = str(answer.get("category") or cleaned["category"]).upper()
    try:
        with transaction.atomic():
            # The simulator may already have approved it (webhook applied first): keep the newest word.
            template, created = MessageTemplate.objects.select_for_update().get_or_create(
                waba=waba, name=cleaned["name"], language=cleaned["language"],
                defaults={"workspace": workspace, "category": category, "status": status,
                          "parameter_format": cleaned["parameter_format"], "components": cleaned["components"],
                          "meta_template_id": str(answer.get("id") or "")},
            )
            if created:
                _record_change(template=template, previous="", reason="submitted", change="created")
            elif not template.meta_template_id:
                template.meta_template_id = str(answer.get("id") or "")
                template.components = cleaned["components"]
                template.save(update_fields=["meta_template_id", "components", "updated_at"])
    except IntegrityError as exc:  # pragma: no cover - a concurrent identical create
        raise ValidationFailed("A template with this name and language already exists.", field="name") from exc
    return template


def _find_template(*, waba: Waba | None, meta_template_id: str, name: str, language: str) -> MessageTemplate | None:
    if waba is None:
        return None
    qs = MessageTemplate.objects.select_for_update().filter(waba=waba)
    if meta_template_id:
        found = qs.filter(meta_template_id=str(meta_template_id)).first()
        if found is not None:
            return found
    if name and language:
        return qs.filter(name=name, language=normalize_language(language)).first()
    return None


@transaction.atomic
def template_status_apply(*, waba_meta_id: str, meta_template_id: str | int, name: str = "", language: str = "",
                          event: str, reason: str | None = "", category: str | None = None) -> MessageTemplate | None:
    """Meta's message_template_status_update. Idempotent: the same event twice changes nothing."""
    waba = Waba.objects.filter(meta_waba_id=str(waba_meta_id)).first()
    if waba is None:
        logger.warning("template status for unknown WABA %s", waba_meta_id)
        return None
    event = str(event or "").upper()
    status = EVENT_STATUS.get(event, event)
    if status not in MessageTemplate.Status.values:
        logger.info("ignoring template event %s", event)
        return None
    reason = "" if reason in (None, "NONE") else str(reason)
    template = _find_template(waba=waba, meta_template_id=str(meta_template_id), name=name, language=language)
    if template is None:
        if not name or not language:
            return None
        # Created outside Reach (e.g. in Business Manager): learn of it now; sync fills the components.
        template = MessageTemplate.objects.create(
            workspace=waba.workspace, waba=waba, name=name, language=normalize_language(language),
            category=str(category or "UTILITY").upper(), status=status, rejection_reason=reason,
            meta_template_id=str(meta_template_id or ""),
        )
        _record_change(template=template, previous="", reason=reason or event, change="status")
        return template
    previous = template.status
    new_reason = reason if status == MessageTemplate.Status.REJECTED or reason else ""
    fields: list[str] = []
    if template.status != status or template.rejection_reason != new_reason:
        template.status, template.rejection_reason = status, new_reason
        fields += ["status", "rejection_reason"]
    if meta_template_id and not template.meta_template_id:
        template.meta_template_id = str(meta_template_id)
        fields.append("meta_template_id")
    if category and str(category).upper() in MessageTemplate.Category.values and template.category != category.upper():
        template.category = category.upper()
        fields.append("category")
    if not fields:
        return template
    template.save(update_fields=[*fields, "updated_at"])
    if "status" in fields or "category" in fields:
        _record_change(template=template, previous=previous, reason=new_reason or event, change="status")
    return template


@transaction.atomic
def template_category_apply(*, waba_meta_id: str, meta_template_id: str | int, name: str = "", language: str = "",
                            new_category: str, previous_category: str | None = None,
                            correct_category: str | None = None) -> MessageTemplate | None:
    """Meta's template_category_update: a 24 h advance notice (correct_category set, no previous) is
    recorded in history; the completion (previous + new) changes the category."""
    waba = Waba.objects.filter(meta_waba_id=str(waba_meta_id)).first()
    template = _find_template(waba=waba, meta_template_id=str(meta_template_id), name=name, language=language)
    if template is None:
        return None
    new_category = str(new_category or "").upper()
    if previous_category is None and correct_category:
        note = f"category change notice: {new_category} -> {str(correct_category).upper()} in 24 h"
        if template.status_changes.filter(reason=note).exists():
            return template
        _record_change(template=template, previous=template.status, reason=note, change="category_notice",
                       correct_category=str(correct_category).upper())
        return template
    if new_category not in MessageTemplate.Category.values or template.category == new_category:
        return template
    old = template.category
    template.category = new_category
    template.save(update_fields=["category", "updated_at"])
    _record_change(template=template, previous=template.status, reason=f"category {old} -> {new_category}",
                   change="category", previous_category=old)
    return template


@transaction.atomic
def template_quality_apply(*, waba_meta_id: str, meta_template_id: str | int, name: str = "", language: str = "",
                           new_score: str, previous_score: str | None = None) -> MessageTemplate | None:
    waba = Waba.objects.filter(meta_waba_id=str(waba_meta_id)).first()
    template = _find_template(waba=waba, meta_template_id=str(meta_template_id), name=name, language=language)
    if template is None:
        return None
    new_score = str(new_score or "").upper()
    if template.quality_score == new_score:
        return template
    old = template.quality_score
    template.quality_score = new_score
    template.save(update_fields=["quality_score", "updated_at"])
    _record_change(template=template, previous=template.status, reason=f"quality {old or 'UNKNOWN'} -> {new_score}",
                   change="quality", previous_quality=old or None, quality=new_score)
    return template


def template_sync(*, waba: Waba) -> dict[str, int]:
    """Pull every template of the WABA from Meta and reconcile. Idempotent: a second run changes nothing."""
    from apps.providers.base import ProviderError

    try:
        remote = _provider(waba).list_templates(waba_id=waba.meta_waba_id, access_token=_access_token(waba))
    except ProviderError as exc:
        raise _upstream_error(exc) from exc
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    seen: set[tuple[str, str]] = set()
    for item in remote:
        if not isinstance(item, dict) or not item.get("name") or not item.get("language"):
            continue
        key = (str(item["name"]), normalize_language(str(item["language"])))
        seen.add(key)
        counts[_sync_one(waba=waba, item=item, key=key)] += 1
    with transaction.atomic():
        gone = MessageTemplate.objects.select_for_update().filter(waba=waba).exclude(meta_template_id="").exclude(
            status=MessageTemplate.Status.DELETED)
        for template in gone:
            if (template.name, template.language) in seen:
                continue
            previous = template.status
            template.status = MessageTemplate.Status.DELETED
            template.save(update_fields=["status", "updated_at"])
            _record_change(template=template, previous=previous, reason="not found at Meta during sync", change="sync")
            counts["deleted"] += 1
    return counts


@transaction.atomic
def _sync_one(*, waba: Waba, item: dict, key: tuple[str, str]) -> str:
    status = str(item.get("status") or "PENDING").upper()
    status = EVENT_STATUS.get(status, status)
    if status not in MessageTemplate.Status.values:
        status = MessageTemplate.Status.PENDING
    category = str(item.get("category") or "UTILITY").upper()
    if category not in MessageTemplate.Category.values:
        category = MessageTemplate.Category.UTILITY
    fmt = str(item.get("parameter_format") or "POSITIONAL").upper()
    fmt = fmt if fmt in MessageTemplate.ParameterFormat.values else MessageTemplate.ParameterFormat.POSITIONAL
    values = {"meta_template_id": str(item.get("id") or ""), "category": category, "status": status,
              "components": item.get("components") or [], "parameter_format": fmt}
    rejected = item.get("rejected_reason") or ""
    if rejected and rejected != "NONE":
        values["rejection_reason"] = str(rejected)
    template = MessageTemplate.objects.select_for_update().filter(waba=waba, name=key[0], language=key[1]).first()
    if template is None:
        template = MessageTemplate.objects.create(workspace=waba.workspace, waba=waba, name=key[0], language=key[1],
                                                  **values)
        _record_change(template=template, previous="", reason="synced from Meta", change="sync")
        return "created"
    previous = template.status
    changed = [f for f, v in values.items() if getattr(template, f) != v]
    if not changed:
        return "unchanged"
    for f in changed:
        setattr(template, f, values[f])
    template.save(update_fields=[*changed, "updated_at"])
    if "status" in changed or "category" in changed:
        _record_change(template=template, previous=previous, reason="synced from Meta", change="sync")
    return "updated"


def templates_sync_all() -> dict[str, int]:
    """The periodic job: every WABA, one at a time; one failing WABA does not stop the rest."""
    totals = {"wabas": 0, "failed": 0}
    for waba in Waba.objects.all().iterator():
        try:
            template_sync(waba=waba)
            totals["wabas"] += 1
        except Exception:
            logger.exception("template sync failed for %s", waba.pk)
            totals["failed"] += 1
    return totals
