"""/api/v1/contacts…: list, upsert, read, patch, delete, CSV import, consent ledger."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.response import Response

from apps.contacts import imports, selectors, services
from apps.contacts.api.schemas import (
    ConsentOut,
    ContactImportIn,
    ContactImportOut,
    ContactOut,
    CustomFieldsField,
    ImportReportOut,
    TagsField,
)
from apps.contacts.models import ConsentRecord, Contact, ContactImport
from apps.contacts.phones import normalize_phone
from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated, query
from apps.core.api.parsers import StrictFormParser as FormParser
from apps.core.api.parsers import StrictMultiPartParser as MultiPartParser
from apps.core.errors import ValidationFailed

READ_WRITE = {"GET": "contacts:read", "POST": "contacts:write", "PATCH": "contacts:write",
              "DELETE": "contacts:write"}


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def contact_out(contact: Contact) -> dict:
    return {
        "id": contact.pk,
        "phone": contact.phone,
        "wa_id": contact.wa_id or None,
        "bsuid": contact.bsuid,
        "parent_bsuid": contact.parent_bsuid or None,
        "username": contact.username or None,
        "name": contact.name,
        "email": contact.email,
        "tags": selectors.contact_tags(contact=contact),
        "custom_fields": contact.custom_fields or {},
        "opted_in": selectors.contact_opted_in(contact=contact),
        "blocked": contact.blocked_at is not None,
        "blocked_at": _ts(contact.blocked_at),
        "external_id": contact.external_id or None,
        "last_inbound_at": _ts(contact.last_inbound_at),
        "created_at": _ts(contact.created_at),
        "updated_at": _ts(contact.updated_at),
    }


def import_out(record: ContactImport) -> dict:
    return {
        "id": record.pk, "status": record.status, "filename": record.filename,
        "progress_percent": record.progress_percent, "rows": record.rows_seen,
        "created": record.created_count, "updated": record.updated_count, "rejected": record.rejected_count,
        "rejected_rows": record.rejected_rows, "error": record.error or None,
        "created_at": _ts(record.created_at), "finished_at": _ts(record.finished_at),
    }


class ContactIn(serializers.Serializer):
    phone = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    tags = TagsField(required=False)
    custom_fields = CustomFieldsField(required=False)
    # Appends a consent ledger row (source `api`, this key as evidence) when it changes the contact's state.
    opted_in = serializers.BooleanField(required=False, allow_null=True, default=None)


class ContactPatchIn(ContactIn):
    phone = serializers.CharField(max_length=40, required=False)


class ConsentIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=ConsentRecord.Status.values)
    source = serializers.ChoiceField(choices=["api", "admin", "inbox", "import"], required=False, default="api")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="")
    return request.data


class _ContactView(ApiView):
    def _consent_by(self) -> dict:
        """The evidence a consent row written through this request records: the key, or the signed-in user."""
        return {"api_key_id": self.tenant.api_key.pk if self.tenant.api_key else "", "user": self.tenant.user}


class ContactListView(_ContactView):
    scopes = READ_WRITE

    @api_doc(operation_id="contacts_list", summary="List contacts",
             description="Contacts of the workspace (or sandbox), newest first.",
             parameters=[*PAGE_PARAMETERS, query("search", description="Part of the name or phone."),
                         query("tag"), query("opted_in", bool), query("external_id"),
                         query("phone", description="E.164, exact."),
                         query("bsuid", description="A business-scoped user id, exact.")],
             responses={200: paginated(ContactOut)})
    def get(self, request):
        params = request.query_params
        phone = normalize_phone(params["phone"], field="phone") if params.get("phone") else None
        qs = selectors.contact_list(
            tenant=self.tenant, search=params.get("search"), tag=params.get("tag"),
            opted_in=params.get("opted_in"), external_id=params.get("external_id"), phone=phone,
            bsuid=params.get("bsuid") or None,
        ).prefetch_related("tag_rows")
        return self.paginated(qs, contact_out)

    @api_doc(operation_id="contacts_upsert", summary="Create a contact (or find it by phone)",
             description="Idempotent upsert by phone: a new phone is created (201); an existing phone returns the "
             "existing contact unchanged (200).", request=ContactIn,
             responses={201: (ContactOut, "Created."), 200: (ContactOut, "The phone already existed.")})
    def post(self, request):
        data = ContactIn(data=_body(request))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        contact, created = services.contact_upsert(
            workspace=self.tenant.workspace, phone=values["phone"], name=values.get("name"),
            email=values.get("email"), external_id=values.get("external_id"), tags=values.get("tags"),
            custom_fields=values.get("custom_fields"), waba_id=self.tenant.waba_id,
            opted_in=values.get("opted_in"), consent_by=self._consent_by(),
        )
        self.audit_target = ("contact", contact.pk)
        contact = Contact.objects.prefetch_related("tag_rows").get(pk=contact.pk)
        return Response(contact_out(contact), status=201 if created else 200)


class ContactDetailView(_ContactView):
    scopes = READ_WRITE

    @api_doc(operation_id="contacts_get", summary="Get a contact", description="One contact with its tags, "
             "custom fields and current consent.", responses={200: ContactOut})
    def get(self, request, pk: str):
        return Response(contact_out(self.get_scoped(Contact.objects.prefetch_related("tag_rows"), pk)))

    @api_doc(operation_id="contacts_update", summary="Update a contact",
             description="Only the fields given change: `tags` is replaced, `custom_fields` is shallow-merged "
             "(string keys and values).", request=ContactPatchIn, responses={200: ContactOut})
    def patch(self, request, pk: str):
        contact = self.get_scoped(Contact, pk)
        data = ContactPatchIn(data=_body(request), partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        services.contact_update(contact=contact, data=fields, consent_by=self._consent_by())
        return Response(contact_out(Contact.objects.prefetch_related("tag_rows").get(pk=contact.pk)))

    @api_doc(operation_id="contacts_delete", summary="Delete a contact",
             description="Deletes the contact; its messages stay in the history.", responses={204: None})
    def delete(self, request, pk: str):
        services.contact_delete(contact=self.get_scoped(Contact, pk))
        return Response(status=204)


class ContactImportView(ApiView):
    scopes = {"POST": "contacts:write"}
    parser_classes = [MultiPartParser, FormParser]

    @api_doc(operation_id="contacts_import", summary="Import contacts from CSV",
             description="Multipart upload of a CSV (`phone,name,email,tags,…`; extra columns become custom "
             "fields). Small files answer the report at once (200); large ones, or `async=true`, run in the "
             "background (202) and are followed at `GET /api/v1/contacts/imports/{id}`.",
             request={"multipart/form-data": ContactImportIn},
             responses={200: (ImportReportOut, "Imported."), 202: (ContactImportOut, "Importing in the background.")})
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("Upload the CSV as multipart field `file`.", field="file")
        run_async = str(request.query_params.get("async") or request.data.get("async") or "").lower() in (
            "1", "true", "yes")
        by = imports.ImportBy(waba_id=self.tenant.waba_id, user=self.tenant.user,
                              api_key_id=self.tenant.api_key.pk if self.tenant.api_key else "")
        if run_async or upload.size > settings.CONTACT_IMPORT_SYNC_MAX_BYTES:
            # Above CONTACT_IMPORT_SYNC_MAX_BYTES no request waits for the rows: 202 with the import's id and
            # progress (GET /api/v1/contacts/imports/{id}); a file that is not CSV at all is still a 400 now.
            imports.contact_import_precheck(fileobj=upload.file)
            record = imports.contact_import_start(workspace=self.tenant.workspace, upload=upload,
                                                  filename=upload.name, by=by)
            self.audit_target = ("contact_import", record.pk)
            return Response(import_out(record), status=202)
        upload.seek(0)
        report = imports.contacts_import_csv(workspace=self.tenant.workspace, fileobj=upload.file, by=by)
        return Response(report.as_dict(), status=200)


class ContactImportDetailView(ApiView):
    scopes = {"GET": "contacts:read"}

    @api_doc(operation_id="contacts_import_get", summary="Get an import's progress",
             description="Progress and result of an asynchronous CSV import.", responses={200: ContactImportOut})
    def get(self, request, pk: str):
        return Response(import_out(self.get_scoped(ContactImport, pk)))


class ContactConsentsView(ApiView):
    scopes = {"GET": "contacts:read", "POST": "contacts:write"}

    @api_doc(operation_id="contacts_consents_list", summary="List a contact's consent history",
             description="The append-only consent ledger, newest first; `opted_in` is the latest row's state.",
             parameters=PAGE_PARAMETERS, responses={200: paginated(ConsentOut)})
    def get(self, request, pk: str):
        contact = self.get_scoped(Contact, pk)
        return self.paginated(selectors.consent_history(contact=contact), services.consent_serialize)

    @api_doc(operation_id="contacts_consents_record", summary="Record an opt-in or opt-out",
             description="Appends a consent row; emits `contact.opted_in` / `contact.opted_out` when the state "
             "changes.", request=ConsentIn, responses={201: ConsentOut})
    def post(self, request, pk: str):
        contact = self.get_scoped(Contact, pk)
        data = ConsentIn(data=_body(request))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        record = services.consent_record(
            contact=contact, status=values["status"], source=values["source"], note=values["note"],
            api_key_id=self.tenant.api_key.pk if self.tenant.api_key else "", user=self.tenant.user,
        )
        self.audit_target = ("contact", contact.pk)
        return Response(services.consent_serialize(record), status=201)


class ContactBlockView(ApiView):
    """POST /api/v1/contacts/{id}/block: Meta's block_users API on the workspace's numbers (the key's WABA's,
    when bound). The inbox's Block button calls it."""

    scopes = {"POST": "contacts:write"}
    blocked = True

    def _set(self, pk: str):
        contact = self.get_scoped(Contact, pk)
        contact = services.contact_block_set(contact=contact, blocked=self.blocked, waba_id=self.tenant.waba_id)
        self.audit_target = ("contact", contact.pk)
        contact = Contact.objects.prefetch_related("tag_rows").get(pk=contact.pk)
        return Response(contact_out(contact))

    @api_doc(operation_id="contacts_block", summary="Block a contact",
             description="Blocks the person on WhatsApp through Meta's block_users API on every number of the "
             "workspace (or of the key's WABA). Sends to a blocked contact are refused with 422 CONTACT_BLOCKED. "
             "Meta refusing answers 502 UPSTREAM_ERROR and nothing is recorded.",
             request=None, responses={200: ContactOut}, errors=(502,))
    def post(self, request, pk: str):
        return self._set(pk)


class ContactUnblockView(ContactBlockView):
    """POST /api/v1/contacts/{id}/unblock: Meta's block_users DELETE; sends go again."""

    blocked = False

    @api_doc(operation_id="contacts_unblock", summary="Unblock a contact",
             description="Unblocks the person on WhatsApp (Meta's block_users DELETE) on every number of the "
             "workspace (or of the key's WABA); sends to the contact go again. Meta refusing answers 502 "
             "UPSTREAM_ERROR and nothing is recorded.",
             request=None, responses={200: ContactOut}, errors=(502,))
    def post(self, request, pk: str):
        return self._set(pk)
