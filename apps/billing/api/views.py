"""GET /api/v1/balance, GET /api/v1/wallet/transactions, GET /api/v1/pricing, POST /api/v1/sandbox/wallet."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apps.billing import selectors, services
from apps.billing.events import wallet_state
from apps.billing.models import LedgerEntry
from apps.contacts.services import normalize_phone
from apps.core.api.base import ApiView
from apps.core.errors import PermissionDeniedError, ValidationFailed

_MONEY = serializers.RegexField(r"^-?\d+\.\d{4}$")


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class BalanceOut(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.CharField()
    reserved = serializers.CharField()
    available = serializers.CharField()
    credit_limit = serializers.CharField()
    low_balance_threshold = serializers.CharField()


class BalanceView(ApiView):
    scopes = {"GET": "billing:read"}

    @extend_schema(operation_id="balance_get", summary="The wallet's balance",
                   description="The workspace's wallet (the sandbox twin has its own): balance, reserved (estimates "
                   "of messages not yet charged), available = balance + credit_limit - reserved. Decimal strings, "
                   "4 places.", responses={200: BalanceOut})
    def get(self, request):
        return Response(wallet_state(selectors.wallet_for(workspace=self.tenant.workspace)))


class TransactionOut(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=LedgerEntry.Kind.choices)
    amount = serializers.CharField()
    balance_after = serializers.CharField()
    reserved_after = serializers.CharField()
    message_id = serializers.CharField(allow_null=True)
    campaign_id = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    created_at = serializers.CharField()
    created_by = serializers.CharField(allow_null=True)


class TransactionPageOut(serializers.Serializer):
    data = TransactionOut(many=True)
    next_cursor = serializers.CharField(allow_null=True)


def transaction_out(entry: LedgerEntry) -> dict:
    return {"id": entry.pk, "kind": entry.kind, "amount": f"{entry.amount:.4f}",
            "balance_after": f"{entry.balance_after:.4f}", "reserved_after": f"{entry.reserved_after:.4f}",
            "message_id": entry.message_id or None, "campaign_id": entry.campaign_id or None, "note": entry.note,
            "created_at": _iso(entry.created_at), "created_by": entry.created_by or None}


class TransactionsView(ApiView):
    scopes = {"GET": "billing:read"}

    class Filters(serializers.Serializer):
        kind = serializers.ChoiceField(choices=LedgerEntry.Kind.choices, required=False)
        message_id = serializers.CharField(required=False, max_length=40)
        campaign_id = serializers.CharField(required=False, max_length=40)
        # `from` is a Python keyword: declared below.
        to = serializers.DateTimeField(required=False)

    Filters._declared_fields["from"] = serializers.DateTimeField(required=False)

    @extend_schema(operation_id="wallet_transactions_list", summary="The wallet's ledger",
                   description="Append-only, newest first, cursor-paginated: top-ups, reservations, releases, "
                   "charges, refunds and adjustments, each with the balance after it.",
                   parameters=[OpenApiParameter("kind", str, enum=[k for k, _ in LedgerEntry.Kind.choices]),
                               OpenApiParameter("message_id", str), OpenApiParameter("campaign_id", str),
                               OpenApiParameter("from", str, description="ISO-8601, inclusive"),
                               OpenApiParameter("to", str, description="ISO-8601, exclusive"),
                               OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
                   responses={200: TransactionPageOut})
    def get(self, request):
        f = self.Filters(data=request.query_params)
        f.is_valid(raise_exception=True)
        v = f.validated_data
        qs = selectors.ledger_entries(workspace=self.tenant.workspace, kind=v.get("kind", ""),
                                      message_id=v.get("message_id", ""), campaign_id=v.get("campaign_id", ""),
                                      since=v.get("from"), until=v.get("to"))
        return self.paginated(qs, transaction_out)


class PricingOut(serializers.Serializer):
    to = serializers.CharField()
    country = serializers.CharField(allow_null=True)
    category = serializers.CharField()
    price = serializers.CharField()
    currency = serializers.CharField()


class PricingView(ApiView):
    scopes = {"GET": "billing:read"}

    class Query(serializers.Serializer):
        to = serializers.CharField(max_length=32)
        category = serializers.ChoiceField(choices=services.CATEGORIES)

    @extend_schema(operation_id="pricing_get", summary="The price a send would reserve now",
                   description="The rate card's price for a message of `category` to `to` (market by the number's "
                   "country, volume tier, plan markup).",
                   parameters=[OpenApiParameter("to", str, required=True, description="E.164"),
                               OpenApiParameter("category", str, required=True, enum=list(services.CATEGORIES))],
                   responses={200: PricingOut})
    def get(self, request):
        q = self.Query(data={k: request.query_params.get(k) for k in ("to", "category")
                             if request.query_params.get(k) is not None})
        q.is_valid(raise_exception=True)
        to = normalize_phone(q.validated_data["to"], field="to")
        category = q.validated_data["category"]
        workspace = self.tenant.workspace
        price = services.price_for(category=category, to_phone=to, workspace=workspace)
        return Response({"to": to, "country": services.country_for_phone(to) or None, "category": category,
                         "price": f"{price:.4f}", "currency": services.wallet_currency(workspace=workspace)})


class SandboxWalletView(ApiView):
    scopes = {"POST": "billing:read"}

    class Input(serializers.Serializer):
        balance = serializers.RegexField(r"^\d{1,10}(\.\d{1,4})?$", max_length=16)

    @extend_schema(operation_id="sandbox_wallet_set", summary="Set the sandbox wallet's balance",
                   description="Test keys only: sets the sandbox balance (an `adjustment` in the ledger), so the "
                   "402 INSUFFICIENT_BALANCE road can be tested. Live keys get 403.",
                   request=Input, responses={200: BalanceOut})
    def post(self, request):
        if not self.tenant.is_sandbox:
            raise PermissionDeniedError("This endpoint is for sandbox keys only: use your ak_test_… key.")
        data = request.data if isinstance(request.data, dict) else {}
        if isinstance(data.get("balance"), (int, float)) and not isinstance(data.get("balance"), bool):
            raise ValidationFailed("balance is a decimal string, e.g. \"0.0500\".", field="balance")
        s = self.Input(data=data)
        s.is_valid(raise_exception=True)
        wallet = services.wallet_sandbox_set(workspace=self.tenant.workspace, balance=s.validated_data["balance"],
                                             created_by=self.tenant.actor_label)
        return Response(wallet_state(wallet))
