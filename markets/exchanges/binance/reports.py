"""Binance's answers about our orders and account, parsed into plain values. Pure: no client, no Django.

The signed client (:mod:`.client`) returns Binance's JSON as it is; the executor reads it through these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class TradeFill:
    """One execution of an order, as Binance reports it in a FULL answer or ``/api/v3/myTrades``."""

    trade_id: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What an answer about one order says. ``status`` is Binance's (None when the answer has none);
    ``executed_qty`` and ``quote_qty`` are None when the answer does not say (an ACK); ``fills`` are the FULL
    answer's; ``time`` its transactTime or updateTime; ``client_ids`` its clientOrderId and origClientOrderId."""

    order_id: int
    list_id: int | None
    status: str | None
    executed_qty: Decimal | None
    quote_qty: Decimal | None
    fills: tuple[TradeFill, ...]
    time: datetime | None
    client_ids: frozenset[str]

    @property
    def avg_price(self) -> Decimal | None:
        """The average fill price; None while nothing filled."""
        if not self.executed_qty or self.quote_qty is None:
            return None
        return self.quote_qty / self.executed_qty


def parse_fill(frame: Mapping[str, Any]) -> TradeFill:
    """A fill of a FULL order answer, ``{"price": "4000.00000000", "qty": "1.00000000", "commission":
    "4.00000000", "commissionAsset": "USDT", "tradeId": 56}``, or a ``/api/v3/myTrades`` row (``"id"`` for
    ``"tradeId"``)."""
    return TradeFill(
        str(frame["tradeId"] if "tradeId" in frame else frame["id"]),
        Decimal(frame["price"]),
        Decimal(frame["qty"]),
        Decimal(frame["commission"]),
        frame["commissionAsset"],
    )


def parse_order_report(report: Mapping[str, Any]) -> OrderReport:
    """An order as placing (FULL or RESULT), querying or cancelling it answers, or as an OCO's ``orderReports``
    list it::

        {"symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
         "transactTime": 1507725176595, "price": "0.00000000", "origQty": "10.00000000",
         "executedQty": "10.00000000", "cummulativeQuoteQty": "10.00000000", "status": "FILLED",
         "timeInForce": "GTC", "type": "MARKET", "side": "SELL",
         "fills": [{"price": "4000.00000000", "qty": "1.00000000", "commission": "4.00000000",
                    "commissionAsset": "USDT", "tradeId": 56}, ...]}
    """
    list_id = int(report.get("orderListId", -1))
    executed = report.get("executedQty")
    stamp = report.get("transactTime") or report.get("updateTime")
    ids = (report.get("clientOrderId"), report.get("origClientOrderId"))
    return OrderReport(
        order_id=int(report["orderId"]),
        list_id=list_id if list_id >= 0 else None,
        status=report.get("status") or None,
        executed_qty=Decimal(executed) if executed is not None else None,
        quote_qty=Decimal(report["cummulativeQuoteQty"]) if executed is not None else None,
        fills=tuple(parse_fill(f) for f in report.get("fills") or ()),
        time=datetime.fromtimestamp(stamp / 1000, tz=UTC) if stamp else None,
        client_ids=frozenset(i for i in ids if i),
    )


def balance(account: Mapping[str, Any], asset: str) -> tuple[Decimal, Decimal] | None:
    """``asset``'s (free, locked) in a ``/api/v3/account`` answer (``{"balances": [{"asset": "USDT", "free":
    "1000.00000000", "locked": "0.00000000"}, ...], ...}``); None when it lists no such asset."""
    for b in account.get("balances", []):
        if b["asset"] == asset:
            return Decimal(b["free"]), Decimal(b["locked"])
    return None


def commission_rates(account: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """The (maker, taker) rates of a ``/api/v3/account`` answer (``"commissionRates": {"maker": "0.00100000",
    "taker": "0.00100000", ...}``); KeyError when it has none."""
    rates = account.get("commissionRates", {})
    return Decimal(rates["maker"]), Decimal(rates["taker"])
