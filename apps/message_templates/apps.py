from django.apps import AppConfig
from django.conf import settings


class MessageTemplatesConfig(AppConfig):
    name = "apps.message_templates"
    label = "message_templates"

    def ready(self) -> None:
        from apps.core import periodic
        from apps.message_templates import events  # noqa: F401  (registers the event types and their schemas)

        periodic.register("templates-sync", "apps.message_templates.tasks.templates_sync_all_task",
                          seconds=settings.TEMPLATE_SYNC_INTERVAL_SECONDS)
