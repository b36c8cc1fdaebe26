"""SMS gateways: `get_sms_gateway(simulated=...)` picks the one that serves a send. A sandbox workspace's
SMS always goes to the simulator, whatever SMS_GATEWAY says; a live one goes to the gateway SMS_GATEWAY
names: "simulator", "twilio" (Twilio's Messages API, or a fake Twilio when TWILIO_API_URL points at one),
"http" (the generic HTTP/JSON adapter) or a dotted path to a class with the same surface."""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from apps.providers.sms.base import SmsGateway, SmsInbound, SmsPrice, SmsResult, SmsStatusUpdate
from apps.providers.sms.segments import SmsSegments, sms_segments
from apps.providers.sms.simulator import SimulatorSmsGateway

__all__ = ["SmsGateway", "SmsInbound", "SmsPrice", "SmsResult", "SmsSegments", "SmsStatusUpdate",
           "SimulatorSmsGateway", "get_sms_gateway", "sms_segments", "reset_for_tests"]

_lock = threading.Lock()
_cache: dict[str, SmsGateway] = {}
_BUILTIN = {"twilio": "apps.providers.sms.twilio.TwilioSmsGateway",
            "http": "apps.providers.sms.http_json.HttpJsonSmsGateway"}


def get_sms_gateway(*, simulated: bool) -> SmsGateway:
    name = "simulator" if simulated else (getattr(settings, "SMS_GATEWAY", "simulator") or "simulator")
    gw = _cache.get(name)
    if gw is None:
        with _lock:
            gw = _cache.get(name)
            if gw is None:
                gw = SimulatorSmsGateway() if name == "simulator" else import_string(_BUILTIN.get(name, name))()
                _cache[name] = gw
    return gw


def reset_for_tests() -> None:
    """Forget cached gateways (tests that point TWILIO_API_URL at a fake call this)."""
    with _lock:
        _cache.clear()
