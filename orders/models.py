"""Trading records: risk decisions, our orders, their fills, and the positions they open and close.

Identity (ARCHITECTURE §5): an order is its ``client_order_id``, derived from the signal it acts on (see
:func:`orders.ids.client_order_id`), so a retry, a restart or a second process can never make a second order
for the same purpose; a risk decision is one per mode and signal; a position is the one its entry order opened.
Money is Decimal (Decimal128 in MongoDB); times are UTC.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django_mongodb_backend.fields import ArrayField

MONEY = {"max_digits": 38, "decimal_places": 18}


class Mode(models.TextChoices):
    PAPER = "paper", "paper (simulated fills)"
    TESTNET = "testnet", "Binance testnet"
    LIVE = "live", "Binance live"


class RiskDecision(models.Model):
    """What the risk check made of one BUY or SELL signal: approved with a size and protection, or rejected,
    always with its reasons and the figures it used."""

    class Rejection(models.TextChoices):
        NONE = "", "approved"
        NOT_ACTIONABLE = "not_actionable", "not a BUY or SELL"
        HALTED = "daily_drawdown", "daily drawdown halt"
        MAX_POSITIONS = "max_positions", "open positions at the limit"
        POSITION_OPEN = "position_open", "a position is already open on the symbol"
        NO_POSITION = "no_position", "nothing to sell (long only)"
        BAD_PRICE = "bad_price", "no usable price"
        BAD_STOP = "bad_stop", "no usable stop distance"
        NO_EQUITY = "no_equity", "no equity"
        NO_BALANCE = "no_balance", "no available balance"
        MIN_QTY = "min_qty", "below the minimum quantity (LOT_SIZE)"
        MIN_NOTIONAL = "min_notional", "below the minimum notional (NOTIONAL)"
        UNAVAILABLE = "unavailable", "the account or the symbol's filters could not be read"

    mode = models.CharField(max_length=8, choices=Mode.choices)
    strategy = models.CharField(max_length=32)
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    interval = models.CharField(max_length=4)
    candle_open_time = models.DateTimeField(help_text="the signal's candle")
    action = models.CharField(max_length=4, help_text="BUY or SELL")
    approved = models.BooleanField()
    rejection = models.CharField(max_length=16, choices=Rejection.choices, blank=True, default="")
    reasons = ArrayField(models.TextField(), default=list)
    price = models.DecimalField(**MONEY, null=True, blank=True, help_text="the reference (live) price")
    qty = models.DecimalField(**MONEY, null=True, blank=True)
    stop_price = models.DecimalField(**MONEY, null=True, blank=True)
    take_profit_price = models.DecimalField(**MONEY, null=True, blank=True)
    equity = models.DecimalField(**MONEY, null=True, blank=True)
    available = models.DecimalField(**MONEY, null=True, blank=True)
    inputs = models.JSONField(default=dict, help_text="parameters, filters and account figures used")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mode", "strategy", "exchange", "symbol", "interval", "candle_open_time"], name="risk_identity"
            )
        ]
        indexes = [models.Index(fields=["mode", "created_at"], name="risk_recent")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        verdict = "approved" if self.approved else f"rejected ({self.rejection})"
        return (
            f"{self.mode} {self.exchange}:{self.symbol} {self.action} {self.candle_open_time:%Y-%m-%d %H:%M} {verdict}"
        )


class Position(models.Model):
    """A long position: opened by one entry order, protected by a stop-loss and a take-profit, closed by
    whichever comes first (or by a SELL signal, or by hand)."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    class ExitReason(models.TextChoices):
        NONE = "", "-"
        STOP_LOSS = "stop_loss", "stop-loss"
        TAKE_PROFIT = "take_profit", "take-profit"
        SIGNAL = "signal", "SELL signal"
        MANUAL = "manual", "closed by hand"

    mode = models.CharField(max_length=8, choices=Mode.choices)
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    entry_client_order_id = models.CharField(max_length=36, help_text="the order that opened it")
    qty = models.DecimalField(**MONEY, help_text="base quantity held")
    entry_price = models.DecimalField(**MONEY, help_text="average fill price of the entry")
    stop_price = models.DecimalField(**MONEY)
    take_profit_price = models.DecimalField(**MONEY)
    fees = models.DecimalField(**MONEY, default=Decimal(0), help_text="fees paid so far, in the quote asset")
    last_price = models.DecimalField(**MONEY, null=True, blank=True)
    unrealised_pnl = models.DecimalField(**MONEY, null=True, blank=True, help_text="at the last price, fees paid")
    exit_price = models.DecimalField(**MONEY, null=True, blank=True)
    exit_reason = models.CharField(max_length=12, choices=ExitReason.choices, blank=True, default="")
    realised_pnl = models.DecimalField(**MONEY, null=True, blank=True, help_text="exit - entry, less every fee")
    protection = models.CharField(
        max_length=64, blank=True, default="", help_text="the exchange's protective order list (empty on paper)"
    )
    risk_decision = models.ForeignKey(RiskDecision, null=True, blank=True, on_delete=models.SET_NULL)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entry_client_order_id"], name="position_entry")]
        indexes = [
            models.Index(fields=["mode", "status", "symbol"], name="position_open"),
            models.Index(fields=["mode", "opened_at"], name="position_recent"),
        ]
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"{self.mode} {self.exchange}:{self.symbol} {self.qty} @ {self.entry_price} ({self.status})"

    @property
    def pnl(self) -> Decimal | None:
        """Realised when closed, else unrealised at the last price."""
        return self.realised_pnl if self.status == self.Status.CLOSED else self.unrealised_pnl


