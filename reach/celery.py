import gc
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_shutting_down

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reach.settings")

app = Celery("reach")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    # Tasks' tail latency: full garbage collections skip the framework's long-lived objects (see reach/asgi.py).
    gc.freeze()


@worker_shutting_down.connect
def _stop_long_loops(**kwargs) -> None:
    # Warm shutdown waits for running tasks: a dispatch drain ends its budget now instead of in 30 s.
    from apps.core.runtime.stopping import request_stop

    request_stop()
