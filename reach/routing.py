"""WebSocket routes. Apps contribute their patterns here (the inbox stream lives in conversations)."""

from __future__ import annotations

from apps.conversations.routing import websocket_urlpatterns as inbox_patterns

websocket_urlpatterns: list = [*inbox_patterns]
