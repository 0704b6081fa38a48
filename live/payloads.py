"""The page's prices and quantities printed by the one rule (``markets.numbers.plain``) before they leave the server:
the browser shows each string as it comes (a JavaScript Number would lose exactness). Prices and quote amounts
to the instrument's tick, base quantities to its step, profit and loss without trailing zeros."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from markets.numbers import plain
from markets.places import Places, instrument_places

PRICE, QTY, PNL = "price", "qty", None
TRADE = {"price": PRICE, "qty": QTY}
CANDLE = {"open": PRICE, "high": PRICE, "low": PRICE, "close": PRICE, "volume": QTY}
POSITION = {
    "qty": QTY,
    "entry_price": PRICE,
    "stop_price": PRICE,
    "take_profit_price": PRICE,
    "last_price": PRICE,
    "fees": PRICE,
    "exit_price": PRICE,
    "unrealised_pnl": PNL,
    "realised_pnl": PNL,
}
ORDER = {"qty": QTY, "price": PRICE, "stop_price": PRICE, "executed_qty": QTY, "avg_price": PRICE, "fee": PRICE}
Memo = dict[tuple[str, str], Places]


def priced(data: Mapping[str, Any], fields: Mapping[str, str | None], places: Places) -> dict[str, Any]:
    """``data`` with each of ``fields`` (name → "price", "qty" or None) printed by :func:`plain`."""
    out = dict(data)
    for name, kind in fields.items():
        if out.get(name) is not None:
            out[name] = plain(out[name], places.of(kind))
    return out


def priced_rows(
    rows: Iterable[Mapping[str, Any]], fields: Mapping[str, str | None], memo: Memo
) -> list[dict[str, Any]]:
    """Rows of any instruments (positions, orders, last prices), each by its own ``exchange`` and ``symbol``'s
    places; ``memo`` keeps the places already read. Reads the database: call from a thread."""
    return [priced(r, fields, instrument_places(str(r.get("exchange")), str(r.get("symbol")), memo=memo)) for r in rows]


def known(rows: Iterable[Mapping[str, Any]], memo: Memo) -> bool:
    """Whether every row's instrument is in ``memo`` already (then :func:`priced_rows` reads nothing)."""
    return all((r.get("exchange"), r.get("symbol")) in memo for r in rows)
