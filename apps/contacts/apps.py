from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "apps.contacts"
    label = "contacts"

    def ready(self) -> None:
        from apps.contacts import events  # noqa: F401  (registers the event types and their schemas)
        from apps.core import periodic

        periodic.register("contacts-imports-sweep", "apps.contacts.tasks.contact_imports_sweep_task", seconds=60)
