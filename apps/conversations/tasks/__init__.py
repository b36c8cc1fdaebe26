# Celery's autodiscovery imports this package; each road keeps its tasks in its own module.
from apps.conversations.tasks import autoreplies, dispatch, inbox, media, push, receiving, sending, sms  # noqa: F401
