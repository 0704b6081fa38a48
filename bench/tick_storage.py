"""Bytes per stored tick: the Tick collection as it is today against the layouts it could take (issue 16, item 5).

Starts its own mongod (the suite's: single-node replica set, tradingsite.devstack), loads the same ticks into one
collection per layout and compressor, takes a checkpoint (``fsync``) so the sizes are those on disk, and prints
``storageSize`` (documents) and ``totalIndexSize`` (every index) over ``count``, as ``collStats`` reports them.

The ticks: real Binance trades (../shared/data/binance-spot-capture, BTCUSDT and ETHUSDT, 2024-08-08; see its
MANIFEST.md) grouped into aggregate trades as Binance does (the stream stores aggregate trades), replayed in loops
(ids and times continued) up to ``--ticks``, interleaved by arrival as the stream writes them; ``--copies N``: N
renamed copies of each, each shifted in time (many symbols appending at once). Without that folder, or with
``--source sim``: the seeded simulator's aggregate trades (BTCUSDT, ETHUSDT), read over its REST API.

Layouts, each with snappy (mongod's default), zstd (``block_compressor=zstd`` on the collection) and zstd+ix (on the
indexes too):
  today          markets.documents.tick_bson's documents, ObjectId _id, the four indexes the migrations create
  today-3ix      the same without tick_order (the plain twin of the partial unique index)
  key            _id IS the identity, packed binary (exchange, symbol, trade_id); index (exchange, symbol, ts)
  clustered      the same in a clustered collection (the documents live in the _id B-tree: no _id index)
  clu-full-str   clustered, today's documents unchanged (trade_id too), _id "exchange:symbol:<20 digits>"
  clu-short      clustered, one-letter field names, the taker side a bool
  clu-short-doc  the same, _id an embedded document {x, s, i};  clu-short-str: _id the readable string
  clu-orm        clu-short-str with the trade id as a field too (what ORM filters on trade_id need)
  clu-lean       clu-short, receive time as ms after ts, raw trade count for last_trade_id (none when 1), no "ws"
  clu-noix       clu-short without the time index (time reads would search the id order instead)
Each is checked to keep the identity: the first ticks inserted again store nothing, each a duplicate key (11000).

    .venv/bin/python bench/tick_storage.py [--ticks 200000] [--source recorded|sim] [--layouts today,clustered]
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CAPTURES = ROOT.parent / "shared" / "data" / "binance-spot-capture"
CAPTURE_FILES = ("btcusdt_20240808.gz", "ethusdt_20240808.gz")
TODAY_PER_TICK = 197  # issue 16: collStats of 42,426 ticks stored by the stream, before this bench existed
BATCH = 1000
DUPLICATE_KEY = 11000
ZSTD = {"wiredTiger": {"configString": "block_compressor=zstd"}}
COMPRESSORS = ("snappy", "zstd", "zstd+ix")


def progress(msg: str) -> None:  # on stderr: stdout is the table
    print(msg, file=sys.stderr, flush=True)


# -- the ticks ------------------------------------------------------------------------------------------------
def aggregated(raw: list[Any]) -> list[Any]:
    """Binance's aggregate trades of raw trades in id order: one per run of consecutive trades with the same
    millisecond, price and taker side (the fills of one taker order), quantity summed. Aggregate ids are numbered
    from an arbitrary base (the recording has only raw ids)."""
    out: list[Any] = []
    for _, run in itertools.groupby(raw, key=lambda t: (t.ts, t.price, t.taker_side)):
        g = list(run)
        qty = sum((t.qty for t in g[1:]), g[0].qty)
        out.append(replace(g[-1], qty=qty, first_trade_id=g[0].trade_id, last_trade_id=g[-1].trade_id))
    base = raw[0].trade_id * 5 // 6
    return [replace(t, trade_id=base + i) for i, t in enumerate(out)]


def recorded_symbol(path: Path) -> list[Any]:
    """The recorded ``@trade`` frames of one capture as aggregate trades (source "ws")."""
    from markets.exchanges.binance.parse import parse_trade
    from markets.types import Source

    raw = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            ns, _, frame = line.partition(" ")
            msg = json.loads(frame)
            if isinstance(msg, dict) and str(msg.get("stream", "")).endswith("@trade"):
                received = datetime.fromtimestamp(int(ns) / 1e9, UTC)
                raw.append(parse_trade(msg["data"], received_at=received, source=Source.WS))
    return aggregated(raw)


def looped(ticks: list[Any], offset: timedelta) -> Iterator[Any]:
    """``ticks`` again and again from ``offset`` on, each loop continuing the ids and the times of the one before."""
    span = ticks[-1].ts - ticks[0].ts + (ticks[-1].ts - ticks[0].ts) / len(ticks)
    raw = ticks[-1].last_trade_id - ticks[0].first_trade_id + 1
    for k in itertools.count():
        shift = span * k + offset
        for t in ticks:
            ids = {"trade_id": t.trade_id + k * len(ticks), "first_trade_id": t.first_trade_id + k * raw}
            yield replace(
                t, **ids, last_trade_id=t.last_trade_id + k * raw, ts=t.ts + shift, received_at=t.received_at + shift
            )


def sim_symbol(symbol: str, n: int, seed: int) -> list[Any]:
    """``n`` consecutive aggregate trades of the seeded simulator's ``symbol``, read over its REST API; received
    40-90 ms after their exchange time (a fixed pattern), as streamed ticks are."""
    from exchangesim.config import SimConfig
    from exchangesim.server import running_in_thread
    from markets.exchanges.binance.rest import BinanceRest
    from markets.types import Source

    with running_in_thread(SimConfig(port=0, seed=seed, history_days=1.0, symbols=(symbol,))) as sim:
        rest = BinanceRest(sim.url)
        try:
            next_id = rest.latest_trades(symbol, 1)[0].trade_id - n
            out: list[Any] = []
            while len(out) < n:
                out += rest.trades_from_id(symbol, next_id, limit=1000)
                next_id = out[-1].trade_id + 1
        finally:
            rest.close()
    return [
        replace(t, received_at=t.ts + timedelta(milliseconds=40 + i % 51), source=Source.WS)
        for i, t in enumerate(out[:n])
    ]


def load_ticks(n: int, source: str, seed: int, copies: int) -> tuple[list[Any], str]:
    """``n`` ticks of two symbols interleaved by arrival, and a line saying where they come from."""
    paths = [CAPTURES / name for name in CAPTURE_FILES]
    if source == "recorded" and not all(p.exists() for p in paths):
        progress(f"recorded data absent ({CAPTURES}): using the simulator's seeded trades instead")
        source = "sim"
    if source == "recorded":
        symbols = [recorded_symbol(p) for p in paths]
        said = ", ".join(f"{s[0].symbol} {len(s):,}" for s in symbols)
        what = f"recorded Binance trades 2024-08-08 as aggregate trades ({said} a loop, {copies}x), looped"
        named = [[replace(t, symbol=f"{t.symbol}{k or ''}") for t in s] for k in range(copies) for s in symbols]
        streams = [looped(s, timedelta(seconds=1.37 * (i // 2))) for i, s in enumerate(named)]
    else:
        symbols = [sim_symbol(sym, n // 2 + 1, seed) for sym in ("BTCUSDT", "ETHUSDT")]
        what = f"the simulator's aggregate trades, seed {seed}, BTCUSDT and ETHUSDT"
        streams = [iter(s) for s in symbols]
    merged = heapq.merge(*streams, key=lambda t: t.received_at)
    return list(itertools.islice(merged, n)), what


# -- the layouts ----------------------------------------------------------------------------------------------
Key = Callable[[str, str, int], Any]  # (exchange, symbol, trade_id) -> _id


def key_bin(exchange: str, symbol: str, trade_id: int) -> Any:
    """Packed binary: the names NUL-ended, the id big-endian. MongoDB orders BinData by length, then bytes, so one
    symbol's keys (all of one length) sort by id."""
    from bson import Binary

    return Binary(f"{exchange}\0{symbol}\0".encode() + trade_id.to_bytes(8, "big"))


