"""Canonical instrument names ``BASE-QUOTE`` and each venue's own spelling of them, both ways. Pure: no Django.

- Binance runs the assets together (``BTCUSDT``): split by the known quote assets, longest first.
- Coinbase Exchange already writes ``BTC-USD``.
- Kraken spells one pair four ways: REST result keys ``XXBTZUSD`` (its legacy X/Z-prefixed asset codes run
  together; newer pairs' keys are their altnames), altnames ``XBTUSD``, v1 WebSocket names ``XBT/USD`` and
  WebSocket v2 names ``BTC/USD``. Its ``XBT`` is ``BTC`` and ``XDG`` is ``DOGE``.

Adapters keep Kraken's altname as the venue symbol (``XBTUSD``, what AssetPairs calls it), so a trade read
from REST and the same trade read from WebSocket v2 carry the same ``symbol``.
"""

from __future__ import annotations

import re

EXCHANGES = ("binance", "coinbase", "kraken")
FORMS = ("rest", "ws")
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
_ASSET = r"[A-Z0-9.]+"
_CANONICAL = re.compile(rf"({_ASSET})-({_ASSET})")


def asset(exchange: str, code: str) -> str:
    """The canonical name of one asset as ``exchange`` writes it: ``asset("kraken", "XXBT") == "BTC"``,
    ``asset("kraken", "ZUSD") == "USD"``, ``asset("kraken", "XDG") == "DOGE"``; other venues' codes are kept."""
    _exchange(exchange)
    if not isinstance(code, str) or not re.fullmatch(_ASSET, code):
        raise ValueError(f"{exchange} asset code must be upper-case letters and digits, got {code!r:.40}")
    return KRAKEN_ALIASES.get(code, code) if exchange == "kraken" else code


def canonical(exchange: str, venue_symbol: str) -> str:
    """``BASE-QUOTE`` of a venue's symbol::

        canonical("binance", "BTCUSDT") == "BTC-USDT"      # split by known quotes, longest first
        canonical("coinbase", "BTC-USD") == "BTC-USD"
        canonical("kraken", "XXBTZUSD") == canonical("kraken", "XBTUSD") == "BTC-USD"
        canonical("kraken", "XBT/USD") == canonical("kraken", "BTC/USD") == "BTC-USD"

    An unknown exchange, or a symbol that cannot be split into two assets, is a ValueError naming it.
    """
    _exchange(exchange)
    if not isinstance(venue_symbol, str) or not venue_symbol:
        raise ValueError(f"{exchange} symbol must be a non-empty string, got {venue_symbol!r:.40}")
    base, quote = _split(exchange, venue_symbol)
    return f"{asset(exchange, base)}-{asset(exchange, quote)}"


def venue_symbol(exchange: str, canonical_name: str, form: str = "rest") -> str:
    """How ``exchange`` writes ``canonical_name`` (``BASE-QUOTE``); ``form`` is "rest" or "ws"::

        venue_symbol("binance", "BTC-USDT") == "BTCUSDT"              # both forms
        venue_symbol("coinbase", "BTC-USD") == "BTC-USD"              # both forms
        venue_symbol("kraken", "BTC-USD") == "XBTUSD"                 # the altname
        venue_symbol("kraken", "BTC-USD", form="ws") == "BTC/USD"     # WebSocket v2

    The answer maps back to ``canonical_name`` (a pair :func:`canonical` could not read back is a ValueError).
    """
    _exchange(exchange)
    if form not in FORMS:
        raise ValueError(f"symbol form must be one of {', '.join(FORMS)}, got {form!r:.40}")
    match = _CANONICAL.fullmatch(canonical_name) if isinstance(canonical_name, str) else None
    if match is None:
        raise ValueError(f"canonical symbol must be BASE-QUOTE in upper case, got {canonical_name!r:.40}")
    base, quote = match.groups()
    if exchange == "binance":
        out = base + quote
    elif exchange == "coinbase":
        out = canonical_name
    elif form == "ws":
        out = f"{base}/{quote}"
    else:
        out = KRAKEN_ALTNAME_ASSETS.get(base, base) + KRAKEN_ALTNAME_ASSETS.get(quote, quote)
    try:
        back = canonical(exchange, out)
    except ValueError as exc:
        raise ValueError(f"{exchange} symbol {out!r} for {canonical_name!r} would not read back: {exc}") from None
    if back != canonical_name:
        raise ValueError(f"{exchange} symbol {out!r} for {canonical_name!r} would read back as {back!r}")
    return out


def _split(exchange: str, symbol: str) -> tuple[str, str]:
    if exchange == "coinbase":
        parts = symbol.split("-")
    elif exchange == "kraken" and "/" in symbol:
        parts = symbol.split("/")
    else:
        parts = _split_run_together(exchange, symbol.upper() if exchange == "binance" else symbol)
    if len(parts) != 2 or not all(re.fullmatch(_ASSET, p) for p in parts):
        raise ValueError(f"cannot split {exchange} symbol {symbol!r:.40} into base and quote assets")
    return parts[0], parts[1]


def _split_run_together(exchange: str, symbol: str) -> list[str]:
    """``BTCUSDT`` or ``XXBTZUSD``/``XBTUSD`` into its two asset codes ([] when no known quote ends it)."""
    if exchange == "kraken":
        if len(symbol) == 8 and symbol[:4] in KRAKEN_LEGACY and symbol[4:] in KRAKEN_LEGACY:
            return [symbol[:4], symbol[4:]]
        for quote in KRAKEN_LEGACY_QUOTES:  # "USDTZUSD"; but "XTZUSD" is XTZ + USD, so the base needs 3+ letters
            if symbol.endswith(quote) and len(symbol) - len(quote) >= 3:
                return [symbol[: -len(quote)], quote]
    quotes = KRAKEN_QUOTES if exchange == "kraken" else BINANCE_QUOTES
    for quote in sorted(quotes, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return [symbol[: -len(quote)], quote]
    return []


def _exchange(exchange: str) -> None:
    if exchange not in EXCHANGES:
        raise ValueError(f"unknown exchange {exchange!r:.40}; known: {', '.join(EXCHANGES)}")
