"""A universe of symbols streamed by 1, 2 and 3 leased stream workers: what they store of what the exchange emits.

Starts its own mongod (a single-node replica set) and redis-server in a temporary folder. Then, for each worker
count W of ``--workers``: a fresh database (migrated), the simulator as a separate process
(``python -m exchangesim --universe N-2 --rate R``: Binance lists BTCUSDT, ETHUSDT and N-2 synthetic symbols, heavy
tailed, a few busy and most quiet, trading R raw trades/s in all), the exchange's instruments stored as an operator
stores them (``manage.py instruments add binance --all``), and W leased workers (``manage.py stream --exchange
binance``, no ``--symbols``, trading off), each a process of its own. Once the workers hold a full partition (every
instrument leased by a live worker, all W holding a share, shares differing by at most one) and the simulator has
every symbol subscribed, a warm-up, then the measuring window. One row per W, all from that window:

- ``held s`` / ``subs s``: wall time from spawning the workers until they held the full partition / until the
  simulator had every symbol subscribed (each worker takes its share at its first lease round, once it runs);
- ``emitted/s``: aggregate trades the simulator emitted for the universe (``/_sim/status``: the sum over Binance's
  symbols of the change of ``last_agg_id``), the baseline of the ratio;
- ``stored/s``: ticks inserted in the window (the collection's count; ids are contiguous and holes are filled, so
  a tick stored late counts when it is stored), and ``stored/emitted``;
- ``behind``: ids behind at the end of the window, the sum over symbols of the exchange's last aggregate id minus
  the last stored one (symbols with no record at all are counted apart, printed below the table when any);
- ``lag p50/p99/max``: end to end, exchange time to storage. A tick has ``ts`` (the exchange's time) and
  ``received_at`` (the worker's receive time) but no stored-at time, so the storage time is the server's: a change
  stream on the tick collection, started before the window, gives each insert's ``wallTime`` (MongoDB 6.0+, the
  primary's clock in ms when the insert was applied); lag = wallTime - ts, over the inserts of the window with a
  trade id divisible by ``--lag-every`` (a sample, filtered by mongod, so the bench reads few events). All
  processes share one host clock. A tick filled by REST after a hole counts with its (long) lag: it was late;
- ``conns``: stream connections the simulator accepted since it started (``connections_opened``): the workers'
  sockets, plus any reconnect;
- CPU % per process over the window (100 % is one core): each worker, the simulator, mongod;
- ``per worker-core``: ticks stored per CPU-second of the workers (all W together): what one core of stream work
  stores, the figure that compares across W on a small machine.

On a 2-core machine every process shares the same two cores: more workers do not add cores, so the rows say how
the work divides and what one core does, not what a cluster of hosts would do. The bench's own change-stream reader
and mongod's change stream (every insert read from the oplog) take a little of them too; the simulator also runs
Coinbase and Kraken's universes (nobody streams them), part of its CPU. The simulator runs without history
by default (``--history-days 0``, as ``bench/stream_ingest.py``; see there why). Progress goes to stderr; every
process started here is stopped on error and on Ctrl+C.

    .venv/bin/python bench/universe.py [--universe 200] [--rate 2000] [--workers 1,2,3] [--seconds 30] [--warmup 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.stream_ingest import cpu_seconds  # noqa: E402
from tradingsite.devstack import free_port  # noqa: E402

LISTED = 2  # BTCUSDT and ETHUSDT: Binance's listed symbols, the universe's first ranks
LEASES, WORKERS = "lease", "lease_worker"  # markets.leases' collections (read here without importing Django)
TICKS = "markets_tick"


def note(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sim_status(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/_sim/status", timeout=30) as resp:
        return json.loads(resp.read())


def last_agg_ids(status: dict[str, Any]) -> dict[str, int]:
    """Each Binance symbol's last aggregate trade id (-1: none yet)."""
    return {s: -1 if v["last_agg_id"] is None else int(v["last_agg_id"]) for s, v in status["symbols"].items()}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted here); NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Lags:
    """Exchange time to storage of the sampled inserts, from a change stream on the tick collection (a thread)."""

    def __init__(self, db: Any, every: int) -> None:
        match: dict[str, Any] = {"operationType": "insert"}
        if every > 1:
            match["fullDocument.trade_id"] = {"$mod": [every, 0]}
        pipeline = [{"$match": match}, {"$project": {"wallTime": 1, "fullDocument.ts": 1}}]
        self._stream = db[TICKS].watch(pipeline, max_await_time_ms=200)
        self.seen: list[tuple[float, float]] = []  # (stored at, lag), seconds
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="lags", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self._events()
        except Exception as exc:  # reported by ``between``
            self.error = exc

    def _events(self) -> None:
        with self._stream:
            while not self._stop.is_set():
                event = self._stream.try_next()
                if event is None:
                    continue
                if "wallTime" not in event:
                    raise RuntimeError("change events carry no wallTime: MongoDB 6.0 or later is needed for the lag")
                wall, ts = event["wallTime"], event["fullDocument"]["ts"]
                self.seen.append((wall.timestamp(), (wall - ts).total_seconds()))

    def between(self, t0: float, t1: float) -> list[float]:
        """The lags (s) of the inserts the server applied between the wall-clock times ``t0`` and ``t1``, once the
        change stream has read past ``t1`` (or after 30 s)."""
        deadline = time.monotonic() + 30
        while self.error is None and (not self.seen or self.seen[-1][0] < t1) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.error is not None:
            raise RuntimeError(f"the change stream measuring the lag failed: {self.error!r}") from self.error
        return [lag for at, lag in list(self.seen) if t0 <= at <= t1]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Procs:
    """The processes of one row, all stopped on leaving: SIGTERM to the workers (those started after the first)
    and SIGKILL after ``grace`` s, then the same to the simulator (the first), so the workers stop cleanly."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, cwd=ROOT, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, grace: float = 30.0) -> None:
        for group in (self.procs[1:], self.procs[:1]):
            for p in group:
                if p.poll() is None:
                    p.terminate()
            deadline = time.monotonic() + grace
            for p in group:
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)


def wait_until(what: str, done: Any, timeout: float, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> float:
    """Poll ``done()`` (it returns (bool, progress text)) every 0.2 s; seconds it took. Progress on stderr every
    5 s; raises naming ``what`` on the timeout or when a process of ``procs`` exits (the tail of its log)."""
    began = time.monotonic()
    shown = began
    while True:
        ok, progress = done()
        if ok:
            return time.monotonic() - began
        now = time.monotonic()
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None:
                raise RuntimeError(f"{' '.join(map(str, p.args))} exited ({p.returncode}):\n{tail(log)}")
        if now - began > timeout:
            raise RuntimeError(
                f"not within {timeout:g} s: {what} ({progress}); the first worker's log:\n{tail(logs[0])}"
            )
        if now - shown >= 5:
            note(f"  waiting for {what}: {progress} ({now - began:.0f} s)")
            shown = now
        time.sleep(0.2)


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def holders(db: Any) -> dict[str, str]:
    """symbol -> the worker holding its live lease (by the database's clock)."""
    live = {"$match": {"group": "binance", "owner": {"$ne": None}, "$expr": {"$gt": ["$expires", "$$NOW"]}}}
    return {d["key"]: d["owner"] for d in db[LEASES].aggregate([live, {"$project": {"key": 1, "owner": 1}}])}


def stored_last(db: Any, symbols: list[str]) -> dict[str, int]:
    """Each symbol's last stored trade id (one indexed query a symbol); symbols with no record are left out."""
    out = {}
    for s in symbols:
        doc = db[TICKS].find_one(
            {"exchange": "binance", "symbol": s}, {"trade_id": 1, "_id": 0}, sort=[("trade_id", -1)]
        )
        if doc is not None:
            out[s] = int(doc["trade_id"])
    return out


def start_market(args: argparse.Namespace, procs: Procs, env: dict[str, str]) -> tuple[str, list[str]]:
    """The simulator (a process of ``procs``) with its Binance symbols stored as instruments, as an operator stores
    them; its base URL and the symbols. ``env`` gains the exchange's URLs."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = procs.start(
        [
            *(sys.executable, "-m", "exchangesim", "--port", str(port)),
            *("--universe", str(args.universe - LISTED), "--rate", str(args.rate), "--seed", str(args.seed)),
            *("--history-days", str(args.history_days), "--no-warm-history", "--log-level", "WARNING"),
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(600):
        with contextlib.suppress(OSError):
            sim_status(base)
            break
        if sim.poll() is not None:
            raise RuntimeError(f"the simulator exited ({sim.returncode})")
        time.sleep(0.1)
    env |= {"BINANCE_REST_URL": base, "BINANCE_WS_URL": f"ws://127.0.0.1:{port}"}
    add = [sys.executable, "manage.py", "instruments", "add", "binance", "--all", "--no-progress"]
    added = subprocess.run(add, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if added.returncode != 0:
        raise RuntimeError(f"instruments add binance --all exited {added.returncode}:\n{added.stderr[-3000:]}")
    universe = sorted(last_agg_ids(sim_status(base)))
    if len(universe) != args.universe:
        raise RuntimeError(f"the simulator lists {len(universe)} Binance symbols, {args.universe} asked")
    return base, universe


def start_workers(workers: int, args: argparse.Namespace, procs: Procs, env: dict[str, str], tmp: Path) -> list[Path]:
    """``workers`` leased stream workers (processes of ``procs``), trading off; their log files."""
    env = env | {"TRADING_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    if args.lease_seconds:
        env["STREAM_LEASE_SECONDS"] = str(args.lease_seconds)
    if args.renew_seconds:
        env["STREAM_LEASE_RENEW_SECONDS"] = str(args.renew_seconds)
    logs = [tmp / f"w{workers}-worker{i + 1}.log" for i in range(workers)]
    for log in logs:
        with log.open("wb") as out:
            cmd = [sys.executable, "manage.py", "stream", "--exchange", "binance", "--metrics-port", "0"]
            procs.start(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    return logs


def run_once(workers: int, args: argparse.Namespace, mongo: Any, redis: Any, tmp: Path) -> dict[str, Any]:
    """One row: a fresh database, simulator and ``workers`` workers; the figures of its window."""
    from pymongo import MongoClient

    name = f"bench_universe_w{workers}"
    env = os.environ | {"MONGODB_URI": mongo.uri, "REDIS_URL": redis.uri, "MONGODB_DB": name, "LOG_LEVEL": "WARNING"}
    client: Any = MongoClient(mongo.uri, tz_aware=True)
    client.drop_database(name)
    db = client[name]
    procs = Procs()
    lags: Lags | None = None
    try:
        note(f"{workers} worker(s): migrating {name}, starting the simulator, storing the instruments")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        base, universe = start_market(args, procs, env)
        lags = Lags(db, args.lag_every)
        note(f"{workers} worker(s): starting them over {len(universe)} instruments (logs in {tmp})")
        spawned = time.monotonic()
        logs = start_workers(workers, args, procs, env, tmp)
        sim, streams = procs.procs[0], procs.procs[1:]
        fair = sorted(args.universe // workers + (i < args.universe % workers) for i in range(workers))

        def partitioned() -> tuple[bool, str]:
            shares = sorted(Counter(holders(db).values()).values())
            return shares == fair, f"{sum(shares)}/{args.universe} held, shares {shares}"

        def subscribed() -> tuple[bool, str]:
            subs = {s.split("@")[0].upper() for s in sim_status(base)["venues"]["binance"]["subscriptions"]}
            return subs >= set(universe), f"{len(subs & set(universe))}/{args.universe} subscribed"

        wait_until("a full partition", partitioned, args.timeout, streams, logs)
        held_s = time.monotonic() - spawned
        wait_until("every symbol subscribed", subscribed, args.timeout, streams, logs)
        subs_s = time.monotonic() - spawned
        note(f"{workers} worker(s): partition held {held_s:.1f} s and all subscribed {subs_s:.1f} s after the start")
        note(f"  warm-up {args.warmup:g} s, then a {args.seconds:g} s window")
        time.sleep(args.warmup)

        pids = {f"w{i + 1}": p.pid for i, p in enumerate(streams)} | {"sim": sim.pid, "mongod": mongo.process.pid}
        c0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
        e0, n0, w0 = last_agg_ids(sim_status(base)), db[TICKS].estimated_document_count(), time.time()
        t0 = time.monotonic()
        end = t0 + args.seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 10.0))
            if time.monotonic() < end:
                note(f"  window: {end - time.monotonic():.0f} s left")
            for p, log in zip(streams, logs, strict=True):
                if p.poll() is not None:
                    raise RuntimeError(f"a worker exited ({p.returncode}) in the window:\n{tail(log)}")
        status = sim_status(base)
        e1, n1, t1, w1 = last_agg_ids(status), db[TICKS].estimated_document_count(), time.monotonic(), time.time()
        last = stored_last(db, universe)
        cpu = {k: (cpu_seconds(pid) - c0[k]) / (t1 - t0) for k, pid in pids.items()}
        return {
            "workers": workers,
            "held_s": held_s,
            "subs_s": subs_s,
            "emitted": sum(e1[s] - e0[s] for s in e1 if e0.get(s, -1) >= 0) / (t1 - t0),
            "stored": (n1 - n0) / (t1 - t0),
            "behind": sum(max(0, e1[s] - last[s]) for s in universe if s in last),
            "unrecorded": sum(1 for s in universe if s not in last and e1[s] >= 0),
            "lags": lags.between(w0, w1),
            "conns": int(status["venues"]["binance"]["connections_opened"]),
            "cpu": cpu,
        }
    finally:
        procs.stop()
        if lags is not None:
            lags.stop()
        with contextlib.suppress(Exception):
            client.drop_database(name)
        client.close()


HEAD = (
    f"{'workers':>7} {'held s':>7} {'subs s':>7} {'emitted/s':>10} {'stored/s':>9} {'stored/emitted':>15} "
    f"{'behind':>8} {'lag ms p50/p99/max':>20} {'conns':>5}  {'per worker-core':>15}  CPU % workers | sim | mongod"
)


def row(r: dict[str, Any]) -> str:
    lags = r["lags"]
    lag = "/".join(f"{percentile(lags, q) * 1000:,.0f}" for q in (50, 99, 100)) if lags else "no sample"
    cpu = r["cpu"]
    each = [v for k, v in cpu.items() if k.startswith("w")]
    per_core = r["stored"] / sum(each) if sum(each) > 0 else float("nan")
    ratio = r["stored"] / r["emitted"] if r["emitted"] else float("nan")
    return (
        f"{r['workers']:>7} {r['held_s']:>7.1f} {r['subs_s']:>7.1f} {r['emitted']:>10,.0f} {r['stored']:>9,.0f} "
        f"{ratio:>15.3f} {r['behind']:>8,} {lag:>20} {r['conns']:>5}  {per_core:>15,.0f}  "
        f"{' + '.join(f'{v:.0%}' for v in each)} | {cpu['sim']:.0%} | {cpu['mongod']:.0%}"
    )


def measure(args: argparse.Namespace, mongo: Any, redis: Any, tmp: Path) -> None:
    print(
        f"{args.universe} Binance symbols, {args.rate:,.0f} raw trades/s asked in all; window {args.seconds:g} s after "
        f"{args.warmup:g} s of warm-up; lag sampled on trade ids divisible by {args.lag_every}; "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    print(HEAD, flush=True)
    unrecorded = []
    for workers in args.workers:
        r = run_once(workers, args, mongo, redis, tmp)
        print(row(r), flush=True)
        if r["unrecorded"]:
            unrecorded.append(f"{workers} worker(s): {r['unrecorded']} symbols traded with no record stored")
    for line in unrecorded:
        print(line, flush=True)


def worker_counts(text: str) -> list[int]:
    counts = [int(w) for w in text.split(",") if w.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--workers: comma-separated counts of at least 1, got {text!r}")
    return counts


@contextlib.contextmanager
def stopped_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the bench as Ctrl+C does: through every ``finally``, so nothing started here is left running."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--universe", type=int, default=200, help="Binance symbols in all (BTCUSDT, ETHUSDT and N-2 more)")
    p.add_argument("--rate", type=float, default=2000.0, help="raw synthetic trades/s of all the symbols together")
    p.add_argument("--workers", type=worker_counts, default=[1, 2, 3], help="worker counts, one row each: 1,2,3")
    p.add_argument("--seconds", type=float, default=30.0, help="the measuring window")
    p.add_argument("--warmup", type=float, default=10.0, help="after the partition is held and all are subscribed")
    p.add_argument("--lag-every", type=int, default=10, help="sample the lag on trade ids divisible by this")
    p.add_argument("--lease-seconds", type=float, help="STREAM_LEASE_SECONDS of the workers (default: the setting's)")
    p.add_argument("--renew-seconds", type=float, help="STREAM_LEASE_RENEW_SECONDS (default: the setting's)")
    p.add_argument("--history-days", type=float, default=0.0, help="the simulator's --history-days")
    p.add_argument("--seed", type=int, default=1, help="the simulator's seed (the universe's names and activity)")
    p.add_argument(
        "--timeout", type=float, default=300.0, help="longest wait for the partition, and for the subscriptions"
    )
    args = p.parse_args()
    if args.universe <= LISTED:
        p.error(f"--universe must be more than {LISTED} (BTCUSDT and ETHUSDT are listed anyway), got {args.universe}")
    if args.lag_every < 1:
        p.error(f"--lag-every must be at least 1, got {args.lag_every}")

    from tradingsite.devstack import start_mongod, start_redis

    with stopped_on_sigterm(), tempfile.TemporaryDirectory(prefix="bench-universe-") as tmp:
        mongo, redis = start_mongod(Path(tmp) / "mongo"), start_redis(Path(tmp) / "redis")
        try:
            measure(args, mongo, redis, Path(tmp))
        finally:
            redis.stop()
            mongo.stop()


if __name__ == "__main__":
    main()
