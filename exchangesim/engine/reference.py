"""Shared price reference: one seeded USD log-price path per asset, so every venue's tapes move together.

Each asset (BTC, ETH, ...) has a path on a one-minute grid from the market's start: stochastic
volatility (log volatility is an AR(1)), Gaussian returns and occasional jumps. Every random stream
draws one value per minute in order, generated a day at a time, so a path's first minutes never
depend on how far it has been generated: history and live agree, and two markets with one seed and
one start share their past. Between grid points a Brownian bridge on a one-second grid, seeded by
the minute, gives a value at any millisecond. A path keeps two floats a minute; bridges are
regenerated on demand.

A symbol's reference log price is its base asset's path minus its quote's: a crypto quote (ETHBTC)
has a path of its own, USD and the stablecoins sit at a small fixed basis to USD, other fiat at a
fixed rate.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..symbols import USD_PRICES, SymbolSpec

MINUTE = 60_000
MS_PER_YEAR = 365 * 86_400_000
# Price of the base asset in a quote, relative to its USD price, in bps: BTCUSDT prints a few bps above
# BTC-USD, BTCUSDC about a bp below.
QUOTE_BASIS_BPS: dict[str, float] = {"USD": 0.0, "USDT": 3.0, "USDC": -1.0, "FDUSD": 2.5, "BUSD": 2.0}
FIAT = frozenset({"EUR", "TRY", "GBP", "JPY"})


@dataclass(frozen=True, slots=True)
class PathParams:
    """Shape of every asset's path. Defaults resemble a large crypto asset."""

    annual_vol: float = 0.6
    vol_of_vol: float = 0.45  # stationary std of log volatility
    vol_half_life_ms: float = 20 * 60_000
    jumps_per_hour: float = 0.3
    jump_sigma: float = 0.004

    @property
    def sigma_bar(self) -> float:
        """Long-run volatility per sqrt(ms)."""
        return self.annual_vol / math.sqrt(MS_PER_YEAR)


