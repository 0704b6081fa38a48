"""The synthetic market: a seeded, deterministic generator of trades.

Time is cut into blocks (a minute in the history; live, a minute down to a second as the rate
rises). A *skeleton* step decides, for each block in order, how many trades and aggregate trades it
holds (bursts of arrivals; more trades when volatility is high) and where the price goes: each
block closes at the shared reference price of its base asset (``reference.py``: stochastic
volatility, so calm and hectic stretches cluster; occasional jumps) plus the quote's basis and a
small mean-reverting noise of this venue symbol's own, so the same asset moves together on every
venue. The trades inside a block are then generated from the block's own seed, so any block can be
regenerated at any time and the simulator keeps only block metadata, not trades: memory stays
bounded while every trade ever emitted can be served again exactly.

Within a block, aggregate-trade groups get non-decreasing millisecond times and no group repeats
the time, price and taker side of the group before it, so Binance's aggregation rule recovers the
groups exactly and the number of aggregate trades per block is known without generating it.

A symbol may also have a schedule of silent stretches (``Silences``: whole minutes, one stretch an
hour, drawn from a hash of the seed, the symbol and the hour): the skeleton gives a block only its
active time's share of the rate, and a block partly silent places its trades in its active time
only. History and live blocks alike, so truth, REST and the streams agree on every silence.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np

from ..symbols import SymbolSpec
from .aggregate import MINUTE
from .batch import TradeBatch
from .blocks import Block
from .reference import PriceReference

HOUR = 60 * MINUTE
_GOLD, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over an array of uint64: a cheap, well-mixed hash."""
    with np.errstate(over="ignore"):
        x = x + _GOLD
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


