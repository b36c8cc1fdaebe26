"""SSRF guard for subscriber URLs: checked when a subscription is saved and again at every connection.

The connection check lives in `GuardedResolver` (aiohttp): it resolves the host, refuses the whole
answer if any address is not public, and hands aiohttp exactly the addresses it validated, so the
socket connects to an IP we checked; a rebinding DNS cannot swap it between the check and the
connect. IP-literal hosts bypass aiohttp's resolver, so `check_url` validates those before a request.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(Exception):
    """The URL or the address it resolves to is not allowed as a webhook target."""


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


# Tests swap this for a stub; production resolves through the system resolver.
resolve_host: Callable[[str, int], list[str]] = _system_resolve


def _effective(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why this address may not be connected to, or None if it may."""
    try:
        ip = _effective(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return f"{address!r} is not an IP address"
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    for label, flagged in (
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if flagged:
            return f"{ip} is a {label} address"
    if not ip.is_global:  # shared address space (100.64/10), documentation ranges and the like
        return f"{ip} is not a public address"
    return None


def _policy(scheme: str) -> tuple[bool, bool]:
    """(allow_loopback, loopback_only) for a scheme."""
    dev = bool(settings.REACH_ALLOW_HTTP_WEBHOOKS)
    if scheme == "https":
        return dev, False
    if scheme == "http" and dev:
        return True, True
    raise UnsafeUrl("The URL must use https.")


def check_addresses(addresses: list[str], *, scheme: str) -> list[str]:
    if not addresses:
        raise UnsafeUrl("The host does not resolve.")
    allow_loopback, loopback_only = _policy(scheme)
    for address in addresses:
        reason = address_refusal(address, allow_loopback=allow_loopback)
        if reason:
            raise UnsafeUrl(f"The URL resolves to a forbidden address: {reason}.")
        if loopback_only and not _effective(ipaddress.ip_address(address.split("%", 1)[0])).is_loopback:
            raise UnsafeUrl("Plain http is only allowed to loopback addresses (development).")
    return addresses


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, *, resolve: bool = True) -> str:
    """Validate a subscriber URL: scheme, shape, and (when resolve) every address the host resolves to."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in url):
        raise UnsafeUrl("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("The URL is malformed.")
    scheme = (parts.scheme or "").lower()
    _policy(scheme)
    host = parts.hostname or ""
    if not host:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry credentials.")
    try:
        host.encode("idna")
    except UnicodeError:
        raise UnsafeUrl("The host name is not valid (a label is empty, over 63 characters, or not IDNA).")
    literal = _literal(host)
    if literal is not None:
        check_addresses([str(literal)], scheme=scheme)
    elif resolve:
        try:
            addresses = resolve_host(host, port)
        except OSError:
            raise UnsafeUrl("The host does not resolve.")
        check_addresses(addresses, scheme=scheme)
    return url


@functools.lru_cache(maxsize=4096)
def _url_refusal(url: str, dev_flag: bool) -> str | None:
    try:
        check_url(url, resolve=False)
    except UnsafeUrl as exc:
        return str(exc)
    return None


def precheck_url(url: str) -> None:
    """The per-request check (scheme, IP-literal hosts), memoised: it runs before every attempt."""
    reason = _url_refusal(url, bool(settings.REACH_ALLOW_HTTP_WEBHOOKS))
    if reason:
        raise UnsafeUrl(reason)


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that validates every answer and returns only validated addresses (pinned)."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict]:
        # The scheme was checked before the request (check_url); here only the addresses matter, with the
        # same policy as https (loopback only under the development flag).
        try:
            addresses = await asyncio.get_running_loop().run_in_executor(None, resolve_host, host, port)
        except OSError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        try:
            check_addresses(addresses, scheme="https")
        except UnsafeUrl as exc:
            raise OSError(f"ssrf guard: {exc}") from exc
        out = []
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            out.append({
                "hostname": host, "host": str(ip), "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0, "flags": socket.AI_NUMERICHOST,
            })
        return out

    async def close(self) -> None:
        return None