def key_doc(exchange: str, symbol: str, trade_id: int) -> Any:
    from bson import SON, Int64

    return SON([("x", exchange), ("s", symbol), ("i", Int64(trade_id))])


def key_str(exchange: str, symbol: str, trade_id: int) -> str:
    """Readable, and ordered by id within a symbol (20 digits hold any int64)."""
    return f"{exchange}:{symbol}:{trade_id:020d}"


def doc_long(t: Any) -> dict[str, Any]:
    """Today's fields and names, the identity in ``_id`` (trade_id only there)."""
    from markets.documents import tick_doc

    doc = tick_doc(t)
    del doc["trade_id"]
    return {"_id": key_bin(t.exchange, t.symbol, t.trade_id), **doc}


def doc_full(t: Any) -> dict[str, Any]:
    """Today's document as it is (trade_id included), its ``_id`` the readable key."""
    from markets.documents import tick_doc

    return {"_id": key_str(t.exchange, t.symbol, t.trade_id), **tick_doc(t)}


def doc_short(t: Any, key: Key = key_bin, where: bool = True, trade_id: bool = False) -> dict[str, Any]:
    """One-letter names; ``where``: exchange and symbol as fields too (the time index's prefix); ``trade_id``: the
    id as a field too (what ORM filters on ``trade_id`` need)."""
    from bson import Int64

    from markets.documents import d128

    doc: dict[str, Any] = {"_id": key(t.exchange, t.symbol, t.trade_id)}
    if where:
        doc |= {"x": t.exchange, "s": t.symbol}
    if trade_id:
        doc["i"] = Int64(t.trade_id)
    return doc | {
        "p": d128(t.price),
        "q": d128(t.qty),
        "b": t.taker_side == "buy",
        "t": t.ts,
        "r": t.received_at,
        "o": str(t.source),
        "f": Int64(t.first_trade_id),
        "l": Int64(t.last_trade_id),
    }


