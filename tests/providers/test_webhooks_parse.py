import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apps.providers.meta_cloud.webhooks import (
    ErrorInfo,
    InboundMessage,
    PhoneNumberQualityUpdate,
    StatusUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    UserPreferenceUpdate,
    parse_webhook,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "meta"
OAS_FILES = sorted((FIXTURES / "webhooks").glob("oas_*.json"))
# The three OAS group_* examples are group-lifecycle fields we do not consume: they must parse to nothing.
OAS_EXPECTED_TYPE = {
    "oas_button_message.json": "button",
    "oas_contact_sharing_message.json": "contacts",
    "oas_image_message.json": "image",
    "oas_interactive_button_reply_message.json": "interactive",
    "oas_interactive_list_reply_message.json": "interactive",
    "oas_location_message.json": "location",
    "oas_order_message.json": "order",
    "oas_reaction_message.json": "reaction",
    "oas_system_message.json": "system",
    "oas_text_message.json": "text",
    "oas_text_message_from_click_to_whatsapp_ad.json": "text",
    "oas_text_message_with_context_product_inquiry.json": "text",
    "oas_unsupported_message.json": "unsupported",
}


def load(name):
    return json.loads((FIXTURES / name).read_text())


def test_all_oas_examples_are_stored():
    assert len(OAS_FILES) == 16


@pytest.mark.parametrize("path", OAS_FILES, ids=lambda p: p.stem)
def test_every_oas_webhook_example_parses(path):
    payload = json.loads(path.read_text())
    items = parse_webhook(payload)
    expected = OAS_EXPECTED_TYPE.get(path.name)
    if expected is None:
        assert path.name.startswith("oas_group_")
        assert items == []
        return
    assert len(items) == 1
    msg = items[0]
    assert isinstance(msg, InboundMessage)
    raw = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    assert msg.type == expected
    assert msg.wamid == raw["id"]
    assert msg.phone_number_id == "106540352242922"
    assert msg.from_phone == "+" + raw["from"]
    assert msg.timestamp == datetime.fromtimestamp(int(raw["timestamp"]), tz=UTC)
    if expected == "contacts":
        assert msg.content == {"contacts": raw["contacts"]}
    elif expected != "unsupported":
        assert msg.content == raw[expected]


def test_text_sample_fields():
    (msg,) = parse_webhook(load("webhooks/oas_text_message.json"))
    assert msg.content == {"body": "Does it come in another color?"}
    assert msg.profile_name == "Sheena Nelson"
    assert msg.wa_id == "16505551234"
    assert msg.bsuid is None and msg.context_wamid is None and msg.referral is None and msg.errors == []


def test_image_and_interactive_and_unsupported():
    (img,) = parse_webhook(load("webhooks/oas_image_message.json"))
    assert img.content["id"] == "1003383421387256" and img.content["mime_type"] == "image/jpeg"
    (btn,) = parse_webhook(load("webhooks/oas_interactive_button_reply_message.json"))
    assert btn.content["type"] == "button_reply" and btn.context_wamid
    (lst,) = parse_webhook(load("webhooks/oas_interactive_list_reply_message.json"))
    assert lst.content["type"] == "list_reply" and lst.content["list_reply"]["id"]
    (uns,) = parse_webhook(load("webhooks/oas_unsupported_message.json"))
    assert uns.errors == [ErrorInfo(code=131051, title="Message type unknown", message="Message type unknown",
                                    details="Message type is currently not supported.")]


def test_referral_and_product_context_and_system():
    (ad,) = parse_webhook(load("webhooks/oas_text_message_from_click_to_whatsapp_ad.json"))
    assert ad.referral["source_type"] == "ad" and ad.referral["ctwa_clid"].startswith("Aff-")
    (ctx,) = parse_webhook(load("webhooks/oas_text_message_with_context_product_inquiry.json"))
    assert ctx.context["referred_product"]["catalog_id"]
    (sysmsg,) = parse_webhook(load("webhooks/oas_system_message.json"))
    assert sysmsg.content["type"] == "user_changed_number"
    assert sysmsg.profile_name is None  # system webhooks carry no contacts block


def test_status_delivered_sample():
    (st,) = parse_webhook(load("extra/status_delivered.json"))
    assert st == StatusUpdate(
        waba_id="102290129340398", phone_number_id="106540352242922",
        wamid="wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA", status="delivered",
        timestamp=datetime.fromtimestamp(1750263773, tz=UTC), recipient_id="16505551234", recipient_user_id=None,
        pricing={"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"},
        errors=[], biz_opaque_callback_data=None, conversation=None, display_phone_number="15550783881")


def test_status_failed_without_contacts():
    (st,) = parse_webhook(load("extra/status_failed.json"))
    assert st.status == "failed" and st.pricing is None
    assert st.errors[0].code == 131049
    assert st.errors[0].details.startswith("In order to maintain")


def test_status_sent_with_bsuid_pricing_and_unknown_fields():
    sent, read = parse_webhook(load("extra/status_sent_read_bsuid.json"))
    assert (sent.status, read.status) == ("sent", "read")
    assert sent.recipient_user_id == "US.13491208655302741918"
    assert sent.biz_opaque_callback_data == "cb-1"
    assert sent.pricing["category"] == "marketing" and sent.conversation["id"] == "c1"
    assert read.pricing is None


def test_bsuid_inbound_without_from():
    (msg,) = parse_webhook(load("extra/inbound_bsuid_no_from.json"))
    assert msg.from_phone is None and msg.wa_id is None
    assert msg.bsuid == "US.13491208655302741918"
    assert msg.username == "ana.w" and msg.profile_name == "Ana" and msg.parent_bsuid == "US.ENT.99"


def test_voice_sticker_document_unreaction_forward_nfm():
    items = parse_webhook(load("extra/inbound_media_voice_sticker_nfm.json"))
    by_id = {m.wamid: m for m in items}
    assert len(items) == 7
    assert by_id["wamid.VOICE1"].content["voice"] is True and by_id["wamid.VOICE1"].bsuid == "US.1349"
    assert by_id["wamid.STK1"].content["animated"] is True
    assert by_id["wamid.DOC1"].content["filename"] == "invoice.pdf"
    assert by_id["wamid.UNREACT"].content == {"message_id": "wamid.ORIG", "emoji": ""}
    assert by_id["wamid.FWD"].context == {"forwarded": True} and by_id["wamid.FWD"].context_wamid is None
    nfm = by_id["wamid.NFM"]
    assert nfm.content["nfm_reply"]["name"] == "flow" and nfm.context_wamid == "wamid.FLOWMSG"
    assert json.loads(nfm.content["nfm_reply"]["response_json"])["flow_token"] == "tok"


def test_template_rejected_sample():
    (t,) = parse_webhook(load("extra/template_rejected.json"))
    assert isinstance(t, TemplateStatusUpdate)
    assert (t.event, t.meta_template_id, t.name, t.language, t.reason, t.category) == (
        "REJECTED", "1689556908129835", "abandoned_cart", "en", "INVALID_FORMAT", "MARKETING")
    assert t.rejection_info["recommendation"].startswith("Separate parameters")


def test_management_updates():
    items = parse_webhook(load("extra/management_updates.json"))
    assert [type(i) for i in items] == [TemplateStatusUpdate, TemplateCategoryUpdate, TemplateCategoryUpdate,
                                        TemplateQualityUpdate, PhoneNumberQualityUpdate, UserPreferenceUpdate]
    paused, done, notice, quality, phone, pref = items
    assert paused.event == "PAUSED" and paused.other_info["title"] == "FIRST_PAUSE"
    assert (done.previous_category, done.new_category, done.correct_category) == ("UTILITY", "MARKETING", None)
    assert notice.correct_category == "MARKETING" and notice.category_update_timestamp == 1751333948
    assert (quality.previous_score, quality.new_score, quality.meta_template_id) == ("GREEN", "YELLOW",
                                                                                      "1689556908129838")
    assert phone == PhoneNumberQualityUpdate(waba_id="102290129340398", display_phone_number="15550783881",
                                             event="THROUGHPUT_UPGRADE", current_limit="TIER_UNLIMITED",
                                             old_limit="TIER_100K")
    assert pref == UserPreferenceUpdate(waba_id="102290129340398", phone_number_id="106540352242922",
                                        wa_id="16505551234", bsuid="US.1349", category="marketing_messages",
                                        value="stop", timestamp=datetime.fromtimestamp(1751333948, tz=UTC))


@pytest.mark.parametrize("payload", [None, {}, {"entry": None}, {"entry": [{"changes": [{"field": "messages"}]}]},
                                     {"entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                                         "messages": [{"type": "text"}], "statuses": [{"id": "x"}]}}]}]},
                                     {"entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                                         "messages": "garbage", "contacts": 5}}]}]}])
def test_malformed_payloads_never_crash(payload):
    assert parse_webhook(payload) == []
