from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from django.conf import settings

        from apps.core import hooks, periodic

        # Receive road: the in-process simulator delivers into the same stored-webhook queue; the
        # sweepers are the durable path behind the on-commit enqueues.
        from apps.webhooks.services.inbound import inbound_sink

        hooks.register_inbound_sink(inbound_sink)
        # Email: `manage.py serve` starts the inbound SMTP listener when EMAIL_INBOUND_LISTEN is set.
        from apps.webhooks.services.email_listener import email_listener_start

        hooks.register_process_start(email_listener_start)
        # The dispatcher's lease recovery waits for reports still in the receive backlog.
        from apps.webhooks.selectors import inbound_receive_watermark

        hooks.register_receive_watermark(inbound_receive_watermark)
        periodic.register("webhooks.inbound_sweep", "apps.webhooks.tasks.inbound.inbound_webhooks_sweep_task",
                          seconds=settings.INBOUND_WEBHOOK_SWEEP_SECONDS)
        periodic.register("webhooks.inbound_purge", "apps.webhooks.tasks.inbound.inbound_webhooks_purge_task",
                          seconds=3600)
        periodic.register("conversations.inbound_media_sweep",
                          "apps.conversations.tasks.receiving.inbound_media_sweep_task", seconds=60)

        # Outbound road (us -> subscribers): the after-commit listener is the fast path; the sweep reads
        # the event log and the due deliveries itself, so nothing depends on the enqueue succeeding.
        from apps.webhooks.services.outbound.listener import outbound_events_committed

        hooks.register_event_listener(outbound_events_committed)
        periodic.register("webhooks.outbound_sweep", "apps.webhooks.tasks.outbound.webhook_outbound_sweep_task",
                          seconds=settings.WEBHOOK_SWEEP_SECONDS)
        periodic.register("webhooks.outbound_purge", "apps.webhooks.tasks.outbound.webhook_payloads_purge_task",
                          seconds=3600)
        periodic.register("webhooks.outbound_health",
                          "apps.webhooks.tasks.outbound.webhook_subscriptions_health_task", seconds=3600)