def doc_lean(t: Any) -> dict[str, Any]:
    from bson import Int64

    from markets.documents import d128

    doc = {"_id": key_bin(t.exchange, t.symbol, t.trade_id), "x": t.exchange, "s": t.symbol, "p": d128(t.price)}
    doc |= {"q": d128(t.qty), "b": t.taker_side == "buy", "t": t.ts}
    doc |= {"r": int((t.received_at - t.ts) / timedelta(milliseconds=1)), "f": Int64(t.first_trade_id)}
    if t.last_trade_id != t.first_trade_id:
        doc["n"] = t.last_trade_id - t.first_trade_id + 1
    if str(t.source) != "ws":
        doc["o"] = str(t.source)
    return doc


def today_ids(exchange: str, symbol: str, lo: int, hi: int) -> tuple[dict[str, Any], str]:
    """selectors.id_count's query today: the plain (exchange, symbol, trade_id) index."""
    from bson import Int64

    return {"exchange": exchange, "symbol": symbol, "trade_id": {"$gte": Int64(lo), "$lte": Int64(hi)}}, "tick_order"


def partial_ids(exchange: str, symbol: str, lo: int, hi: int) -> tuple[dict[str, Any], str]:
    """The same on the partial unique index, which needs its $type filter restated."""
    from bson import Int64

    where = {"exchange": {"$eq": exchange, "$type": "string"}, "symbol": {"$eq": symbol, "$type": "string"}}
    return where | {"trade_id": {"$type": "long", "$gte": Int64(lo), "$lte": Int64(hi)}}, "tick_identity"


@dataclass(frozen=True)
class Layout:
    name: str
    doc: Callable[[Any], dict[str, Any]] | None  # None: markets.documents.tick_bson, today's documents
    indexes: list[tuple[str, list[tuple[str, int]]]]  # (name, keys); today's layouts copy the migrated ones
    key: Key | None = key_bin  # how an id range is asked for on _id
    clustered: bool = False
    ids: Callable[[str, str, int, int], tuple[dict[str, Any], str]] | None = None  # an id range off _id
    skip: tuple[str, ...] = ()  # migrated indexes left out


TIME_LONG = [("tick_time", [("exchange", 1), ("symbol", 1), ("ts", 1)])]
TIME_SHORT = [("tick_time", [("x", 1), ("s", 1), ("t", 1)])]
LAYOUTS = [
    Layout("today", None, [], None, ids=today_ids),
    Layout("today-3ix", None, [], None, ids=partial_ids, skip=("tick_order",)),
    Layout("key", doc_long, TIME_LONG),
    Layout("clustered", doc_long, TIME_LONG, clustered=True),
    Layout("clu-full-str", doc_full, TIME_LONG, key_str, clustered=True),
    Layout("clu-short", doc_short, TIME_SHORT, clustered=True),
    Layout("clu-short-doc", lambda t: doc_short(t, key_doc), TIME_SHORT, key_doc, clustered=True),
    Layout("clu-short-str", lambda t: doc_short(t, key_str), TIME_SHORT, key_str, clustered=True),
    Layout("clu-orm", lambda t: doc_short(t, key_str, trade_id=True), TIME_SHORT, key_str, clustered=True),
    Layout("clu-lean", doc_lean, TIME_SHORT, clustered=True),
    Layout("clu-noix", lambda t: doc_short(t, where=False), [], clustered=True),
]


