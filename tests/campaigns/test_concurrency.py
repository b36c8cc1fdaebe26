"""Several workers handing out one campaign at once (PostgreSQL: row locks and SKIP LOCKED are real there)."""

import os
import threading
from collections import Counter

import pytest
from django.db import connection

from apps.campaigns import services
from apps.campaigns.models import CampaignRecipient
from apps.campaigns.services import hand_out as hand_out_module
from apps.conversations.models import Message
from tests.campaigns.factories import make_contacts

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("hand_out"),
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL row locks (set DATABASE_URL)"),
]


def test_parallel_feeders_hand_out_disjoint_batches(tenant, workspace, number, template, settings):
    settings.CAMPAIGN_BATCH_SIZE = 5
    make_contacts(workspace, 40)
    audience = services.audience_create(workspace=workspace, name="all", filter={})
    campaign = services.campaign_create(tenant=tenant, data={
        "name": "p", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.name}}", "2": "x"}})
    services.campaign_start(campaign=campaign)
    services.campaign_materialize(campaign=campaign)
    barrier = threading.Barrier(4)
    errors = []

    def worker():
        try:
            barrier.wait()
            while services.campaign_hand_out_batch(campaign_id=campaign.pk, limit=5):
                pass
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    per_contact = Counter(Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", flat=True))
    assert len(per_contact) == 40 and set(per_contact.values()) == {1}
    assert CampaignRecipient.objects.filter(campaign=campaign, status="queued").count() == 40


def test_pause_waits_for_the_batch_in_flight_and_stops_the_next(tenant, workspace, number, template, settings,
                                                                 monkeypatch, hand_out):
    settings.CAMPAIGN_BATCH_SIZE = 5
    make_contacts(workspace, 20)
    audience = services.audience_create(workspace=workspace, name="all", filter={})
    campaign = services.campaign_create(tenant=tenant, data={
        "name": "p", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.name}}", "2": "x"}})
    services.campaign_start(campaign=campaign)
    services.campaign_materialize(campaign=campaign)
    inside, release = threading.Event(), threading.Event()
    real = getattr(hand_out_module, hand_out)

    def slow(**kwargs):
        inside.set()
        release.wait(10)
        return real(**kwargs)

    monkeypatch.setattr(hand_out_module, hand_out, slow)
    result = {}

    def batch():
        try:
            result["n"] = services.campaign_hand_out_batch(campaign_id=campaign.pk, limit=5)
        finally:
            connection.close()

    def pause():
        try:
            services.campaign_pause(campaign=campaign)
            result["paused_after_batch"] = Message.objects.filter(campaign_id=campaign.pk).count()
        finally:
            connection.close()

    t1 = threading.Thread(target=batch)
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=pause)
    t2.start()
    t2.join(0.5)
    assert t2.is_alive()  # the pause waits for the batch holding the share lock
    release.set()
    t1.join(10)
    t2.join(10)
    assert result == {"n": 5, "paused_after_batch": 5}
    monkeypatch.setattr(hand_out_module, "_enqueue_bulk", real)
    assert services.campaign_hand_out_batch(campaign_id=campaign.pk, limit=5) == 0
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 5
