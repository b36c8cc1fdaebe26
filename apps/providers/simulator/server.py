"""fakemeta: the simulator engine behind a lean HTTP/1.1 server on a raw asyncio Protocol (keep-alive, no
framework), so it is never the bottleneck of a benchmark. Webhooks (statuses, inbound, template decisions)
go out from a background task: signed with the app secret, batched per number, retried on non-200, never
blocking request handling.

Graph routes: POST /{v}/{phone_number_id}/messages, POST /{v}/{phone_number_id}/media,
GET /{v}/{media_id}, GET /media-download/{media_id}?exp=&sig= (bearer required),
GET|POST|DELETE /{v}/{waba_id}/message_templates; Embedded Signup's code exchange, debug_token, phone_numbers,
register and subscribed_apps (onboarding.py).
Admin routes (tests, e2e, benchmarks): POST /_admin/inbound, /_admin/numbers, /_admin/templates,
/_admin/templates/status, /_admin/window, /_admin/config, /_admin/signup, /_admin/faults ({"lose_answers": N}:
the next N accepted sends are cut before their answer), /_admin/portfolio (a business portfolio's shared
messaging limit, announced by business_capability_update); GET /_admin/stats, /_admin/webhooks,
/_admin/portfolio/<business id>,
/_admin/signup, /_admin/sends (sends per biz_opaque_callback_data: the ids sent more than once).
Messenger / Instagram (simulator/social.py): POST /{v}/{page-or-ig-id}/messages for registered accounts;
POST /_admin/social/accounts, /_admin/social/inbound; GET /_admin/social/sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import json
import logging
import secrets
import time
from urllib.parse import parse_qs, unquote

from apps.providers.meta_cloud.signatures import sign_body
from apps.providers.simulator.engine import (
    Followup,
    MemoryState,
    Result,
    SimConfig,
    SimulatorEngine,
    graph_error_body,
    merge_payloads,
    messages_envelope,
    new_numeric_id,
)
from apps.providers.simulator.onboarding import Onboarding
from apps.providers.simulator.social import SocialSimulator

logger = logging.getLogger("reach.fakemeta")
LOST_ANSWER = 0  # a handler's status meaning: close the connection without answering

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}
MAX_BODY = 120 * 1024 * 1024


class _Request:
    __slots__ = ("method", "path", "query", "headers", "body")

    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body

    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class _HttpProtocol(asyncio.Protocol):
    def __init__(self, server: FakeMetaServer):
        self.server = server
        self.buf = bytearray()
        self.transport = None
        self.continued = False

    def connection_made(self, transport):
        self.transport = transport
        self.server.connections.add(transport)

    def connection_lost(self, exc):
        self.server.connections.discard(self.transport)

    def data_received(self, data):
        self.buf.extend(data)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self._reply(431, b"", "text/plain", close=True)
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self._reply(400, b"", "text/plain", close=True)
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._reply(411, b"", "text/plain", close=True)
                return
            length = int(headers.get("content-length") or 0)
            if length > MAX_BODY:
                self._reply(413, b"", "text/plain", close=True)
                return
            if len(self.buf) < end + 4 + length:
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.continued = True  # curl waits for this before sending a large body
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            path, _, query = target.partition("?")
            keep_alive = (version == "HTTP/1.1" and headers.get("connection", "").lower() != "close") or (
                headers.get("connection", "").lower() == "keep-alive")
            request = _Request(method.upper(), unquote(path), query, headers, body)
            try:
                status, payload, ctype = self.server.handle(request)
            except Exception:
                logger.exception("fakemeta handler failed")
                status, payload, ctype = 500, json.dumps(graph_error_body(131000)).encode(), "application/json"
            if status == LOST_ANSWER:  # the fault `lose_answers`: accepted, then the connection is cut
                self.transport.close()
                return
            self._reply(status, payload, ctype, close=not keep_alive)
            if not keep_alive:
                return

    def _reply(self, status: int, body: bytes, ctype: str, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n")
        self.transport.write(head.encode() + body)
        if close:
            self.transport.close()


def parse_multipart(body: bytes, content_type: str) -> dict:
    """{field: (filename|None, content_type|None, bytes)} for a multipart/form-data body."""
    boundary = None
    for piece in content_type.split(";"):
        key, _, value = piece.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        return {}
    out = {}
    for part in body.split(b"--" + boundary.encode()):
        if not part or part.startswith(b"--"):
            continue
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        name = filename = ctype = None
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "content-disposition":
                for attr in value.split(";"):
                    k, _, v = attr.strip().partition("=")
                    if k == "name":
                        name = v.strip('"')
                    elif k == "filename":
                        filename = v.strip('"')
            elif key.lower() == "content-type":
                ctype = value.strip()
        if name:
            out[name] = (filename, ctype, content)
    return out


class FakeMetaServer:
    def __init__(self, *, engine: SimulatorEngine | None = None, config: SimConfig | None = None,
                 webhook_url: str | None = None, app_secret: str = "", host: str = "127.0.0.1", port: int = 9100,
                 webhook_batch_max: int = 1000, webhook_tick: float = 0.02, webhook_concurrency: int = 16,
                 webhook_max_attempts: int = 8, webhook_timeout: float = 10.0, keep_delivered: int = 10000):
        self.engine = engine or SimulatorEngine(config=config or SimConfig(), state=MemoryState())
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.host, self.port = host, port
        self.batch_max = webhook_batch_max
        self.tick = webhook_tick
        self.webhook_concurrency = webhook_concurrency
        self.max_attempts = webhook_max_attempts
        self.webhook_timeout = webhook_timeout
        self.delivered: collections.deque = collections.deque(maxlen=keep_delivered)
        self.stats = collections.Counter()
        # The Graph requests received (method, path, JSON body), newest last: tests assert what Reach sent.
        self.journal: collections.deque = collections.deque(maxlen=2000)
        # Sends per biz_opaque_callback_data (the sender's own message id): a count over 1 is a double send.
        self.sends_by_callback: collections.Counter = collections.Counter()
        self._heap: list = []
        self._seq = itertools.count()
        self._server = None
        self._pump_task = None
        self._wake: asyncio.Event | None = None
        self._session = None
        self._inflight: set = set()
        self.connections: set = set()
        self.onboarding = Onboarding(app_secret=app_secret)
        self.social = SocialSimulator()  # Messenger / Instagram accounts (simulator/social.py)
        # Fault: the next N accepted sends get no answer (the connection is cut after Meta took them).
        self.lose_answers = 0

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._server = await loop.create_server(lambda: _HttpProtocol(self), self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self.engine.media_base_url = self.base_url
        self._pump_task = loop.create_task(self._pump())

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for transport in list(self.connections):
            transport.close()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump_task
        for task in list(self._inflight):
            task.cancel()
        if self._session is not None:
            await self._session.close()
        await asyncio.sleep(0)  # let closed transports run their connection_lost

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def verify_webhook(self, verify_token: str) -> bool:
        """Meta's subscription handshake (META.md §3.1): GET the callback with hub.* and expect the challenge."""
        import aiohttp

        if not self.webhook_url:
            return False
        challenge = str(secrets.randbelow(10**9))
        params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
        try:
            timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as s, s.get(self.webhook_url, params=params) as resp:
                return resp.status == 200 and (await resp.text()).strip() == challenge
        except Exception as exc:
            logger.warning("webhook verification failed: %s", exc)
            return False

    # -- webhooks ----------------------------------------------------------------------------------------
    def schedule(self, followups, attempt: int = 0) -> None:
        now = time.monotonic()
        for f in followups:
            heapq.heappush(self._heap, (now + max(0.0, f.delay), next(self._seq), f, attempt))
        self.stats["webhooks_scheduled"] += len(followups)
        if self._wake is not None and followups:
            self._wake.set()

    def pending_webhooks(self) -> int:
        return len(self._heap) + len(self._inflight)

    async def _pump(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            connector=aiohttp.TCPConnector(limit=self.webhook_concurrency))
        sem = asyncio.Semaphore(self.webhook_concurrency)
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = time.monotonic()
            due_at = self._heap[0][0]
            if due_at > now:
                self._wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for returns the inner result and drops a cancel
                # that lands as the inner wait finishes; the pump then waited on _wake for ever (stop() hung).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due_at - now):
                        await self._wake.wait()
                continue
            # Gather everything due within one tick so statuses of a burst share a POST.
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            due: dict[int, list] = collections.defaultdict(list)
            statuses: dict[tuple, list] = collections.defaultdict(list)
            while self._heap and self._heap[0][0] <= now:
                _, _, item, attempt = heapq.heappop(self._heap)
                if isinstance(item, Followup) and item.route is not None:
                    statuses[item.route].append(item.status)
                else:
                    due[attempt].append(item.payload if isinstance(item, Followup) else item)
            for (waba_id, pnid, display), items in statuses.items():
                for i in range(0, len(items), self.batch_max):
                    due[0].append(messages_envelope(waba_id=waba_id, phone_number_id=pnid,
                                                    display_phone_number=display,
                                                    value={"statuses": items[i:i + self.batch_max]}))
            for attempt, payloads in due.items():
                for batch in merge_payloads(payloads, self.batch_max):
                    await sem.acquire()
                    task = asyncio.get_running_loop().create_task(self._post(batch, attempt, sem))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)

    async def _post(self, payload: dict, attempt: int, sem: asyncio.Semaphore) -> None:
        try:
            body = json.dumps(payload, separators=(",", ":")).encode()
            if not self.webhook_url:
                self.delivered.append(payload)
                self.stats["webhooks_dropped_no_url"] += 1
                return
            ok = False
            try:
                headers = {"Content-Type": "application/json",
                           "X-Hub-Signature-256": sign_body(body, self.app_secret),
                           "User-Agent": "facebookexternalua"}
                async with self._session.post(self.webhook_url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except Exception as exc:  # connection refused, timeout...: retried like any non-200
                logger.debug("webhook post failed: %s", exc)
            if ok:
                self.delivered.append(payload)
                self.stats["webhooks_delivered"] += 1
            elif attempt + 1 < self.max_attempts:
                self.stats["webhooks_retried"] += 1
                delay = min(30.0, 0.25 * (2 ** attempt))
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), payload, attempt + 1))
                self._wake.set()
            else:
                self.stats["webhooks_failed"] += 1
                logger.warning("webhook dropped after %s attempts", self.max_attempts)
        finally:
            sem.release()

    # -- routing -----------------------------------------------------------------------------------------
    def _json(self, result: Result) -> tuple[int, bytes, str]:
        if result.followups:
            self.schedule(result.followups)
        return result.status, json.dumps(result.body, separators=(",", ":")).encode(), "application/json"

    def handle(self, req: _Request) -> tuple[int, bytes, str]:
        self.stats["requests"] += 1
        parts = [p for p in req.path.split("/") if p]
        eng = self.engine
        if parts and parts[0] == "_admin":
            return self._admin(req, parts[1:])
        if req.method in ("POST", "DELETE"):
            try:
                journal_body = req.json() if req.headers.get("content-type", "").startswith("application/json") else None
            except Exception:  # a malformed body is the send handler's to refuse
                journal_body = None
            self.journal.append({"method": req.method, "path": req.path, "body": journal_body})
        if len(parts) == 2 and parts[0] == "media-download" and req.method == "GET":
            q = {k: v[0] for k, v in parse_qs(req.query).items()}
            status, data, ctype = eng.download(media_id=parts[1], exp=q.get("exp", ""), sig=q.get("sig", ""),
                                               access_token=req.bearer())
            return status, data, ctype
        if len(parts) == 3 and parts[2] == "messages" and req.method == "POST" and self.social.owns(parts[1]):
            return self._json(self.social.send(account_id=parts[1], body=req.json(), access_token=req.bearer()))
        if len(parts) == 3 and parts[2] in ("messages", "marketing_messages") and req.method == "POST":
            self.stats["sends"] += 1
            body = req.json()
            if isinstance(body, dict) and body.get("biz_opaque_callback_data"):
                self.sends_by_callback[str(body["biz_opaque_callback_data"])] += 1
            answer = self._json(eng.send(phone_number_id=parts[1], body=body, access_token=req.bearer(),
                                         endpoint=parts[2]))
            if self.lose_answers > 0 and answer[0] == 200:
                self.lose_answers -= 1
                return LOST_ANSWER, b"", ""
            return answer
        if len(parts) == 3 and parts[2] == "block_users" and req.method in ("POST", "DELETE"):
            return self._json(eng.block_users(phone_number_id=parts[1], body=req.json(), block=req.method == "POST",
                                              access_token=req.bearer()))
        if len(parts) == 3 and parts[2] == "media" and req.method == "POST":
            fields = parse_multipart(req.body, req.headers.get("content-type", ""))
            filename, ctype, data = fields.get("file", (None, None, b""))
            mime = (fields.get("type", (None, None, b""))[2].decode() or ctype or "")
            return self._json(eng.upload_media(phone_number_id=parts[1], data=data, mime_type=mime,
                                               filename=filename or "", access_token=req.bearer()))
        if len(parts) == 3 and parts[2] == "message_templates":
            if req.method == "POST":
                return self._json(eng.create_template(waba_id=parts[1], body=req.json(), access_token=req.bearer()))
            if req.method == "DELETE":
                q = {k: v[0] for k, v in parse_qs(req.query).items()}
                return self._json(eng.delete_template(waba_id=parts[1], name=q.get("name", ""),
                                                      access_token=req.bearer()))
            if req.method == "GET":
                q = {k: v[0] for k, v in parse_qs(req.query).items()}
                return self._json(eng.list_templates(waba_id=parts[1], limit=int(q.get("limit", 25) or 25),
                                                     after=q.get("after"), access_token=req.bearer()))
        if len(parts) >= 2:
            answer = self.onboarding.handle(
                method=req.method, parts=parts, query={k: v[0] for k, v in parse_qs(req.query).items()},
                bearer=req.bearer(), body=req.json() if req.method == "POST" and isinstance(req.json(), dict) else None)
            if answer is not None:
                if len(parts) == 3 and parts[2] == "register" and answer[0] == 200:
                    waba_id = self.onboarding.tokens.get(req.bearer() or "", "0")
                    display = next((str(n.get("display_phone_number", "")) for n in
                                    self.onboarding.wabas[waba_id]["phone_numbers"] if str(n["id"]) == parts[1]), "")
                    eng.register_number(phone_number_id=parts[1], waba_id=waba_id, display_phone_number=display)
                return answer[0], json.dumps(answer[1]).encode(), "application/json"
        if len(parts) == 2 and req.method == "GET":
            return self._json(eng.get_media(media_id=parts[1], access_token=req.bearer()))
        return 404, json.dumps(graph_error_body(100, "Unknown path components",
                                                f"{req.method} {req.path}")).encode(), "application/json"

    def _admin(self, req: _Request, parts: list[str]) -> tuple[int, bytes, str]:
        eng = self.engine
        data = req.json() if req.method == "POST" else {}
        if not isinstance(data, dict):
            data = {}
        route = "/".join(parts)

        def ok(body: dict) -> tuple[int, bytes, str]:
            return 200, json.dumps(body).encode(), "application/json"

        if route == "social/accounts" and req.method == "POST":  # {"channel", "account_id", "token"}
            self.social.register(channel=str(data.get("channel", "messenger")), account_id=str(data["account_id"]),
                                 token=data.get("token"))
            return ok({"registered": str(data["account_id"])})
        if route == "social/inbound" and req.method == "POST":  # {"account_id", "user_id", "text", ...}
            return ok(self.social_inbound(**data))
        if route == "social/sent":
            return ok({"sent": self.social.sent})
        if route == "inbound" and req.method == "POST":
            wamid = self.inject_inbound(**data)
            return ok({"wamid": wamid})
        if route == "numbers" and req.method == "POST":
            eng.register_number(phone_number_id=str(data["phone_number_id"]), waba_id=str(data.get("waba_id", "0")),
                                display_phone_number=str(data.get("display_phone_number", "")))
            if data.get("mps"):
                eng.configure(mps_overrides={**eng.config.mps_overrides, str(data["phone_number_id"]): data["mps"]})
            return ok({"success": True})
        if route == "templates" and req.method == "POST":
            self.seed_template(**data)
            return ok({"success": True})
        if route == "templates/status" and req.method == "POST":
            return self._json(eng.set_template_status(waba_id=str(data["waba_id"]), name=data["name"],
                                                      language=data["language"], status=data["status"]))
        if route == "window" and req.method == "POST":
            eng.age_window(phone_number_id=str(data["phone_number_id"]), wa_id=str(data["wa_id"]),
                           hours=float(data["hours"]))
            return ok({"success": True})
        if route == "faults" and req.method == "POST":
            self.lose_answers = int(data.get("lose_answers", 0))
            return ok({"success": True})
        if route == "config" and req.method == "POST":
            eng.configure(**data)
            return ok({"success": True})
        if route == "signup" and req.method == "POST":
            self.onboarding.prepare(code=str(data["code"]), waba_id=str(data["waba_id"]),
                                    phone_numbers=list(data.get("phone_numbers") or []), name=str(data.get("name", "")))
            return ok({"success": True})
        if route == "signup":
            return ok(self.onboarding.state())
        if route == "stats":
            return ok({**self.stats, "pending_webhooks": self.pending_webhooks()})
        if route == "click" and req.method == "POST":
            payload = eng.link_click_payload(phone_number_id=str(data.get("phone_number_id", "")),
                                             wamid=str(data.get("wamid", "")), wa_id=data.get("wa_id"),
                                             click_component=str(data.get("click_component") or "cta"))
            self.schedule([Followup(0.0, payload)])
            return ok({"scheduled": True})
        if route == "portfolio" and req.method == "POST":  # a portfolio's shared limit + business_capability_update
            self.schedule(eng.portfolio_set(business_id=str(data["business_id"]), waba_ids=list(data["waba_ids"]),
                                            limit=data["limit"], users=data.get("users")))
            return ok({"success": True})
        if parts[:1] == ["portfolio"] and len(parts) == 2:
            return ok(eng.portfolio_state(parts[1]))
        if route == "requests":
            return ok({"requests": list(self.journal)})
        if route == "sends":  # per callback id: how many distinct ids were sent, and the ones sent twice or more
            return ok({"distinct": len(self.sends_by_callback),
                       "repeated": {k: n for k, n in self.sends_by_callback.items() if n > 1}})
        if route == "webhooks":
            return ok({"delivered": list(self.delivered)})
        return 404, b'{"error":"unknown admin route"}', "application/json"

    # -- admin helpers (also used in-process by testing.py) ----------------------------------------------
    def social_inbound(self, *, account_id: str, user_id: str | None = None, text: str | None = None,
                       quick_reply: str | None = None, attachment: dict | None = None, postback: dict | None = None,
                       delay: float = 0.0) -> dict:
        """A Messenger / Instagram customer writes: the signed `messaging` webhook goes to Reach."""
        mid, user, payload = self.social.inbound(account_id=account_id, user_id=user_id, text=text,
                                                 quick_reply=quick_reply, attachment=attachment, postback=postback)
        self.schedule([Followup(delay, payload)])
        return {"mid": mid, "user_id": user}

    def inject_inbound(self, *, phone_number_id: str, from_phone: str | None = None, message: dict | None = None,
                       waba_id: str | None = None, display_phone_number: str | None = None, name: str | None = None,
                       bsuid: str | None = None, text: str | None = None, delay: float = 0.0, **extra) -> str:
        from_phone = from_phone or extra.get("from")
        if message is None:
            message = {"type": "text", "text": {"body": text or "hello"}}
        wamid, payload = self.engine.inbound(phone_number_id=str(phone_number_id), waba_id=waba_id,
                                             display_phone_number=display_phone_number, from_phone=from_phone,
                                             message=message, name=name, bsuid=bsuid,
                                             username=extra.get("username"), parent_bsuid=extra.get("parent_bsuid"))
        self.schedule([Followup(delay, payload)])
        return wamid

    def seed_template(self, *, waba_id: str, name: str, language: str, category: str = "UTILITY",
                      body_text: str = "", header_text: str = "", parameter_format: str = "POSITIONAL",
                      status: str = "APPROVED", components: list | None = None, **_ignored) -> dict:
        tpl = {"id": new_numeric_id(), "waba_id": str(waba_id), "name": name, "language": language,
               "category": category.upper(), "status": status.upper(), "final_status": status.upper(),
               "decide_at": None, "parameter_format": parameter_format.upper(),
               "components": components or [{"type": "BODY", "text": body_text}],
               "body_text": body_text, "header_text": header_text}
        self.engine.state.put_template(tpl)
        return tpl

