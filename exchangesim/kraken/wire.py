"""Kraken payloads from the engine's integer trades and aggregates.

Choices where Kraken leaves room (``reference/exchange-protocols.md`` section 6):
- Times: the engine's trade times are whole milliseconds; Kraken's are nanoseconds. A trade's time is
  ``t_ms * 10**6 + k`` ns, ``k`` its rank among the trades of the same millisecond (0 for the first), so
  every trade has its own time and ``Trades?since=<last>`` pages on without missing or repeating a trade
  even when a page ends inside a millisecond. REST writes it as float seconds (the float nearest the ns
  time, written in its shortest form), ``last`` as the ns string, WebSocket v2 as RFC 3339 with 6
  fractional digits (the microsecond holding it).
- ``b``/``s`` and ``buy``/``sell`` are the taker's side (Binance's ``m`` false is a buy).
- Order type ``m``/``l`` (``market``/``limit``): a hash of the trade's time, price and side, so the trades
  one taker order printed at one price share it; about 60 % are limit, as in the recorded capture.
- Numbers: REST trade prices have ``max(5, pair_decimals)`` decimals and volumes 8, as the capture shows;
  OHLC prices and vwap have ``pair_decimals`` (a bar without trades has vwap ``0`` written that way:
  ``"0.0"`` for XBT/USD) and volume 8. WebSocket v2 numbers are written from the integers with their exact
  decimal digits, trailing zeros dropped but one decimal kept (``40.0``), never through a float.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from ..engine.aggregate import Agg
from ..engine.batch import TradeBatch
from ..engine.tape import Tape
from ..symbols import SymbolSpec

NS_PER_MS = 1_000_000


def plain(units: int, dp: int) -> str:
    """``units / 10**dp`` with exactly ``dp`` decimals."""
    sign, units = ("-", -units) if units < 0 else ("", units)
    if dp == 0:
        return f"{sign}{units}"
    s = str(units).rjust(dp + 1, "0")
    return f"{sign}{s[:-dp]}.{s[-dp:]}"


def number(units: int, dp: int) -> str:
    """``units / 10**dp`` as the JSON number text Kraken's WebSocket writes: ``0.5117``, ``40.0``."""
    s = plain(units, dp)
    if "." not in s:
        return s + ".0"
    s = s.rstrip("0")
    return s + "0" if s.endswith(".") else s


def iso(t_ns: int, digits: int) -> str:
    """RFC 3339 UTC with ``digits`` (6 or 9) fractional digits, truncated: ``2023-09-25T07:49:37.708706Z``."""
    secs, frac = divmod(t_ns, 10**9)
    head = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{str(frac).rjust(9, '0')[:digits]}Z"


def ns_times(tape: Tape, t: TradeBatch) -> list[int]:
    """Each trade's nanosecond time: its millisecond plus its rank among that millisecond's trades."""
    n = len(t)
    if n == 0:
        return []
    times, ids = t.times, t.ids
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    starts[1:] = times[1:] != times[:-1]
    first = ids[np.maximum.accumulate(np.where(starts, np.arange(n), 0))].copy()
    t0 = int(times[0])
    later = times != t0
    run0 = int(np.argmax(later)) if later.any() else n
    before = tape.trades_between(t0, t0, 1)  # the batch may begin inside its first millisecond
    if len(before):
        first[:run0] = int(before.ids[0])
    return (times.astype(np.int64) * NS_PER_MS + (ids - first)).tolist()


def taker_buys(t: TradeBatch) -> list[bool]:
    return (~t.buyer_maker).tolist()


def limit_orders(t: TradeBatch) -> list[bool]:
    """Whether each trade's taker was a limit order (see the module docstring)."""
    h = (
        t.times.astype(np.uint64) * np.uint64(2654435761)
        + t.prices.astype(np.uint64) * np.uint64(40503)
        + t.buyer_maker.astype(np.uint64) * np.uint64(97)
    ) >> np.uint64(7)
    return ((h % np.uint64(10)) < np.uint64(6)).tolist()


def trade_price(units: int, spec: SymbolSpec) -> str:
    """A REST trade price: ``"30243.40000"``."""
    dp = max(5, spec.price_dp)
    return plain(units * 10 ** (dp - spec.price_dp), dp)


