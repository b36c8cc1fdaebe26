"""The inbound SMTP listener (aiosmtpd): customers' mail and bounces arrive here over SMTP. It accepts a
recipient only when `accepts(address)` says a channel receives there (else 550), and hands each mail's raw
bytes to `deliver(raw, recipients)`; a failure there answers 451, so the sending server tries again later.
Both callables are blocking (they touch the database) and run in a worker thread, never on the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger("reach.email")


class _Handler:
    def __init__(self, *, accepts: Callable[[str], bool], deliver: Callable[[bytes, list[str]], None]):
        self.accepts, self.deliver = accepts, deliver

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        loop = asyncio.get_running_loop()
        try:
            ok = await loop.run_in_executor(None, self.accepts, address)
        except Exception:
            logger.exception("email listener: recipient check failed")
            return "451 4.3.0 Temporary failure, try again later"
        if not ok:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.deliver, raw, list(envelope.rcpt_tos))
        except Exception:
            logger.exception("email listener: storing a mail failed")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 Message accepted for delivery"


class EmailListener:
    """aiosmtpd's Controller: its own event loop on its own thread."""

    def __init__(self, *, host: str, port: int, accepts, deliver, max_bytes: int):
        from aiosmtpd.controller import Controller

        self.controller = Controller(_Handler(accepts=accepts, deliver=deliver), hostname=host, port=port,
                                     data_size_limit=max_bytes, enable_SMTPUTF8=True,
                                     server_hostname="reach", ready_timeout=10)

    @property
    def address(self) -> tuple[str, int]:
        return self.controller.hostname, self.controller.port

    def start(self) -> EmailListener:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def parse_listen(value: str) -> tuple[str, int] | None:
    """EMAIL_INBOUND_LISTEN ("host:port", "[::1]:2525" or ":2525") -> (host, port); None when empty."""
    value = (value or "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"EMAIL_INBOUND_LISTEN must be host:port, not {value!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)
