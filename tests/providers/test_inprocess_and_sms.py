import uuid

import pytest

from apps.core import hooks
from apps.core.redis import get_redis
from apps.providers import registry
from apps.providers.base import ProviderError, SendResult
from apps.providers.meta_cloud.client import GraphClient
from apps.providers.meta_cloud.payloads import build_send_payload
from apps.providers.meta_cloud.webhooks import (
    InboundMessage,
    TemplateStatusUpdate,
    parse_webhook,
)
from apps.providers.simulator import engine as E
from apps.providers.simulator.engine import SimConfig
from apps.providers.simulator.inprocess import RedisState, SandboxProvider
from apps.providers.sms import SimulatorSmsGateway, get_sms_gateway
from apps.providers.sms.simulator import MAGIC_SMS_TRANSIENT_ONCE, MAGIC_SMS_UNDELIVERABLE

PN, WABA, DISPLAY = "sbx-pn-1", "sbx-waba-1", "+15550009999"
TO = "+15551234567"


@pytest.fixture
def sink():
    calls = []
    saved = list(hooks._inbound_sink)

    def fake_sink(*, payload, delay_seconds=0.0, source="simulator"):
        calls.append((payload, delay_seconds, source))

    hooks.register_inbound_sink(fake_sink)
    yield calls
    hooks._inbound_sink[:] = saved


@pytest.fixture
def prefix():
    p = f"simtest:{uuid.uuid4().hex[:8]}:"
    yield p
    r = get_redis()
    keys = list(r.scan_iter(f"{p}*"))
    if keys:
        r.delete(*keys)


def provider(prefix, **cfg):
    cfg.setdefault("skip_delivered_probability", 0.0)
    cfg.setdefault("require_token", False)
    return SandboxProvider(config=SimConfig(**cfg), state=RedisState(prefix=prefix))


def items(calls):
    return [i for payload, _, _ in calls for i in parse_webhook(payload)]


def test_simulate_inbound_then_reply_flows_through_the_sink(sink, prefix):
    sp = provider(prefix)
    wamid = sp.simulate_inbound(phone_number_id=PN, display_phone_number=DISPLAY, waba_id=WABA, from_phone=TO,
                                message={"type": "text", "text": {"body": "hello"}}, name="Ana")
    (payload, delay, source), = sink
    assert (delay, source) == (0.0, "simulator")
    (msg,) = parse_webhook(payload)
    assert isinstance(msg, InboundMessage)
    assert (msg.wamid, msg.waba_id, msg.phone_number_id, msg.display_phone_number, msg.from_phone, msg.wa_id,
            msg.profile_name, msg.content) == (wamid, WABA, PN, "15550009999", TO, "15551234567", "Ana",
                                               {"body": "hello"})
    sink.clear()
    res = sp.send_message(phone_number_id=PN, access_token="", payload=build_send_payload(
        to=TO, message_type="text", content={"body": "reply"}))
    assert isinstance(res, SendResult) and res.wa_id == "15551234567"
    got = items(sink)
    assert [(s.status, s.wamid, s.waba_id) for s in got] == [(st, res.provider_message_id, WABA)
                                                              for st in ("sent", "delivered", "read")]
    assert [d for _, d, _ in sink] == [0.05, 0.3, 1.0]
    assert got[0].pricing == {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                              "category": "service"}


def test_window_age_makes_free_form_fail_131047(sink, prefix):
    sp = provider(prefix)
    sp.simulate_inbound(phone_number_id=PN, display_phone_number=DISPLAY, waba_id=WABA, from_phone=TO,
                        message={"type": "text", "text": {"body": "hi"}})
    sp.simulate_window_age(phone_number_id=PN, wa_id=TO, hours=25)
    sink.clear()
    sp.send_message(phone_number_id=PN, payload=build_send_payload(to=TO, message_type="text",
                                                                    content={"body": "late"}))
    (st,) = items(sink)
    assert (st.status, [e.code for e in st.errors]) == ("failed", [131047])


def test_state_is_shared_between_provider_instances(sink, prefix):
    a, b = provider(prefix), provider(prefix)
    a.simulate_inbound(phone_number_id=PN, display_phone_number=DISPLAY, waba_id=WABA, from_phone=TO,
                       message={"type": "text", "text": {"body": "hi"}})
    sink.clear()
    b.send_message(phone_number_id=PN, payload=build_send_payload(to=TO, message_type="text", content={"body": "x"}))
    assert items(sink)[0].status == "sent"


def test_sync_errors_raise_provider_errors_and_deliver_nothing(sink, prefix):
    sp = provider(prefix, pair_limit_enabled=False)
    with pytest.raises(ProviderError) as exc:
        sp.send_message(phone_number_id=PN, payload={"messaging_product": "whatsapp", "to": TO, "type": "text"})
    assert (exc.value.code, exc.value.upstream_code, exc.value.retryable) == ("INVALID_REQUEST", 131008, False)
    with pytest.raises(ProviderError) as once:
        sp.send_message(phone_number_id=PN, payload=build_send_payload(
            to="+" + E.MAGIC_TRANSIENT_ONCE, message_type="text", content={"body": "x"}))
    assert (once.value.code, once.value.retryable, once.value.http_status) == ("UPSTREAM_ERROR", True, 500)
    assert sink == []


