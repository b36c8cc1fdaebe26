"""The fake Meta's vocabulary and small parts: the magic recipients, Meta's error texts, SimConfig, the
result and follow-up types, the in-memory state and the payload helpers. The rules themselves are
SimulatorEngine (engine.py), which re-exports all of these."""

from __future__ import annotations

import base64
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

# --- magic recipients (documented in README "Sandbox magic numbers") -------------------------------------
MAGIC_NOT_ON_WHATSAPP = "15550001001"  # 200, then failed 131026
MAGIC_ALWAYS_THROTTLED = "15550001002"  # sync 130429 on every send
MAGIC_TRANSIENT_ONCE = "15550001003"  # sync 131000 on the first send, then success
MAGIC_ECOSYSTEM_LIMIT = "15550001004"  # 200, then failed 131049
MAGIC_NEVER_READ = "15550001005"  # sent, delivered, never read
MAGIC_DUPLICATE_STATUSES = "15550001006"  # every status webhook delivered twice
MAGIC_OUT_OF_ORDER = "15550001007"  # read arrives before delivered
MAGIC_PAIR_LIMITED = "15550001008"  # sync 131056 on every send
MAGIC_STOPPED_MARKETING = "15550001009"  # 200, then failed 131050
MAGIC_ALWAYS_ERROR = "15550001010"  # sync 131000 on every send
REJECT_TEMPLATE_PREFIX = "reject_"
IN_PROCESS_TOKEN = "in-process"  # the in-process form has no bearer to check  # templates named reject_* are REJECTED after review

ERROR_TEXT = {
    2: "Service temporarily unavailable",
    100: "Invalid parameter",
    190: "Error validating access token: Session has expired.",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "User has stopped marketing messages",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132012: "Parameter format does not match format in the created template",
    132015: "Template is Paused",
    132016: "Template is Disabled",
}
ERROR_DETAILS = {
    130429: "Cloud API message throughput has been reached.",
    131026: "Message failed to send because the recipient is not a WhatsApp user or cannot receive it.",
    131047: "Message failed to send because more than 24 hours have passed since the customer last replied "
            "to this number.",
    131049: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    131056: "Message failed to send because there were too many messages sent from this phone number to the "
            "same phone number in a short period of time.",
}

# Tiny files that content sniffers recognise (1x1 PNG, PDF, Ogg, MP4, WebP headers).
_SAMPLES = Path(__file__).resolve().parent / "samples"
# Small real files (valid and viewable: a 320x240 JPEG, 2 s of Opus, a 2 s H.264/AAC MP4, a one-page PDF,
# a 256x256 WebP) a simulated customer sends when the caller gives no file of its own. Made once with
# ffmpeg's test sources; see samples/README.
PLACEHOLDER_MEDIA = {
    "image": ("image/jpeg", (_SAMPLES / "image.jpg").read_bytes()),
    "document": ("application/pdf", (_SAMPLES / "document.pdf").read_bytes()),
    "audio": ("audio/ogg", (_SAMPLES / "audio.ogg").read_bytes()),
    "video": ("video/mp4", (_SAMPLES / "video.mp4").read_bytes()),
    "sticker": ("image/webp", (_SAMPLES / "sticker.webp").read_bytes()),
}