def rest_trades(spec: SymbolSpec, tape: Tape, t: TradeBatch) -> tuple[list[list[object]], list[int]]:
    """``Trades`` rows, oldest first (``[price, volume, time, b|s, m|l, misc, id]``), and their ns times."""
    ns = ns_times(tape, t)
    rows: list[list[object]] = [
        [trade_price(p, spec), plain(q, spec.qty_dp), tn / 10**9, "b" if buy else "s", "l" if lim else "m", "", i]
        for i, p, q, tn, buy, lim in zip(
            t.ids.tolist(), t.prices.tolist(), t.qtys.tolist(), ns, taker_buys(t), limit_orders(t), strict=True
        )
    ]
    return rows, ns


def truth_trades(spec: SymbolSpec, tape: Tape, t: TradeBatch) -> list[dict[str, object]]:
    """/_sim/truth rows, oldest first: the REST row's fields by name (the volume as ``qty``, WebSocket v2's
    name), the ns time, the time in ms and the taker side."""
    rows, ns = rest_trades(spec, tape, t)
    return [
        {
            "trade_id": r[6],
            "price": r[0],
            "qty": r[1],
            "time": r[2],
            "side": r[3],
            "ord_type": r[4],
            "misc": r[5],
            "time_ns": str(tn),
            "time_ms": tn // NS_PER_MS,
            "taker_side": "buy" if r[3] == "b" else "sell",
        }
        for r, tn in zip(rows, ns, strict=True)
    ]


def vwap_units(agg: Agg) -> int:
    """The volume-weighted average price of an aggregate, in ticks, rounded half up."""
    return (2 * agg.quote + agg.volume) // (2 * agg.volume)


def ohlc_row(spec: SymbolSpec, open_ms: int, agg: Agg | None, prev_close: int) -> list[object]:
    """``[time, open, high, low, close, vwap, volume, count]``; a bar without trades is flat at the previous
    close with vwap and volume zero and count 0, as the capture shows."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    if agg is None:
        p = plain(prev_close, pdp)
        return [open_ms // 1000, p, p, p, p, plain(0, pdp), plain(0, qdp), 0]
    return [
        open_ms // 1000,
        plain(agg.open, pdp),
        plain(agg.high, pdp),
        plain(agg.low, pdp),
        plain(agg.close, pdp),
        plain(vwap_units(agg), pdp),
        plain(agg.volume, qdp),
        agg.count,
    ]


# -- WebSocket v2 ------------------------------------------------------------------------------------
def ws_trades(spec: SymbolSpec, v2: str, tape: Tape, t: TradeBatch) -> list[str]:
    """The ``data`` entries of a ``trade`` message, as JSON text."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    return [
        f'{{"symbol":"{v2}","side":"{"buy" if buy else "sell"}","price":{number(p, pdp)},"qty":{number(q, qdp)},'
        f'"ord_type":"{"limit" if lim else "market"}","trade_id":{i},"timestamp":"{iso(tn, 6)}"}}'
        for i, p, q, tn, buy, lim in zip(
            t.ids.tolist(),
            t.prices.tolist(),
            t.qtys.tolist(),
            ns_times(tape, t),
            taker_buys(t),
            limit_orders(t),
            strict=True,
        )
    ]


def ws_ohlc(spec: SymbolSpec, v2: str, minutes: int, open_ms: int, agg: Agg | None, prev_close: int) -> str:
    """One ``data`` entry of an ``ohlc`` message: the bar opening at ``open_ms`` (``timestamp`` is its end)."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    if agg is None:
        o = h = lo = c = vw = prev_close
        vol = count = 0
    else:
        o, h, lo, c, vw, vol, count = agg.open, agg.high, agg.low, agg.close, vwap_units(agg), agg.volume, agg.count
    end_ns = (open_ms + minutes * 60_000) * NS_PER_MS
    return (
        f'{{"symbol":"{v2}","open":{number(o, pdp)},"high":{number(h, pdp)},"low":{number(lo, pdp)},'
        f'"close":{number(c, pdp)},"trades":{count},"volume":{number(vol, qdp)},"vwap":{number(vw, pdp)},'
        f'"interval_begin":"{iso(open_ms * NS_PER_MS, 9)}","interval":{minutes},"timestamp":"{iso(end_ns, 6)}"}}'
    )


def channel_message(channel: str, kind: str, data: list[str], timestamp: str | None = None) -> str:
    """``{"channel": ..., "type": "snapshot"|"update", ["timestamp": ...,] "data": [...]}``."""
    ts = f'"timestamp":"{timestamp}",' if timestamp else ""
    return f'{{"channel":"{channel}","type":"{kind}",{ts}"data":[{",".join(data)}]}}'