class AssetPath:
    """One asset's USD log price: ``lp[i]`` at ``t0 + i`` minutes, ``lvol[i]`` the log volatility of minute ``i``."""

    CHUNK = 1440  # minutes generated at a time
    BRIDGES = 256  # one-second bridges kept

    def __init__(self, asset: str, seed: int, t0: int, start_price: float, params: PathParams) -> None:
        self.asset = asset
        self.seed = seed
        self.key = zlib.crc32(asset.encode())
        self.t0 = t0 // MINUTE * MINUTE
        self.params = params
        streams = np.random.SeedSequence([seed, self.key, self.t0]).spawn(4)
        self._rngs = tuple(np.random.default_rng(s) for s in streams)
        self.lp = np.array([math.log(start_price)])
        self.lvol = np.empty(0)
        self._x = math.log(params.sigma_bar)
        self._bridges: OrderedDict[int, np.ndarray] = OrderedDict()

    def _extend(self, minute: int) -> None:
        """Generate whole chunks until minute ``minute`` is known."""
        p = self.params
        while len(self.lvol) <= minute:
            m = self.CHUNK
            r_v, r_r, r_j, r_js = self._rngs
            eps_v, eps_r = r_v.standard_normal(m), r_r.standard_normal(m)
            n_jumps, jump_sizes = r_j.poisson(p.jumps_per_hour / 60, m), r_js.normal(0, p.jump_sigma, m)
            mu = math.log(p.sigma_bar)
            decay = math.exp(-math.log(2) / p.vol_half_life_ms * MINUTE)
            shock = p.vol_of_vol * math.sqrt(1 - decay**2) * eps_v
            out = []
            x = self._x
            for s in shock.tolist():  # AR(1) in log volatility, on Python floats: the same sums, five times faster
                x = mu + (x - mu) * decay + s
                out.append(x)
            self._x = x
            lvol = np.array(out)
            ret = np.exp(lvol) * math.sqrt(MINUTE) * eps_r + np.where(n_jumps > 0, jump_sizes, 0.0)
            self.lp = np.concatenate([self.lp, self.lp[-1] + np.cumsum(ret)])
            self.lvol = np.concatenate([self.lvol, lvol])

    def _minute_of(self, t_ms: np.ndarray) -> np.ndarray:
        return np.maximum(0, (np.asarray(t_ms, dtype=np.int64) - self.t0) // MINUTE)

    def sigma(self, t_ms: np.ndarray) -> np.ndarray:
        """Volatility per sqrt(ms) of the minute holding each time."""
        i = self._minute_of(t_ms)
        if len(i):
            self._extend(int(i.max()))
        return np.exp(self.lvol[i])

    def log_price(self, t_ms: np.ndarray) -> np.ndarray:
        """The path at each time (flat before ``t0``)."""
        t = np.maximum(np.asarray(t_ms, dtype=np.int64), self.t0)
        i = self._minute_of(t)
        if len(i):
            self._extend(int(i.max()) + 1)
        out = self.lp[i].astype(np.float64)
        off_grid = np.flatnonzero((t - self.t0) % MINUTE)
        for j in off_grid:  # live blocks shorter than a minute end inside one
            out[j] = self._inside(int(i[j]), int(t[j] - self.t0 - i[j] * MINUTE))
        return out

    def _inside(self, minute: int, offset_ms: int) -> float:
        """The path ``offset_ms`` into ``minute``: a seeded Brownian bridge between its grid points."""
        bridge = self._bridges.get(minute)
        if bridge is None:
            rng = np.random.default_rng([self.seed, self.key, self.t0 + minute * MINUTE])
            w = np.concatenate([[0.0], np.cumsum(rng.standard_normal(60))]) * math.exp(self.lvol[minute]) * 1000**0.5
            frac = np.arange(61) / 60
            bridge = self.lp[minute] + (self.lp[minute + 1] - self.lp[minute]) * frac + (w - frac * w[-1])
            self._bridges[minute] = bridge
            if len(self._bridges) > self.BRIDGES:
                self._bridges.popitem(last=False)
        s, ms = divmod(offset_ms, 1000)
        return float(bridge[s] + (bridge[s + 1] - bridge[s]) * ms / 1000)


class PriceReference:
    """Every asset's path, created on first use, all starting at ``t0`` unless ``start_late`` said otherwise."""

    def __init__(self, seed: int, t0: int, params: PathParams | None = None) -> None:
        self.seed = seed
        self.t0 = t0
        self.params = params or PathParams()
        self.paths: dict[str, AssetPath] = {}
        self._starts: dict[str, int] = {}

    def start_late(self, asset: str, t0: int) -> None:
        """``asset``'s path starts at ``t0`` if later than the reference's (a symbol with a short history: its
        path need not be generated from the start of everyone else's). No effect once the path exists."""
        if asset not in self.paths and t0 > self.t0:
            self._starts.setdefault(asset, t0)

    def path(self, asset: str) -> AssetPath:
        if asset not in self.paths:
            t0 = self._starts.get(asset, self.t0)
            self.paths[asset] = AssetPath(asset, self.seed, t0, USD_PRICES.get(asset, 10.0), self.params)
        return self.paths[asset]

    def log_price(self, spec: SymbolSpec, t_ms: np.ndarray) -> np.ndarray:
        """Reference log price of ``spec``'s base in its quote at each time."""
        base = self.path(spec.base).log_price(t_ms)
        quote = spec.quote
        if quote in QUOTE_BASIS_BPS:
            return base + QUOTE_BASIS_BPS[quote] * 1e-4
        if quote in FIAT or quote not in USD_PRICES:
            return base - math.log(USD_PRICES.get(quote, 1.0))
        return base - self.path(quote).log_price(t_ms)

    def sigma(self, spec: SymbolSpec, t_ms: np.ndarray) -> np.ndarray:
        """Volatility of ``spec``'s base asset per sqrt(ms)."""
        return self.path(spec.base).sigma(t_ms)
