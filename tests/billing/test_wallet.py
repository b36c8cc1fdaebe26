"""The wallet: reservations in the writer's transaction (402 and nothing written), charges from Meta's
pricing exactly once, releases and refunds, the append-only ledger, the API and the commands."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from apps.billing import services
from apps.billing.models import LedgerEntry, Wallet
from apps.conversations.models import Message
from apps.conversations.services import sending, transitions
from apps.core.models import Event
from apps.core.tenancy import Tenant
from tests.conversations.send_support import contact, template
from tests.webhooks.inbound_support import connect_number, deliver, status, status_payload

pytestmark = pytest.mark.django_db
PRICE = Decimal("0.0275")  # North America marketing 0.0250 + the standard plan's 10 %
TO = "+16505551234"
SEND = {"to": TO, "type": "template", "template": {"name": "promo", "language": "en", "variables": ["Ann", "7"]}}
PRICING = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}


def _tenant(workspace) -> Tenant:
    return Tenant(workspace=workspace, scopes=frozenset({"messages:send"}))


def _set_available(workspace, amount: Decimal, *, threshold: Decimal = Decimal("0")) -> Wallet:
    services.wallet_settings_update(workspace=workspace, low_balance_threshold=threshold)
    wallet = services.wallet_get_or_create(workspace=workspace)
    delta = amount - wallet.available
    if delta:
        services.wallet_adjust(workspace=workspace, amount=delta, note="test")
    return Wallet.objects.get(pk=workspace.pk)


def _ledger_balance(workspace) -> Decimal:
    kinds = ("topup", "adjustment", "charge", "refund")
    return sum((e.amount for e in LedgerEntry.objects.filter(workspace_id=workspace.pk, kind__in=kinds)), Decimal("0"))


def _open_reservations(workspace) -> Decimal:
    return sum((m.cost_estimate for m in Message.objects.filter(workspace=workspace, cost__isnull=True)), Decimal("0"))


@pytest.fixture
def number(workspace):
    number = connect_number(workspace)
    template(workspace, number.waba, name="promo", category="MARKETING")
    contact(workspace, TO)
    return number


def test_a_send_reserves_its_estimate_in_its_transaction(workspace, number):
    message = sending.message_send(tenant=_tenant(workspace), data=SEND)
    wallet = Wallet.objects.get(pk=workspace.pk)
    assert message.cost_estimate == PRICE
    assert wallet.reserved == PRICE
    entry = LedgerEntry.objects.get(kind="reserve", message_id=message.pk)
    assert (entry.amount, entry.reserved_after, entry.balance_after) == (PRICE, PRICE, wallet.balance)


@pytest.mark.parametrize("known", [False, True], ids=["plain", "one-statement"])
def test_402_with_required_and_available_and_nothing_written(workspace, number, known):
    if known:  # the contact's conversation exists: PostgreSQL takes the one-statement form
        sending.message_send(tenant=_tenant(workspace), data=SEND)
    _set_available(workspace, PRICE - Decimal("0.0001"))
    counts = (Message.objects.count(), LedgerEntry.objects.count(), Event.objects.count())
    with pytest.raises(Exception) as exc:
        sending.message_send(tenant=_tenant(workspace), data=SEND)
    assert exc.value.code == "INSUFFICIENT_BALANCE"
    assert exc.value.details == {"required": "0.0275", "available": "0.0274"}
    assert (Message.objects.count(), LedgerEntry.objects.count(), Event.objects.count()) == counts


def test_the_api_answers_402_in_the_envelope(live_api, workspace, number):
    _set_available(workspace, Decimal("0"))
    r = live_api.post("/api/v1/messages", SEND, format="json")
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "INSUFFICIENT_BALANCE"
    assert r.json()["error"]["details"] == {"required": "0.0275", "available": "0.0000"}
    assert not Message.objects.exists()


def test_the_one_statement_form_writes_what_the_plain_form_writes(workspace, number, settings):
    """Pinned: the PostgreSQL one-statement reservation (billing.reserve_sql) and the row-locked plain one."""
    first = sending.message_send(tenant=_tenant(workspace), data=SEND)  # plain: opens the conversation
    second = sending.message_send(tenant=_tenant(workspace), data=SEND)  # one statement on PostgreSQL
    rows = {m: LedgerEntry.objects.get(message_id=m.pk) for m in (first, second)}
    shape = [(e.kind, e.amount, e.campaign_id, e.note, e.created_by) for e in rows.values()]
    assert shape == [("reserve", PRICE, "", "", "")] * 2
    assert rows[second].reserved_after - rows[first].reserved_after == PRICE
    assert Wallet.objects.get(pk=workspace.pk).reserved == 2 * PRICE
    assert [e.type for e in Event.objects.filter(workspace=workspace).order_by("sequence")].count(
        "message.status_changed") == 2


def test_low_balance_is_emitted_once_per_downward_crossing(workspace, number):
    _set_available(workspace, 3 * PRICE, threshold=2 * PRICE)
    for _ in range(3):
        sending.message_send(tenant=_tenant(workspace), data=SEND)
    assert Event.objects.filter(type="wallet.low_balance").count() == 1
    services.wallet_topup(workspace=workspace, amount="1.0000", note="invoice 7")
    topped = Event.objects.get(type="wallet.topped_up")
    assert (topped.data["amount"], topped.data["note"]) == ("1.0000", "invoice 7")
    _set_available(workspace, 3 * PRICE, threshold=2 * PRICE)
    sending.message_send(tenant=_tenant(workspace), data=SEND)
    sending.message_send(tenant=_tenant(workspace), data=SEND)
    assert Event.objects.filter(type="wallet.low_balance").count() == 2


def _sent(workspace, wamid: str) -> Message:
    message = sending.message_send(tenant=_tenant(workspace), data=SEND)
    Message.objects.filter(pk=message.pk).update(status="sent", provider_message_id=wamid)
    return message


def test_redelivered_and_out_of_order_statuses_charge_once(workspace, number):
    _set_available(workspace, Decimal("10"))
    message = _sent(workspace, "wamid.C1")
    before = Wallet.objects.get(pk=workspace.pk)
    for _ in range(3):  # read before delivered before sent, each redelivered three times
        for st, t in (("read", 30), ("delivered", 20), ("sent", 10)):
            payload = status_payload([status("wamid.C1", st, 1750263700 + t, pricing=PRICING)])
            payload["entry"][0]["time"] = _  # a new body each time: Meta's redelivery
            deliver(payload)
    message.refresh_from_db()
    assert message.cost == PRICE
    assert LedgerEntry.objects.filter(message_id=message.pk, kind="charge").count() == 1
    assert not LedgerEntry.objects.filter(message_id=message.pk, kind="release").exists()  # price == estimate
    wallet = Wallet.objects.get(pk=workspace.pk)
    assert wallet.balance == before.balance - PRICE
    assert wallet.reserved == before.reserved - PRICE == Decimal("0")
    assert wallet.balance == _ledger_balance(workspace)


def test_a_free_type_releases_the_whole_reservation(workspace, number):
    message = _sent(workspace, "wamid.C2")
    free = {**PRICING, "billable": False, "type": "free_entry_point"}
    deliver(status_payload([status("wamid.C2", "delivered", 1750263710, pricing=free)]))
    message.refresh_from_db()
    assert message.cost == Decimal("0")
    assert list(LedgerEntry.objects.filter(message_id=message.pk).values_list("kind", "amount").order_by("id")) == [
        ("reserve", PRICE), ("release", PRICE)]
    assert Wallet.objects.get(pk=workspace.pk).reserved == 0


def test_a_charged_message_that_fails_is_refunded_once_and_the_event_says_so(workspace, number):
    message = _sent(workspace, "wamid.C3")
    deliver(status_payload([status("wamid.C3", "sent", 1750263710, pricing=PRICING)]))
    err = {"code": 131026, "title": "Message undeliverable"}
    for i in range(3):
        payload = status_payload([status("wamid.C3", "failed", 1750263720, errors=[err])])
        payload["entry"][0]["time"] = i
        deliver(payload)
    message.refresh_from_db()
    assert message.status == "failed"
    assert list(LedgerEntry.objects.filter(message_id=message.pk).values_list("kind", "amount").order_by("id")) == [
        ("reserve", PRICE), ("charge", -PRICE), ("refund", PRICE)]
    failed = Event.objects.get(type="message.failed")
    assert (failed.data["refund"], failed.data["attempts"]) == ("0.0275", 0)
    assert Wallet.objects.get(pk=workspace.pk).balance == _ledger_balance(workspace)


def test_a_dispatch_failure_releases_the_reservation_without_a_refund(workspace, number):
    message = sending.message_send(tenant=_tenant(workspace), data=SEND)
    message = Message.objects.get(pk=message.pk)
    assert transitions.message_transition(message=message, to="failed", error={"code": "X", "message": "x"})
    message.refresh_from_db()
    assert message.cost == Decimal("0")
    assert list(LedgerEntry.objects.filter(message_id=message.pk).values_list("kind", flat=True).order_by("id")) == [
        "reserve", "release"]
    failed = Event.objects.get(type="message.failed")
    assert "refund" not in failed.data and failed.data["attempts"] == 0
    assert Wallet.objects.get(pk=workspace.pk).reserved == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_the_ledger_refuses_update_and_delete_in_the_database(workspace, number):
    sending.message_send(tenant=_tenant(workspace), data=SEND)
    entry = LedgerEntry.objects.first()
    for statement in ("UPDATE billing_ledgerentry SET amount = 0 WHERE id = %s",
                      "DELETE FROM billing_ledgerentry WHERE id = %s"):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [entry.pk])


def test_balance_transactions_pricing_and_sandbox_wallet_endpoints(workspace, number, live_api, sandbox_api):
    sending.message_send(tenant=_tenant(workspace), data=SEND)
    r = live_api.get("/api/v1/balance")
    assert r.status_code == 200
    body = r.json()
    assert body["reserved"] == "0.0275" and body["currency"] == "USD"
    assert Decimal(body["available"]) == Decimal(body["balance"]) - PRICE
    r = live_api.get("/api/v1/wallet/transactions?kind=reserve")
    assert [t["kind"] for t in r.json()["data"]] == ["reserve"]
    assert r.json()["data"][0]["amount"] == "0.0275"
    r = live_api.get("/api/v1/pricing", {"to": "+91 98123 45678", "category": "utility"})
    assert r.json() == {"to": "+919812345678", "country": "IN", "category": "utility", "price": "0.0015",
                        "currency": "USD"}
    assert live_api.get("/api/v1/pricing", {"to": "+919812345678", "category": "x"}).status_code == 400
    assert live_api.post("/api/v1/sandbox/wallet", {"balance": "1.0000"}, format="json").status_code == 403
    r = sandbox_api.post("/api/v1/sandbox/wallet", {"balance": "0.0500"}, format="json")
    assert r.status_code == 200 and r.json()["balance"] == "0.0500"
    assert sandbox_api.get("/api/v1/balance").json()["balance"] == "0.0500"
    assert live_api.get("/api/v1/balance").json()["balance"] == body["balance"]  # the twins' wallets are apart


def test_wallet_command_tops_up_and_adjusts(workspace, capsys):
    call_command("wallet", "acme", "topup", "25.5", "--note", "invoice 9")
    call_command("wallet", "acme", "adjust", "-0.5", "--note", "goodwill reversed")
    wallet = Wallet.objects.get(pk=workspace.pk)
    assert wallet.balance == Decimal("100000.0000") + Decimal("25.0000")
    assert list(LedgerEntry.objects.filter(workspace_id=workspace.pk).values_list("kind", "amount").order_by("id")) == [
        ("topup", Decimal("100000.0000")), ("topup", Decimal("25.5000")), ("adjustment", Decimal("-0.5000"))]


def test_ratecard_import_versions_prices_by_effective_date(workspace, tmp_path):
    card = tmp_path / "card.csv"
    card.write_text("WhatsApp rate card\n\nMarket,Currency,Marketing,Utility,Authentication,"
                    "Authentication-International,Service\nIndia,USD,0.0200,0.0030,0.0030,0.0300,0.0000\n")
    call_command("ratecard", "import", str(card), "--effective", "2020-01-01")
    assert services.meta_price(category="marketing", to_phone="+919812345678") == Decimal("0.0200")
    tiers = tmp_path / "tiers.csv"
    tiers.write_text('Market,Currency,Category,Tier,Rate\nIndia,USD,Utility,"1 - 1,000",0.0030\n'
                     'India,USD,Utility,"1,001+",0.0010\n')
    call_command("ratecard", "import", str(tiers), "--effective", "2020-02-01")
    assert services.meta_price(category="utility", to_phone="+919812345678", volume=5) == Decimal("0.0030")
    assert services.meta_price(category="utility", to_phone="+919812345678", volume=1000) == Decimal("0.0010")
    from datetime import date
    assert services.meta_price(category="utility", to_phone="+919812345678",
                               on=date(2020, 1, 15), volume=1000) == Decimal("0.0030")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="64 concurrent writers need PostgreSQL")
def test_64_concurrent_sends_against_a_balance_for_exactly_n():
    from django.db import close_old_connections

    from apps.core import services as core_services

    workspace = core_services.workspace_create(name="Race", slug="race")
    number = connect_number(workspace)
    template(workspace, number.waba, name="promo", category="MARKETING")
    contact(workspace, TO)
    sending.message_send(tenant=_tenant(workspace), data=SEND)  # opens the conversation: the rest is one statement
    n = 40
    # The low-balance threshold half way: both the one-statement form and the plain (crossing) form run.
    _set_available(workspace, n * PRICE, threshold=(n // 2) * PRICE)
    barrier = threading.Barrier(64)
    results: list[str] = []

    def send():
        try:
            barrier.wait()
            try:
                sending.message_send(tenant=_tenant(workspace), data=SEND)
                results.append("202")
            except Exception as exc:  # noqa: BLE001 - the code is asserted
                results.append(getattr(exc, "code", repr(exc)))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=send) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("202") == n
    assert results.count("INSUFFICIENT_BALANCE") == 64 - n
    wallet = Wallet.objects.get(pk=workspace.pk)
    assert wallet.available == 0
    assert wallet.balance == _ledger_balance(workspace)
    assert wallet.reserved == _open_reservations(workspace) == (n + 1) * PRICE
    assert Message.objects.filter(workspace=workspace).count() == n + 1
    assert Event.objects.filter(workspace=workspace, type="wallet.low_balance").count() == 1
    afters = LedgerEntry.objects.filter(workspace_id=workspace.pk).values_list("balance_after", "reserved_after")
    assert all(b - r >= 0 for b, r in afters)  # available never went below zero
