"""The universe (``--universe N``): N synthetic symbols more on every venue, a few busy, most quiet, some silent.

Names. N base assets drawn from the seed (three to five letters; none is an asset, quote or Kraken code the
simulator knows, none starts with Kraken's X/Z prefixes, and each reads back as itself on every venue). Every
venue lists all N, each in its own format (``symbol_format``: ``QOVUSDT``, ``QOV-USD``, ``QOV/USD``) with a
quote drawn from the seed among the venue's ``universe_quotes``. The first N assets of a larger universe are
the same, with the same quotes.

Activity. A venue's symbols (those it lists anyway first, then the universe's in order) trade shares of the
venue's rate that fall with their rank ``r`` (1 the busiest) as ``(r + 5) ** -2``, a Zipf-Mandelbrot law:
with 302 symbols the busiest takes 16 % of the rate, the ten busiest two thirds, the median symbol 0.02 % and
the quietest 0.006 %. With a universe, ``--rate`` is therefore the total trade rate of all of Binance's synthetic
symbols (other venues trade their ``rate_factor`` of it), no longer the rate of each.

Silences. Every fourth universe symbol past the busiest tenth of the universe is silent for 2 to 10 whole
minutes in every UTC hour (``engine.synthetic.Silences``: the stretch is a hash of the seed, the tape and the
hour), in history and live alike, so truth, REST and the streams agree on it.

History. With a universe, every synthetic symbol (the listed ones too) has one to two hours of history: it
starts at the UTC hour before the one the simulator starts in (or later, with a shorter ``--history-days``).
A week of history at 30,000 trades/s is 18 billion trades; nobody streaming a universe needs it, and its
block records alone took 27 s and 1.2 GB to build for ``--universe 300 --rate 30000``.

Cost. Nothing is generated here: the universe is names and per-symbol parameters. The market builds each
symbol's history as block metadata only, in blocks long enough to hold about ``Market.BLOCK_TRADES`` trades at
the symbol's rate (one minute to one hour).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import SimConfig
from .engine.aggregate import MINUTE
from .engine.market import Listing, Market
from .engine.synthetic import Silences, SynthParams
from .kraken import pairs
from .symbols import QUOTES, USD_PRICES, UnknownSymbolError
from .venues import Venue, listed

MAX_SIZE = 10_000
ZIPF_EXPONENT = 2.0
ZIPF_OFFSET = 5.0
HISTORY_BLOCK_MINUTES = (1, 5, 10, 15, 30, 60)  # each divides an hour (silences and history's start)
HISTORY_MS = 60 * MINUTE  # a universe's history starts at the UTC hour before the one it starts in
_TAG = zlib.crc32(b"universe")
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
# Asset codes a universe asset must not be (or be read as) on any venue.
_TAKEN = frozenset(
    {*USD_PRICES, *QUOTES, *pairs.QUOTES, *pairs.LEGACY, *pairs.LEGACY.values(), *pairs.ALTNAME.values()}
)


@dataclass(frozen=True, slots=True)
class Member:
    """One of a venue's synthetic symbols under a universe: its rank (1 the busiest), its share of the venue's
    rate, and whether it has silent stretches."""

    venue: str
    symbol: str
    rank: int
    share: float
    silent: bool
    listing: Listing


def shares(n: int) -> np.ndarray:
    """The rate shares of ranks 1..n (they sum to 1)."""
    w = (np.arange(1, n + 1) + ZIPF_OFFSET) ** -ZIPF_EXPONENT
    return w / w.sum()


def asset_names(seed: int, n: int, taken: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """``n`` distinct base assets drawn from ``seed``; the first ``n`` of a longer draw are the same."""
    rng = np.random.default_rng([seed & (2**32 - 1), _TAG])
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        letters, u = rng.integers(0, 26, 5), rng.random()
        name = "".join(_LETTERS[letters[: 3 if u < 0.5 else 4 if u < 0.9 else 5]])
        if name in seen or name in _TAKEN or name in taken or name[0] in "XZ":
            continue
        seen.add(name)
        out.append(name)
    return tuple(out)


def history_block_ms(rate: float) -> int:
    """History blocks for a symbol trading ``rate`` trades/s: the shortest that holds about
    ``Market.BLOCK_TRADES`` trades, from a minute to an hour."""
    for minutes in HISTORY_BLOCK_MINUTES:
        if rate * minutes * 60 >= Market.BLOCK_TRADES:
            return minutes * MINUTE
    return HISTORY_BLOCK_MINUTES[-1] * MINUTE


class Universe:
    """Every venue's synthetic symbols under ``--universe``: their listings (for the market) and members."""

    def __init__(self, config: SimConfig, venues: Sequence[type[Venue]]) -> None:
        if not 0 < config.universe <= MAX_SIZE:
            raise ValueError(f"a universe holds 1 to {MAX_SIZE} symbols per venue, got {config.universe}")
        self.size = config.universe
        self.seed = config.seed
        named = {v.name: listed(v, config) for v in venues}
        taken = frozenset(s.base for v in venues for s in map(v.spec, named[v.name]))
        self.assets = self._assets(venues, taken)
        self.members: dict[str, tuple[Member, ...]] = {
            v.name: self._members(v, named[v.name], config.rate) for v in venues
        }

    def _assets(self, venues: Sequence[type[Venue]], taken: frozenset[str]) -> tuple[str, ...]:
        """The base assets, each read back as itself in every quote of every venue (else skipped)."""
        out: list[str] = []
        extra = 0
        while len(out) < self.size:
            names = asset_names(self.seed, self.size + extra, taken)
            out = [a for a in names if all(_reads_back(v, a, q) for v in venues for q, _ in v.universe_quotes)]
            extra += self.size - len(out)
        return tuple(out[: self.size])

    def _members(self, venue: type[Venue], named: tuple[str, ...], rate: float) -> tuple[Member, ...]:
        quotes = [q for q, _ in venue.universe_quotes]
        cum = np.cumsum([w for _, w in venue.universe_quotes])
        u = np.random.default_rng([self.seed & (2**32 - 1), _TAG, zlib.crc32(venue.name.encode())]).random(self.size)
        picked = [quotes[min(int(i), len(quotes) - 1)] for i in np.searchsorted(cum / cum[-1], u, side="right")]
        specs = [venue.spec(s) for s in named] + [
            venue.spec(venue.symbol_format.format(base=a, quote=q)) for a, q in zip(self.assets, picked, strict=True)
        ]
        w = shares(len(specs))
        members: list[Member] = []
        for i, spec in enumerate(specs):
            j = i - len(named)  # index in the universe (negative: a symbol the venue lists anyway)
            silent = j >= self.size // 10 and j % 4 == 3
            factor = venue.rate_factor * float(w[i])
            key = Listing(venue.name, spec).key
            params = SynthParams(
                silences=Silences(self.seed, zlib.crc32(key.encode())) if silent else None,
                history_block_ms=history_block_ms(rate * factor),
                history_ms=HISTORY_MS,
            )
            listing = Listing(venue.name, spec, factor, params)
            members.append(Member(venue.name, spec.symbol, i + 1, float(w[i]), silent, listing))
        return tuple(members)

    @property
    def listings(self) -> tuple[Listing, ...]:
        """Every venue's synthetic symbols, in rank order per venue."""
        return tuple(m.listing for members in self.members.values() for m in members)

    def status(self) -> dict[str, object]:
        """``/_sim/status``'s ``universe``: its size, and each venue's symbol count and silent symbols."""
        return {
            "size": self.size,
            "venues": {
                name: {"symbols": len(ms), "silent": sum(m.silent for m in ms)} for name, ms in self.members.items()
            },
        }


def _reads_back(venue: type[Venue], asset: str, quote: str) -> bool:
    """``asset`` listed in ``quote`` on ``venue`` is read back as that base and quote."""
    try:
        spec = venue.spec(venue.symbol_format.format(base=asset, quote=quote))
    except UnknownSymbolError:
        return False
    return spec.base == asset and spec.quote == pairs.canonical(quote)
