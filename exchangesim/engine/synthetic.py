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
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from ..symbols import SymbolSpec
from .batch import TradeBatch
from .blocks import Block
from .reference import PriceReference


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


@dataclass(frozen=True, slots=True)
class SynthGen:
    """Everything needed to regenerate one block's trades (before any truncation)."""

    t_end: int
    n: int
    k: int
    lp_open: float
    lp_close: float
    sig: float  # price noise scale over the block (log units)


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
        noise = np.empty(m)
        x = st.noise
        for i in range(m):  # AR(1) deviation from the reference: a linear recurrence, cheap even for 10^4 steps
            x = x * decay[i] + shock[i]
            noise[i] = x
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
        intensity = rates * dur / 1000 * vol_factor * burst / (1 + p.extra_per_group)
        k = r_k.poisson(intensity)
        extra = r_x.poisson(k * p.extra_per_group)
        sig = sigma * np.sqrt(dur)
        lp_close = ref.log_price(self.spec, ends) + noise
        lp_open = np.concatenate([[st.lp], lp_close[:-1]])
        st.lp, st.noise = float(lp_close[-1]), float(noise[-1])
        return [
            SynthGen(
                int(ends[i]), int(k[i] + extra[i]), int(k[i]), float(lp_open[i]), float(lp_close[i]), float(sig[i])
            )
            for i in range(m)
        ]

    # -- blocks ---------------------------------------------------------------------------------
    def history(self, start_ms: int, end_ms: int, block_ms: int, rate: float) -> list[Block]:
        """Blocks of ``block_ms`` covering ``[start_ms, end_ms)``, ids starting at the spec's bases."""
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
        dur = g.t_end - block.t_start
        # Arrival times: half uniform, half clustered around a few burst centres.
        centres = rng.random(1 + k // 20) * dur
        near = rng.random(k) < 0.5
        clustered = centres[rng.integers(0, len(centres), k)] + rng.exponential(dur * 0.02 + 1, k)
        rel = np.where(near, clustered, rng.random(k) * dur)
        # A cluster running past the block's end folds back into it (clipping piled those trades up on the block's
        # last millisecond: about 1 % of all trades at hh:mm:59.999).
        rel = np.where(rel > dur - 1, 2 * (dur - 1) - rel, rel)
        group_times = block.t_start + np.sort(np.clip(rel, 0, dur - 1).astype(np.int64))
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
