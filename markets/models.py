"""Market data in MongoDB. Identity is natural and enforced by unique indexes (ARCHITECTURE §5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import models

PRICE = {"max_digits": 38, "decimal_places": 18}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Instrument(models.Model):
    """A venue's symbol and its canonical name (BASE-QUOTE), with the exchange's trading filters."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    canonical = models.CharField(max_length=32, db_index=True)
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16)
    status = models.CharField(max_length=16, default="TRADING")
    tick_size = models.DecimalField(**PRICE, null=True, blank=True)
    step_size = models.DecimalField(**PRICE, null=True, blank=True)
    min_notional = models.DecimalField(**PRICE, null=True, blank=True)
    filters = models.JSONField(default=list, blank=True)
    # streamed by the stream workers; removing an instrument clears this and keeps its record
    streamed = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["exchange", "symbol"], name="instrument_exchange_symbol")]
        ordering = ["exchange", "symbol"]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}"


class Tick(models.Model):
    """One exchange trade (an aggregate trade on Binance). Ordered by trade id, not by time."""

    class Source(models.TextChoices):
        WS = "ws", "WebSocket"
        REST = "rest", "REST backfill"
        IMPORT = "import", "bulk import"

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    trade_id = models.BigIntegerField()
    price = models.DecimalField(**PRICE)
    qty = models.DecimalField(**PRICE)
    taker_side = models.CharField(max_length=4, choices=[("buy", "buy"), ("sell", "sell")])
    ts = models.DateTimeField(help_text="exchange time (UTC)")
    received_at = models.DateTimeField(help_text="our receive time (UTC)")
    source = models.CharField(max_length=8, choices=Source.choices)
    first_trade_id = models.BigIntegerField()
    last_trade_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["exchange", "symbol", "trade_id"], name="tick_identity")]
        # The unique index above is partial (filtered on BSON type) and MongoDB uses a partial index only
        # for queries that restate its filter, which the ORM's do not: "tick_order" serves ordinary reads.
        indexes = [
            models.Index(fields=["exchange", "symbol", "ts"], name="tick_time"),
            models.Index(fields=["exchange", "symbol", "trade_id"], name="tick_order"),
        ]
        ordering = ["exchange", "symbol", "trade_id"]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}#{self.trade_id}"


class Candle(models.Model):
    """OHLCV of one interval. ``source`` says where it came from: built from our ticks ("trades"),
    the exchange's klines ("exchange"), or another exchange's name when filled from there."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    interval = models.CharField(max_length=4)
    open_time = models.DateTimeField()
    close_time = models.DateTimeField()
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.DecimalField(**PRICE)
    quote_volume = models.DecimalField(**PRICE, default=0)
    trades = models.BigIntegerField(default=0)
    taker_buy_volume = models.DecimalField(**PRICE, default=0)
    taker_buy_quote_volume = models.DecimalField(**PRICE, default=0)
    source = models.CharField(max_length=32)
    closed = models.BooleanField(default=True)
    synthetic = models.BooleanField(default=False, help_text="flat zero-volume candle for a minute without trades")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["exchange", "symbol", "interval", "open_time"], name="candle_identity")
        ]
        indexes = [models.Index(fields=["exchange", "symbol", "interval", "open_time"], name="candle_order")]
        ordering = ["exchange", "symbol", "interval", "open_time"]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


class Gap(models.Model):
    """A detected hole: trade ids (``kind="trades"``, start/end are ids) or candles (start/end are ms)."""

    class State(models.TextChoices):
        OPEN = "open"
        FILLING = "filling"
        FILLED = "filled"
        UNRECOVERABLE = "unrecoverable"

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    kind = models.CharField(max_length=16)
    start = models.BigIntegerField()
    end = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    reason = models.TextField(blank=True, default="")
    missing = models.BigIntegerField(default=0)
    recovered = models.BigIntegerField(default=0)
    detected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["exchange", "symbol", "kind", "start"], name="gap_identity")]
        ordering = ["-detected_at"]

    def __str__(self) -> str:
        if self.kind == "trades":
            return f"{self.exchange}:{self.symbol} trades ids {self.start}..{self.end} {self.state}"
        start, end = (_EPOCH + timedelta(milliseconds=ms) for ms in (self.start, self.end))
        return (
            f"{self.exchange}:{self.symbol} {self.kind} [{start:%Y-%m-%dT%H:%M}Z, {end:%Y-%m-%dT%H:%M}Z) {self.state}"
        )


class Feed(models.Model):
    """The live feed of one (exchange, symbol): its state and health."""

    class State(models.TextChoices):
        CONNECTED = "connected"
        DOWN = "down"
        RECONNECTING = "reconnecting"
        PAUSED = "paused"

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DOWN)
    last_trade_id = models.BigIntegerField(null=True, blank=True)
    last_trade_at = models.DateTimeField(null=True, blank=True)
    lag_ms = models.BigIntegerField(null=True, blank=True)
    reconnects = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["exchange", "symbol"], name="feed_exchange_symbol")]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol} {self.state}"


class CandleRollup(models.Model):
    """A wider candle (5m to 1d) aggregated from stored 1m candles, kept so that reads of wide ranges need not
    aggregate every minute again (``markets.rollups``). Derived data: only a candle whose minutes are all stored
    and closed is kept, and a write of any of its minutes marks it stale (``candle`` null, ``version`` new)."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    interval = models.CharField(max_length=4)
    open_time = models.DateTimeField()
    version = models.CharField(max_length=24, help_text="changed by every write that marks it stale")
    candle = models.JSONField(null=True, help_text="the candle as the API prints it, numbers not yet by tick/step")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["exchange", "symbol", "interval", "open_time"], name="rollup_identity")
        ]
        indexes = [models.Index(fields=["exchange", "symbol", "interval", "open_time"], name="rollup_order")]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol} {self.interval} {self.open_time:%Y-%m-%d %H:%M} rollup"
