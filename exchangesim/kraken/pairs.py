"""Kraken's four spellings of one pair, and the specs and AssetPairs entries of the simulator's pairs.

Kraken writes BTC as ``XBT`` (DOGE as ``XDG``) and its oldest assets with an X (crypto) or Z (fiat)
prefix: ``XXBT``, ``ZUSD``. One pair therefore has four names: the REST result key ``XXBTZUSD`` (two
legacy codes run together; any other pair's key is its altname, ``XBTUSDT``), the altname ``XBTUSD``, the
v1 WebSocket name ``XBT/USD`` (the simulator's symbol name: its tape is ``kraken:XBT/USD``) and the
WebSocket v2 name ``BTC/USD`` (canonical codes, also the spec's ``base``/``quote``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from ..engine.market import tape_key
from ..symbols import USD_PRICES, SymbolSpec, UnknownSymbolError, id_bases

LEGACY: dict[str, str] = {  # canonical asset -> Kraken's X/Z-prefixed code
    "BTC": "XXBT",
    "ETH": "XETH",
    "LTC": "XLTC",
    "XRP": "XXRP",
    "XLM": "XXLM",
    "ZEC": "XZEC",
    "XMR": "XXMR",
    "ETC": "XETC",
    "MLN": "XMLN",
    "REP": "XREP",
    "DOGE": "XXDG",
    "USD": "ZUSD",
    "EUR": "ZEUR",
    "GBP": "ZGBP",
    "JPY": "ZJPY",
    "CAD": "ZCAD",
    "AUD": "ZAUD",
    "CHF": "ZCHF",
}
ALTNAME: dict[str, str] = {"BTC": "XBT", "DOGE": "XDG"}  # the assets Kraken's altnames spell differently
LEGACY_CODES = frozenset(LEGACY.values())
CANONICAL: dict[str, str] = {**{v: k for k, v in LEGACY.items()}, **{v: k for k, v in ALTNAME.items()}}
# Quote assets an altname can end with, longest first when splitting ("XBTUSDT" is XBT + USDT).
QUOTES = ("PYUSD", "USDT", "USDC", "EURC", "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "XBT", "ETH", "DAI", "DOT")
FIAT = frozenset({"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF"})
STABLE = frozenset({"USDT", "USDC", "PYUSD", "DAI", "EURC"})
PAIR_DECIMALS = {"BTC": 1, "ETH": 2}  # of USD-like quotes, as Kraken lists XBTUSD and ETHUSD
ORDERMIN = {"BTC": "0.0001", "ETH": "0.002"}


def canonical(code: str) -> str:
    """``XBT``/``XXBT`` -> ``BTC``, ``ZUSD`` -> ``USD``; any other code is already canonical."""
    code = code.upper()
    return CANONICAL.get(code, code)


def altcode(asset: str) -> str:
    """An asset as altnames write it: ``BTC`` -> ``XBT``."""
    return ALTNAME.get(asset, asset)


def _split(name: str) -> tuple[str, str]:
    """``XBT/USD``, ``BTC/USD``, ``XXBTZUSD`` or ``XBTUSD`` into canonical base and quote."""
    name = name.strip().upper()
    if "/" in name:
        base, _, quote = name.partition("/")
    elif len(name) == 8 and name[:4] in LEGACY_CODES and name[4:] in LEGACY_CODES:
        base, quote = name[:4], name[4:]
    else:
        quote = next(
            (q for q in sorted(QUOTES, key=len, reverse=True) if name.endswith(q) and len(name) - len(q) >= 2), ""
        )
        base = name[: -len(quote)] if quote else ""
    if not base or not quote or "/" in quote or not (base + quote).isalnum():
        raise UnknownSymbolError(
            f"a Kraken pair is BASE/QUOTE (XBT/USD), an altname (XBTUSD) or a result key (XXBTZUSD), got {name!r}"
        )
    return canonical(base), canonical(quote)


def pair_spec(name: str) -> SymbolSpec:
    """The spec of a pair in any of its spellings; its symbol is the v1 WebSocket name (``XBT/USD``).

    Prices have Kraken's ``pair_decimals`` (1 for XBT/USD, 2 for ETH/USD, finer as the price falls), volumes
    its ``lot_decimals`` (8)."""
    base, quote = _split(name)
    symbol = f"{altcode(base)}/{altcode(quote)}"
    price = USD_PRICES.get(base, 10.0) / USD_PRICES.get(quote, 1.0)
    if quote in FIAT or quote in STABLE:
        price_dp = PAIR_DECIMALS.get(base, min(8, max(1, 5 - math.floor(math.log10(price)))))
    else:
        price_dp = min(8, max(1, 5 - math.floor(math.log10(price))))
    trade_base, agg_base = id_bases(tape_key("kraken", symbol))
    return SymbolSpec(symbol, base, quote, price_dp, 8, price, trade_base // 20, agg_base)


@dataclass(frozen=True, slots=True)
class PairNames:
    """Every name of one pair."""

    key: str  # REST result key: XXBTZUSD
    altname: str  # XBTUSD
    wsname: str  # XBT/USD (the simulator's symbol)
    v2: str  # BTC/USD
    base_code: str  # XXBT
    quote_code: str  # ZUSD


def names(spec: SymbolSpec) -> PairNames:
    base_code, quote_code = LEGACY.get(spec.base, spec.base), LEGACY.get(spec.quote, spec.quote)
    altname = altcode(spec.base) + altcode(spec.quote)
    legacy = spec.base in LEGACY and spec.quote in LEGACY
    return PairNames(
        base_code + quote_code if legacy else altname,
        altname,
        spec.symbol,
        f"{spec.base}/{spec.quote}",
        base_code,
        quote_code,
    )


def _increment(dp: int) -> str:
    return format(Decimal(1).scaleb(-dp), "f")


def _ordermin(spec: SymbolSpec) -> str:
    if spec.base in ORDERMIN:
        return ORDERMIN[spec.base]
    return _increment(max(0, min(8, math.ceil(math.log10(USD_PRICES.get(spec.base, 10.0) / 5)))))


def asset_pair(spec: SymbolSpec) -> dict[str, object]:
    """One ``AssetPairs`` entry, in Kraken's field order."""
    n = names(spec)
    costmin = "0.5" if spec.quote in FIAT or spec.quote in STABLE else "0.00002"
    return {
        "altname": n.altname,
        "wsname": n.wsname,
        "aclass_base": "currency",
        "base": n.base_code,
        "aclass_quote": "currency",
        "quote": n.quote_code,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": spec.price_dp,
        "lot_decimals": spec.qty_dp,
        "lot_multiplier": 1,
        "leverage_buy": [2, 3, 4, 5],
        "leverage_sell": [2, 3, 4, 5],
        "fees": [[0, 0.26], [50000, 0.24]],
        "fees_maker": [[0, 0.16], [50000, 0.14]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": _ordermin(spec),
        "costmin": costmin,
        "tick_size": _increment(spec.price_dp),
        "status": "online",
    }


def asset_entry(asset: str) -> tuple[str, dict[str, object]]:
    """One ``Assets`` entry: ``("XXBT", {"aclass": "currency", "altname": "XBT", ...})``."""
    fiat = asset in FIAT
    return LEGACY.get(asset, asset), {
        "aclass": "currency",
        "altname": altcode(asset),
        "decimals": 4 if fiat else 10,
        "display_decimals": 2 if fiat else 5,
        "status": "enabled",
    }
