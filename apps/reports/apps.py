from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self) -> None:
        from django.conf import settings

        from apps.core import periodic

        # The rollups catch up with the event log (the hours whose messages moved are recomputed).
        periodic.register("reports.rollups_advance", "apps.reports.tasks.rollups_advance",
                          seconds=settings.REPORTS_ROLLUP_SECONDS)
