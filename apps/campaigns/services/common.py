"""What the campaign services' modules share: the status names, template rendering and the in-flight window."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from apps.campaigns import selectors
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.conversations.models import Message
from apps.message_templates.models import MessageTemplate

S = Campaign.Status
R = CampaignRecipient.Status
# The pause reason of a campaign the wallet could not cover (API-visible; a top-up resumes it).
INSUFFICIENT_BALANCE = Campaign.PAUSE_INSUFFICIENT_BALANCE


def _template_render(*, template: MessageTemplate, variables: list | dict | None,
                     components: list | None = None) -> str:
    from apps.message_templates.services import template_render

    return template_render(template=template, variables=variables, components=components)


def _window(campaign: Campaign) -> int:
    mps = campaign.phone_number.throughput_mps or settings.DEFAULT_THROUGHPUT_MPS
    return max(settings.CAMPAIGN_MIN_IN_FLIGHT, int(mps * settings.CAMPAIGN_IN_FLIGHT_SECONDS))


def _in_flight(campaign: Campaign) -> int:
    """Messages of this campaign still waiting for the dispatcher. One equality per state, so each is an index
    range over that state's rows: `status IN (...)` was a filter over every message the campaign ever had
    (100k heap fetches near the end of a 100k campaign, several times a second)."""
    table = Message._meta.db_table
    count = (f"(SELECT count(*) FROM {table} WHERE workspace_id = %s AND campaign_id = %s "  # noqa: S608
             "AND status = %s)")
    states = selectors.IN_FLIGHT_STATES
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " + ".join([count] * len(states)),
                       [p for state in states for p in (campaign.workspace_id, campaign.pk, state)])
        return int(cursor.fetchone()[0])
