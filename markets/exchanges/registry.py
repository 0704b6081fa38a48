"""Every exchange this project knows, in one table: name → adapters, URL settings, default instruments,
capabilities and symbol rules. Pure: no Django (settings are named here and read by :mod:`markets.venues`).

Differences between exchanges are declared here as data (STYLE.md §2); no other module branches on an exchange's
name. A row (:class:`Venue`) holds:

- ``rest`` / ``stream``: factories of its REST and live-feed adapters (the Protocols of :mod:`.base`). They import
  the exchange's package when called, not before: its parsers import :mod:`.symbols`, which reads this table.
- ``rest_url_setting`` / ``ws_url_setting`` / ``credential_settings``: the settings that point it somewhere (the
  simulator in tests and demos) and, for a venue that signs requests, the keys it signs with;
- ``default_instruments``: (symbol, base, quote) seeded by ``manage.py seed_instruments`` and streamed by default;
- ``signed_orders``: whether it takes signed orders through our Binance executor (without, trading is paper);
- ``symbols``: how it spells a pair (:class:`SymbolRules`, applied by :mod:`.symbols`);
- ``sockets``: how far its live sockets may be used (:class:`SocketLimits`: streams per socket, messages a second,
  new connections per window), which the stream keeps under;
- ``bulk_files``: where it publishes its trades as daily and monthly files (:class:`BulkFiles`), which a trades
  backfill downloads instead of paging REST (:mod:`markets.bulk`); None for a venue that publishes none.

To add an exchange: its package behind the Protocols of :mod:`.base`, a row here, its settings in
``tradingsite/settings.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .base import RestAdapter, StreamAdapter
from .retry import OnWait, RetryPolicy

# -- symbol rules ---------------------------------------------------------------------------------------------

BINANCE_QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USDP",
    "BTC",
    "ETH",
    "BNB",
    "EUR",
    "GBP",
    "TRY",
    "BRL",
    "JPY",
    "AUD",
    "DAI",
    "USD",
)
# Kraken's legacy asset codes: X + crypto, Z + fiat. Newer assets have no prefix (XTZ is Tezos, not "TZ").
KRAKEN_LEGACY = {
    "XXBT": "BTC",
    "XETH": "ETH",
    "XLTC": "LTC",
    "XXRP": "XRP",
    "XXLM": "XLM",
    "XZEC": "ZEC",
    "XXMR": "XMR",
    "XETC": "ETC",
    "XMLN": "MLN",
    "XREP": "REP",
    "XXDG": "DOGE",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZJPY": "JPY",
    "ZCAD": "CAD",
    "ZAUD": "AUD",
    "ZCHF": "CHF",
}
KRAKEN_ALIASES = {**KRAKEN_LEGACY, "XBT": "BTC", "XDG": "DOGE"}
KRAKEN_ALTNAME_ASSETS = {"BTC": "XBT", "DOGE": "XDG"}  # the only assets an altname spells differently
KRAKEN_QUOTES = (
    "PYUSD",
    "USDT",
    "USDC",
    "USDG",
    "EURC",
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "CAD",
    "AUD",
    "CHF",
    "XBT",
    "ETH",
    "DAI",
    "DOT",
)
KRAKEN_LEGACY_QUOTES = ("ZUSD", "ZEUR", "ZGBP", "ZJPY", "ZCAD", "ZAUD", "ZCHF", "XXBT", "XETH")


@dataclass(frozen=True, slots=True)
class Spelling:
    """How a venue writes a canonical pair in one form: its two asset codes joined by ``separator``, each code
    as in ``assets`` (canonical → the venue's) where the venue spells it differently."""

    separator: str = ""
    assets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """How a venue spells its pairs, read both ways by :mod:`.symbols`.

    Written: ``rest`` (REST, and how the symbol is stored) and ``ws`` (its live feed). Read: a symbol holding one
    of ``separators`` is split there; else it is two codes run together, split off a known quote (``quotes``,
    longest first), after ``legacy`` 4+4-letter codes and ``legacy_quotes`` (Kraken's ``XXBTZUSD``); with no
    ``quotes`` a symbol is never run together. ``aliases`` map the venue's asset codes to canonical ones.
    ``upper``: read case-insensitively (stream names are lower case). ``respelled``: one pair is written several
    ways (Kraken's XBT/USD, BTC/USD, XBTUSD) and stored under its ``rest`` spelling, so input is respelled.
    """

    rest: Spelling
    ws: Spelling
    separators: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()
    legacy: Mapping[str, str] = field(default_factory=dict)
    legacy_quotes: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    upper: bool = False
    respelled: bool = False


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """How the stream uses a venue's live sockets, kept under the venue's published rules.

    ``streams_per_socket``: symbols one socket carries at most (more symbols, more sockets). ``messages_per_second``:
    what we send on one socket in any second at most (subscribes, unsubscribes, pings, replies), below the venue's
    limit (the stream's pacer adds a margin for the network: ``markets.stream.pacing``). ``connections`` per
    ``window_seconds``: new sockets this process opens at most (reconnects included), below the venue's per-IP
    limit."""

    streams_per_socket: int
    messages_per_second: int
    connections: int
    window_seconds: float
    source: str = ""  # where the venue's numbers come from

    def __post_init__(self) -> None:
        if min(self.streams_per_socket, self.messages_per_second, self.connections) < 1 or self.window_seconds <= 0:
            raise ValueError(f"socket limits must be positive: {self}")


@dataclass(frozen=True, slots=True)
class BulkFiles:
    """A venue's public files of aggregate trades, laid out as data.binance.vision (read by
    :mod:`.binance_vision` and fetched by :mod:`.binance_vision_download`): the setting naming their base URL, and
    the URL used while that setting is absent."""

    url_setting: str
    default_url: str


# -- adapters ------------------------------------------------------------------------------------------------


class RestFactory(Protocol):
    """Builds a venue's REST adapter on ``url``; ``credentials`` are the keywords of ``credential_settings``."""

    def __call__(
        self, url: str, *, on_wait: OnWait | None, policy: RetryPolicy | None, **credentials: str
    ) -> RestAdapter: ...


class StreamFactory(Protocol):
    """Builds a venue's live-feed adapter on ``url`` for ``symbols``; ``kind`` is the trade stream asked for."""

    def __call__(self, url: str, symbols: tuple[str, ...], kind: str) -> StreamAdapter: ...


def _binance_rest(url: str, *, on_wait: OnWait | None, policy: RetryPolicy | None, **credentials: str) -> RestAdapter:
    from .binance import BinanceRest

    return BinanceRest(url, on_wait=on_wait, policy=policy, **credentials)


def _coinbase_rest(url: str, *, on_wait: OnWait | None, policy: RetryPolicy | None, **_: str) -> RestAdapter:
    from .coinbase.rest import CoinbaseRest

    return CoinbaseRest(url, on_wait=on_wait, policy=policy)


def _kraken_rest(url: str, *, on_wait: OnWait | None, policy: RetryPolicy | None, **_: str) -> RestAdapter:
    from .kraken.rest import KrakenRest

    return KrakenRest(url, on_wait=on_wait, policy=policy)


def _binance_stream(url: str, symbols: tuple[str, ...], kind: str) -> StreamAdapter:
    from .binance.stream import BinanceStream

    return BinanceStream(url, symbols, kind)  # checks the kind itself (binance.stream.STREAM_KINDS)


def _coinbase_stream(url: str, symbols: tuple[str, ...], kind: str) -> StreamAdapter:
    _one_trade_stream("coinbase", kind)
    from .coinbase.stream import CoinbaseStream

    return CoinbaseStream(url, symbols)


def _kraken_stream(url: str, symbols: tuple[str, ...], kind: str) -> StreamAdapter:
    _one_trade_stream("kraken", kind)
    from .kraken.stream import KrakenStream

    return KrakenStream(url, symbols)


def _one_trade_stream(exchange: str, kind: str) -> None:
    """A venue with one trade stream takes only the default kind (``--stream`` names Binance's streams)."""
    if kind != "aggTrade":
        raise ValueError(f"--stream {kind} is Binance's; {exchange} has one trade stream")


# -- the table -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Venue:
    """One exchange: its adapters, settings, defaults, capabilities and symbol rules (see the module docstring)."""

    name: str
    rest: RestFactory
    stream: StreamFactory
    rest_url_setting: str
    ws_url_setting: str
    default_instruments: tuple[tuple[str, str, str], ...]
    symbols: SymbolRules
    sockets: SocketLimits
    signed_orders: bool = False
    credential_settings: Mapping[str, str] = field(default_factory=dict)  # factory keyword → setting name
    bulk_files: BulkFiles | None = None


VENUES: dict[str, Venue] = {
    v.name: v
    for v in (
        Venue(
            name="binance",
            rest=_binance_rest,
            stream=_binance_stream,
            rest_url_setting="BINANCE_REST_URL",
            ws_url_setting="BINANCE_WS_URL",
            default_instruments=(
                ("BTCUSDT", "BTC", "USDT"),
                ("ETHUSDT", "ETH", "USDT"),
                ("BNBUSDT", "BNB", "USDT"),
                ("SOLUSDT", "SOL", "USDT"),
            ),
            symbols=SymbolRules(rest=Spelling(), ws=Spelling(), quotes=BINANCE_QUOTES, upper=True),
            # Binance: 1,024 streams a connection; 5 incoming messages a second (pings and pongs count: 4 leaves room
            # for the pongs the client library sends); 300 connections per 5 minutes per IP (250 leaves room for the
            # other processes of the host, a backfill's, a second worker's).
            sockets=SocketLimits(1024, 4, 250, 300.0, "Binance WebSocket Streams: limits"),
            signed_orders=True,
            credential_settings={"api_key": "BINANCE_API_KEY", "api_secret": "BINANCE_API_SECRET"},
            bulk_files=BulkFiles("BINANCE_DATA_URL", "https://data.binance.vision"),
        ),
        Venue(
            name="coinbase",
            rest=_coinbase_rest,
            stream=_coinbase_stream,
            rest_url_setting="COINBASE_REST_URL",
            ws_url_setting="COINBASE_WS_URL",
            default_instruments=(("BTC-USD", "BTC", "USD"), ("ETH-USD", "ETH", "USD")),
            symbols=SymbolRules(rest=Spelling("-"), ws=Spelling("-"), separators=("-",)),
            # Coinbase Exchange: 8 connections a second per IP (bursts of 20), 100 messages a second per IP from the
            # client; no number of products per socket is published: 100 keeps a socket's frames modest.
            sockets=SocketLimits(100, 5, 4, 1.0, "Coinbase Exchange WebSocket rate limits"),
        ),
        Venue(
            name="kraken",
            rest=_kraken_rest,
            stream=_kraken_stream,
            rest_url_setting="KRAKEN_REST_URL",
            ws_url_setting="KRAKEN_WS_URL",
            default_instruments=(("XBTUSD", "BTC", "USD"), ("ETHUSD", "ETH", "USD")),
            symbols=SymbolRules(
                rest=Spelling("", KRAKEN_ALTNAME_ASSETS),  # the altname: XBTUSD
                ws=Spelling("/"),  # WebSocket v2: BTC/USD
                separators=("/",),
                quotes=KRAKEN_QUOTES,
                legacy=KRAKEN_LEGACY,
                legacy_quotes=KRAKEN_LEGACY_QUOTES,
                aliases=KRAKEN_ALIASES,
                respelled=True,
            ),
            # Kraken publishes no fixed message rate (it varies with load) and no pairs-per-socket number; its
            # connection limit is per IP over a rolling window. Conservative: 100 pairs, 2 messages a second, 60
            # new connections per 10 minutes.
            sockets=SocketLimits(100, 2, 60, 600.0, "Kraken spot WebSocket rate limits (no fixed numbers)"),
        ),
    )
}
NAMES: tuple[str, ...] = tuple(VENUES)


def venue(name: str) -> Venue:
    """The row of exchange ``name``; a ValueError naming the known ones if there is none."""
    try:
        return VENUES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown exchange {name!r:.40}; known: {', '.join(NAMES)}") from None
