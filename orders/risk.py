"""The risk check: whether a signal may trade, how much, and with which protection. Pure: no Django, no I/O.

Long only (spot): a BUY opens a long position, a SELL closes the one open on its symbol.

A BUY is sized so that being stopped out loses ``risk_per_trade`` of equity::

    stop       = price × (1 - stop_loss_pct)              or  price - stop_atr_multiple × ATR when both are set
    take-profit = price × (1 + take_profit_pct)           or  price + reward_risk × (price - stop)
    qty        = equity × risk_per_trade ÷ (price - stop)
               capped at equity × max_symbol_fraction ÷ price       (10 % of equity per symbol)
               capped at available ÷ (price × (1 + fee))            (what the balance can pay, fee included)
               capped at the filter's maxQty, then rounded down to the step size

and rejected when, rounded down, it is below the filter's minimum quantity or its notional below the minimum
notional. Prices are rounded to the tick size: the stop down, the take-profit up (the stop distance the
quantity is sized on is the rounded one, so the loss at the stop never exceeds the risk). Before sizing: a
daily drawdown of ``daily_drawdown_halt`` or more halts new entries, at most ``max_open_positions`` may be open,
and one per symbol.

Every verdict carries its reasons, in words with the figures, approved or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum

ZERO = Decimal(0)


class Rejection(StrEnum):
    """Why a signal does not trade (the values are stored: ``orders.models.RiskDecision.Rejection``)."""

    NOT_ACTIONABLE = "not_actionable"
    HALTED = "daily_drawdown"
    MAX_POSITIONS = "max_positions"
    POSITION_OPEN = "position_open"
    NO_POSITION = "no_position"
    BAD_PRICE = "bad_price"
    BAD_STOP = "bad_stop"
    NO_EQUITY = "no_equity"
    NO_BALANCE = "no_balance"
    MIN_QTY = "min_qty"
    MIN_NOTIONAL = "min_notional"
    UNAVAILABLE = "unavailable"  # set by the pipeline, not by ``assess``: the account or filters could not be read


@dataclass(frozen=True, slots=True)
class RiskParams:
    """The limits (ARCHITECTURE §8); fractions, not percent (0.02 is 2 %)."""

    risk_per_trade: Decimal = Decimal("0.02")
    max_symbol_fraction: Decimal = Decimal("0.10")
    max_open_positions: int = 3
    stop_loss_pct: Decimal = Decimal("0.03")
    stop_atr_multiple: Decimal | None = None  # k: stop = price - k × ATR, when the signal carries an ATR
    take_profit_pct: Decimal = Decimal("0.06")
    reward_risk: Decimal | None = None  # take-profit = price + reward_risk × stop distance, when set
    daily_drawdown_halt: Decimal = Decimal("0.05")
    fee: Decimal = Decimal("0.001")  # the taker fee the balance cap leaves room for

    def __post_init__(self) -> None:
        for name in (
            "risk_per_trade",
            "max_symbol_fraction",
            "stop_loss_pct",
            "take_profit_pct",
            "daily_drawdown_halt",
        ):
            value = getattr(self, name)
            if not ZERO < value < 1:
                raise ValueError(f"risk parameter {name} must be a fraction between 0 and 1 (0.02 is 2 %), got {value}")
        if not ZERO <= self.fee < 1:
            raise ValueError(f"risk parameter fee must be a fraction from 0 to below 1, got {self.fee}")
        if self.max_open_positions < 1:
            raise ValueError(f"risk parameter max_open_positions must be at least 1, got {self.max_open_positions}")
        for name in ("stop_atr_multiple", "reward_risk"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"risk parameter {name} must be positive when set, got {value}")


@dataclass(frozen=True, slots=True)
class Filters:
    """The exchange's trading filters of a symbol (Binance's PRICE_FILTER, LOT_SIZE and NOTIONAL)."""

    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ZERO
    max_qty: Decimal | None = None
    min_notional: Decimal = ZERO

    def qty_down(self, qty: Decimal) -> Decimal:
        return to_step(qty, self.step_size, ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class Book:
    """The account as the check sees it, in the quote asset. ``held``: the quantity open on the signal's symbol
    (zero when none). ``day_start_equity``: equity at 00:00 UTC, for the daily drawdown."""

    equity: Decimal
    available: Decimal
    day_start_equity: Decimal
    open_symbols: frozenset[str] = frozenset()
    held: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Proposal:
    """A signal to act on: its action (BUY/SELL/HOLD), symbol, the live price and the candle's ATR (if known)."""

    action: str
    symbol: str
    price: Decimal | None
    atr: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The check's answer. Approved: ``qty`` to buy (opening) or sell (closing), with the stop and take-profit
    of an opening. Rejected: ``rejection`` says why. ``reasons`` explain either, in order."""

    approved: bool
    rejection: Rejection | None
    reasons: tuple[str, ...]
    qty: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    closes: bool = False  # the approved order closes the open position (a SELL)
    figures: dict[str, str] = field(default_factory=dict)


def day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s day: where the daily drawdown is measured from."""
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)


