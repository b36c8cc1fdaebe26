"""WebSocket routes. Apps contribute their patterns here (the inbox stream lives in conversations)."""

from __future__ import annotations

websocket_urlpatterns: list = []

try:
    from apps.conversations.routing import websocket_urlpatterns as inbox_patterns
except ImportError:  # the inbox stream is not built yet
    inbox_patterns = []
websocket_urlpatterns += inbox_patterns
