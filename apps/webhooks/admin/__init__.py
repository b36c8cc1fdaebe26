from apps.webhooks.admin import inbound, outbound  # noqa: F401