def test_not_on_whatsapp_is_async_and_bucket_is_shared(sink, prefix):
    sp = provider(prefix, default_mps=2, pair_limit_enabled=False, enforce_window=False)
    sp.send_message(phone_number_id=PN, payload=build_send_payload(
        to="+" + E.MAGIC_NOT_ON_WHATSAPP, message_type="text", content={"body": "x"}))
    (st,) = items(sink)
    assert st.status == "failed" and st.errors[0].code == 131026
    sink.clear()
    sp.send_message(phone_number_id=PN, payload=build_send_payload(to=TO, message_type="text", content={"body": "x"}))
    with pytest.raises(ProviderError) as exc:
        provider(prefix, default_mps=2).send_message(phone_number_id=PN, payload=build_send_payload(
            to=TO, message_type="text", content={"body": "x"}))
    assert (exc.value.code, exc.value.retryable, exc.value.upstream_code) == ("UPSTREAM_RATE_LIMITED", True, 130429)
    assert len(items(sink)) == 3  # only the accepted send's statuses


def test_templates_media_and_mark_read(sink, prefix):
    sp = provider(prefix, approve_delay=0.0, strict_templates=True, enforce_window=False)
    created = sp.create_template(waba_id=WABA, name="order_update", language="en", category="UTILITY",
                                 components=[{"type": "BODY", "text": "Hi {{1}}"}], parameter_format="positional")
    assert created["status"] == "PENDING"
    (upd,) = items(sink)
    assert isinstance(upd, TemplateStatusUpdate) and (upd.event, upd.meta_template_id) == ("APPROVED", created["id"])
    assert [(t["name"], t["status"]) for t in sp.list_templates(waba_id=WABA)] == [("order_update", "APPROVED")]
    sp.register_number(phone_number_id=PN, waba_id=WABA, display_phone_number=DISPLAY)
    sent = sp.send_message(phone_number_id=PN, payload=build_send_payload(
        to=TO, message_type="template", content={"name": "order_update", "language": "en", "variables": ["Ana"]}))
    assert sent.message_status == "accepted"
    with pytest.raises(ProviderError) as exc:
        sp.send_message(phone_number_id=PN, payload=build_send_payload(
            to=TO, message_type="template", content={"name": "missing", "language": "en"}))
    assert exc.value.upstream_code == 132001
    sp.set_template_status(waba_id=WABA, name="order_update", language="en", status="PAUSED")
    with pytest.raises(ProviderError) as paused:
        sp.send_message(phone_number_id=PN, payload=build_send_payload(
            to=TO, message_type="template", content={"name": "order_update", "language": "en", "variables": ["A"]}))
    assert (paused.value.upstream_code, paused.value.code) == (132015, "TEMPLATE_PAUSED")

    media_id = sp.upload_media(phone_number_id=PN, data=b"%PDF-1.4 x", mime_type="application/pdf", filename="a.pdf")
    info = sp.get_media(media_id=media_id)
    assert info["file_size"] == 10 and info["url"].startswith("https://sandbox.reach.invalid/media-download/")
    # another process (fresh provider, same Redis) can download what this one signed
    assert provider(prefix).download_media(url=info["url"], max_bytes=100) == b"%PDF-1.4 x"
    with pytest.raises(ProviderError) as big:
        sp.download_media(url=info["url"], max_bytes=5)
    assert big.value.code == "MEDIA_TOO_LARGE"
    with pytest.raises(ProviderError):
        sp.download_media(url="https://evil.example/media-download/1?exp=1&sig=x", max_bytes=5)
    assert sp.mark_read(phone_number_id=PN, wamid=sent.provider_message_id) is True
    assert sp.delete_template(waba_id=WABA, name="order_update") is True
    assert sp.list_templates(waba_id=WABA) == []


def test_registry(settings):
    registry.reset_for_tests()
    try:
        sandbox = registry.whatsapp_provider(simulated=True)
        assert isinstance(sandbox, SandboxProvider) and registry.whatsapp_provider(simulated=True) is sandbox
        live = registry.whatsapp_provider(simulated=False)
        assert isinstance(live, GraphClient) and live.base_url == settings.META_GRAPH_URL
        assert registry.async_whatsapp_sender() is registry.async_whatsapp_sender()
    finally:
        registry.reset_for_tests()


def test_sms_simulator(prefix):
    gw = SimulatorSmsGateway(key=f"{prefix}sms")
    res = gw.send_sms(to="+447700900123", text="Your code is 1234", sender="Reach")
    assert res.provider_message_id.startswith("sms_")
    (rec,) = gw.sent()
    assert (rec["id"], rec["to"], rec["text"], rec["sender"]) == (res.provider_message_id, "+447700900123",
                                                                  "Your code is 1234", "Reach")
    with pytest.raises(ProviderError) as dead:
        gw.send_sms(to=MAGIC_SMS_UNDELIVERABLE, text="x", sender="R")
    assert (dead.value.code, dead.value.retryable) == ("SMS_UNDELIVERABLE", False)
    with pytest.raises(ProviderError) as busy:
        gw.send_sms(to=MAGIC_SMS_TRANSIENT_ONCE, text="x", sender="R")
    assert busy.value.retryable is True
    gw.send_sms(to=MAGIC_SMS_TRANSIENT_ONCE, text="x", sender="R")
    with pytest.raises(ProviderError):
        gw.send_sms(to="12345", text="x", sender="R")
    assert len(gw.sent()) == 2
    assert isinstance(get_sms_gateway(simulated=True), SimulatorSmsGateway)
