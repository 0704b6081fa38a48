"""The Binance executor's bottom layer: its signed client (:class:`markets.exchanges.binance.client.SignedClient`)
and what it reads of the account: a symbol's assets and filters, the quote balance, commission rates, an order's
trades.

**Money.** Fees are kept in the quote asset (a base-asset fee at its fill's price). When Binance gives no trade
list (``/api/v3/myTrades``, absent from the simulator), a filled order's fill is its own average price and
quantity, with the account's commission rate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from markets.exchanges.binance.client import Report, SignedClient
from markets.exchanges.binance.parse import parse_filters
from markets.exchanges.binance.reports import OrderReport, TradeFill, balance, commission_rates, parse_fill
from markets.exchanges.errors import ExchangeError, OutcomeUnknown, Refused

from ...models import Mode, Order
from ...risk import Filters
from ..base import Cash, ExecutionError, Executor

log = logging.getLogger(__name__)

FEE_PLACES = Decimal("0.00000001")
DEFAULT_COMMISSION = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """What the executor needs of a symbol: its assets and its trading filters."""

    base: str
    quote: str
    filters: Filters


def symbol_info(entry: Report) -> SymbolInfo:
    """One symbol of ``/api/v3/exchangeInfo``::

    {"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": [
      {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
       "tickSize": "0.01000000"},
      {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
      {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": true, ...}]}

    Sizes are normalized (``0.00001``), so the quantities and prices stepped on them carry no trailing zeros.
    """
    rules = parse_filters(entry.get("filters", []), f"exchangeInfo symbol {entry.get('symbol')!r}")
    return SymbolInfo(
        entry["baseAsset"],
        entry["quoteAsset"],
        Filters(
            tick_size=_norm(rules.tick_size),
            step_size=_norm(rules.step_size),
            min_qty=_norm(rules.min_qty),
            max_qty=_norm(rules.max_qty) or None,
            min_notional=_norm(rules.min_notional),
        ),
    )


class Account(Executor):
    """Orders on Binance spot in ``mode`` testnet or live: the client, and reads of the symbols and account."""

    exchange = "binance"

    def __init__(
        self,
        *,
        rest_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        mode: str | None = None,
        timeout: float | None = None,
        recv_window_ms: int = 5000,
    ) -> None:
        mode = (mode or settings.TRADING_MODE).strip().lower()
        if mode not in (Mode.TESTNET, Mode.LIVE):
            raise ValueError(f"the Binance executor trades in 'testnet' or 'live' mode, not {mode!r}")
        key = settings.BINANCE_API_KEY if key is None else key
        secret = settings.BINANCE_API_SECRET if secret is None else secret
        if not key or not secret:
            raise ExecutionError("Binance trading needs BINANCE_API_KEY and BINANCE_API_SECRET")
        self.mode = mode
        self.client = SignedClient(
            settings.BINANCE_REST_URL if rest_url is None else rest_url,
            key=key,
            secret=secret,
            timeout=settings.BINANCE_TIMEOUT_SECONDS if timeout is None else timeout,
            recv_window_ms=recv_window_ms,
        )
        self._symbols: dict[str, SymbolInfo] = {}
        self._commission: tuple[Decimal, Decimal] | None = None  # (maker, taker)
        self._my_trades = True  # False once /api/v3/myTrades turned out to be missing

    def filters(self, symbol: str) -> Filters:
        """The symbol's filters, as Binance lists them (read once per executor)."""
        return self._symbol(symbol).filters

    def cash(self, symbol: str) -> Cash:
        """The balance of the symbol's quote asset on the Binance account."""
        asset = self._symbol(symbol).quote
        try:
            account = self.client.account()
        except ExchangeError as err:
            raise ExecutionError(f"the Binance account could not be read: {err.message}") from None
        found = balance(account, asset)
        if found is None:
            return Cash(asset, Decimal(0), Decimal(0))
        free, locked = found
        return Cash(asset, free, free + locked)

    def _symbol(self, symbol: str) -> SymbolInfo:
        if symbol not in self._symbols:
            try:
                entry = self.client.symbol(symbol)
            except ExchangeError as err:
                raise ExecutionError(f"Binance's filters of {symbol} could not be read: {err.message}") from None
            if entry is None:
                raise ExecutionError(f"Binance does not list {symbol}")
            self._symbols[symbol] = symbol_info(entry)
        return self._symbols[symbol]

    def _ensure_clock(self) -> None:
        """The client's clock offset measured (if due), or ExecutionError: Binance cannot be reached."""
        try:
            self.client.sync_clock()
        except ExchangeError as err:
            raise ExecutionError(f"Binance is unreachable: {err.message}") from None

    def _trades(self, row: Order, report: OrderReport) -> list[TradeFill]:
        """The order's trades from ``/api/v3/myTrades``; without that endpoint (or trades yet), one fill at the
        order's average price with the account's commission (maker for a LIMIT_MAKER, else taker)."""
        if self._my_trades:
            try:
                trades = self.client.my_trades(symbol=row.symbol, orderId=row.exchange_order_id)
                if trades:
                    return [parse_fill(t) for t in trades]
            except Refused as err:
                log.info("no trade list (%s): fills are taken from their orders", err.message)
                self._my_trades = False
            except OutcomeUnknown:
                pass
        executed, quote = report.executed_qty or Decimal(0), report.quote_qty or Decimal(0)
        maker, taker = self._commission_rates()
        rate = maker if row.type == "LIMIT_MAKER" else taker
        info = self._symbol(row.symbol)
        if row.side == "BUY":
            commission, asset = (executed * rate).quantize(FEE_PLACES), info.base
        else:
            commission, asset = (quote * rate).quantize(FEE_PLACES), info.quote
        return [TradeFill(f"order-{row.exchange_order_id}", quote / executed, executed, commission, asset)]

    def _commission_rates(self) -> tuple[Decimal, Decimal]:
        if self._commission is None:
            try:
                self._commission = commission_rates(self.client.account())
            except (ExchangeError, KeyError):
                return DEFAULT_COMMISSION, DEFAULT_COMMISSION
        return self._commission


def _norm(value: Decimal | None) -> Decimal:
    """A filter's value without trailing zeros; no rule (None) is zero."""
    return (value or Decimal(0)).normalize()
