from apps.conversations.admin import inbox, messages  # noqa: F401
