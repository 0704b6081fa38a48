"""The admin's trading records over a real mongod: read-only lists with filters, dates and signed PnL, a position's
orders inline, a risk decision's verdict and reasons; the close and cancel actions act through the executor of the
record's mode and report what they could not do as messages, never a 500. Only staff get in."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from markets.numbers import plain
from orders.models import Order, Position, RiskDecision
from tests.orders.test_api import Records, make_records

LISTS = ("/admin/orders/position/", "/admin/orders/order/", "/admin/orders/riskdecision/", "/admin/orders/fill/")


@pytest.fixture
def records(db: None) -> Records:
    return make_records()


@pytest.mark.parametrize(
    ("url", "query"),
    [
        (
            "/admin/orders/position/",
            {
                "mode__exact": "paper",
                "status__exact": "open",
                "symbol": "BTCUSDT",
                "exchange": "binance",
                "opened_at__year": "2026",
                "opened_at__month": "11",
            },
        ),
        ("/admin/orders/position/", {"exit_reason__exact": "take_profit"}),
        (
            "/admin/orders/order/",
            {
                "mode__exact": "paper",
                "status__exact": "FILLED",
                "purpose__exact": "entry",
                "symbol": "ETHUSDT",
                "created_at__year": "2026",
            },
        ),
        (
            "/admin/orders/riskdecision/",
            {
                "approved__exact": "0",
                "rejection__exact": "position_open",
                "created_at__year": "2026",
                "created_at__month": "11",
                "created_at__day": "24",
            },
        ),
        ("/admin/orders/fill/", {"order__mode__exact": "paper", "order__symbol": "BTCUSDT", "ts__year": "2026"}),
    ],
)
def test_filtered_lists_render_for_staff(
    admin_client: Client, records: Records, url: str, query: dict[str, str]
) -> None:
    response = admin_client.get(url, query)
    assert response.status_code == 200
    assert b"errornote" not in response.content
    assert response.context["cl"].result_count == 1, query


def test_position_list_shows_signed_coloured_pnl(admin_client: Client, records: Records) -> None:
    """Unrealised PnL of the open position, realised PnL of the closed one, signed and exact (markets.numbers.plain:
    no trailing zeros); prices to the tick, quantities to the step, no 18-place decimals; date drill-down and the
    close action offered, adding not."""
    html = admin_client.get("/admin/orders/position/").content.decode()
    assert "-1.5005</span>" in html  # BTCUSDT: 0.025 × (40,000 - 40,020) - 1.0005 fee
    assert f"+{plain(records.eth.realised_pnl)}</span>" in html
    assert "#15803d" in html  # green for the gain
    assert "#b91c1c" in html  # red for the loss
    assert "40020.000000" not in html
    assert '<td class="field-show_entry">40020.00</td>' in html  # the tick is 0.01
    assert '<td class="field-show_qty">0.02500</td>' in html  # the step is 0.00001
    assert "Close selected positions" in html
    assert "Delete selected" not in html
    assert "/admin/orders/position/add/" not in html
    assert "opened_at__year=2026" in html  # the date hierarchy


def test_order_list_links_pnl_and_searches_by_client_id(admin_client: Client, records: Records) -> None:
    html = admin_client.get("/admin/orders/order/").content.decode()
    assert "Cancel selected orders" in html
    assert f"+{plain(records.eth.realised_pnl)}</span>" in html  # the ETHUSDT orders' position, closed
    assert "the take-profit filled first" in html
    entry = Order.objects.get(position=records.btc, purpose="entry")
    found = admin_client.get("/admin/orders/order/", {"q": entry.client_order_id})
    assert [o.pk for o in found.context["cl"].result_list] == [entry.pk]
    assert admin_client.get("/admin/orders/order/", {"q": "ETHUSDT"}).context["cl"].result_count == 3


def test_position_page_shows_its_orders_inline(admin_client: Client, records: Records) -> None:
    html = admin_client.get(f"/admin/orders/position/{records.eth.pk}/change/").content.decode()
    for order in Order.objects.filter(position=records.eth):
        assert order.client_order_id in html
    assert "take-profit" in html
    assert "EXPIRED" in html
    assert 'name="_save"' not in html  # a view, nothing to save
    assert 'name="orders-0-status"' not in html  # the inline orders are read-only too
    assert admin_client.get("/admin/orders/position/add/").status_code == 403


def test_risk_decision_page_shows_the_verdict_and_reasons(admin_client: Client, records: Records) -> None:
    rejected = RiskDecision.objects.get(approved=False)
    html = admin_client.get(f"/admin/orders/riskdecision/{rejected.pk}/change/").content.decode()
    assert "rejected</strong>: a position is already open on the symbol" in html
    assert f"<li>{rejected.reasons[0]}</li>" in html
    assert "&quot;params&quot;" in html  # the inputs, as JSON
    approved = RiskDecision.objects.filter(approved=True).first()
    listing = admin_client.get("/admin/orders/riskdecision/").content.decode()
    assert "approved</strong>" in listing
    assert approved is not None
    assert (
        approved.reasons[0][:30]
        in admin_client.get(f"/admin/orders/riskdecision/{approved.pk}/change/").content.decode()
    )


def _act(client: Client, model: str, action: str, *pks: object) -> list[str]:
    response = client.post(
        f"/admin/orders/{model}/",
        {"action": action, "index": "0", "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_close_action_closes_paper_positions_by_hand(admin_client: Client, records: Records) -> None:
    said = _act(admin_client, "position", "close_positions", records.btc.pk, records.eth.pk)
    btc = Position.objects.get(pk=records.btc.pk)
    assert (btc.status, btc.exit_reason, btc.exit_price) == ("closed", "manual", D(40000) * (1 - D("0.0005")))
    assert said[0].endswith("the ETHUSDT position is already closed (take-profit)")
    assert said[1] == "positions closed: 1"
    assert Position.objects.get(pk=records.eth.pk).exit_reason == "take_profit"
    assert set(Order.objects.filter(position=btc).values_list("status", flat=True)) == {"FILLED", "CANCELED"}


def test_cancel_action_cancels_open_orders_and_names_the_rest(admin_client: Client, records: Records) -> None:
    stop = Order.objects.get(position=records.btc, purpose="stop_loss")
    entry = Order.objects.get(position=records.btc, purpose="entry")
    said = _act(admin_client, "order", "cancel_orders", stop.pk, entry.pk)
    assert Order.objects.get(pk=stop.pk).status == "CANCELED"
    assert Order.objects.get(pk=entry.pk).status == "FILLED"
    assert f"{entry.client_order_id}: order {entry.client_order_id} is FILLED: only open orders" in said[0]
    assert said[1] == "orders cancelled: 1"


def test_an_action_the_executor_cannot_do_is_a_message_not_a_500(
    admin_client: Client, db: None, settings: object
) -> None:
    """A testnet position without Binance keys here: the message says what is missing."""
    settings.BINANCE_API_KEY = settings.BINANCE_API_SECRET = ""  # type: ignore[attr-defined]
    now = datetime(2026, 11, 24, tzinfo=UTC)
    position = Position.objects.create(
        mode="testnet",
        exchange="binance",
        symbol="BTCUSDT",
        qty=D(1),
        entry_price=D(100),
        stop_price=D(97),
        take_profit_price=D(106),
        entry_client_order_id="ts-testnet-e",
        opened_at=now,
        updated_at=now,
    )
    said = _act(admin_client, "position", "close_positions", position.pk)
    assert said == [f"{position}: testnet orders on binance need BINANCE_API_KEY and BINANCE_API_SECRET"]
    assert Position.objects.get(pk=position.pk).status == "open"


def test_a_close_that_cannot_complete_is_a_message_and_keeps_the_protection(
    admin_client: Client, records: Records
) -> None:
    """A position whose entry id the trader did not make: the message names it, the position stays protected."""
    Position.objects.filter(pk=records.btc.pk).update(entry_client_order_id="web_5f2c9a0d41b84e7c9d3e")
    said = _act(admin_client, "position", "close_positions", records.btc.pk)
    assert len(said) == 1
    assert "'web_5f2c9a0d41b84e7c9d3e' was not placed by this trader" in said[0]
    assert "its protection stays" in said[0]
    assert Position.objects.get(pk=records.btc.pk).status == "open"
    statuses = Order.objects.filter(position=records.btc, purpose__in=("stop_loss", "take_profit"))
    assert set(statuses.values_list("status", flat=True)) == {"NEW"}


@pytest.mark.parametrize("url", LISTS)
def test_admin_needs_staff(client: Client, db: None, url: str) -> None:
    assert client.get(url).status_code == 302
    viewer = get_user_model().objects.create_user("viewer", password="pw-for-tests-only")
    client.force_login(viewer)
    response = client.get(url)
    assert (response.status_code, response["Location"].split("?")[0]) == (302, "/admin/login/")
