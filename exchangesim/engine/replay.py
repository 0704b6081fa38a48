"""Replay of recorded markets: Binance WebSocket captures and Binance's bulk CSV files.

Supported inputs:
- a capture (``.gz`` or plain text), one message a line: ``<receive ns> <combined-stream JSON>``;
  its ``<sym>@trade`` frames are the trades (other streams are ignored);
- data.binance.vision CSVs (``.csv`` or ``.zip``), recognised by name:
  ``SYMBOL-trades-*`` (id, price, qty, quote_qty, time, is_buyer_maker, is_best_match),
  ``SYMBOL-aggTrades-*`` (agg id, price, qty, first id, last id, time, is_buyer_maker, best match),
  ``SYMBOL-<interval>-*`` klines (open time, o, h, l, c, volume, close time, ...): trades are made up
  per kline, seeded, so that open, high, low, close, volume, trade count and taker-buy volume match.

A replay plays at ``speed`` times real time from the simulator's start and loops forever; each loop
continues the ids and times, so ids stay contiguous and times monotonic. Loop 0 starts at the
simulator's start with the recorded ids; the loop before it (ids just below the recorded ones) is
the tape's history, so REST history requests have data from the first moment. A data.binance.vision
file is replayed on its own grid (its klines' interval, or the minute for trades), so at speed 1 the
replayed klines line up with the file's rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from ..symbols import SymbolSpec, id_bases, split_symbol
from .aggregate import DAY, INTERVAL_MS, MINUTE
from .batch import TradeBatch, group_starts
from .blocks import Block


class ReplayFormatError(ValueError):
    """A replay file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One symbol's recorded trades (original ids and times) and the scales they were written in."""

    spec: SymbolSpec
    trades: TradeBatch
    source: str
    origin_ms: int | None = None  # recorded time the recording starts at (default: its first trade)
    end_ms: int | None = None  # recorded time it ends at, exclusive (default: last trade + a typical gap)
    grid_ms: int = 1  # the replay starts on a multiple of this, so klines keep the file's alignment


def _decimals(values: list[str]) -> int:
    dp = 0
    for v in values:
        if "." in v:
            frac = v.split(".", 1)[1].rstrip("0")
            dp = max(dp, len(frac))
    return min(dp, 8)


def _scaled(values: list[str], dp: int) -> np.ndarray:
    return np.array([int(Decimal(v).scaleb(dp)) for v in values], dtype=np.int64)


def _recording(
    symbol: str,
    ids: list[int],
    times: list[int],
    prices: list[str],
    qtys: list[str],
    buyer_maker: list[bool],
    source: str,
    agg_base: int | None = None,
) -> Recording:
    if not ids:
        raise ReplayFormatError(f"{source}: no trades for {symbol}")
    base, quote = split_symbol(symbol)
    pdp, qdp = _decimals(prices), _decimals(qtys)
    _trade_base, default_agg = id_bases(symbol)
    p = _scaled(prices, pdp)
    spec = SymbolSpec(
        symbol, base, quote, pdp, qdp, float(p[0]) / 10**pdp, ids[0], default_agg if agg_base is None else agg_base
    )
    # By id, each id once: a capture that overlaps itself after a reconnect holds some frames twice.
    _, order = np.unique(np.asarray(ids, dtype=np.int64), return_index=True)
    batch = TradeBatch(
        np.asarray(ids, dtype=np.int64)[order],
        np.asarray(times, dtype=np.int64)[order],
        p[order],
        _scaled(qtys, qdp)[order],
        np.asarray(buyer_maker, dtype=bool)[order],
    )
    if np.any(np.diff(batch.times) < 0):
        raise ReplayFormatError(f"{source}: {symbol} trade times go backwards when ordered by id")
    return Recording(spec, batch, source)


def load_capture(path: Path) -> list[Recording]:
    """Trades of every symbol in a Binance combined-stream capture."""
    opener = gzip.open if path.suffix == ".gz" else open
    cols: dict[str, tuple[list, list, list, list, list]] = {}
    lineno = 0
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                _, _, raw = line.partition(" ")
                if "@trade" not in raw:
                    continue
                try:
                    data = json.loads(raw)["data"]
                    c = cols.setdefault(data["s"], ([], [], [], [], []))
                    c[0].append(int(data["t"]))
                    c[1].append(int(data["T"]))
                    c[2].append(str(Decimal(data["p"])))
                    c[3].append(str(Decimal(data["q"])))
                    c[4].append(bool(data["m"]))
                except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                    raise ReplayFormatError(f"{path}:{lineno}: not a trade frame ({exc!r})") from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # not gzip, truncated, not text
        raise ReplayFormatError(f"{path}:{lineno + 1}: cannot read the capture ({exc!r})") from exc
    if not cols:
        raise ReplayFormatError(f"{path}: no @trade frames found")
    return [_recording(sym, *c, source=str(path)) for sym, c in sorted(cols.items())]