# -- measuring ------------------------------------------------------------------------------------------------
@dataclass
class Row:
    layout: str
    compressor: str
    count: int
    data: int
    free: int  # of ``data``: bytes the data file holds free for reuse
    indexes: dict[str, int]
    raw: float
    seconds: float
    count_ms: float


def build(db: Any, layout: Layout, compressor: str, name: str, migrated: list[dict[str, Any]]) -> Any:
    """An empty collection ``name`` of ``layout`` with ``compressor``."""
    db.drop_collection(name)
    opts: dict[str, Any] = {}
    if compressor != "snappy":
        opts["storageEngine"] = ZSTD
    if compressor == "zstd+ix":  # every index, _id's included
        opts["indexOptionDefaults"] = {"storageEngine": ZSTD}
    if layout.clustered:
        opts["clusteredIndex"] = {"key": {"_id": 1}, "unique": True}
    coll = db.create_collection(name, **opts)
    if layout.doc is None:
        for ix in migrated:
            if ix["name"] not in layout.skip:
                extra = {k: v for k, v in ix.items() if k not in ("key", "v", "ns")}
                coll.create_index(list(ix["key"].items()), **extra)
    for ix_name, keys in layout.indexes:
        coll.create_index(keys, name=ix_name)
    return coll


def load(coll: Any, docs: list[Any]) -> float:
    """Insert ``docs`` in unordered batches, as ticks_ingest does; the seconds it took."""
    began = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        coll.insert_many(docs[i : i + BATCH], ordered=False)
    return time.perf_counter() - began


def duplicates_rejected(coll: Any, docs: list[Any]) -> bool:
    """Whether inserting ``docs`` (all stored already) again stores none and reports each as a duplicate key."""
    from pymongo.errors import BulkWriteError

    before = coll.count_documents({})
    try:
        coll.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        same = len(errors) == len(docs) and all(e.get("code") == DUPLICATE_KEY for e in errors)
        return same and exc.details.get("nInserted") == 0 and coll.count_documents({}) == before
    return False


def count_ms(coll: Any, layout: Layout, ticks: list[Any]) -> float:
    """The best of three counts of the first symbol's stored ids over its whole range (selectors.id_count, the
    gap scan's read), in ms; checked against the number loaded."""
    exchange, symbol = ticks[0].exchange, ticks[0].symbol
    ids = [t.trade_id for t in ticks if t.symbol == symbol]
    lo, hi = min(ids), max(ids)
    if layout.ids is not None:
        query, hint = layout.ids(exchange, symbol, lo, hi)
        kwargs: dict[str, Any] = {"hint": hint}
    else:
        assert layout.key is not None
        query, kwargs = (
            {"_id": {"$gte": layout.key(exchange, symbol, lo), "$lte": layout.key(exchange, symbol, hi)}},
            {},
        )
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        got = coll.count_documents(query, **kwargs)
        best = min(best, time.perf_counter() - began)
        if got != len(ids):
            raise SystemExit(f"{layout.name}: counted {got} ids of {symbol}, stored {len(ids)}")
    return best * 1000


def measure(db: Any, ticks: list[Any], layouts: list[Layout], compressors: list[str]) -> list[Row]:
    from bson import encode
    from bson.raw_bson import RawBSONDocument

    from markets.documents import tick_bson
    from markets.models import Tick

    migrated = [ix for ix in db[Tick._meta.db_table].list_indexes() if ix["name"] != "_id_"]
    sample = min(len(ticks), 500)
    done = []
    for layout in layouts:
        if layout.doc is None:
            docs = [tick_bson(t) for t in ticks]  # exactly what ticks_ingest sends (the server adds the _id)
        else:
            docs = [RawBSONDocument(encode(layout.doc(t))) for t in ticks]
        for compressor in compressors:
            name = f"bench_{layout.name}_{compressor}".replace("-", "_").replace("+", "_")
            coll = build(db, layout, compressor, name, migrated)
            seconds = load(coll, docs)
            if not duplicates_rejected(coll, docs[:sample]):
                raise SystemExit(f"{layout.name} ({compressor}) stored a duplicate tick: it lost the identity")
            done.append((layout, compressor, name, seconds, count_ms(coll, layout, ticks)))
            progress(f"  loaded {layout.name:<14} {compressor:<8} {len(docs) / seconds:>9,.0f} ticks/s")
    db.client.admin.command("fsync")  # a checkpoint: what collStats reports is on disk now
    rows = []
    for layout, compressor, name, seconds, ms in done:
        s = db.command("collStats", name)
        free = s["wiredTiger"]["block-manager"]["file bytes available for reuse"]
        sizes = (s["count"], s["storageSize"], free, dict(s["indexSizes"]), s["avgObjSize"])
        rows.append(Row(layout.name, compressor, *sizes, seconds, ms))
    return rows


