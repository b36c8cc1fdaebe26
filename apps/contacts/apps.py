from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "apps.contacts"
    label = "contacts"

    def ready(self) -> None:
        from apps.core import periodic

        periodic.register("contacts-imports-sweep", "apps.contacts.tasks.contact_imports_sweep_task", seconds=60)
