from django.apps import AppConfig


class LinksConfig(AppConfig):
    name = "apps.links"
    label = "links"

    def ready(self) -> None:
        from apps.core import hooks
        from apps.links import events  # noqa: F401  (registers link.clicked and its schema)
        from apps.links.services import links_contact_merge

        hooks.register_contact_merger(links_contact_merge)
