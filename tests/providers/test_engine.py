import random

import pytest

from apps.providers.simulator import engine as E
from apps.providers.simulator.engine import MemoryState, SimConfig, SimulatorEngine, merge_payloads

PN = "1061"
TO = "+15551230000"


class Clock:
    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    return Clock()


def make(clock, **cfg):
    cfg.setdefault("skip_delivered_probability", 0.0)
    eng = SimulatorEngine(config=SimConfig(**cfg), state=MemoryState(), clock=clock, rng=random.Random(7))
    eng.register_number(phone_number_id=PN, waba_id="W1", display_phone_number="+15550783881")
    return eng


def text(to=TO, body="hi"):
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def template(name="order_update", lang="en", params=None, named=False):
    comps = []
    if params is not None:
        comps = [{"type": "body", "parameters": [
            ({"type": "text", "text": v, "parameter_name": k} if named else {"type": "text", "text": v})
            for k, v in params]}]
    return {"messaging_product": "whatsapp", "to": TO, "type": "template",
            "template": {"name": name, "language": {"code": lang}, "components": comps}}


def statuses(result):
    out = []
    for f in result.followups:
        for st in f.payload["entry"][0]["changes"][0]["value"]["statuses"]:
            out.append((round(f.delay, 3), st["status"], st.get("pricing"), [e["code"] for e in st.get("errors", [])]))
    return out


def open_window(eng, to=TO):
    eng.inbound(phone_number_id=PN, waba_id=None, display_phone_number=None, from_phone=to,
                message={"type": "text", "text": {"body": "hello"}}, name="Ana")


def approved(eng, clock, name="order_update", body="Hi {{1}}, order {{2}}", fmt=None, category="UTILITY"):
    req = {"name": name, "language": "en", "category": category,
           "components": [{"type": "BODY", "text": body}]}
    if fmt:
        req["parameter_format"] = fmt
    res = eng.create_template(waba_id="W1", body=req)
    assert res.status == 200 and res.body["status"] == "PENDING"
    clock.t += eng.config.approve_delay
    return res


@pytest.mark.parametrize(("body", "code"), [
    ({"to": TO, "type": "text", "text": {"body": "x"}}, 100),
    ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, 131008),
    ({"messaging_product": "whatsapp", "to": TO, "type": "text"}, 131008),
    ({"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": "x" * 4097}}, 131009),
    ({"messaging_product": "whatsapp", "to": "12", "type": "text", "text": {"body": "x"}}, 100),
    ({"messaging_product": "whatsapp", "to": TO, "type": "pigeon", "pigeon": {}}, 100),
    ({"messaging_product": "whatsapp", "to": TO, "type": "image", "image": {"id": "1", "link": "https://x"}}, 131009),
    ({"messaging_product": "whatsapp", "to": TO, "type": "image", "image": {"caption": "c"}}, 131008),
    ({"messaging_product": "whatsapp", "to": TO, "type": "location", "location": {"latitude": 91, "longitude": 0}},
     131009),
    ({"messaging_product": "whatsapp", "to": TO, "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "b"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": str(i), "title": f"t{i}"}} for i in range(4)]}}}, 131009),
    ({"messaging_product": "whatsapp", "to": TO, "type": "interactive", "interactive": {
        "type": "list", "body": {"text": "b"}, "action": {"button": "Go", "sections": [
            {"title": "s", "rows": [{"id": str(i), "title": f"r{i}"} for i in range(11)]}]}}}, 131009),
    ({"messaging_product": "whatsapp", "to": TO, "type": "contacts", "contacts": []}, 131009),
])
def test_envelope_validation_errors(clock, body, code):
    res = make(clock).send(phone_number_id=PN, body=body)
    assert res.status == 400 and res.followups == []
    err = res.body["error"]
    assert err["code"] == code and err["type"] == "OAuthException" and err["fbtrace_id"]
    assert err["message"].startswith(f"(#{code})") and err["error_data"]["messaging_product"] == "whatsapp"


def test_bad_token_is_190(clock):
    res = make(clock).send(phone_number_id=PN, body=text(), access_token="expired")
    assert res.status == 401 and res.body["error"]["code"] == 190 and res.body["error"]["error_subcode"] == 463


