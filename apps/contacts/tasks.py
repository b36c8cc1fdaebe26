from celery import shared_task

from apps.contacts import imports


@shared_task(name="apps.contacts.tasks.contact_import_run_task")
def contact_import_run_task(import_id: str) -> str:
    return imports.contact_import_run(import_id=import_id).status


@shared_task(name="apps.contacts.tasks.contact_imports_sweep_task")
def contact_imports_sweep_task() -> int:
    return imports.contact_imports_sweep()
