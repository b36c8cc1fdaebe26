from django.apps import AppConfig


class LinksConfig(AppConfig):
    name = "apps.links"
    label = "links"

    def ready(self) -> None:
        from apps.links import events  # noqa: F401  (registers link.clicked and its schema)
