"""Campaigns write layer, split by concern (callers keep `from apps.campaigns import services` and
`services.<name>`):
- audiences.py  filter audiences and CSV lists
- lifecycle.py  creation, the state machine, expansion into recipients, expiry, auto-pause, completion
- hand_out.py   handing recipients to the dispatcher in batches (through the one message writer)
- pump.py       the pump and its feeders
- preflight.py  the dry run

The recipient row is the queue. A batch is one transaction: lock the campaign row, pick pending recipients,
create their messages through the writer's `messages_enqueue_query` (PostgreSQL: one set-based statement that
also renders the variables and writes each message id onto its recipient) or `messages_enqueue_bulk` (SQLite,
and contacts whose values only Python renders exactly), and write each message id onto its recipient. A crash
anywhere rolls the batch back whole, so a restart hands each recipient out exactly once.
"""

from apps.campaigns.services.audiences import audience_create, audience_create_from_csv
from apps.campaigns.services.hand_out import campaign_hand_out_batch
from apps.campaigns.services.lifecycle import (
    campaign_cancel,
    campaign_check,
    campaign_complete,
    campaign_create,
    campaign_expire,
    campaign_materialize,
    campaign_pause,
    campaign_resume,
    campaign_start,
    campaigns_resume_funded,
    campaigns_resume_funded_missed,
    campaigns_start_due,
)
from apps.campaigns.services.preflight import campaign_preflight
from apps.campaigns.services.pump import campaign_claim_pump, campaign_feed, campaign_pump, campaign_step

__all__ = [
    "audience_create", "audience_create_from_csv", "campaign_cancel", "campaign_check", "campaign_claim_pump",
    "campaign_complete", "campaign_create", "campaign_expire", "campaign_feed", "campaign_hand_out_batch",
    "campaign_materialize", "campaign_pause", "campaign_preflight", "campaign_pump", "campaign_resume",
    "campaign_start", "campaign_step", "campaigns_resume_funded", "campaigns_resume_funded_missed", "campaigns_start_due",
]