class Order(models.Model):
    """One order we placed (or tried to): its state as the exchange (or the paper book) last reported it."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "sent, answer unknown"
        NEW = "NEW"
        PARTIALLY_FILLED = "PARTIALLY_FILLED"
        FILLED = "FILLED"
        CANCELED = "CANCELED"
        EXPIRED = "EXPIRED"
        REJECTED = "REJECTED"

    class Purpose(models.TextChoices):
        ENTRY = "entry"
        STOP_LOSS = "stop_loss", "stop-loss"
        TAKE_PROFIT = "take_profit", "take-profit"
        EXIT = "exit", "exit (signal or by hand)"

    client_order_id = models.CharField(max_length=36)
    mode = models.CharField(max_length=8, choices=Mode.choices)
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    type = models.CharField(max_length=20, help_text="MARKET, STOP_LOSS, LIMIT_MAKER, ... (Binance's names)")
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    qty = models.DecimalField(**MONEY)
    price = models.DecimalField(**MONEY, null=True, blank=True)
    stop_price = models.DecimalField(**MONEY, null=True, blank=True)
    executed_qty = models.DecimalField(**MONEY, default=Decimal(0))
    avg_price = models.DecimalField(**MONEY, null=True, blank=True)
    fee = models.DecimalField(**MONEY, default=Decimal(0), help_text="in the quote asset")
    exchange_order_id = models.BigIntegerField(null=True, blank=True)
    order_list_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, default="", help_text="why it was rejected or cancelled")
    position = models.ForeignKey(Position, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    risk_decision = models.ForeignKey(RiskDecision, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_order_id"], name="order_client_id")]
        indexes = [
            models.Index(fields=["mode", "created_at"], name="order_recent"),
            models.Index(fields=["mode", "status", "symbol"], name="order_status"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.type} {self.qty} {self.symbol} {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.NEW, self.Status.PARTIALLY_FILLED)


class Fill(models.Model):
    """One execution of an order (paper fills are numbered per order)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    trade_id = models.CharField(max_length=32, help_text="the exchange's trade id")
    price = models.DecimalField(**MONEY)
    qty = models.DecimalField(**MONEY)
    fee = models.DecimalField(**MONEY, help_text="in fee_asset")
    fee_asset = models.CharField(max_length=16)
    ts = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "trade_id"], name="fill_identity")]
        ordering = ["ts"]

    def __str__(self) -> str:
        return f"{self.qty} @ {self.price} ({self.trade_id})"
