"""Paper trading's arithmetic, shared by the paper executor (live prices) and the backtest (past candles). Pure.

A buy fills at ``price × (1 + slippage)``, a sell at ``price × (1 - slippage)``; each fill pays ``fee`` of its
notional in the quote asset, rounded to 1e-8 (Binance's commission precision). A long position's stop-loss fills
at the first price at or below the stop, its take-profit at the first at or above the take-profit: whichever
comes first closes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

FEE_PLACES = Decimal("0.00000001")
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class PaperTerms:
    """The fee and slippage of paper fills (fractions: 0.001 is 0.1 %)."""

    fee: Decimal = Decimal("0.001")
    slippage: Decimal = Decimal("0.0005")

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.fee < 1 or not Decimal(0) <= self.slippage < 1:
            raise ValueError(
                f"paper fee and slippage must be fractions from 0 to below 1, got {self.fee} and {self.slippage}"
            )

    def fill_price(self, side: str, price: Decimal) -> Decimal:
        return price * (1 + self.slippage) if side == "BUY" else price * (1 - self.slippage)

    def fee_of(self, qty: Decimal, fill_price: Decimal) -> Decimal:
        return (qty * fill_price * self.fee).quantize(FEE_PLACES)

    def exit_pnl(
        self, qty: Decimal, entry_price: Decimal, fees_paid: Decimal, exit_price: Decimal
    ) -> tuple[Decimal, Decimal]:
        """The exit's fee and the round trip's realised PnL (``exit_price`` is the fill price)."""
        fee = self.fee_of(qty, exit_price)
        return fee, qty * (exit_price - entry_price) - fees_paid - fee


def first_hit(
    stop: Decimal, take_profit: Decimal, points: Iterable[P], price_of: object = None
) -> tuple[str, P] | None:
    """The first of ``points`` (in trade order) at or below ``stop`` ("stop_loss") or at or above
    ``take_profit`` ("take_profit"); ``price_of`` reads a point's price (default: its ``price``)."""
    read = price_of or (lambda p: p.price)
    for point in points:
        price = read(point)  # type: ignore[operator]
        if price <= stop:
            return "stop_loss", point
        if price >= take_profit:
            return "take_profit", point
    return None
