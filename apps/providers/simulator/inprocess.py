"""The sandbox's far end: the simulator engine in process, with its state in Redis (core get_redis) so every
web and worker process sees the same windows, buckets, templates and media. Follow-up webhooks (statuses,
template decisions, simulated customer messages) enter the receive road through core.hooks.deliver_inbound,
so the sandbox is production with a different far end. Same methods as GraphClient."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from apps.core import hooks
from apps.core.redis import get_redis
from apps.core.runtime.buckets import bucket_take
from apps.providers.base import ProviderError, SendResult, error_from_meta
from apps.providers.meta_cloud.client import send_result_from_body
from apps.providers.simulator.engine import Result, SimConfig, SimulatorEngine, digits

SANDBOX_MEDIA_BASE = "https://sandbox.reach.invalid"

class RedisState:
    """The engine's state interface on Redis. Keys live under one prefix (tests use their own)."""

    def __init__(self, redis=None, prefix: str = "sim:", ttl_seconds: int = 30 * 86400):
        self.r = redis or get_redis()
        self.p = prefix
        self.ttl = int(ttl_seconds)

    def take_token(self, key: str, rate: float, burst: float, now: float) -> float:
        if rate <= 0:
            return 3600.0
        # The engine's clock, not Redis': the simulator keeps its own time (tests run it on a fake one).
        ((_, wait),) = bucket_take([f"{self.p}b:{key}"], rate=rate, capacity=burst, now_us=int(now * 1_000_000),
                                   client=self.r)
        return wait

    def get_window(self, pnid: str, wa_id: str) -> float | None:
        raw = self.r.get(f"{self.p}w:{pnid}:{wa_id}")
        return float(raw) if raw is not None else None

    def set_window(self, pnid: str, wa_id: str, at: float) -> None:
        self.r.set(f"{self.p}w:{pnid}:{wa_id}", repr(at), ex=self.ttl)

    def put_template(self, tpl: dict) -> None:
        raw = json.dumps(tpl)
        pipe = self.r.pipeline()
        pipe.hset(f"{self.p}t:{tpl['waba_id']}", f"{tpl['name']}|{tpl['language']}", raw)
        pipe.hset(f"{self.p}tg", f"{tpl['name']}|{tpl['language']}", raw)
        pipe.execute()

    def get_template(self, waba_id: str | None, name: str, language: str) -> dict | None:
        raw = None
        if waba_id:
            raw = self.r.hget(f"{self.p}t:{waba_id}", f"{name}|{language}")
        if raw is None:
            raw = self.r.hget(f"{self.p}tg", f"{name}|{language}")
        return json.loads(raw) if raw is not None else None

    def list_templates(self, waba_id: str) -> list[dict]:
        items = self.r.hgetall(f"{self.p}t:{waba_id}")
        return [json.loads(v) for _, v in sorted(items.items())]

    def delete_templates(self, waba_id: str, name: str) -> int:
        key = f"{self.p}t:{waba_id}"
        fields = [f for f in self.r.hkeys(key) if f.decode().split("|", 1)[0] == name]
        if fields:
            self.r.hdel(key, *fields)
            self.r.hdel(f"{self.p}tg", *fields)
        return len(fields)

    def set_number(self, pnid: str, info: dict) -> None:
        self.r.hset(f"{self.p}n", str(pnid), json.dumps(info))

    def get_number(self, pnid: str) -> dict | None:
        raw = self.r.hget(f"{self.p}n", str(pnid))
        return json.loads(raw) if raw is not None else None

    def peek(self, key: str) -> int:
        return int(self.r.get(f"{self.p}c:{key}") or 0)

    def incr(self, key: str) -> int:
        k = f"{self.p}c:{key}"
        value = int(self.r.incr(k))
        if value == 1:
            self.r.expire(k, 86400)
        return value

    def put_media(self, media_id: str, record: dict, data: bytes) -> None:
        pipe = self.r.pipeline()
        pipe.set(f"{self.p}m:{media_id}", json.dumps(record), ex=self.ttl)
        pipe.set(f"{self.p}md:{media_id}", data, ex=self.ttl)
        pipe.execute()

    def get_media(self, media_id: str) -> dict | None:
        raw = self.r.get(f"{self.p}m:{media_id}")
        return json.loads(raw) if raw is not None else None

    def get_media_data(self, media_id: str) -> bytes | None:
        return self.r.get(f"{self.p}md:{media_id}")