@dataclass(frozen=True, slots=True)
class Silences:
    """A symbol's silent stretches: in every UTC hour, one stretch of ``min_minutes`` to ``max_minutes`` whole
    minutes, starting at a whole minute and ending within the hour. Length and start are drawn from a hash of
    ``seed``, ``key`` and the hour, so the state of any time is known without generating what came before."""

    seed: int
    key: int
    min_minutes: int = 2
    max_minutes: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.min_minutes <= self.max_minutes <= 60:
            raise ValueError(f"silent stretches of {self.min_minutes} to {self.max_minutes} minutes do not fit an hour")

    def stretches(self, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (ms) of the silent stretch of each hour (hours since the epoch)."""
        base = _splitmix(_splitmix(np.array([self.seed & (2**64 - 1)], dtype=np.uint64)) ^ np.uint64(self.key))
        h = _splitmix(base ^ np.asarray(hours, dtype=np.int64).astype(np.uint64))
        length = self.min_minutes + (h % np.uint64(self.max_minutes - self.min_minutes + 1)).astype(np.int64)
        first = ((h >> np.uint64(32)) % (61 - length).astype(np.uint64)).astype(np.int64)
        lo = np.asarray(hours, dtype=np.int64) * HOUR + first * MINUTE
        return lo, lo + length * MINUTE

    def overlap(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Silent ms inside each ``[starts[i], ends[i])``."""
        starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
        total = np.zeros(len(starts), dtype=np.int64)
        if not len(starts):
            return total
        first, last = starts // HOUR, (ends - 1) // HOUR
        for j in range(int((last - first).max()) + 1):
            hours = first + j
            lo, hi = self.stretches(hours)
            total += np.where(hours <= last, np.maximum(0, np.minimum(ends, hi) - np.maximum(starts, lo)), 0)
        return total

    def within(self, start: int, end: int) -> tuple[tuple[int, int], ...]:
        """The silent stretches inside ``[start, end)``, clipped to it, as offsets from ``start``, in order."""
        hours = np.arange(start // HOUR, (end - 1) // HOUR + 1)
        lo, hi = self.stretches(hours)
        return tuple(
            (max(a, start) - start, min(b, end) - start)
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True)
            if a < end and b > start
        )


@dataclass(frozen=True, slots=True)
class SynthParams:
    """Shape of one venue symbol's trading (the price path is the shared reference's). Defaults resemble
    a large spot market."""

    basis_noise: float = 0.4e-4  # stationary std of this venue symbol's deviation from the reference (log)
    basis_half_life_ms: float = 3 * 60_000
    burst_every_ms: float = 45_000  # mean time between bursts of arrivals
    burst_factor: float = 4.0
    burst_ms: float = 4_000  # how long a burst lasts
    extra_per_group: float = 0.35  # mean extra trades in an aggregate trade beyond the first
    median_notional_usd: float = 150.0
    size_sigma: float = 1.3
    silences: Silences | None = None  # silent stretches (none by default)
    history_block_ms: int = 0  # history blocks at least this long (a quiet symbol needs few, long ones)
    history_ms: int = 0  # history at most about this long: it starts at the UTC hour before (0: the market's)


@dataclass(frozen=True, slots=True)
class SynthGen:
    """Everything needed to regenerate one block's trades (before any truncation)."""

    t_end: int
    n: int
    k: int
    lp_open: float
    lp_close: float
    sig: float  # price noise scale over the block (log units)
    silent: tuple[tuple[int, int], ...] = ()  # silent stretches inside a partly silent block (offsets from its start)


@dataclass(slots=True)
class SkeletonState:
    """Where the market stands between blocks.

    Each random quantity has its own stream (``rngs``), drawn one value per block in block order, so
    the skeleton of the first ``m`` blocks does not depend on how many blocks are generated in one
    call: two simulators started at different times on the same day share their history.
    """

    lp: float  # log price
    noise: float  # this venue symbol's deviation from the reference (log)
    rngs: tuple[np.random.Generator, ...]


class SyntheticProducer:
    """Produces the blocks of one venue symbol's synthetic tape.

    ``reference`` is the market's shared price reference (a private one starting at the first block
    when not given); ``key`` names the tape in seeds (default: the symbol), so one symbol name listed
    on two venues still trades differently.
    """

    def __init__(
        self,
        spec: SymbolSpec,
        seed: int,
        params: SynthParams | None = None,
        reference: PriceReference | None = None,
        key: str | None = None,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.params = params or SynthParams()
        self.sym_key = zlib.crc32((key or spec.symbol).encode())
        self.reference = reference
        self.state: SkeletonState | None = None

    # -- skeleton ------------------------------------------------------------------------------
    def _start(self, t0: int) -> None:
        if self.reference is None:
            self.reference = PriceReference(self.seed, t0)
        if self.params.history_ms:  # a short history: the base asset's path need not start before it
            self.reference.start_late(self.spec.base, t0)
        streams = np.random.SeedSequence([self.seed, self.sym_key, t0]).spawn(4)
        rngs = tuple(np.random.default_rng(s) for s in streams)
        lp = float(self.reference.log_price(self.spec, np.array([t0]))[0])
        self.state = SkeletonState(lp, 0.0, rngs)

    def skeleton(self, starts: np.ndarray, ends: np.ndarray, rates: np.ndarray) -> list[SynthGen]:
        """Advance the skeleton over consecutive blocks ``[starts[i], ends[i])`` at ``rates`` trades/s."""
        assert self.state is not None
        assert self.reference is not None
        p, st, ref = self.params, self.state, self.reference
        m = len(starts)
        dur = (ends - starts).astype(np.float64)
        r_b, r_k, r_x, r_n = st.rngs
        u_burst, eps_n = r_b.random(m), r_n.standard_normal(m)
        decay = np.exp(-math.log(2) / p.basis_half_life_ms * dur)
        shock = p.basis_noise * np.sqrt(1 - decay**2) * eps_n
        out = []
        x = st.noise
        for d, s in zip(decay.tolist(), shock.tolist(), strict=True):  # AR(1) deviation from the reference, on floats
            x = x * d + s
            out.append(x)
        noise = np.array(out)
        sigma = ref.sigma(self.spec, starts)
        # Bursts (Poisson, burst_every_ms apart on average, burst_ms long) lift the part of the block they
        # cover, whatever the block's length; normalised so the long-run mean stays ``rates``.
        covered = np.minimum(p.burst_ms, dur) / dur
        expected = dur / p.burst_every_ms
        n_bursts = _poisson_from_uniform(u_burst, expected)
        burst = (1 + np.minimum(n_bursts * covered, 1) * (p.burst_factor - 1)) / (
            1 + np.minimum(expected * covered, 1) * (p.burst_factor - 1)
        )
        # Normalised so the long-run mean is ``rates`` trades/s: E[(s/s_bar)^0.7] for lognormal s.
        vol_factor = (sigma / ref.params.sigma_bar) ** 0.7 / math.exp(0.5 * (0.7 * ref.params.vol_of_vol) ** 2)
        # A silent stretch takes its share of the block's time: the block trades in its active time only.
        active = dur if p.silences is None else dur - p.silences.overlap(starts, ends)
        intensity = rates * active / 1000 * vol_factor * burst / (1 + p.extra_per_group)
        k = r_k.poisson(intensity)
        extra = r_x.poisson(k * p.extra_per_group)
        sig = sigma * np.sqrt(dur)
        lp_close = ref.log_price(self.spec, ends) + noise
        lp_open = np.concatenate([[st.lp], lp_close[:-1]])
        st.lp, st.noise = float(lp_close[-1]), float(noise[-1])
        gens = [
            SynthGen(
                int(ends[i]), int(k[i] + extra[i]), int(k[i]), float(lp_open[i]), float(lp_close[i]), float(sig[i])
            )
            for i in range(m)
        ]
        if p.silences is not None:
            for i in np.flatnonzero((active < dur) & (k > 0)):
                gens[i] = replace(gens[i], silent=p.silences.within(int(starts[i]), int(ends[i])))
        return gens

    # -- blocks ---------------------------------------------------------------------------------
    def history(self, start_ms: int, end_ms: int, block_ms: int, rate: float) -> list[Block]:
        """Blocks of ``block_ms`` (or the params' ``history_block_ms``, if longer) covering ``[start_ms, end_ms)``
        (or its end only, with the params' ``history_ms``), ids starting at the spec's bases."""
        block_ms = max(block_ms, self.params.history_block_ms)
        if self.params.history_ms:
            start_ms = max(start_ms, (end_ms - self.params.history_ms) // HOUR * HOUR)
        self._start(start_ms)
        starts = np.arange(start_ms, end_ms, block_ms, dtype=np.int64)
        if len(starts) == 0:
            return []
        ends = np.minimum(starts + block_ms, end_ms)
        gens = self.skeleton(starts, ends, np.full(len(starts), float(rate)))
        blocks, tid, aid = [], self.spec.trade_id_base, self.spec.agg_id_base
        for s, g in zip(starts, gens, strict=True):
            blocks.append(Block(int(s), g.t_end, tid, g.n, aid, g.k, g))
            tid += g.n
            aid += g.k
        return blocks

    def next_block(self, prev: Block | None, start_ms: int, end_ms: int, rate: float) -> Block:
        """The live block ``[start_ms, end_ms)`` following ``prev``."""
        if self.state is None:
            self._start(start_ms)
        gen = self.skeleton(np.array([start_ms]), np.array([end_ms]), np.array([float(rate)]))[0]
        tid = prev.first_id + prev.n if prev else self.spec.trade_id_base
        aid = prev.first_agg + prev.k if prev else self.spec.agg_id_base
        return Block(start_ms, end_ms, tid, gen.n, aid, gen.k, gen)

    def truncated(self, block: Block, last_price_ticks: int | None) -> None:
        """The current block was cut short: continue the price from its last kept trade."""
        if self.state is not None and last_price_ticks:
            self.state.lp = math.log(last_price_ticks / self.spec.price_scale)

    def generate(self, block: Block) -> TradeBatch:
        """All trades the block was generated with (callers slice off what truncation removed)."""
        g: SynthGen = block.gen
        if g.n == 0:
            return TradeBatch.empty()
        p, k, n = self.params, g.k, g.n
        rng = np.random.default_rng([self.seed, self.sym_key, block.t_start, g.n])
        # Times are drawn over the block's active time (all of it unless partly silent), then moved past the
        # silent stretches before them.
        dur = g.t_end - block.t_start - sum(b - a for a, b in g.silent)
        # Arrival times: half uniform, half clustered around a few burst centres.
        centres = rng.random(1 + k // 20) * dur
        near = rng.random(k) < 0.5
        clustered = centres[rng.integers(0, len(centres), k)] + rng.exponential(dur * 0.02 + 1, k)
        rel = np.where(near, clustered, rng.random(k) * dur)
        # A cluster running past the block's end folds back into it (clipping piled those trades up on the block's
        # last millisecond: about 1 % of all trades at hh:mm:59.999).
        rel = np.where(rel > dur - 1, 2 * (dur - 1) - rel, rel)
        offsets = np.sort(np.clip(rel, 0, dur - 1).astype(np.int64))
        for a, b in g.silent:
            offsets = np.where(offsets >= a, offsets + (b - a), offsets)
        group_times = block.t_start + offsets
        # Log-price path: a bridge from the block's open to its close, plus noise.
        steps = rng.standard_normal(k)
        walk = np.cumsum(steps) / math.sqrt(k)
        frac = np.arange(1, k + 1) / k
        lp = g.lp_open + (g.lp_close - g.lp_open) * frac + (walk - frac * walk[-1]) * g.sig * 0.5
        moves = np.diff(np.concatenate([[g.lp_open], lp]))
        taker_buy = np.where(rng.random(k) < 0.75, moves > 0, rng.random(k) < 0.5)
        mid = np.exp(lp) * self.spec.price_scale
        group_prices = np.maximum(1, np.where(taker_buy, np.ceil(mid), np.floor(mid))).astype(np.int64)
        buyer_maker = ~taker_buy
        _separate_groups(group_times, group_prices, buyer_maker)
        sizes = 1 + rng.multinomial(n - k, np.full(k, 1.0 / k))
        gidx = np.repeat(np.arange(k), sizes)
        median_steps = p.median_notional_usd / max(self.spec.start_price, 1e-12) * self.spec.qty_scale
        if self.spec.quote not in ("USDT", "USDC", "USD", "FDUSD", "BUSD"):
            median_steps = max(1.0, self.spec.qty_scale * 0.05)
        qty = median_steps * np.exp(p.size_sigma * rng.standard_normal(n))
        tail = rng.random(n) < 0.04
        qty = np.where(tail, qty * (1 + rng.pareto(1.5, n) * 4), qty)
        qtys = np.clip(qty, 1, 9_000 * self.spec.qty_scale).astype(np.int64)
        return TradeBatch(
            ids=np.arange(block.first_id, block.first_id + n, dtype=np.int64),
            times=group_times[gidx],
            prices=group_prices[gidx],
            qtys=qtys,
            buyer_maker=buyer_maker[gidx],
        )


def _separate_groups(times: np.ndarray, prices: np.ndarray, buyer_maker: np.ndarray) -> None:
    """Flip the taker side of any group that repeats the previous group's time, price and side."""
    same = (times[1:] == times[:-1]) & (prices[1:] == prices[:-1])
    for i in np.flatnonzero(same) + 1:  # sequential: a flip can create or remove the next clash
        if buyer_maker[i] == buyer_maker[i - 1]:
            buyer_maker[i] = not buyer_maker[i]


def _poisson_from_uniform(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson(lam) draws by inverting the CDF at ``u`` (keeps one uniform per block, so a block's other
    draws do not depend on how many bursts it had)."""
    k = np.zeros(len(u), dtype=np.int64)
    pmf = np.exp(-lam)
    cdf = pmf.copy()
    for i in range(1, 64):
        more = u > cdf
        if not more.any():
            break
        k += more
        pmf = pmf * lam / i
        cdf = cdf + pmf
    return k
