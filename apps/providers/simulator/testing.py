"""Run fakemeta inside a test process: its own event loop in a daemon thread, on a free loopback port.

    handle = start_fakemeta_in_thread(webhook_url=live_server.url + "/webhooks/meta", app_secret="s")
    settings.META_GRAPH_URL = handle.base_url
    handle.inject_inbound(phone_number_id="1061", from_phone="+15551234567", text="hi")
    handle.wait_for(lambda: handle.delivered_count() >= 3)
    handle.stop()
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from apps.providers.simulator.engine import MemoryState, SimConfig, SimulatorEngine
from apps.providers.simulator.server import FakeMetaServer

TEST_APP_SECRET = "test-app-secret"  # the default for in-thread fakes; not a real secret
_TEST_DEFAULTS = {"approve_delay": 0.2, "sent_delay": 0.01, "delivered_delay": 0.05, "read_delay": 0.1,
                  "skip_delivered_probability": 0.0}


class FakeMetaHandle:
    def __init__(self, server: FakeMetaServer, loop: asyncio.AbstractEventLoop, thread: threading.Thread):
        self.server, self.loop, self.thread = server, loop, thread

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def engine(self) -> SimulatorEngine:
        return self.server.engine

    def call(self, fn: Callable, *args, **kwargs):
        """Run fn in the server's loop thread (the engine state is owned by that loop)."""

        async def run():
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def call_async(self, coro_fn: Callable, *args, **kwargs):
        """Await coro_fn(*args) in the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro_fn(*args, **kwargs), self.loop).result(timeout=30)

    def inject_inbound(self, *, phone_number_id: str, from_phone: str, text: str | None = None,
                       message: dict | None = None, name: str | None = None, waba_id: str | None = None,
                       display_phone_number: str | None = None, bsuid: str | None = None, delay: float = 0.0,
                       username: str | None = None, parent_bsuid: str | None = None) -> str:
        """A customer writes: opens the window and makes the fake POST a signed inbound webhook. -> wamid"""
        return self.call(self.server.inject_inbound, phone_number_id=phone_number_id, from_phone=from_phone,
                         text=text, message=message, name=name, waba_id=waba_id,
                         display_phone_number=display_phone_number, bsuid=bsuid, delay=delay, username=username,
                         parent_bsuid=parent_bsuid)

    def register_social_account(self, *, channel: str, account_id: str, token: str | None = None) -> None:
        self.call(self.server.social.register, channel=channel, account_id=account_id, token=token)

    def social_inbound(self, **kwargs) -> dict:
        """A Messenger / Instagram customer writes (account_id, user_id, text | quick_reply | attachment |
        postback): -> {"mid", "user_id"}."""
        return self.call(self.server.social_inbound, **kwargs)

    def register_number(self, *, phone_number_id: str, waba_id: str, display_phone_number: str,
                        mps: float | None = None) -> None:
        self.call(self.engine.register_number, phone_number_id=phone_number_id, waba_id=waba_id,
                  display_phone_number=display_phone_number)
        if mps:
            self.configure(mps_overrides={**self.engine.config.mps_overrides, str(phone_number_id): mps})

    def seed_template(self, **kwargs) -> dict:
        return self.call(self.server.seed_template, **kwargs)

    def set_template_status(self, *, waba_id: str, name: str, language: str, status: str) -> None:
        def run():
            self.server.schedule(self.engine.set_template_status(waba_id=waba_id, name=name, language=language,
                                                                 status=status).followups)

        self.call(run)

    def age_window(self, *, phone_number_id: str, wa_id: str, hours: float) -> None:
        self.call(self.engine.age_window, phone_number_id=phone_number_id, wa_id=wa_id, hours=hours)

    def configure(self, **changes) -> None:
        self.call(self.engine.configure, **changes)

    def delivered(self) -> list[dict]:
        return self.call(lambda: list(self.server.delivered))

    def delivered_count(self) -> int:
        return len(self.delivered())

    def delivered_statuses(self) -> list[dict]:
        out = []
        for p in self.delivered():
            for e in p.get("entry", []):
                for c in e.get("changes", []):
                    out.extend(c.get("value", {}).get("statuses", []))
        return out

    def requests(self, path_suffix: str = "") -> list[dict]:
        """The Graph requests Reach sent ({method, path, body}), oldest first; filtered by path ending."""
        return self.call(lambda: [r for r in self.server.journal if r["path"].endswith(path_suffix)])

    def stats(self) -> dict:
        return self.call(lambda: {**self.server.stats, "pending_webhooks": self.server.pending_webhooks()})

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())

    def stop(self) -> None:
        if not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def start_fakemeta_in_thread(port: int = 0, webhook_url: str | None = None, app_secret: str = TEST_APP_SECRET,
                             *, config: SimConfig | None = None, **config_overrides) -> FakeMetaHandle:
    """Fast test timings by default (statuses within ~0.1 s, template review 0.2 s); override any SimConfig
    field by keyword, e.g. strict_templates=False, pair_limit_enabled=False, default_mps=1000."""
    if config is None:
        config = SimConfig(**{**_TEST_DEFAULTS, **config_overrides})
    server = FakeMetaServer(engine=SimulatorEngine(config=config, state=MemoryState()), webhook_url=webhook_url,
                            app_secret=app_secret, port=port, webhook_tick=0.005)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    errors: list = []

    def run():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except Exception as exc:  # surfaced to the caller below
            errors.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="fakemeta", daemon=True)
    thread.start()
    started.wait(10)
    if errors:
        raise errors[0]
    return FakeMetaHandle(server, loop, thread)