FREE_FORM_TYPES = {"text", "image", "video", "audio", "document", "sticker", "location", "contacts",
                   "interactive", "reaction"}
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
POSITIONAL = re.compile(r"\{\{\s*(\d+)\s*\}\}")
NAMED = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class SimConfig:
    default_mps: float = 80.0
    mps_overrides: dict = field(default_factory=dict)  # phone_number_id -> mps
    throughput_burst_seconds: float = 1.0  # bucket size = mps x this (Meta does not publish its burst)
    pair_limit_enabled: bool = True
    pair_rate_per_second: float = 1 / 6
    pair_burst: int = 45
    window_hours: float = 24.0
    enforce_window: bool = True
    strict_templates: bool = True  # unknown template -> 132001; False accepts templates it never saw
    approve_delay: float = 2.0
    sent_delay: float = 0.05
    delivered_delay: float = 0.3
    read_delay: float = 1.0
    skip_delivered_probability: float = 0.1
    read_probability: float = 1.0
    duplicate_probability: float = 0.0
    out_of_order_probability: float = 0.0
    media_url_ttl: float = 300.0
    media_id_ttl: float = 30 * 86400.0
    free_utility_in_window: bool = True
    http_status_overrides: dict = field(default_factory=dict)  # Meta code -> HTTP status
    require_token: bool = True
    rejected_tokens: tuple = ("expired", "invalid")

    def mps_for(self, phone_number_id: str) -> float:
        return float(self.mps_overrides.get(str(phone_number_id), self.default_mps))

    @classmethod
    def from_settings(cls, **overrides) -> SimConfig:
        from django.conf import settings

        values = {}
        for f in cls.__dataclass_fields__:
            name = f"SIMULATOR_{f.upper()}"
            if hasattr(settings, name):
                values[f] = getattr(settings, name)
        values.setdefault("default_mps", getattr(settings, "DEFAULT_THROUGHPUT_MPS", 80))
        values.setdefault("window_hours", getattr(settings, "CUSTOMER_SERVICE_WINDOW_HOURS", 24))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class Followup:
    """A webhook to deliver `delay` seconds from now. Status updates keep their route and status object and
    build the Meta envelope only when asked: the HTTP server batches them per number without ever building
    one envelope per status."""

    __slots__ = ("delay", "_payload", "route", "status")

    def __init__(self, delay: float, payload: dict | None = None, *, route: tuple | None = None,
                 status: dict | None = None):
        self.delay = delay
        self._payload = payload
        self.route = route  # (waba_id, phone_number_id, display_phone_number) for status updates
        self.status = status

    @property
    def payload(self) -> dict:
        if self._payload is None:
            waba_id, pnid, display = self.route
            self._payload = messages_envelope(waba_id=waba_id, phone_number_id=pnid, display_phone_number=display,
                                              value={"statuses": [self.status]})
        return self._payload

    def __repr__(self) -> str:
        return f"Followup(delay={self.delay!r}, route={self.route!r}, status={self.status!r})"


@dataclass
class Result:
    status: int
    body: dict
    followups: list = field(default_factory=list)


class SimError(Exception):
    def __init__(self, code: int, message: str = "", details: str = "", http_status: int | None = None):
        super().__init__(message)
        self.code, self.message, self.details, self.http_status = code, message, details, http_status


