from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "apps.campaigns"
    label = "campaigns"

    def ready(self) -> None:
        from django.conf import settings

        from apps.campaigns import events  # noqa: F401  (registers the event types and their schemas)
        from apps.campaigns.services.merge import campaign_rows_merge
        from apps.core import hooks, periodic

        hooks.register_contact_merger(campaign_rows_merge)

        # Fires due schedules (the Campaign row is the truth; no per-campaign beat entries to keep in sync) and
        # restarts the pump of any running campaign whose worker died.
        periodic.register("campaigns.tick", "apps.campaigns.tasks.campaigns_tick",
                          seconds=settings.CAMPAIGN_TICK_SECONDS)
