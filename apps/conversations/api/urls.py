"""Each side of the app keeps its own url module; this one only joins them."""

from apps.conversations.api import urls_inbox, urls_media, urls_messages, urls_sandbox

urlpatterns: list = [
    *urls_messages.urlpatterns,
    *urls_media.urlpatterns,
    *urls_inbox.urlpatterns,
    *urls_sandbox.urlpatterns,
]
