"""Canonical instrument names ``BASE-QUOTE`` and each venue's own spelling of them, both ways. Pure: no Django.

Each venue's rules are data in :mod:`.registry` (:class:`~.registry.SymbolRules`); this module applies them:

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

from .registry import KRAKEN_ALIASES, SymbolRules, venue

# KRAKEN_ALIASES is the registry's; re-exported for the API's reading of a base asset (XBT, XDG).
__all__ = ["FORMS", "KRAKEN_ALIASES", "as_stored", "asset", "canonical", "venue_symbol"]

FORMS = ("rest", "ws")
_ASSET = r"[A-Z0-9.]+"
_CANONICAL = re.compile(rf"({_ASSET})-({_ASSET})")


def asset(exchange: str, code: str) -> str:
    """The canonical name of one asset as ``exchange`` writes it: ``asset("kraken", "XXBT") == "BTC"``,
    ``asset("kraken", "ZUSD") == "USD"``, ``asset("kraken", "XDG") == "DOGE"``; other venues' codes are kept."""
    rules = _rules(exchange)
    if not isinstance(code, str) or not re.fullmatch(_ASSET, code):
        raise ValueError(f"{exchange} asset code must be upper-case letters and digits, got {code!r:.40}")
    return rules.aliases.get(code, code)


def canonical(exchange: str, venue_symbol: str) -> str:
    """``BASE-QUOTE`` of a venue's symbol::

        canonical("binance", "BTCUSDT") == "BTC-USDT"      # split by known quotes, longest first
        canonical("coinbase", "BTC-USD") == "BTC-USD"
        canonical("kraken", "XXBTZUSD") == canonical("kraken", "XBTUSD") == "BTC-USD"
        canonical("kraken", "XBT/USD") == canonical("kraken", "BTC/USD") == "BTC-USD"

    An unknown exchange, or a symbol that cannot be split into two assets, is a ValueError naming it.
    """
    rules = _rules(exchange)
    if not isinstance(venue_symbol, str) or not venue_symbol:
        raise ValueError(f"{exchange} symbol must be a non-empty string, got {venue_symbol!r:.40}")
    base, quote = _split(exchange, rules, venue_symbol)
    return f"{asset(exchange, base)}-{asset(exchange, quote)}"


def venue_symbol(exchange: str, canonical_name: str, form: str = "rest") -> str:
    """How ``exchange`` writes ``canonical_name`` (``BASE-QUOTE``); ``form`` is "rest" or "ws"::

        venue_symbol("binance", "BTC-USDT") == "BTCUSDT"              # both forms
        venue_symbol("coinbase", "BTC-USD") == "BTC-USD"              # both forms
        venue_symbol("kraken", "BTC-USD") == "XBTUSD"                 # the altname
        venue_symbol("kraken", "BTC-USD", form="ws") == "BTC/USD"     # WebSocket v2

    The answer maps back to ``canonical_name`` (a pair :func:`canonical` could not read back is a ValueError).
    """
    rules = _rules(exchange)
    if form not in FORMS:
        raise ValueError(f"symbol form must be one of {', '.join(FORMS)}, got {form!r:.40}")
    match = _CANONICAL.fullmatch(canonical_name) if isinstance(canonical_name, str) else None
    if match is None:
        raise ValueError(f"canonical symbol must be BASE-QUOTE in upper case, got {canonical_name!r:.40}")
    base, quote = match.groups()
    spelling = rules.rest if form == "rest" else rules.ws
    out = spelling.assets.get(base, base) + spelling.separator + spelling.assets.get(quote, quote)
    try:
        back = canonical(exchange, out)
    except ValueError as exc:
        raise ValueError(f"{exchange} symbol {out!r} for {canonical_name!r} would not read back: {exc}") from None
    if back != canonical_name:
        raise ValueError(f"{exchange} symbol {out!r} for {canonical_name!r} would read back as {back!r}")
    return out


def as_stored(exchange: str, symbol: str) -> str:
    """``symbol`` as ``exchange``'s instruments are stored: a venue that writes one pair several ways has it
    respelled (``as_stored("kraken", "BTC/USD") == as_stored("kraken", "XBT/USD") == "XBTUSD"``), any other
    keeps it as given. A ValueError names a symbol that cannot be read."""
    rules = _rules(exchange)
    return venue_symbol(exchange, canonical(exchange, symbol)) if rules.respelled else symbol


def _split(exchange: str, rules: SymbolRules, symbol: str) -> tuple[str, str]:
    separator = next((s for s in rules.separators if s in symbol), None)
    if separator is not None:
        parts = symbol.split(separator)
    else:
        parts = _split_run_together(rules, symbol.upper() if rules.upper else symbol)
    if len(parts) != 2 or not all(re.fullmatch(_ASSET, p) for p in parts):
        raise ValueError(f"cannot split {exchange} symbol {symbol!r:.40} into base and quote assets")
    return parts[0], parts[1]


def _split_run_together(rules: SymbolRules, symbol: str) -> list[str]:
    """``BTCUSDT`` or ``XXBTZUSD``/``XBTUSD`` into its two asset codes ([] when no known quote ends it)."""
    if len(symbol) == 8 and symbol[:4] in rules.legacy and symbol[4:] in rules.legacy:
        return [symbol[:4], symbol[4:]]
    for quote in rules.legacy_quotes:  # "USDTZUSD"; but "XTZUSD" is XTZ + USD, so the base needs 3+ letters
        if symbol.endswith(quote) and len(symbol) - len(quote) >= 3:
            return [symbol[: -len(quote)], quote]
    for quote in sorted(rules.quotes, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return [symbol[: -len(quote)], quote]
    return []


def _rules(exchange: str) -> SymbolRules:
    return venue(exchange).symbols
