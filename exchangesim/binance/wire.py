"""Binance payloads from the engine's integer trades: strings with 8 decimals, exact field order."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from ..engine.aggregate import Agg
from ..engine.batch import AggBatch, TradeBatch
from ..symbols import SymbolSpec

_Q8 = Decimal("0.00000001")


def fmt(units: int, dp: int) -> str:
    """``units / 10**dp`` with exactly 8 decimals, as Binance writes prices and quantities."""
    if dp <= 8:
        s = str(units).rjust(dp + 1, "0")
        if dp == 0:
            return s + ".00000000"
        return f"{s[:-dp]}.{s[-dp:]}{'0' * (8 - dp)}"
    # Fixed-point text: str() of a small Decimal would use exponent notation ("2E-8").
    return format(Decimal(units).scaleb(-dp).quantize(_Q8, rounding=ROUND_HALF_EVEN), "f")


def dec(units: int, dp: int) -> Decimal:
    return Decimal(units).scaleb(-dp)


def rest_trades(spec: SymbolSpec, t: TradeBatch) -> list[dict[str, object]]:
    """``/api/v3/trades`` and ``historicalTrades`` rows."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    return [
        {
            "id": i,
            "price": fmt(p, pdp),
            "qty": fmt(q, qdp),
            "quoteQty": fmt(p * q, pdp + qdp),
            "time": ts,
            "isBuyerMaker": m,
            "isBestMatch": True,
        }
        for i, p, q, ts, m in zip(
            t.ids.tolist(), t.prices.tolist(), t.qtys.tolist(), t.times.tolist(), t.buyer_maker.tolist(), strict=True
        )
    ]


def rest_aggs(spec: SymbolSpec, a: AggBatch) -> list[dict[str, object]]:
    """``/api/v3/aggTrades`` rows."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    return [
        {"a": i, "p": fmt(p, pdp), "q": fmt(q, qdp), "f": f, "l": la, "T": ts, "m": m, "M": True}
        for i, p, q, f, la, ts, m in zip(
            a.agg_ids.tolist(),
            a.prices.tolist(),
            a.qtys.tolist(),
            a.first_ids.tolist(),
            a.last_ids.tolist(),
            a.times.tolist(),
            a.buyer_maker.tolist(),
            strict=True,
        )
    ]


def kline_row(spec: SymbolSpec, open_ms: int, close_ms: int, agg: Agg | None, prev_close: int) -> list[object]:
    """One 12-field ``/api/v3/klines`` row; an interval without trades is flat at the previous close."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    if agg is None:
        p = fmt(prev_close, pdp)
        z = fmt(0, 0)
        return [open_ms, p, p, p, p, z, close_ms, z, 0, z, z, "0"]
    return [
        open_ms,
        fmt(agg.open, pdp),
        fmt(agg.high, pdp),
        fmt(agg.low, pdp),
        fmt(agg.close, pdp),
        fmt(agg.volume, qdp),
        close_ms,
        fmt(agg.quote, pdp + qdp),
        agg.count,
        fmt(agg.taker_buy_volume, qdp),
        fmt(agg.taker_buy_quote, pdp + qdp),
        "0",
    ]


def ws_trades(spec: SymbolSpec, t: TradeBatch, event_ms: int) -> list[str]:
    """``<sym>@trade`` payloads, one JSON text per trade."""
    pdp, qdp, s = spec.price_dp, spec.qty_dp, spec.symbol
    return [
        f'{{"e":"trade","E":{event_ms},"s":"{s}","t":{i},"p":"{fmt(p, pdp)}","q":"{fmt(q, qdp)}",'
        f'"T":{ts},"m":{"true" if m else "false"},"M":true}}'
        for i, p, q, ts, m in zip(
            t.ids.tolist(), t.prices.tolist(), t.qtys.tolist(), t.times.tolist(), t.buyer_maker.tolist(), strict=True
        )
    ]


def ws_aggs(spec: SymbolSpec, a: AggBatch, event_ms: int) -> list[str]:
    """``<sym>@aggTrade`` payloads."""
    pdp, qdp, s = spec.price_dp, spec.qty_dp, spec.symbol
    return [
        f'{{"e":"aggTrade","E":{event_ms},"s":"{s}","a":{i},"p":"{fmt(p, pdp)}","q":"{fmt(q, qdp)}",'
        f'"f":{f},"l":{la},"T":{ts},"m":{"true" if m else "false"},"M":true}}'
        for i, p, q, f, la, ts, m in zip(
            a.agg_ids.tolist(),
            a.prices.tolist(),
            a.qtys.tolist(),
            a.first_ids.tolist(),
            a.last_ids.tolist(),
            a.times.tolist(),
            a.buyer_maker.tolist(),
            strict=True,
        )
    ]


def ws_kline(
    spec: SymbolSpec,
    interval: str,
    open_ms: int,
    close_ms: int,
    agg: Agg | None,
    prev_close: int,
    closed: bool,
    event_ms: int,
) -> str:
    """A ``<sym>@kline_<interval>`` payload."""
    row = kline_row(spec, open_ms, close_ms, agg, prev_close)
    first, last = (agg.first_id, agg.last_id) if agg else (-1, -1)
    s = spec.symbol
    return (
        f'{{"e":"kline","E":{event_ms},"s":"{s}","k":{{"t":{open_ms},"T":{close_ms},"s":"{s}","i":"{interval}",'
        f'"f":{first},"L":{last},"o":"{row[1]}","c":"{row[4]}","h":"{row[2]}","l":"{row[3]}","v":"{row[5]}",'
        f'"n":{row[8]},"x":{"true" if closed else "false"},"q":"{row[7]}","V":"{row[9]}","Q":"{row[10]}",'
        f'"B":"0"}}}}'
    )


def ws_book_ticker(spec: SymbolSpec, update_id: int, bid: int, ask: int, bid_qty: int, ask_qty: int) -> str:
    """A ``<sym>@bookTicker`` payload (no ``e``/``E``, as on Binance)."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    return (
        f'{{"u":{update_id},"s":"{spec.symbol}","b":"{fmt(bid, pdp)}","B":"{fmt(bid_qty, qdp)}",'
        f'"a":"{fmt(ask, pdp)}","A":"{fmt(ask_qty, qdp)}"}}'
    )


def ws_mini_ticker(spec: SymbolSpec, agg: Agg | None, open_price: int, last: int, event_ms: int) -> str:
    """A ``<sym>@miniTicker`` payload over the rolling 24 hours."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    if agg is None:
        h = lo = last
        v = q = 0
    else:
        h, lo, v, q = agg.high, agg.low, agg.volume, agg.quote
    return (
        f'{{"e":"24hrMiniTicker","E":{event_ms},"s":"{spec.symbol}","c":"{fmt(last, pdp)}",'
        f'"o":"{fmt(open_price, pdp)}","h":"{fmt(h, pdp)}","l":"{fmt(lo, pdp)}","v":"{fmt(v, qdp)}",'
        f'"q":"{fmt(q, pdp + qdp)}"}}'
    )
