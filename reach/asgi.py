import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings")
django.setup(set_prefix=False)

from apps.core.asgi_handler import ThreadedRoutesASGIHandler  # noqa: E402
from apps.core.runtime.daphne_requests import leave_request_bodies_to_django  # noqa: E402
from apps.core.runtime.shutdown import daphne_graceful_shutdown  # noqa: E402

leave_request_bodies_to_django()
daphne_graceful_shutdown()

django_asgi_app = ThreadedRoutesASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.core.asgi_limits import ApiBodyLimit  # noqa: E402
from apps.webhooks.asgi_inbound import MetaWebhookFastPath  # noqa: E402
from reach.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Streams are capped under /api/ before Django spools them (chunked bodies have no Content-Length).
        # POST /webhooks/meta is answered before Django (apps/webhooks/asgi_inbound.py: same checks, no stack).
        "http": MetaWebhookFastPath(ApiBodyLimit(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything imported so far lives as long as the process: move it out of the collector's reach, so a
# full collection does not walk the whole framework and stall every request in flight (tail latency).
gc.freeze()
