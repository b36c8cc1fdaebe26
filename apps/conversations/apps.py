from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "apps.conversations"
    label = "conversations"

    def ready(self) -> None:
        from apps.conversations import (
            events,  # noqa: F401  (registers the event types and their schemas)
            scoping,
        )

        scoping.register()  # the WABA binding of contacts and of events about messages and contacts

        # Inbox: push committed events to browsers; wake snoozed conversations whose time has come.
        from apps.conversations.services.inbox import inbox_listener_register
        from apps.core import periodic

        inbox_listener_register()
        periodic.register("conversations.inbox_wake_snoozed", "apps.conversations.tasks.inbox.conversations_wake_snoozed",
                          seconds=60)
        # Send: the dispatch sweeper (scheduled release, lease recovery, expiry, due work the fast path missed).
        from django.conf import settings as _settings

        periodic.register("conversations.dispatch_sweep", "apps.conversations.tasks.dispatch.dispatch_sweep",
                          seconds=getattr(_settings, "DISPATCH_SWEEP_SECONDS", 2))
