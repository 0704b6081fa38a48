"""Binance's symbol filters and its answers about our orders and account, parsed into plain values (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from markets.exchanges.binance.parse import SymbolFilters, parse_filters
from markets.exchanges.binance.reports import (
    TradeFill,
    balance,
    commission_rates,
    parse_fill,
    parse_order_report,
)
from markets.exchanges.errors import BadRequest, ExchangeError, OutcomeUnknown, RateLimited, Refused

FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True},
]


def test_filters_give_every_rule_and_none_where_binance_sets_none() -> None:
    """Tick, step, minimum and maximum quantity and minimum notional are read; a missing filter or a zero is None,
    and entries of another venue (no filterType) are no rule."""
    assert parse_filters(FILTERS) == SymbolFilters(
        Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("9000"), Decimal("5")
    )
    only_lot = [{"filterType": "LOT_SIZE", "stepSize": "0.001", "maxQty": "0"}, {"product_id": "BTC-USD"}]
    assert parse_filters(only_lot) == SymbolFilters(None, Decimal("0.001"), None, None, None)


@pytest.mark.parametrize(
    ("filters", "field"),
    [([{"filterType": "PRICE_FILTER"}], "tickSize"), ([{"filterType": "LOT_SIZE", "stepSize": 0.1}], "stepSize")],
)
def test_a_filter_without_its_value_or_with_a_float_is_refused(filters: list[dict[str, object]], field: str) -> None:
    """A filter lacking its size, or carrying a float for it, is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_filters(filters)


def test_a_full_order_answer_gives_its_state_and_fills() -> None:
    """A FULL answer: ids, status, executed and quote quantities (so the average price), fills and time."""
    report = parse_order_report(
        {
            "symbol": "BTCUSDT",
            "orderId": 28,
            "orderListId": -1,
            "clientOrderId": "abc",
            "transactTime": 1507725176595,
            "executedQty": "2.00000000",
            "cummulativeQuoteQty": "8001.00000000",
            "status": "FILLED",
            "fills": [
                {"price": "4000.00", "qty": "1.0", "commission": "4.0", "commissionAsset": "USDT", "tradeId": 56},
                {"price": "4001.00", "qty": "1.0", "commission": "4.001", "commissionAsset": "USDT", "tradeId": 57},
            ],
        }
    )
    assert (report.order_id, report.list_id, report.status, report.client_ids) == (28, None, "FILLED", {"abc"})
    assert (report.executed_qty, report.avg_price) == (Decimal(2), Decimal("4000.5"))
    assert report.fills[1] == TradeFill("57", Decimal("4001.00"), Decimal("1.0"), Decimal("4.001"), "USDT")
    assert report.time == datetime(2017, 10, 11, 12, 32, 56, 595000, tzinfo=UTC)


def test_an_oco_leg_without_quantities_says_so() -> None:
    """A leg as an OCO answer lists it (``orderListId`` set, no quantities, no status): nothing is guessed."""
    report = parse_order_report({"symbol": "BTCUSDT", "orderId": 3, "orderListId": 7, "clientOrderId": "x"})
    assert (report.list_id, report.status, report.executed_qty, report.avg_price, report.time) == (
        7,
        None,
        None,
        None,
        None,
    )
    assert parse_fill({"price": "1", "qty": "2", "commission": "0", "commissionAsset": "BNB", "id": 9}).trade_id == "9"


def test_account_answers_give_balances_and_commission_rates() -> None:
    """A balance is (free, locked), None for an asset the account does not list; rates are (maker, taker)."""
    account = {
        "balances": [{"asset": "USDT", "free": "1000.5", "locked": "20"}],
        "commissionRates": {"maker": "0.00100000", "taker": "0.00200000"},
    }
    assert balance(account, "USDT") == (Decimal("1000.5"), Decimal(20))
    assert balance(account, "BTC") is None
    assert commission_rates(account) == (Decimal("0.001"), Decimal("0.002"))


def test_one_error_hierarchy_for_signed_and_market_data_requests() -> None:
    """A refusal (rate limit or bad request) and an unknown outcome are all ExchangeErrors; each keeps Binance's
    code, and rebuilds from (exchange, message) alone."""
    assert [c for c in (RateLimited, BadRequest) if not issubclass(c, Refused)] == []
    assert [c for c in (Refused, OutcomeUnknown) if not issubclass(c, ExchangeError)] == []
    refused = BadRequest("binance", "Order does not exist. (-2013)", code=-2013)
    assert (refused.code, refused.message, str(refused)) == (
        -2013,
        "Order does not exist. (-2013)",
        "binance: Order does not exist. (-2013)",
    )
    assert OutcomeUnknown(*OutcomeUnknown("binance", "timeout on GET /api/v3/order").args).code is None
