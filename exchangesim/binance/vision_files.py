"""The contents of Binance's public bulk files (data.binance.vision), written from a tape.

Rows are what ``/api/v3/aggTrades`` and ``/api/v3/klines`` answer for the same times, in Binance's CSV
form: no header, prices and quantities with 8 decimals (``wire.fmt``), ``True``/``False`` flags. Spot
files of days from 2025-01-01 on carry microsecond times, older ones milliseconds (as Binance's do): an
aggregate trade's ``transact_time`` and a kline's ``open_time`` are the REST value times 1,000, a kline's
``close_time`` the last microsecond of the kline (``(close_ms + 1) * 1000 - 1``).

Everything here runs on a history worker thread (it may read a day of blocks); blocks are read with
``keep=False`` so a file does not push the blocks live queries use out of the shared cache.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..engine.aggregate import INTERVAL_MS, interval_next
from ..engine.batch import AggBatch, aggregate_trades
from ..engine.tape import Tape
from ..symbols import SymbolSpec
from . import wire

MICROS_FROM_MS = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)  # spot files from here on carry µs
ROWS_PER_CHUNK = 20_000  # kline rows written at a time
AGG_ROWS_PER_CHUNK = 100_000  # aggregate trades written at a time (blocks of a quiet symbol hold a few each)
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="none")
_FLAGS = pa.array(["False", "True"])
_I64_MAX = 2**63 - 1
_ROW_BYTES = 140  # a generous length of one CSV row, to tell whether a file needs ZIP64
_CHUNK = 1 << 20


def micros(start_ms: int) -> bool:
    """Whether a file of a period starting at ``start_ms`` carries microsecond times."""
    return start_ms >= MICROS_FROM_MS


def _blocks(tape: Tape, start_ms: int, end_ms: int) -> Iterator[int]:
    """Indices of the tape's blocks overlapping ``[start_ms, end_ms)``."""
    i = tape._block_index_at(start_ms)
    while i < len(tape.blocks) and tape.blocks[i].t_start < end_ms:
        yield i
        i += 1


def trades_in(tape: Tape, start_ms: int, end_ms: int) -> int:
    """How many trades the blocks overlapping ``[start_ms, end_ms)`` hold (an upper bound of the rows)."""
    return sum(tape.blocks[i].n for i in _blocks(tape, start_ms, end_ms))


def agg_csv(tape: Tape, start_ms: int, end_ms: int) -> Iterator[bytes]:
    """The aggTrades CSV of ``start_ms <= transact_time < end_ms``, about ``ROWS_PER_CHUNK`` rows at a time."""
    pending: list[AggBatch] = []
    held = 0
    for i in _blocks(tape, start_ms, end_ms):
        block = tape.blocks[i]
        if not block.n:
            continue
        aggs = aggregate_trades(tape._public(block, keep=False), block.first_agg)
        lo = int(np.searchsorted(aggs.times, start_ms, side="left"))
        hi = int(np.searchsorted(aggs.times, end_ms, side="left"))
        if lo < hi:
            pending.append(aggs[lo:hi])
            held += hi - lo
        if held >= AGG_ROWS_PER_CHUNK:
            yield agg_rows(tape.spec, AggBatch.concat(pending), micros(start_ms))
            pending, held = [], 0
    if pending:
        yield agg_rows(tape.spec, AggBatch.concat(pending), micros(start_ms))


def agg_rows(spec: SymbolSpec, a: AggBatch, us: bool) -> bytes:
    """Aggregate trades as aggTrades CSV rows, written by pyarrow (a busy day is millions of rows: four times as
    fast as Python's formatting), exactly as ``wire.rest_aggs`` writes the same values."""
    prices, qtys = _decimal8(a.prices, spec.price_dp), _decimal8(a.qtys, spec.qty_dp)
    if prices is None or qtys is None:  # more than 8 decimals, or too large for the fast path: Python's formatting
        return _agg_rows_python(spec, a, us)
    n = len(a)
    table = pa.table(
        {
            "agg_trade_id": a.agg_ids,
            "price": prices,
            "quantity": qtys,
            "first_trade_id": a.first_ids,
            "last_trade_id": a.last_ids,
            "transact_time": a.times * 1000 if us else a.times,
            "is_buyer_maker": pc.take(_FLAGS, pa.array(a.buyer_maker.astype(np.int8))),
            "is_best_match": pa.repeat(pa.scalar("True"), n),
        }
    )
    out = pa.BufferOutputStream()
    pacsv.write_csv(table, out, _CSV)
    return out.getvalue().to_pybytes()