def print_table(rows: list[Row], what: str, version: str) -> None:
    base = next((r for r in rows if (r.layout, r.compressor) == ("today", "snappy")), None)
    per = {id(r): (r.data + sum(r.indexes.values())) / r.count for r in rows}
    print(f"ticks: {rows[0].count:,} ({what}); mongod {version}, single-node replica set")
    print("bytes per stored tick: storageSize (documents) + totalIndexSize, over count, after a checkpoint")
    head = f"{'layout':<14} {'compression':<11} {'BSON':>5} {'data':>6} {'free':>5} {'indexes':>8} {'total':>7}"
    print(f"{head} {'vs today':>8} {'ins/s':>8} {'count ms':>8}  indexes by name")
    for r in rows:
        ratio = f"{per[id(r)] / per[id(base)]:.2f}x" if base else "-"
        names = " ".join(f"{k}={v / r.count:.1f}" for k, v in r.indexes.items())
        print(
            f"{r.layout:<14} {r.compressor:<11} {r.raw:>5.0f} {r.data / r.count:>6.1f} {r.free / r.count:>5.1f} "
            f"{sum(r.indexes.values()) / r.count:>8.1f} {per[id(r)]:>7.1f} {ratio:>8} "
            f"{r.count / r.seconds:>8,.0f} {r.count_ms:>8.1f}  {names}"
        )
    print(f"BSON: a document uncompressed. free: of data, held for reuse. ins/s: one client, batches of {BATCH}.")
    print(f"count ms: counting one symbol's ids (the gap scan's read). Issue 16 measured {TODAY_PER_TICK} B/tick.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ticks", type=int, default=200_000)
    p.add_argument("--source", choices=("recorded", "sim"), default="recorded")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--copies", type=int, default=1, help="renamed copies of each recorded symbol")
    p.add_argument("--layouts", default="", help="comma-separated names (default: all)")
    p.add_argument("--compressors", default=",".join(COMPRESSORS))
    args = p.parse_args()
    wanted = [w for w in args.layouts.split(",") if w]
    unknown = set(wanted) - {layout.name for layout in LAYOUTS}
    if unknown:
        p.error(f"unknown layouts {sorted(unknown)}; known: {', '.join(layout.name for layout in LAYOUTS)}")
    compressors = [c for c in args.compressors.split(",") if c]
    if set(compressors) - set(COMPRESSORS):
        p.error(f"unknown compressors in {args.compressors!r}; known: {', '.join(COMPRESSORS)}")
    layouts = [layout for layout in LAYOUTS if not wanted or layout.name in wanted]

    from tradingsite.devstack import start_mongod

    with tempfile.TemporaryDirectory(prefix="bench-tick-storage-") as tmp:
        mongo = start_mongod(Path(tmp) / "mongo")
        try:
            run(mongo.uri, args, layouts, compressors)
        finally:
            mongo.stop()


def run(uri: str, args: argparse.Namespace, layouts: list[Layout], compressors: list[str]) -> None:
    os.environ["MONGODB_URI"] = uri
    os.environ["DJANGO_SETTINGS_MODULE"] = "tradingsite.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)  # today's indexes, as the migrations create them
    progress(f"loading {args.ticks:,} ticks ({args.source}) ...")
    ticks, what = load_ticks(args.ticks, args.source, args.seed, args.copies)
    db = connection.database
    rows = measure(db, ticks, layouts, compressors)
    print_table(rows, what, db.client.server_info()["version"])


if __name__ == "__main__":
    main()
