"""SSRF guard: refused at creation and again at every connection (DNS rebinding). No test here ever
connects to a private address: literal IPs are refused before any socket, names go through a stub
resolver, and the only socket opened is to the local receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket

import pytest

from apps.webhooks import ssrf
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.services import outbound
from tests.webhooks import outbound_support
from tests.webhooks.outbound_support import emit

receiver = outbound_support.receiver
allow_http = outbound_support.allow_http


@pytest.fixture
def no_sockets(monkeypatch):
    """Fail the test if anything tries to open a TCP connection."""
    opened = []

    def refuse(*args, **kwargs):
        opened.append(args)
        raise AssertionError("a socket was opened")

    async def refuse_async(self, *args, **kwargs):
        refuse(*args)

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", refuse_async)
    return opened


@pytest.fixture
def stub_dns(monkeypatch):
    answers: dict[str, list] = {}
    calls: list[str] = []

    def resolve(host, port):
        calls.append(host)
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    return answers, calls


@pytest.mark.parametrize("address", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1",
    "240.0.0.1", "100.64.0.1", "::1", "fe80::1", "fc00::1", "ff02::1", "::", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "2002:a00:1::1",
])
def test_non_public_addresses_are_refused(address, settings):
    settings.REACH_ALLOW_HTTP_WEBHOOKS = False
    assert ssrf.address_refusal(address, allow_loopback=False) is not None
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.check_url(f"https://{host}/hook")


def test_public_addresses_pass():
    assert ssrf.address_refusal("93.184.216.34", allow_loopback=False) is None
    assert ssrf.address_refusal("2606:2800:220:1:248:1893:25c8:1946", allow_loopback=False) is None


def test_http_only_to_loopback_and_only_with_the_flag(settings, stub_dns):
    answers, _ = stub_dns
    answers["localhost"] = [["127.0.0.1"]]
    answers["public.example"] = [["93.184.216.34"]]
    settings.REACH_ALLOW_HTTP_WEBHOOKS = False
    with pytest.raises(ssrf.UnsafeUrl, match="https"):
        ssrf.check_url("http://localhost:8080/hook")
    with pytest.raises(ssrf.UnsafeUrl, match="loopback"):
        ssrf.check_url("https://localhost/hook")
    settings.REACH_ALLOW_HTTP_WEBHOOKS = True
    assert ssrf.check_url("http://localhost:8080/hook")
    with pytest.raises(ssrf.UnsafeUrl, match="loopback"):
        ssrf.check_url("http://public.example/hook")
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.check_url("http://10.0.0.1/hook")  # the flag opens loopback, nothing else


def test_a_name_resolving_to_any_private_address_is_refused(settings, stub_dns):
    settings.REACH_ALLOW_HTTP_WEBHOOKS = False
    answers, _ = stub_dns
    answers["mixed.example"] = [["93.184.216.34", "10.0.0.1"]]
    with pytest.raises(ssrf.UnsafeUrl, match="10.0.0.1 is a private address"):
        ssrf.check_url("https://mixed.example/hook")


@pytest.mark.django_db
def test_dns_rebinding_is_refused_at_connection_time(workspace, stub_dns, receiver, allow_http):
    answers, calls = stub_dns
    # Public-looking (here: loopback, allowed by the dev flag) when the subscription is saved...
    answers["rebind.example"] = [["127.0.0.1"], ["169.254.169.254"]]
    sub, _ = outbound.subscription_create(workspace=workspace, url=f"http://rebind.example:{receiver.port}/x",
                                          events=["*"])
    emit(workspace)
    outbound.events_fan_out()
    # ...then the name is rebound to the metadata address before the worker connects.
    outbound.deliver_due()
    delivery = WebhookDelivery.objects.get()
    [attempt] = delivery.attempts.all()
    assert attempt.status_code is None
    assert "169.254.169.254 is a link-local address" in attempt.error
    assert calls == ["rebind.example", "rebind.example"]
    assert receiver.requests == []
    assert delivery.status == "pending"


@pytest.mark.django_db
def test_the_connection_goes_to_the_address_that_was_checked(workspace, stub_dns, receiver, allow_http):
    """The name does not exist in real DNS; the request reaches the receiver only because aiohttp
    connected to exactly the address our resolver validated and returned."""
    answers, calls = stub_dns
    answers["pinned.invalid"] = [["127.0.0.1"]]
    outbound.subscription_create(workspace=workspace, url=f"http://pinned.invalid:{receiver.port}/pin",
                                 events=["*"])
    emit(workspace)
    outbound.events_fan_out()
    outbound.deliver_due()
    assert WebhookDelivery.objects.get().status == "succeeded"
    [req] = receiver.for_path("/pin")
    assert req.headers["host"] == f"pinned.invalid:{receiver.port}"
    assert calls.count("pinned.invalid") == 2  # at creation and at the connection


@pytest.mark.django_db
def test_a_literal_private_ip_stored_anyway_is_refused_before_any_socket(workspace, no_sockets, settings):
    settings.REACH_ALLOW_HTTP_WEBHOOKS = False
    sub, _ = outbound.subscription_create(workspace=workspace, url="https://93.184.216.34/hook", events=["*"])
    # Even if a bad URL got into the database (an older version, an admin edit), the worker refuses it.
    for url in ("https://10.0.0.1/hook", "https://169.254.169.254/", "https://[::1]/x", "http://[fe80::1]/x"):
        type(sub).objects.filter(pk=sub.pk).update(url=url)
        emit(workspace)
        outbound.events_fan_out()
        outbound.deliver_due()
    errors = [a.error for d in WebhookDelivery.objects.all() for a in d.attempts.all()]
    assert len(errors) == 4 and all(e.startswith("ssrf guard:") for e in errors)
    assert no_sockets == []
