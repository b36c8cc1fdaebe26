"""A contact merge (API.md Identity: one person, one contact) as the campaigns see it: the absorbed contact's
recipient rows and list-audience memberships move to the survivor instead of cascading away with it.

One recipient per campaign per contact (uniq_campaign_recipient) and one membership per audience stay true:
where both contacts have a row, one is kept —
- a recipient that already has its message (it went out, or is going) beats one that has not, so the person
  is not sent the campaign twice;
- else a row still waiting (pending, deferred) beats a finished skip: the hand-out classifies the merged
  person again, by the merged consent and address;
- a tie keeps the survivor's row."""

from __future__ import annotations

from apps.campaigns.models import AudienceMember, CampaignRecipient

R = CampaignRecipient.Status
_WAITING = (R.PENDING, R.DEFERRED)


def _rank(row: CampaignRecipient) -> int:
    if row.message_id:
        return 2
    return 1 if row.status in _WAITING else 0


def campaign_rows_merge(*, workspace_id: str, survivor_id: str, absorbed_id: str) -> dict[str, int]:
    """Runs inside the merge's transaction (core.hooks contact merger). Returns what it did, for logs/tests."""
    moved = dropped = 0
    theirs = list(CampaignRecipient.objects.select_for_update().filter(
        contact_id=absorbed_id, campaign__workspace_id=workspace_id).order_by("pk"))
    mine = {r.campaign_id: r for r in CampaignRecipient.objects.select_for_update().filter(
        contact_id=survivor_id, campaign_id__in=[r.campaign_id for r in theirs])}
    for row in theirs:
        kept = mine.get(row.campaign_id)
        if kept is not None and _rank(kept) >= _rank(row):
            row.delete()
            dropped += 1
            continue
        if kept is not None:
            kept.delete()  # the absorbed contact's row is further along: it stays, as the survivor's
            dropped += 1
        CampaignRecipient.objects.filter(pk=row.pk).update(contact_id=survivor_id)
        moved += 1
    members = AudienceMember.objects.filter(contact_id=absorbed_id, audience__workspace_id=workspace_id)
    already = AudienceMember.objects.filter(contact_id=survivor_id).values("audience_id")
    members.filter(audience_id__in=already).delete()
    memberships = members.update(contact_id=survivor_id)
    return {"recipients_moved": moved, "recipients_dropped": dropped, "memberships_moved": memberships}
