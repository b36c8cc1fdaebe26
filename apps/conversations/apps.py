from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "apps.conversations"
    label = "conversations"

    def ready(self) -> None:
        # Inbox: push committed events to browsers; wake snoozed conversations whose time has come.
        from apps.conversations.services.inbox import inbox_listener_register
        from apps.core import periodic

        inbox_listener_register()
        periodic.register("conversations.inbox_wake_snoozed", "apps.conversations.tasks.inbox.conversations_wake_snoozed",
                          seconds=60)
