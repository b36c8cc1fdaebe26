"""Billing reads; `workspace=` is required (the live workspace or its sandbox twin)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.billing.models import LedgerEntry, Wallet
from apps.core.models import Workspace


def wallet_for(*, workspace: Workspace) -> Wallet:
    from apps.billing.services import wallet_get_or_create

    return wallet_get_or_create(workspace=workspace)


def ledger_entries(*, workspace: Workspace, kind: str = "", message_id: str = "", campaign_id: str = "",
                   since: datetime | None = None, until: datetime | None = None) -> QuerySet[LedgerEntry]:
    qs = LedgerEntry.objects.filter(workspace_id=workspace.pk)
    if kind:
        qs = qs.filter(kind=kind)
    if message_id:
        qs = qs.filter(message_id=message_id)
    if campaign_id:
        qs = qs.filter(campaign_id=campaign_id)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs


def wallet_funded_since(*, workspace_id: str, since: datetime) -> bool:
    """Has money come into the workspace's wallet (a top-up, or an adjustment upward) after `since`?"""
    return LedgerEntry.objects.filter(
        workspace_id=workspace_id, created_at__gt=since, amount__gt=0,
        kind__in=(LedgerEntry.Kind.TOPUP, LedgerEntry.Kind.ADJUSTMENT)).exists()