def test_in_window_text_gets_sent_delivered_read_with_pricing(clock):
    eng = make(clock)
    open_window(eng)
    res = eng.send(phone_number_id=PN, body=text())
    assert res.status == 200
    assert res.body["contacts"] == [{"input": TO, "wa_id": "15551230000"}]
    assert res.body["messages"][0]["id"].startswith("wamid.")
    free = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    assert statuses(res) == [(0.05, "sent", free, []), (0.3, "delivered", free, []), (1.0, "read", None, [])]
    entry = res.followups[0].payload["entry"][0]
    assert entry["id"] == "W1"
    assert entry["changes"][0]["value"]["metadata"] == {"display_phone_number": "15550783881",
                                                        "phone_number_id": PN}


def test_skip_delivered_puts_pricing_on_read(clock):
    eng = make(clock, skip_delivered_probability=1.0)
    open_window(eng)
    res = eng.send(phone_number_id=PN, body=text())
    assert [(s[1], s[2] is not None) for s in statuses(res)] == [("sent", True), ("read", True)]


def test_free_form_outside_window_is_200_then_131047(clock):
    eng = make(clock)
    res = eng.send(phone_number_id=PN, body=text())
    assert res.status == 200
    assert statuses(res) == [(0.05, "failed", None, [131047])]
    open_window(eng)
    clock.t += 24 * 3600 + 1
    assert statuses(eng.send(phone_number_id=PN, body=text()))[0][1:] == ("failed", None, [131047])


def test_age_window(clock):
    eng = make(clock)
    open_window(eng)
    eng.age_window(phone_number_id=PN, wa_id=TO, hours=25)
    assert statuses(eng.send(phone_number_id=PN, body=text()))[0][3] == [131047]


def test_template_lifecycle_and_checks(clock):
    eng = make(clock)
    res = eng.create_template(waba_id="W1", body={"name": "order_update", "language": "en", "category": "UTILITY",
                                                  "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}}"}]})
    (follow,) = res.followups
    assert follow.delay == eng.config.approve_delay
    value = follow.payload["entry"][0]["changes"][0]["value"]
    assert value["event"] == "APPROVED" and value["message_template_id"] == int(res.body["id"])
    # still PENDING until the review delay passes
    assert eng.send(phone_number_id=PN, body=template(params=[("1", "a"), ("2", "b")])).body["error"]["code"] == 132001
    clock.t += eng.config.approve_delay
    ok = eng.send(phone_number_id=PN, body=template(params=[("1", "a"), ("2", "b")]))
    assert ok.status == 200 and ok.body["messages"][0]["message_status"] == "accepted"
    # utility template outside any window is billable
    assert statuses(ok)[0][2] == {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}
    assert eng.send(phone_number_id=PN, body=template(params=[("1", "a")])).body["error"]["code"] == 132000
    assert eng.send(phone_number_id=PN, body=template(params=[("1", "a"), ("2", "b")], named=True)
                    ).body["error"]["code"] == 132012
    assert eng.send(phone_number_id=PN, body=template(lang="fr", params=[])).body["error"]["code"] == 132001
    assert eng.send(phone_number_id=PN, body=template(name="nope")).body["error"]["code"] == 132001
    open_window(eng)
    in_window = eng.send(phone_number_id=PN, body=template(params=[("1", "a"), ("2", "b")]))
    assert statuses(in_window)[0][2]["type"] == "free_customer_service"
    for status, code in (("PAUSED", 132015), ("DISABLED", 132016)):
        hook = eng.set_template_status(waba_id="W1", name="order_update", language="en", status=status)
        assert hook.followups[0].payload["entry"][0]["changes"][0]["value"]["event"] == status
        assert eng.send(phone_number_id=PN, body=template(params=[("1", "a"), ("2", "b")])).body["error"][
            "code"] == code


def test_named_template(clock):
    eng = make(clock)
    approved(eng, clock, name="welcome", body="Hello {{first_name}}", fmt="NAMED", category="MARKETING")
    good = template(name="welcome", params=[("first_name", "Jo")], named=True)
    assert eng.send(phone_number_id=PN, body=good).status == 200
    assert eng.send(phone_number_id=PN, body=template(name="welcome", params=[("x", "Jo")], named=True)
                    ).body["error"]["code"] == 132000
    assert eng.send(phone_number_id=PN, body=template(name="welcome", params=[("1", "Jo")])).body["error"][
        "code"] == 132012


