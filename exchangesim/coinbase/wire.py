"""Coinbase Exchange payloads from the engine's integer trades.

Sides on the wire are the MAKER's: a trade whose taker sold (Binance's ``m`` true, the buyer was the
maker) is ``"buy"``. Trade times are ISO-8601 UTC with microseconds (the engine's times are whole
milliseconds, so the last three digits are zero). REST prices have 8 decimals, feed prices the
product's quote increment; sizes have 8 decimals everywhere.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from ..binance.wire import fmt
from ..engine.aggregate import Agg
from ..engine.batch import TradeBatch
from ..symbols import SymbolSpec

SEQ_BASE = 50_000_000_000
SEQ_PER_TRADE = 37  # the full channel's other messages fall between two matches


def iso_us(t_ms: int) -> str:
    """``2020-01-31T20:03:41.158000Z``."""
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}000Z"


def iso_ms(t_ms: int) -> str:
    """``2020-05-12T08:00:51.504Z`` (``GET /time``)."""
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}Z"


def plain(units: int, dp: int) -> str:
    """``units / 10**dp`` with exactly ``dp`` decimals."""
    if dp == 0:
        return str(units)
    s = str(units).rjust(dp + 1, "0")
    return f"{s[:-dp]}.{s[-dp:]}"


def increment(dp: int) -> str:
    return format(Decimal(1).scaleb(-dp), "f")


def maker_side(buyer_maker: bool) -> str:
    return "buy" if buyer_maker else "sell"


def sequence(trade_id: int) -> int:
    """The feed sequence of a match: increasing with the trade id, with gaps as on the full channel."""
    return SEQ_BASE + SEQ_PER_TRADE * trade_id


def order_id(product: str, trade_id: int, role: str) -> str:
    """A deterministic version-4 UUID for the maker (``"m"``) or taker (``"t"``) order of a trade."""
    digest = hashlib.blake2b(f"{product}:{trade_id}:{role}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def product(spec: SymbolSpec) -> dict[str, object]:
    """One ``GET /products`` entry."""
    return {
        "id": spec.symbol,
        "base_currency": spec.base,
        "quote_currency": spec.quote,
        "quote_increment": increment(spec.price_dp),
        "base_increment": increment(spec.qty_dp),
        "display_name": f"{spec.base}/{spec.quote}",
        "min_market_funds": "1",
        "margin_enabled": False,
        "post_only": False,
        "limit_only": False,
        "cancel_only": False,
        "status": "online",
        "status_message": "",
        "trading_disabled": False,
        "fx_stablecoin": False,
        "max_slippage_percentage": "0.02000000",
        "auction_mode": False,
        "high_bid_limit_percentage": "",
    }


def rest_trades(spec: SymbolSpec, t: TradeBatch) -> list[dict[str, object]]:
    """``GET /products/{id}/trades`` rows, newest first."""
    pdp, qdp = spec.price_dp, spec.qty_dp
    return [
        {"time": iso_us(ts), "trade_id": i, "price": fmt(p, pdp), "size": fmt(q, qdp), "side": maker_side(m)}
        for i, p, q, ts, m in zip(
            t.ids.tolist()[::-1],
            t.prices.tolist()[::-1],
            t.qtys.tolist()[::-1],
            t.times.tolist()[::-1],
            t.buyer_maker.tolist()[::-1],
            strict=True,
        )
    ]


def truth_trades(spec: SymbolSpec, t: TradeBatch) -> list[dict[str, object]]:
    """/_sim/truth rows, oldest first: the REST row plus the taker side and the time in ms."""
    rows = rest_trades(spec, t)[::-1]
    for row, ts in zip(rows, t.times.tolist(), strict=True):
        row["taker_side"] = "sell" if row["side"] == "buy" else "buy"
        row["time_ms"] = ts
    return rows


def candle(spec: SymbolSpec, open_ms: int, agg: Agg) -> list[float | int]:
    """``[time, low, high, open, close, volume]``: time in seconds, the rest JSON numbers."""
    ps, qs = spec.price_scale, spec.qty_scale
    return [open_ms // 1000, agg.low / ps, agg.high / ps, agg.open / ps, agg.close / ps, agg.volume / qs]


def matches(spec: SymbolSpec, t: TradeBatch, kind: str = "match") -> list[str]:
    """Feed ``match`` (or ``last_match``) messages, oldest first."""
    pid, pdp, qdp = spec.symbol, spec.price_dp, spec.qty_dp
    return [
        f'{{"type":"{kind}","trade_id":{i},"maker_order_id":"{order_id(pid, i, "m")}",'
        f'"taker_order_id":"{order_id(pid, i, "t")}","side":"{maker_side(m)}","size":"{fmt(q, qdp)}",'
        f'"price":"{plain(p, pdp)}","product_id":"{pid}","sequence":{sequence(i)},"time":"{iso_us(ts)}"}}'
        for i, p, q, ts, m in zip(
            t.ids.tolist(), t.prices.tolist(), t.qtys.tolist(), t.times.tolist(), t.buyer_maker.tolist(), strict=True
        )
    ]


def heartbeat(product_id: str, last_trade_id: int | None, t_ms: int) -> str:
    last = last_trade_id or 0
    return json.dumps(
        {
            "type": "heartbeat",
            "sequence": sequence(last),
            "last_trade_id": last,
            "product_id": product_id,
            "time": iso_us(t_ms),
        },
        separators=(",", ":"),
    )


def error(message: str, reason: str) -> str:
    return json.dumps({"type": "error", "message": message, "reason": reason}, separators=(",", ":"))
