"""us -> subscribers write layer: subscriptions, the event fan-out, the delivery engine."""

from apps.webhooks.services.outbound.engine import (  # noqa: F401
    AttemptOutcome,
    ClaimedDelivery,
    attempts_record,
    deliveries_claim_due,
    events_fan_out,
    payloads_purge,
    retry_delay_seconds,
    subscriptions_disable_failing,
)
from apps.webhooks.services.outbound.runner import (  # noqa: F401
    DeliveryRunner,
    deliver_due,
    subscription_send_test,
)
from apps.webhooks.services.outbound.subscriptions import (  # noqa: F401
    deliveries_redeliver_failed,
    delivery_redeliver,
    subscription_create,
    subscription_delete,
    subscription_rotate_secret,
    subscription_set_enabled,
    subscription_update,
    subscription_waba_for,
)