def test_rejected_template_and_listing(clock):
    eng = make(clock)
    res = eng.create_template(waba_id="W1", body={"name": "reject_me", "language": "en", "category": "MARKETING",
                                                  "components": [{"type": "BODY", "text": "x"}]})
    value = res.followups[0].payload["entry"][0]["changes"][0]["value"]
    assert value["event"] == "REJECTED" and value["rejection_info"]["reason"]
    bad = eng.create_template(waba_id="W1", body={"name": "Bad Name", "language": "en", "category": "MARKETING",
                                                  "components": [{"type": "BODY", "text": "x"}]})
    assert bad.status == 400 and bad.body["error"]["code"] == 100 and bad.followups == []
    for i in range(3):
        approved(eng, clock, name=f"t{i}")
    clock.t += 10
    page1 = eng.list_templates(waba_id="W1", limit=2).body
    assert len(page1["data"]) == 2 and page1["paging"]["cursors"]["after"] == "2"
    page2 = eng.list_templates(waba_id="W1", limit=2, after="2").body
    assert "after" not in page2["paging"]["cursors"]
    statuses_ = {t["name"]: t["status"] for t in page1["data"] + page2["data"]}
    assert statuses_ == {"reject_me": "REJECTED", "t0": "APPROVED", "t1": "APPROVED", "t2": "APPROVED"}


def test_throughput_bucket_130429_refills_with_clock(clock):
    eng = make(clock, default_mps=5, pair_limit_enabled=False, enforce_window=False)
    codes = [eng.send(phone_number_id=PN, body=text(to=f"+1555000{i:04d}")).status for i in range(7)]
    assert codes == [200] * 5 + [429] * 2
    assert eng.send(phone_number_id=PN, body=text()).body["error"]["code"] == 130429
    clock.t += 0.2  # one token at 5 mps
    assert eng.send(phone_number_id=PN, body=text()).status == 200
    eng.configure(mps_overrides={PN: 1000})
    clock.t += 1
    assert all(eng.send(phone_number_id=PN, body=text(to=f"+1555100{i:04d}")).status == 200 for i in range(200))


def test_pair_limit_131056_burst_45_then_one_per_6s(clock):
    eng = make(clock, default_mps=10_000, enforce_window=False)
    results = [eng.send(phone_number_id=PN, body=text()).status for _ in range(46)]
    assert results == [200] * 45 + [400]
    assert eng.send(phone_number_id=PN, body=text()).body["error"]["code"] == 131056
    assert eng.send(phone_number_id=PN, body=text(to="+15551239999")).status == 200  # other pair unaffected
    clock.t += 6.0
    assert eng.send(phone_number_id=PN, body=text()).status == 200
    eng.configure(pair_limit_enabled=False)
    assert eng.send(phone_number_id=PN, body=text()).status == 200


@pytest.mark.parametrize(("number", "http", "code"), [
    (E.MAGIC_ALWAYS_THROTTLED, 429, 130429), (E.MAGIC_PAIR_LIMITED, 400, 131056), (E.MAGIC_ALWAYS_ERROR, 500, 131000)])
def test_magic_sync_errors(clock, number, http, code):
    res = make(clock).send(phone_number_id=PN, body=text(to="+" + number))
    assert (res.status, res.body["error"]["code"]) == (http, code)


def test_magic_transient_once(clock):
    eng = make(clock)
    first = eng.send(phone_number_id=PN, body=text(to="+" + E.MAGIC_TRANSIENT_ONCE))
    assert (first.status, first.body["error"]["code"]) == (500, 131000)
    assert eng.send(phone_number_id=PN, body=text(to="+" + E.MAGIC_TRANSIENT_ONCE)).status == 200


@pytest.mark.parametrize(("number", "code"), [(E.MAGIC_NOT_ON_WHATSAPP, 131026), (E.MAGIC_ECOSYSTEM_LIMIT, 131049),
                                              (E.MAGIC_STOPPED_MARKETING, 131050)])