_VISION_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<kind>trades|aggTrades|\w+)-")


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith(".csv")]
                if not names:
                    raise ReplayFormatError(f"{path}: the zip holds no .csv file")
                text = zf.read(names[0]).decode()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise ReplayFormatError(f"{path}: cannot read the file ({exc!r})") from exc
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if rows and not rows[0][0].lstrip("-").isdigit():
        rows = rows[1:]  # newer files have a header line
    return rows


def _ms(value: str) -> int:
    t = int(value)
    return t // 1000 if t > 10**14 else t  # files from 2025 on are in microseconds


def _bool(value: str) -> bool:
    return value.strip().lower() == "true"


def load_vision(path: Path, seed: int = 1) -> list[Recording]:
    """Trades from a data.binance.vision trades, aggTrades or klines file."""
    m = _VISION_NAME.match(path.name)
    if not m:
        raise ReplayFormatError(f"{path}: expected a name like BTCUSDT-trades-2024-08-08.zip")
    symbol, kind = m["symbol"], m["kind"]
    rows = _csv_rows(path)
    try:
        if kind == "trades":
            rec = _recording(
                symbol,
                [int(r[0]) for r in rows],
                [_ms(r[4]) for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [_bool(r[5]) for r in rows],
                str(path),
            )
            return [_on_grid(rec, MINUTE)]
        if kind == "aggTrades":
            ids, times, prices, qtys, bms = [], [], [], [], []
            for r in rows:
                first, last, qty = int(r[3]), int(r[4]), Decimal(r[2])
                count = last - first + 1
                parts = _split_decimal(qty, count)
                ids.extend(range(first, last + 1))
                times.extend([_ms(r[5])] * count)
                prices.extend([r[1]] * count)
                qtys.extend(parts)
                bms.extend([_bool(r[6])] * count)
            rec = _recording(symbol, ids, times, prices, qtys, bms, str(path), agg_base=int(rows[0][0]))
            return [_on_grid(rec, MINUTE)]
        if kind in INTERVAL_MS:
            return [_klines_recording(symbol, rows, seed, str(path), kind)]
    except (IndexError, ValueError, ArithmeticError) as exc:
        raise ReplayFormatError(f"{path}: malformed {kind} row ({exc})") from exc
    raise ReplayFormatError(f"{path}: unknown file kind {kind!r}")


def _on_grid(rec: Recording, grid_ms: int) -> Recording:
    """The recording replayed from the start of the ``grid_ms`` interval holding its first trade."""
    first = int(rec.trades.times[0])
    return Recording(rec.spec, rec.trades, rec.source, first // grid_ms * grid_ms, None, grid_ms)


def _split_decimal(total: Decimal, parts: int) -> list[str]:
    """Split a quantity into ``parts`` positive pieces in its own precision (first piece takes the rest)."""
    exp = -total.as_tuple().exponent if isinstance(total.as_tuple().exponent, int) else 0
    units = int(total.scaleb(exp))
    if parts <= 1 or units < parts:
        return [str(total)] + ["0"] * (parts - 1) if parts > 1 else [str(total)]
    each = units // parts
    pieces = [units - each * (parts - 1)] + [each] * (parts - 1)
    return [str(Decimal(p).scaleb(-exp)) for p in pieces]


def _klines_recording(symbol: str, rows: list[list[str]], seed: int, source: str, interval: str = "1m") -> Recording:
    """Made-up trades reproducing each kline's OHLC, volume, trade count and taker-buy volume.

    The quote volumes are not reproduced: they follow from the made-up prices. A kline whose volume
    has fewer lot steps than its trade count gets one trade per step; a kline with both buy and
    sell volume gets at least two trades; OHLC needs up to four trades, so a kline with fewer
    trades than distinct OHLC prices cannot be reproduced exactly (Binance's own rows always can).
    """
    rng = np.random.default_rng([seed, 7])
    pdp = _decimals([v for r in rows for v in r[1:5]])
    qdp = _decimals([v for r in rows for v in (r[5], r[9])])
    base, quote = split_symbol(symbol)
    trade_base, agg_base = id_bases(symbol)
    t_ids, t_times, t_prices, t_qtys, t_bm = [], [], [], [], []
    next_id = trade_base
    for r in rows:
        o, h, lo, c = (int(Decimal(v).scaleb(pdp)) for v in r[1:5])
        vol, buy_vol = int(Decimal(r[5]).scaleb(qdp)), int(Decimal(r[9]).scaleb(qdp))
        n = min(int(r[8]), vol) if vol else 0
        if n == 0:
            continue
        if buy_vol == 0:
            n_buy = 0
        elif buy_vol == vol:
            n_buy = n
        else:  # both sides traded: at least one trade each
            n = max(n, 2)
            n_buy = min(max(1, round(n * buy_vol / vol)), n - 1, buy_vol)
            n_buy = max(n_buy, n - (vol - buy_vol))
        n_sell = n - n_buy
        buy_q = _split_int(rng, buy_vol, n_buy)
        sell_q = _split_int(rng, vol - buy_vol, n_sell)
        sides = np.array([False] * n_buy + [True] * n_sell)
        rng.shuffle(sides)
        qtys = np.empty(n, dtype=np.int64)
        qtys[~sides], qtys[sides] = buy_q, sell_q
        prices = rng.integers(lo, h + 1, n)
        prices[0], prices[-1] = o, c
        inner = rng.permutation(np.arange(1, n - 1)) if n > 2 else np.array([], dtype=np.int64)
        missing = [x for x in (h, lo) if x not in (o, c)]  # extremes the open and close do not carry
        for slot, x in zip(inner.tolist(), missing, strict=False):
            prices[slot] = x
        open_t, close_t = int(r[0]), int(r[6])
        times = np.sort(rng.integers(open_t, close_t + 1, n))
        t_ids.extend(range(next_id, next_id + n))
        next_id += n
        t_times.extend(times.tolist())
        t_prices.extend(prices.tolist())
        t_qtys.extend(qtys.tolist())
        t_bm.extend(sides.tolist())
    if not t_ids:
        raise ReplayFormatError(f"{source}: klines with no trades")
    spec = SymbolSpec(symbol, base, quote, pdp, qdp, t_prices[0] / 10**pdp, trade_base, agg_base)
    batch = TradeBatch(
        np.asarray(t_ids, dtype=np.int64),
        np.asarray(t_times, dtype=np.int64),
        np.asarray(t_prices, dtype=np.int64),
        np.asarray(t_qtys, dtype=np.int64),
        np.asarray(t_bm, dtype=bool),
    )
    grid = INTERVAL_MS.get(interval) or DAY  # "1M" has no fixed length: keep the day grid
    return Recording(spec, batch, source, int(rows[0][0]), int(rows[-1][6]) + 1, grid)


def _split_int(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    if parts == 0:
        return np.empty(0, dtype=np.int64)
    return 1 + rng.multinomial(total - parts, np.full(parts, 1.0 / parts)).astype(np.int64)


def load_replay(path: Path, seed: int = 1) -> list[Recording]:
    """Recordings in a capture or a data.binance.vision file, by the file's name."""
    if not path.exists():
        raise ReplayFormatError(f"{path}: no such file")
    if _VISION_NAME.match(path.name) and path.suffix in (".zip", ".csv"):
        return load_vision(path, seed)
    return load_capture(path)


class ReplayProducer:
    """Loops a recording from ``t0`` at ``speed`` times real time; loop ``j`` is block ``j``."""

    def __init__(self, recording: Recording, t0: int, speed: float) -> None:
        """Loop 0 starts at ``t0`` rounded down to the recording's grid; loop ``-1`` is history.

        A recorded time ``T`` of loop ``j`` plays at ``t0 + (T - origin) // speed + j * loop_ms``;
        at speed 1 that is ``T + time_shift + j * loop_ms``.
        """
        if speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self.spec = recording.spec
        rec = recording.trades
        origin = int(rec.times[0]) if recording.origin_ms is None else recording.origin_ms
        rel = ((rec.times - origin) / speed).astype(np.int64)
        if recording.end_ms is not None:
            self.loop_ms = max(int(rel[-1]) + 1, math.ceil((recording.end_ms - origin) / speed))
        else:
            gaps = np.diff(rel)
            pause = max(1, int(np.median(gaps[gaps > 0]))) if np.any(gaps > 0) else 1
            self.loop_ms = int(rel[-1]) + pause
        self.id_span = int(rec.ids[-1] - rec.ids[0] + 1)
        t0 = t0 // recording.grid_ms * recording.grid_ms
        self.t0 = t0
        self.time_shift = t0 - origin  # for speed 1: recorded time + shift = replayed time (loop 0)
        self.base = TradeBatch(rec.ids, rel + t0, rec.prices, rec.qtys, rec.buyer_maker)
        self.k = len(group_starts(self.base))
        self.source = recording.source

    def block(self, j: int) -> Block:
        start = self.t0 + j * self.loop_ms
        return Block(
            start,
            start + self.loop_ms,
            self.spec.trade_id_base + j * self.id_span,
            len(self.base),
            self.spec.agg_id_base + j * self.k,
            self.k,
            j,
        )

    def generate(self, block: Block) -> TradeBatch:
        j: int = block.gen
        return self.base.shifted(j * self.id_span, j * self.loop_ms)
