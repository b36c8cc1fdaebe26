"""WABAs and numbers: connectwaba (token encrypted at rest), the sandbox provisioner, the read API,
sender resolution, quality updates."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from apps.core.crypto import decrypt_secret
from apps.core.errors import Conflict, PhoneNotFound, ValidationFailed
from apps.core.models import Event
from apps.wabas.models import PhoneNumber, Waba
from apps.wabas.selectors import phone_number_by_meta_id, phone_number_for_send
from apps.wabas.services import phone_number_quality_apply, waba_access_token, waba_connect

pytestmark = pytest.mark.django_db


def test_connectwaba_registers_and_encrypts_the_token(workspace):
    out = io.StringIO()
    call_command("connectwaba", "acme", "--waba-id", "1001", "--phone-number-id", "2002",
                 "--display-phone-number", "+1 555 078 3881", "--access-token", "EAAG-secret", stdout=out,
                 stderr=io.StringIO())
    pn = PhoneNumber.objects.get(meta_phone_number_id="2002")
    assert out.getvalue().strip().splitlines()[-1] == pn.pk
    assert (pn.workspace_id, pn.display_phone_number, pn.throughput_mps) == (workspace.pk, "+15550783881", 80)
    waba = pn.waba
    assert not waba.is_simulated and "EAAG-secret" not in waba.access_token_encrypted
    assert decrypt_secret(waba.access_token_encrypted) == waba_access_token(waba) == "EAAG-secret"
    # running it again updates the token, never duplicates
    waba_connect(workspace=workspace, meta_waba_id="1001", phone_number_id="2002",
                 display_phone_number="+15550783881", access_token="EAAG-new")
    assert Waba.objects.filter(meta_waba_id="1001").count() == 1 and waba_access_token(Waba.objects.get(
        meta_waba_id="1001")) == "EAAG-new"


def test_connect_refuses_another_workspaces_waba_and_bad_input(workspace, other_workspace):
    waba_connect(workspace=workspace, meta_waba_id="1001", phone_number_id="2002",
                 display_phone_number="+15550783881", access_token="t")
    with pytest.raises(Conflict):
        waba_connect(workspace=other_workspace, meta_waba_id="1001", phone_number_id="2003",
                     display_phone_number="+15550783882", access_token="t")
    with pytest.raises(ValidationFailed):
        waba_connect(workspace=workspace, meta_waba_id="1009", phone_number_id="2009",
                     display_phone_number="12", access_token="t")
    with pytest.raises(ValidationFailed):
        waba_connect(workspace=workspace, meta_waba_id="1009", phone_number_id="2009",
                     display_phone_number="+15550783881", access_token="")
    assert not Waba.objects.filter(meta_waba_id="1009").exists()


def test_every_sandbox_gets_a_simulated_waba_with_one_number(workspace):
    sandbox = workspace.sandbox
    [waba] = Waba.objects.filter(workspace=sandbox)
    assert waba.is_simulated and waba.phone_numbers.count() == 1
    assert not Waba.objects.filter(workspace=workspace).exists()  # live gets nothing until connected
    pn = waba.phone_numbers.get()
    assert pn.display_phone_number.startswith("+1555") and phone_number_by_meta_id(pn.meta_phone_number_id) == pn


def test_read_api_lists_only_the_callers_numbers(live_api, sandbox_api, workspace, other_workspace, api_client_for):
    pn = waba_connect(workspace=workspace, meta_waba_id="1001", phone_number_id="2002",
                      display_phone_number="+15550783881", access_token="t")
    waba_connect(workspace=other_workspace, meta_waba_id="9001", phone_number_id="9002",
                 display_phone_number="+15550789999", access_token="t")
    data = live_api.get("/api/v1/phone-numbers").json()["data"]
    assert [d["id"] for d in data] == [pn.pk]
    assert {k: data[0][k] for k in ("display_phone_number", "quality_rating", "messaging_tier", "throughput_mps")} \
        == {"display_phone_number": "+15550783881", "quality_rating": "GREEN", "messaging_tier": "TIER_1K",
            "throughput_mps": 80}
    wabas = live_api.get("/api/v1/wabas").json()["data"]
    assert [w["id"] for w in wabas] == [pn.waba_id] and wabas[0]["phone_numbers"][0]["id"] == pn.pk
    assert "access_token" not in str(wabas)
    assert live_api.get(f"/api/v1/wabas/{pn.waba_id}").json()["meta_waba_id"] == "1001"
    other = Waba.objects.get(meta_waba_id="9001")
    assert live_api.get(f"/api/v1/wabas/{other.pk}").status_code == 404
    sandbox_numbers = sandbox_api.get("/api/v1/phone-numbers").json()["data"]
    assert len(sandbox_numbers) == 1 and sandbox_numbers[0]["id"] != pn.pk
    assert sandbox_api.get(f"/api/v1/wabas/{pn.waba_id}").status_code == 404


def test_waba_bound_key_sees_only_its_waba(api_client_for, workspace):
    a = waba_connect(workspace=workspace, meta_waba_id="1001", phone_number_id="2002",
                     display_phone_number="+15550783881", access_token="t")
    b = waba_connect(workspace=workspace, meta_waba_id="1002", phone_number_id="2003",
                     display_phone_number="+15550783882", access_token="t")
    api = api_client_for(workspace, waba_id=b.waba_id)
    assert [d["id"] for d in api.get("/api/v1/phone-numbers").json()["data"]] == [b.pk]
    assert api.get(f"/api/v1/wabas/{a.waba_id}").status_code == 404


def test_sender_resolution(workspace, other_workspace):
    with pytest.raises(PhoneNotFound):
        phone_number_for_send(tenant_workspace=workspace)
    a = waba_connect(workspace=workspace, meta_waba_id="1001", phone_number_id="2002",
                     display_phone_number="+15550783881", access_token="t")
    assert phone_number_for_send(tenant_workspace=workspace) == a
    b = waba_connect(workspace=workspace, meta_waba_id="1001", phone_number_id="2003",
                     display_phone_number="+15550783882", access_token="t")
    with pytest.raises(ValidationFailed):
        phone_number_for_send(tenant_workspace=workspace)
    assert phone_number_for_send(tenant_workspace=workspace, phone_number_id="2003") == b
    assert phone_number_for_send(tenant_workspace=workspace, phone_number_id=a.pk) == a
    theirs = waba_connect(workspace=other_workspace, meta_waba_id="9", phone_number_id="99",
                          display_phone_number="+15550789999", access_token="t")
    for pin in (theirs.pk, "99", "pn_nope"):
        with pytest.raises(PhoneNotFound):
            phone_number_for_send(tenant_workspace=workspace, phone_number_id=pin)


def test_quality_update_changes_rating_and_tier_with_an_event(workspace):
    pn = waba_connect(workspace=workspace, meta_waba_id="1001", phone_number_id="2002",
                      display_phone_number="+15550783881", access_token="t")
    phone_number_quality_apply(waba_meta_id="1001", display_phone_number="15550783881", event="FLAGGED",
                               current_limit="TIER_10K")
    pn.refresh_from_db()
    assert (pn.quality_rating, pn.messaging_tier) == ("YELLOW", "TIER_10K")
    ev = Event.objects.get(type="phone_number.quality_changed")
    assert ev.data["previous_quality_rating"] == "GREEN" and ev.data["quality_rating"] == "YELLOW"
