"""Simulator configuration: one frozen object built by the CLI or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

DEFAULT_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal(100_000),
    "USDC": Decimal(100_000),
    "BTC": Decimal(2),
    "ETH": Decimal(20),
    "BNB": Decimal(50),
    "SOL": Decimal(200),
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a simulator run is made of. Times in seconds unless the name says otherwise."""

    host: str = "127.0.0.1"
    port: int = 9900  # 0 picks a free port
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")  # Binance's
    # Other venues' symbols by venue name (``{"coinbase": ("BTC-USD",)}``); a venue not named here lists its
    # defaults (none in replay mode), an empty tuple none at all.
    venue_symbols: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rate: float = 50.0  # synthetic trades per second per symbol; with a universe, of all Binance's symbols together
    seed: int = 1
    replay: tuple[Path, ...] = ()
    speed: float = 1.0
    api_keys: dict[str, str] = field(default_factory=dict)  # key -> secret
    balances: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_BALANCES))
    history_days: float = 7.0
    tick_ms: int = 20  # how often the engine emits what has happened
    ping_interval: float = 20.0
    pong_timeout: float = 60.0
    max_connection_age: float = 24 * 3600.0
    ws_max_incoming_per_s: int = 5
    ws_max_streams: int = 1024
    weight_limit: int = 6000  # request weight per minute per client address
    weight_window_s: int = 60  # the window weight_limit counts over (Binance: a minute; shorter in tests)
    ban_after: int = 5  # requests sent before a 429/418 Retry-After has passed, before the 418 ban
    ban_seconds: int = 120
    kline_push_ms: int = 2000
    subscribe_timeout: float = 5.0  # a Coinbase socket must subscribe this soon after connecting
    warm_history: bool = False  # aggregate the synthetic history in the background at start (the CLI does)
    explicit_symbols: bool = False  # --symbols given with --replay: add them as synthetic
    # data.binance.vision files: a UTC day (or month) is published this many seconds after it ends
    vision_delay: float = 600.0
    universe: int = 0  # synthetic symbols added to every venue (universe.py), 0 for none
