from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core: workspaces, keys, events, audit"

    def ready(self) -> None:
        from apps.core import periodic, schema  # noqa: F401  (schema registers the OpenAPI auth extensions)

        periodic.register("core.idempotency_purge", "apps.core.tasks.idempotency_records_purge", seconds=3600)
        periodic.register("core.heartbeat", "apps.core.tasks.heartbeat", seconds=settings.BACKGROUND_HEARTBEAT_SECONDS)
        if settings.IS_POSTGRES:
            _psycopg_cache_larger_statements()


def _psycopg_cache_larger_statements() -> None:
    """psycopg parses a query's placeholders again on every execution once it is over 4,096 bytes or 50
    parameters; below that it keeps the parse in an LRU cache. The send API's single statement (message,
    conversation, audit and event: ~60 parameters) is over both, and re-parsing it was ~10% of a send's
    CPU. Raise both bounds (the cache keeps its 128 entries)."""
    try:
        from psycopg import _queries
    except ImportError:  # a psycopg that moved it: only the cache is lost
        return
    if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", 0) < 256:
        _queries.MAX_CACHED_STATEMENT_PARAMS = 256
    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 0) < 16384:
        _queries.MAX_CACHED_STATEMENT_LENGTH = 16384
