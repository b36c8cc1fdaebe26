from celery import shared_task

from apps.message_templates import services


@shared_task(name="apps.message_templates.tasks.templates_sync_all_task")
def templates_sync_all_task() -> dict:
    return services.templates_sync_all()
