"""Reads of the trading records: open positions, recent orders, today's profit and loss, a symbol's filters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from markets.exchanges.binance.parse import parse_filters
from markets.models import Instrument

from .models import Order, Position
from .risk import Filters

FALLBACK_TICK = Decimal("0.00000001")


def open_positions(*, mode: str, exchange: str | None = None, symbol: str | None = None) -> list[Position]:
    """Open positions of ``mode`` (on ``exchange``, of ``symbol`` when given), oldest first."""
    qs = Position.objects.filter(mode=mode, status=Position.Status.OPEN)
    if exchange is not None:
        qs = qs.filter(exchange=exchange)
    if symbol is not None:
        qs = qs.filter(symbol=symbol)
    return list(qs.order_by("opened_at"))


def recent_positions(*, mode: str | None = None, limit: int = 50) -> list[Position]:
    qs = Position.objects.all() if mode is None else Position.objects.filter(mode=mode)
    return list(qs.order_by("-opened_at")[:limit])


def recent_orders(*, mode: str | None = None, limit: int = 50) -> list[Order]:
    qs = Order.objects.all() if mode is None else Order.objects.filter(mode=mode)
    return list(qs.order_by("-created_at", "-id")[:limit])


def order_list(*, limit: int, **filters: str | None) -> list[Order]:
    """Orders matching the filters that are given, newest first (by creation; made at once, the last made first),
    each with its fills."""
    given = {k: v for k, v in filters.items() if v is not None}
    qs = Order.objects.filter(**given).order_by("-created_at", "-id").prefetch_related("fills")
    return list(qs[:limit])


def position_list(*, limit: int, **filters: str | None) -> list[Position]:
    """Positions matching the filters that are given, newest first (by opening)."""
    given = {k: v for k, v in filters.items() if v is not None}
    return list(Position.objects.filter(**given).order_by("-opened_at", "-id")[:limit])


def position_orders(position: Position) -> list[Order]:
    return list(Order.objects.filter(position=position).order_by("created_at"))


def realised_since(*, mode: str, exchange: str, since: datetime) -> Decimal:
    """Realised PnL of the positions of ``mode`` on ``exchange`` closed at or after ``since``."""
    return sum(
        (
            p.realised_pnl or Decimal(0)
            for p in Position.objects.filter(
                mode=mode, exchange=exchange, status=Position.Status.CLOSED, closed_at__gte=since
            )
        ),
        Decimal(0),
    )


def instrument_filters(*, exchange: str, symbol: str) -> Filters | None:
    """The stored instrument's filters: its tick size, step size and minimum notional, and the minimum and maximum
    quantity of Binance's LOT_SIZE (read by :func:`markets.exchanges.binance.parse.parse_filters`); None when the
    instrument is not stored. A venue that publishes none gets 1e-8 steps and no minimums."""
    inst = Instrument.objects.filter(exchange=exchange, symbol=symbol).first()
    if inst is None:
        return None
    lot = parse_filters(inst.filters or [], f"stored {exchange} instrument {symbol}")
    return Filters(
        tick_size=inst.tick_size or FALLBACK_TICK,
        step_size=inst.step_size or FALLBACK_TICK,
        min_qty=lot.min_qty or Decimal(0),
        max_qty=lot.max_qty,
        min_notional=inst.min_notional or Decimal(0),
    )


def instrument_quote(*, exchange: str, symbol: str) -> str:
    inst = Instrument.objects.filter(exchange=exchange, symbol=symbol).only("quote").first()
    return inst.quote if inst is not None else ""
