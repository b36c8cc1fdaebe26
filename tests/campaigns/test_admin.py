import pytest

from apps.campaigns import services
from apps.campaigns.models import Campaign
from apps.core.models import User
from tests.campaigns.factories import make_contacts


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "pw-not-used-1")
    client.force_login(user)
    return client


@pytest.fixture
def campaign(tenant, workspace, number, template):
    make_contacts(workspace, 4)
    audience = services.audience_create(workspace=workspace, name="all", filter={})
    return services.campaign_create(tenant=tenant, data={
        "name": "Admin one", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.name}}", "2": "x"}})


def test_campaign_page_progress_and_actions(admin_client, campaign):
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="campaign-panel"' in html and "campaigns/campaign.js" in html
    assert "/action/start/" in html and "/action/pause/" not in html
    progress = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/progress.json").json()
    assert progress["status"] == "draft" and progress["started_at"] is None
    assert progress["stats"]["total"] == 0
    assert admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/action/start/").status_code == 405
    r = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/action/start/")
    assert r.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
    services.campaign_step(campaign_id=campaign.pk)
    progress = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/progress.json").json()
    assert progress["stats"]["queued"] == 4
    assert progress["series"]["started_at"] is not None
    # An illegal transition is a message on the page, not an error page.
    r = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/action/resume/", follow=True)
    assert r.status_code == 200
    assert "Cannot resume a campaign that is running." in r.content.decode()


def test_admin_preflight_button_endpoint(admin_client, campaign):
    r = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/preflight.json")
    assert r.status_code == 200
    assert r.json()["recipients"] == 4
    assert not campaign.recipients.exists()


def test_admin_pages_need_staff(client, campaign):
    r = client.get(f"/admin/campaigns/campaign/{campaign.pk}/progress.json")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    r = client.post(f"/admin/campaigns/campaign/{campaign.pk}/action/cancel/")
    assert r.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_series_counts_a_receipt_after_completion_in_the_last_interval(campaign):
    """A delivery receipt that lands after the campaign completed (Meta's receipts trail the sends) is counted in
    the chart's last interval instead of falling outside it."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.campaigns import selectors
    from apps.conversations.models import Message

    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    start = campaign.started_at
    messages = Message.objects.filter(campaign_id=campaign.pk)
    assert messages.count() == 4
    messages.update(status="delivered", sent_at=start + timedelta(seconds=1), delivered_at=start + timedelta(seconds=50))
    Campaign.objects.filter(pk=campaign.pk).update(status="completed", completed_at=start + timedelta(seconds=10))
    campaign.refresh_from_db()
    series = selectors.campaign_series(campaign=campaign, now=timezone.now())
    assert sum(series["sent"]) == 4 and sum(series["delivered"]) == 4
    assert series["delivered"][-1] == 4
