from apps.webhooks.tasks import inbound, outbound  # noqa: F401
