from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "apps.campaigns"
    label = "campaigns"

    def ready(self) -> None:
        from django.conf import settings

        from apps.campaigns import events  # noqa: F401  (registers the event types and their schemas)
        from apps.campaigns.services.lifecycle import campaigns_wallet_funded
        from apps.campaigns.services.merge import campaign_rows_merge
        from apps.core import hooks, periodic

        hooks.register_contact_merger(campaign_rows_merge)
        # A top-up resumes the campaigns the empty wallet paused (after the top-up's commit).
        hooks.register_event_listener(campaigns_wallet_funded)

        # Fires due schedules (the Campaign row is the truth; no per-campaign beat entries to keep in sync) and
        # restarts the pump of any running campaign whose worker died.
        periodic.register("campaigns.tick", "apps.campaigns.tasks.campaigns_tick",
                          seconds=settings.CAMPAIGN_TICK_SECONDS)
