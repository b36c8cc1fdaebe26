"""Each side of the app keeps its own url module; this one only joins them."""

from importlib import import_module

urlpatterns: list = []
for _name in ("urls_messages", "urls_media", "urls_inbox", "urls_sandbox"):
    try:
        urlpatterns += import_module(f"apps.conversations.api.{_name}").urlpatterns
    except ModuleNotFoundError as exc:
        if exc.name != f"apps.conversations.api.{_name}":
            raise
