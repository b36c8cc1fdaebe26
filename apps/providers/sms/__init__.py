"""SMS fallback: a tiny gateway interface. `get_sms_gateway()` picks the implementation named by the
SMS_GATEWAY setting ("simulator", or a dotted path to a class with the same `send_sms`)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from apps.providers.sms.base import SmsGateway, SmsResult
from apps.providers.sms.simulator import SimulatorSmsGateway

__all__ = ["SmsGateway", "SmsResult", "SimulatorSmsGateway", "get_sms_gateway"]

_lock = threading.Lock()
_cache: dict[str, SmsGateway] = {}


def get_sms_gateway() -> SmsGateway:
    name = getattr(settings, "SMS_GATEWAY", "simulator") or "simulator"
    gw = _cache.get(name)
    if gw is None:
        with _lock:
            gw = _cache.get(name)
            if gw is None:
                gw = SimulatorSmsGateway() if name == "simulator" else import_string(name)()
                _cache[name] = gw
    return gw