def _decimal8(units: np.ndarray, dp: int) -> pa.Array | None:
    """``units / 10**dp`` as a decimal with 8 places (printed like ``wire.fmt``), or None when it cannot be: more
    than 8 places, too large for 64 bits, or below 0.000001, which Arrow prints with an exponent (``1E-8``)."""
    if dp > 8 or (
        len(units) and (int(units.max()) > _I64_MAX // 10 ** (8 - dp) or int(units.min()) * 10 ** (8 - dp) < 100)
    ):
        return None
    words = np.zeros((len(units), 2), dtype=np.int64)  # 128-bit little-endian: low word, then high word (0)
    words[:, 0] = units * 10 ** (8 - dp)
    return pa.Array.from_buffers(pa.decimal128(38, 8), len(units), [None, pa.py_buffer(words)])


def _agg_rows_python(spec: SymbolSpec, a: AggBatch, us: bool) -> bytes:
    pdp, qdp, scale, fmt = spec.price_dp, spec.qty_dp, 1000 if us else 1, wire.fmt
    return "".join(
        f"{i},{fmt(p, pdp)},{fmt(q, qdp)},{f},{la},{t * scale},{m},True\n"
        for i, p, q, f, la, t, m in zip(
            a.agg_ids.tolist(),
            a.prices.tolist(),
            a.qtys.tolist(),
            a.first_ids.tolist(),
            a.last_ids.tolist(),
            a.times.tolist(),
            a.buyer_maker.tolist(),
            strict=True,
        )
    ).encode()


def kline_opens(interval: str, start_ms: int, end_ms: int) -> range:
    """Open times of the klines of ``[start_ms, end_ms)`` (an interval that divides a day)."""
    return range(start_ms, end_ms, INTERVAL_MS[interval])


def kline_csv(tape: Tape, interval: str, start_ms: int, end_ms: int) -> Iterator[bytes]:
    """The klines CSV of the klines opening in ``[start_ms, end_ms)``, ``ROWS_PER_CHUNK`` rows at a time."""
    spec = tape.spec
    us = micros(start_ms)
    opens = kline_opens(interval, start_ms, end_ms)
    for lo in range(0, len(opens), ROWS_PER_CHUNK):
        # an empty kline opening a chunk is flat at the price before it: the previous kline's close, as unchunked
        rows = tape.klines(interval, list(opens[lo : lo + ROWS_PER_CHUNK]))
        lines = []
        for o, agg, prev in rows:
            close = interval_next(o, interval) - 1
            row = wire.kline_row(spec, o, close, agg, prev)
            if us:
                row[0], row[6] = o * 1000, (close + 1) * 1000 - 1
            lines.append(",".join(str(v) for v in row))
        yield ("\n".join(lines) + "\n").encode()


def write_zip(path: Path, csv_name: str, chunks: Iterator[bytes], *, period_start_ms: int, rows_bound: int) -> str:
    """Write ``chunks`` as the one member ``csv_name`` of the zip ``path``; returns the zip's sha256 (hex).

    The same rows always make the same bytes (a fixed member time, the period's start), so a file built again
    after it left the cache has the checksum it had.
    """
    day = datetime.fromtimestamp(period_start_ms / 1000, UTC)
    info = zipfile.ZipInfo(csv_name, date_time=(day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zipfile.ZipFile(path, "w") as zf, zf.open(info, "w", force_zip64=rows_bound * _ROW_BYTES >= 1 << 31) as out:
        for chunk in chunks:
            out.write(chunk)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