def test_magic_async_failures(clock, number, code):
    eng = make(clock)
    open_window(eng, to="+" + number)
    res = eng.send(phone_number_id=PN, body=text(to="+" + number))
    assert res.status == 200 and statuses(res) == [(0.05, "failed", None, [code])]


def test_magic_never_read_duplicates_out_of_order(clock):
    eng = make(clock)
    for n in (E.MAGIC_NEVER_READ, E.MAGIC_DUPLICATE_STATUSES, E.MAGIC_OUT_OF_ORDER):
        open_window(eng, to="+" + n)
    assert [s[1] for s in statuses(eng.send(phone_number_id=PN, body=text(to="+" + E.MAGIC_NEVER_READ)))] == [
        "sent", "delivered"]
    dup = [s[1] for s in statuses(eng.send(phone_number_id=PN, body=text(to="+" + E.MAGIC_DUPLICATE_STATUSES)))]
    assert dup == ["sent", "delivered", "read"] * 2
    ooo = sorted(statuses(eng.send(phone_number_id=PN, body=text(to="+" + E.MAGIC_OUT_OF_ORDER))))
    assert [s[1] for s in ooo] == ["sent", "read", "delivered"]


def test_unknown_media_id_fails_131053_and_media_roundtrip(clock):
    eng = make(clock, enforce_window=False)
    res = eng.send(phone_number_id=PN, body={"messaging_product": "whatsapp", "to": TO, "type": "image",
                                              "image": {"id": "424242"}})
    assert statuses(res) == [(0.05, "failed", None, [131053])]
    up = eng.upload_media(phone_number_id=PN, data=b"\x89PNGdata", mime_type="image/png", filename="a.png")
    media_id = up.body["id"]
    info = eng.get_media(media_id=media_id).body
    assert info["file_size"] == 8 and info["mime_type"] == "image/png" and info["url"].startswith("https://")
    query = dict(p.split("=") for p in info["url"].split("?", 1)[1].split("&"))
    assert eng.download(media_id=media_id, access_token="t", **query) == (200, b"\x89PNGdata", "image/png")
    assert eng.download(media_id=media_id, access_token=None, **query)[0] == 401
    assert eng.download(media_id=media_id, access_token="t", exp=query["exp"], sig="0" * 32)[0] == 404
    clock.t += 301
    assert eng.download(media_id=media_id, access_token="t", **query)[0] == 404
    assert eng.get_media(media_id="nope").status == 404
    sent = eng.send(phone_number_id=PN, body={"messaging_product": "whatsapp", "to": TO, "type": "image",
                                               "image": {"id": media_id}})
    assert [s[1] for s in statuses(sent)][0] == "sent"


def test_mark_read_and_http_status_overrides(clock):
    eng = make(clock, http_status_overrides={130429: 400})
    assert eng.send(phone_number_id=PN, body={"messaging_product": "whatsapp", "status": "read",
                                               "message_id": "wamid.x"}).body == {"success": True}
    assert eng.send(phone_number_id=PN, body=text(to="+" + E.MAGIC_ALWAYS_THROTTLED)).status == 400


def test_merge_payloads_batches_same_number(clock):
    eng = make(clock)
    open_window(eng)
    followups = eng.send(phone_number_id=PN, body=text()).followups + eng.send(phone_number_id=PN, body=text()).followups
    merged = merge_payloads([f.payload for f in followups])
    assert len(merged) == 1
    assert len(merged[0]["entry"][0]["changes"][0]["value"]["statuses"]) == 6
    assert len(merge_payloads([f.payload for f in followups], max_items=4)) == 2


def test_duplicates_and_out_of_order_on_demand_by_config(clock):
    eng = make(clock, duplicate_probability=1.0, out_of_order_probability=1.0)
    open_window(eng)
    got = sorted(statuses(eng.send(phone_number_id=PN, body=text())))
    assert [s[1] for s in got] == ["sent", "sent", "read", "read", "delivered", "delivered"]


def test_throughput_burst_is_configurable(clock):
    eng = make(clock, default_mps=4, throughput_burst_seconds=2.0, pair_limit_enabled=False, enforce_window=False)
    assert [eng.send(phone_number_id=PN, body=text()).status for _ in range(9)] == [200] * 8 + [429]