# --- state --------------------------------------------------------------------------------------------------
class MemoryState:
    """Single-process state (the fakemeta server and unit tests). Thread-safe enough for one event loop plus
    test threads reading."""

    def __init__(self):
        self._lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}
        self.windows: dict[str, float] = {}
        self.templates: dict[str, dict] = {}  # "waba|name|lang" -> template
        self.global_templates: dict[str, dict] = {}  # "name|lang" -> latest template
        self.numbers: dict[str, dict] = {}
        self.counters: dict[str, int] = {}
        self.media: dict[str, dict] = {}
        self.media_data: dict[str, bytes] = {}

    def take_token(self, key: str, rate: float, burst: float, now: float) -> float:
        """0.0 when a token was taken, else seconds until one is available."""
        with self._lock:
            tokens, last = self.buckets.get(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            if tokens >= 1.0:
                self.buckets[key] = (tokens - 1.0, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate if rate > 0 else 3600.0

    def get_window(self, pnid: str, wa_id: str) -> float | None:
        return self.windows.get(f"{pnid}|{wa_id}")

    def set_window(self, pnid: str, wa_id: str, at: float) -> None:
        self.windows[f"{pnid}|{wa_id}"] = at

    def put_template(self, tpl: dict) -> None:
        with self._lock:
            self.templates[f"{tpl['waba_id']}|{tpl['name']}|{tpl['language']}"] = tpl
            self.global_templates[f"{tpl['name']}|{tpl['language']}"] = tpl

    def get_template(self, waba_id: str | None, name: str, language: str) -> dict | None:
        if waba_id:
            tpl = self.templates.get(f"{waba_id}|{name}|{language}")
            if tpl is not None:
                return tpl
        return self.global_templates.get(f"{name}|{language}")

    def list_templates(self, waba_id: str) -> list[dict]:
        return [t for k, t in sorted(self.templates.items()) if k.startswith(f"{waba_id}|")]

    def delete_templates(self, waba_id: str, name: str) -> int:
        with self._lock:
            keys = [k for k, t in self.templates.items() if t["waba_id"] == waba_id and t["name"] == name]
            for k in keys:
                tpl = self.templates.pop(k)
                gk = f"{tpl['name']}|{tpl['language']}"
                if self.global_templates.get(gk) is tpl:
                    del self.global_templates[gk]
            return len(keys)

    def set_number(self, pnid: str, info: dict) -> None:
        self.numbers[str(pnid)] = info

    def get_number(self, pnid: str) -> dict | None:
        return self.numbers.get(str(pnid))

    def incr(self, key: str) -> int:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]

    def peek(self, key: str) -> int:
        with self._lock:
            return self.counters.get(key, 0)

    def put_media(self, media_id: str, record: dict, data: bytes) -> None:
        self.media[media_id] = record
        self.media_data[media_id] = data

    def get_media(self, media_id: str) -> dict | None:
        return self.media.get(media_id)

    def get_media_data(self, media_id: str) -> bytes | None:
        return self.media_data.get(media_id)


# --- helpers ------------------------------------------------------------------------------------------------
def digits(raw) -> str:
    return re.sub(r"\D", "", str(raw or ""))


def new_wamid() -> str:
    raw = b"\x18\x0b" + secrets.token_bytes(22)
    return "wamid.HBgL" + base64.b64encode(raw).decode().rstrip("=")


def new_numeric_id(length: int = 15) -> str:
    return str(secrets.randbelow(9 * 10 ** (length - 1)) + 10 ** (length - 1))


def graph_error_body(code: int, message: str = "", details: str = "") -> dict:
    text = message or ERROR_TEXT.get(code, "Error")
    err: dict = {"message": f"(#{code}) {text}", "type": "OAuthException", "code": code,
                 "error_data": {"messaging_product": "whatsapp", "details": details or ERROR_DETAILS.get(code, text)},
                 "fbtrace_id": secrets.token_urlsafe(12)}
    if code == 190:
        err["error_subcode"] = 463
        err["message"] = text
    return {"error": err}


def webhook_error(code: int) -> dict:
    text = ERROR_TEXT.get(code, "Error")
    return {"code": code, "title": text, "message": text,
            "error_data": {"details": ERROR_DETAILS.get(code, text)},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}


def messages_envelope(*, waba_id: str, phone_number_id: str, display_phone_number: str, value: dict) -> dict:
    body = {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}}
    body.update(value)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": body, "field": "messages"}]}]}


def merge_payloads(payloads: list[dict], max_items: int = 1000) -> list[dict]:
    """Batch `messages` webhooks of the same number into one POST (Meta batches up to 1000 updates)."""
    out: list[dict] = []
    groups: dict[tuple, list] = {}  # key -> [merged payload, its value, update count]
    for p in payloads:
        try:
            entries = p["entry"]
            changes = entries[0]["changes"]
            change = changes[0]
        except (KeyError, IndexError, TypeError):
            out.append(p)
            continue
        value = change.get("value") or {}
        if change.get("field") != "messages" or len(entries) != 1 or len(changes) != 1:
            out.append(p)
            continue
        meta = value.get("metadata") or {}
        key = (entries[0].get("id"), meta.get("phone_number_id"), meta.get("display_phone_number"))
        n = len(value.get("statuses") or ()) + len(value.get("messages") or ())
        group = groups.get(key)
        if group is None or group[2] + n > max_items:
            # A fresh shell with copied lists: later merges must not mutate the caller's payloads.
            shell_value = dict(value)
            for k in ("statuses", "messages", "contacts"):
                if k in shell_value:
                    shell_value[k] = list(shell_value[k])
            target = {"object": p.get("object", "whatsapp_business_account"),
                      "entry": [{**entries[0], "changes": [{**change, "value": shell_value}]}]}
            groups[key] = [target, shell_value, n]
            out.append(target)
            continue
        tv = group[1]
        group[2] += n
        for k in ("statuses", "messages", "contacts"):
            items = value.get(k)
            if items:
                existing = tv.get(k)
                if existing is None:
                    tv[k] = list(items)
                else:
                    existing.extend(items)
    return out


def _placeholders(text: str) -> tuple[set, set]:
    return set(POSITIONAL.findall(text or "")), set(NAMED.findall(text or ""))