def to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` on a multiple of ``step`` (a tick or step size), rounded as ``rounding`` says (``ROUND_DOWN``,
    ``ROUND_UP``); a zero step is no rule and leaves it as it is."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=rounding) * step


def _n(value: Decimal, places: int = 8) -> str:
    """A figure for a reason: at most ``places`` decimals, no trailing zeros, thousands separated."""
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN).normalize()
    text = f"{q:,f}"
    return text


def _pct(fraction: Decimal) -> str:
    return f"{_n(fraction * 100, 4)} %"


def _reject(rejection: Rejection, *reasons: str, figures: dict[str, str] | None = None) -> Verdict:
    return Verdict(False, rejection, tuple(reasons), figures=figures or {})


def assess(proposal: Proposal, book: Book, filters: Filters, params: RiskParams | None = None) -> Verdict:
    """Approve (with a size and protection) or reject ``proposal``; see the module docstring for the rules."""
    params = params or RiskParams()
    action = proposal.action.upper()
    if action not in ("BUY", "SELL"):
        return _reject(Rejection.NOT_ACTIONABLE, f"{proposal.action} is not an order: only BUY and SELL trade")
    price = proposal.price
    if price is None or price <= 0:
        return _reject(Rejection.BAD_PRICE, f"no usable live price for {proposal.symbol} ({price}): nothing traded")
    if action == "SELL":
        return _assess_sell(proposal.symbol, price, book, filters)
    return _assess_buy(proposal, price, book, filters, params)


def _assess_sell(symbol: str, price: Decimal, book: Book, filters: Filters) -> Verdict:
    if symbol not in book.open_symbols or book.held <= 0:
        return _reject(Rejection.NO_POSITION, f"SELL {symbol}: no open position to close (long only, no shorting)")
    qty = filters.qty_down(book.held)
    if qty <= 0 or qty < filters.min_qty:
        return _reject(
            Rejection.MIN_QTY,
            f"SELL {symbol}: the position's {_n(book.held)} rounds down to {_n(qty)}, "
            f"below the minimum quantity {_n(filters.min_qty)}",
        )
    return Verdict(
        True,
        None,
        (f"SELL {symbol}: close the open position, {_n(qty)} at about {_n(price)}",),
        qty=qty,
        closes=True,
        figures={"price": str(price), "held": str(book.held)},
    )


def _assess_buy(proposal: Proposal, price: Decimal, book: Book, filters: Filters, params: RiskParams) -> Verdict:
    symbol = proposal.symbol
    figures = {
        "price": str(price),
        "equity": str(book.equity),
        "available": str(book.available),
        "day_start_equity": str(book.day_start_equity),
    }
    if book.equity <= 0:
        return _reject(Rejection.NO_EQUITY, f"equity is {_n(book.equity)}: nothing can be risked", figures=figures)
    if book.day_start_equity > 0:
        drawdown = (book.day_start_equity - book.equity) / book.day_start_equity
        figures["drawdown"] = str(drawdown)
        if drawdown >= params.daily_drawdown_halt:
            return _reject(
                Rejection.HALTED,
                f"halted: equity {_n(book.equity, 2)} is {_pct(drawdown)} below today's "
                f"start {_n(book.day_start_equity, 2)}, at or past the {_pct(params.daily_drawdown_halt)} "
                "daily drawdown limit; no new positions until 00:00 UTC",
                figures=figures,
            )
    if symbol in book.open_symbols:
        return _reject(
            Rejection.POSITION_OPEN, f"a position is already open on {symbol} (one per symbol)", figures=figures
        )
    if len(book.open_symbols) >= params.max_open_positions:
        return _reject(
            Rejection.MAX_POSITIONS,
            f"{len(book.open_symbols)} positions are open "
            f"({', '.join(sorted(book.open_symbols))}), the limit is {params.max_open_positions}",
            figures=figures,
        )
    if book.available <= 0:
        return _reject(
            Rejection.NO_BALANCE, f"available balance is {_n(book.available)}: nothing to buy with", figures=figures
        )

    reasons: list[str] = []
    if params.stop_atr_multiple is not None and proposal.atr is not None and proposal.atr > 0:
        raw_stop = price - params.stop_atr_multiple * proposal.atr
        stop_how = f"{_n(params.stop_atr_multiple)} × ATR {_n(proposal.atr)} below the price"
    else:
        raw_stop = price * (1 - params.stop_loss_pct)
        stop_how = f"{_pct(params.stop_loss_pct)} below the price"
    stop = to_step(raw_stop, filters.tick_size, ROUND_DOWN)
    if stop <= 0 or stop >= price:
        return _reject(
            Rejection.BAD_STOP,
            f"stop {_n(raw_stop)} ({stop_how}) is not between 0 and the price {_n(price)}",
            figures=figures,
        )
    distance = price - stop
    if params.reward_risk is not None:
        raw_tp = price + params.reward_risk * distance
        tp_how = f"{_n(params.reward_risk)} × the stop distance above the price"
    else:
        raw_tp = price * (1 + params.take_profit_pct)
        tp_how = f"{_pct(params.take_profit_pct)} above the price"
    take_profit = to_step(raw_tp, filters.tick_size, ROUND_UP)
    reasons.append(
        f"BUY {symbol} at about {_n(price)}: stop-loss {_n(stop)} ({stop_how}), "
        f"take-profit {_n(take_profit)} ({tp_how})"
    )

    risk_amount = book.equity * params.risk_per_trade
    qty = risk_amount / distance
    reasons.append(
        f"risk {_pct(params.risk_per_trade)} of equity {_n(book.equity, 2)} = {_n(risk_amount, 2)} "
        f"over the stop distance {_n(distance)}: {_n(qty)}"
    )
    caps = [
        (
            book.equity * params.max_symbol_fraction / price,
            f"capped at {_pct(params.max_symbol_fraction)} of equity per symbol",
        ),
        (
            book.available / (price * (1 + params.fee)),
            f"capped by the available balance {_n(book.available, 2)} (fee {_pct(params.fee)} included)",
        ),
    ]
    if filters.max_qty is not None:
        caps.append((filters.max_qty, "capped at the exchange's maximum quantity"))
    for cap, why in caps:
        if cap < qty:
            qty = cap
            reasons.append(f"{why}: {_n(qty)}")
    rounded = filters.qty_down(qty)
    if rounded != qty:
        reasons.append(f"rounded down to the step size {_n(filters.step_size)}: {_n(rounded)}")
    figures.update(
        {
            "stop_price": str(stop),
            "take_profit_price": str(take_profit),
            "risk_amount": str(risk_amount),
            "qty_unrounded": str(qty),
            "qty": str(rounded),
        }
    )
    if rounded <= 0 or rounded < filters.min_qty:
        return _reject(
            Rejection.MIN_QTY,
            *reasons,
            f"rejected: {_n(rounded)} is below the minimum quantity {_n(max(filters.min_qty, filters.step_size))}",
            figures=figures,
        )
    notional = rounded * price
    if notional < filters.min_notional:
        return _reject(
            Rejection.MIN_NOTIONAL,
            *reasons,
            f"rejected: notional {_n(notional)} is below the minimum {_n(filters.min_notional)}",
            figures=figures,
        )
    loss = rounded * distance
    reasons.append(
        f"approved: {_n(rounded)} {symbol}, notional {_n(notional, 2)}, loss at the stop "
        f"{_n(loss, 2)} ({_pct(loss / book.equity)} of equity)"
    )
    return Verdict(
        True, None, tuple(reasons), qty=rounded, stop_price=stop, take_profit_price=take_profit, figures=figures
    )
