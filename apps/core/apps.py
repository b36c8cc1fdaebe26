from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core: workspaces, keys, events, audit"

    def ready(self) -> None:
        from apps.core import periodic, schema  # noqa: F401  (schema registers the OpenAPI auth extensions)
        from apps.core.models import Event
        from apps.core.scoping import events_waba_scoped, waba_scope_register

        waba_scope_register(Event, events_waba_scoped)

        periodic.register("core.idempotency_purge", "apps.core.tasks.idempotency_records_purge", seconds=3600)
        periodic.register("core.heartbeat", "apps.core.tasks.heartbeat", seconds=settings.BACKGROUND_HEARTBEAT_SECONDS)
        if settings.IS_POSTGRES:
            from apps.core.runtime.patches import psycopg_cache_larger_statements

            psycopg_cache_larger_statements()