def _media_secret() -> str:
    # Shared by every process (URLs signed by one worker are downloaded by another).
    return hmac.new(settings.SECRET_KEY.encode(), b"reach-sandbox-media", hashlib.sha256).hexdigest()


class SandboxProvider:
    def __init__(self, *, config: SimConfig | None = None, state=None, clock=time.time, rng=None):
        if config is None:
            config = SimConfig.from_settings(
                strict_templates=getattr(settings, "SIMULATOR_INPROCESS_STRICT_TEMPLATES", False),
                require_token=False)
        self.engine = SimulatorEngine(config=config, state=state if state is not None else RedisState(
            ttl_seconds=int(min(config.media_id_ttl, 30 * 86400))), clock=clock, rng=rng,
            media_base_url=SANDBOX_MEDIA_BASE, media_secret=_media_secret())

    # -- plumbing ------------------------------------------------------------------------------------
    @staticmethod
    def _deliver(result: Result) -> None:
        for f in result.followups:
            hooks.deliver_inbound(payload=f.payload, delay_seconds=f.delay, source="simulator")

    @staticmethod
    def _raise(result: Result) -> None:
        err = result.body.get("error") or {}
        details = str((err.get("error_data") or {}).get("details") or "")
        raise error_from_meta(err.get("code"), str(err.get("message") or ""), http_status=result.status,
                              details=details)

    def _ok(self, result: Result) -> dict:
        if result.status != 200:
            self._raise(result)
        self._deliver(result)
        return result.body

    # -- the GraphClient surface --------------------------------------------------------------------
    def send_message(self, *, phone_number_id: str, access_token: str = "", payload: dict) -> SendResult:
        return send_result_from_body(self._ok(self.engine.send(phone_number_id=str(phone_number_id),
                                                               body=payload, access_token=access_token)))

    def send_message_collect(self, *, phone_number_id: str, access_token: str = "", payload: dict,
                             followups: list) -> SendResult:
        """send_message whose follow-up webhooks are appended to `followups` instead of delivered: the
        dispatcher sends from its event loop, where the receive road's writes may not run."""
        result = self.engine.send(phone_number_id=str(phone_number_id), body=payload, access_token=access_token)
        if result.status != 200:
            self._raise(result)
        followups.extend(result.followups)
        return send_result_from_body(result.body)

    @staticmethod
    def deliver_followups(followups: list) -> None:
        for f in followups:
            hooks.deliver_inbound(payload=f.payload, delay_seconds=f.delay, source="simulator")

    def mark_read(self, *, phone_number_id: str, access_token: str = "", wamid: str, typing: bool = False) -> bool:
        from apps.providers.meta_cloud.payloads import build_mark_read_payload

        body = build_mark_read_payload(wamid=wamid, typing=typing)
        return bool(self._ok(self.engine.send(phone_number_id=str(phone_number_id), body=body)).get("success"))

    def block_users(self, *, phone_number_id: str, access_token: str = "", users: list[str], block: bool = True) -> dict:
        from apps.providers.meta_cloud.payloads import build_block_users_payload

        return self._ok(self.engine.block_users(phone_number_id=str(phone_number_id), block=block,
                                                body=build_block_users_payload(users)))

    def upload_media(self, *, phone_number_id: str, access_token: str = "", data: bytes, mime_type: str,
                     filename: str) -> str:
        return str(self._ok(self.engine.upload_media(phone_number_id=str(phone_number_id), data=data,
                                                     mime_type=mime_type, filename=filename))["id"])

    def get_media(self, *, media_id: str, access_token: str = "") -> dict:
        body = self._ok(self.engine.get_media(media_id=str(media_id)))
        return {"url": body["url"], "mime_type": body["mime_type"], "sha256": body["sha256"],
                "file_size": body["file_size"]}

    def download_media(self, *, url: str, access_token: str = "", max_bytes: int) -> bytes:
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if f"{parts.scheme}://{parts.netloc}" != SANDBOX_MEDIA_BASE or len(segments) != 2:
            raise ProviderError(code="INVALID_REQUEST", message="not a sandbox media URL", retryable=False)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        status, data, _ = self.engine.download(media_id=segments[1], exp=q.get("exp", ""), sig=q.get("sig", ""),
                                               access_token=access_token or "sandbox")
        if status == 404:
            raise ProviderError(code="MEDIA_URL_EXPIRED", message="media URL expired or unknown", retryable=True,
                                retry_after=0.0, http_status=404)
        if status != 200:
            raise ProviderError(code="AUTH_FAILED", message="media download refused", http_status=status)
        if len(data) > max_bytes:
            raise ProviderError(code="MEDIA_TOO_LARGE", message=f"media exceeds {max_bytes} bytes",
                                retryable=False, http_status=200)
        return data

    def create_template(self, *, waba_id: str, access_token: str = "", name: str, language: str, category: str,
                        components: list, parameter_format: str | None = None, **library) -> dict:
        body: dict = {"name": name, "language": language, "category": category, **library}
        if components or not library:
            body["components"] = components
        if parameter_format:
            body["parameter_format"] = parameter_format.upper()
        out = self._ok(self.engine.create_template(waba_id=str(waba_id), body=body))
        return {"id": str(out["id"]), "status": out["status"], "category": out["category"],
                "components": out.get("components")}

    def list_templates(self, *, waba_id: str, access_token: str = "") -> list[dict]:
        return self._ok(self.engine.list_templates(waba_id=str(waba_id), limit=1000))["data"]

    def delete_template(self, *, waba_id: str, access_token: str = "", name: str, hsm_id: str | None = None) -> bool:
        return bool(self._ok(self.engine.delete_template(waba_id=str(waba_id), name=name)).get("success"))

    # -- sandbox-only controls -----------------------------------------------------------------------
    def register_number(self, *, phone_number_id: str, waba_id: str, display_phone_number: str) -> None:
        """Tell the simulator which WABA and display number a sandbox phone number id belongs to, so its
        webhooks carry the right entry id and metadata (also learnt from simulate_inbound)."""
        self.engine.register_number(phone_number_id=str(phone_number_id), waba_id=str(waba_id),
                                    display_phone_number=display_phone_number)

    def simulate_inbound(self, *, phone_number_id: str, display_phone_number: str, waba_id: str, from_phone: str,
                         message: dict, name: str | None = None, bsuid: str | None = None,
                         username: str | None = None, parent_bsuid: str | None = None) -> str:
        wamid, payload = self.engine.inbound(phone_number_id=str(phone_number_id), waba_id=str(waba_id),
                                             display_phone_number=display_phone_number, from_phone=from_phone,
                                             message=message, name=name, bsuid=bsuid, username=username,
                                             parent_bsuid=parent_bsuid)
        hooks.deliver_inbound(payload=payload, delay_seconds=0.0, source="simulator")
        return wamid

    def window_restore(self, *, phone_number_id: str, wa_id: str, at: float) -> None:
        """Put back a window record the simulator lost (its Redis emptied by a restart): the customer's last
        message to the number at `at` (epoch seconds), as the database remembers it."""
        self.engine.state.set_window(str(phone_number_id), digits(wa_id), float(at))

    def simulate_window_age(self, *, phone_number_id: str, wa_id: str, hours: float) -> None:
        self.engine.age_window(phone_number_id=str(phone_number_id), wa_id=digits(wa_id), hours=hours)

    def set_template_status(self, *, waba_id: str, name: str, language: str, status: str) -> None:
        """Pause/disable/reinstate a sandbox template and emit its status webhook (tests, admin)."""
        result = self.engine.set_template_status(waba_id=str(waba_id), name=name, language=language, status=status)
        self._ok(result)
