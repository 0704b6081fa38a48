"""The universe (``--universe N``) without a server: names in each venue's format, drawn from the seed and
prefix-stable; rate shares that sum to the documented totals; silent stretches kept by history and live blocks
alike; and a construction that builds few history blocks for quiet symbols."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from exchangesim.__main__ import parse_args
from exchangesim.config import SimConfig
from exchangesim.engine.aggregate import DAY, MINUTE
from exchangesim.engine.batch import group_starts
from exchangesim.engine.market import Market
from exchangesim.engine.synthetic import HOUR, Silences, SyntheticProducer, SynthParams
from exchangesim.server import VENUES
from exchangesim.symbols import synthetic_spec
from exchangesim.universe import Member, Universe, asset_names, history_block_ms, shares

T0 = 1_722_470_400_000  # 2024-08-01 00:00 UTC


def _universe(n: int = 20, **config: object) -> Universe:
    return Universe(SimConfig(universe=n, **config), VENUES)  # type: ignore[arg-type]


def _market(u: Universe, rate: float, start_ms: int, history_days: float) -> Market:
    return Market(symbols=(), rate=rate, seed=u.seed, history_days=history_days, start_ms=start_ms, listings=u.listings)


def _first_silent(u: Universe, venue: str) -> Member:
    return next(m for m in u.members[venue] if m.silent)


# -- names and shares -------------------------------------------------------------------------------------
def test_names_are_seeded_distinct_prefix_stable_and_in_each_venue_format() -> None:
    """The same seed names the same assets, a longer universe starts with the shorter one's symbols, another seed
    names others; each venue lists every asset in its own format after the symbols it lists anyway."""
    small, large, other = _universe(10), _universe(40), _universe(10, seed=2)
    assert [m.symbol for m in large.members["binance"][:12]] == [m.symbol for m in small.members["binance"]]
    assert small.assets == _universe(10).assets
    assert small.assets != other.assets
    assert len(set(large.assets)) == 40
    assert asset_names(7, 50)[:20] == asset_names(7, 20)
    for venue, listed, pattern in (
        ("binance", ["BTCUSDT", "ETHUSDT"], "{a}{q}"),
        ("coinbase", ["BTC-USD", "ETH-USD"], "{a}-{q}"),
        ("kraken", ["XBT/USD", "ETH/USD"], "{a}/{q}"),
    ):
        members = large.members[venue]
        assert [m.symbol for m in members[:2]] == listed
        for asset, m in zip(large.assets, members[2:], strict=True):
            spec = m.listing.spec
            assert spec.base == asset
            quote = "XBT" if venue == "kraken" and spec.quote == "BTC" else spec.quote
            assert m.symbol == pattern.format(a=asset, q=quote)


def test_rate_shares_are_heavy_tailed_and_sum_to_the_venue_rate() -> None:
    """Shares fall with rank and sum to 1: the busiest symbol takes about 16 %, the median well under a thousandth;
    a venue's rate factors add up to its ``rate_factor`` (so --rate is Binance's total)."""
    w = shares(302)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(np.diff(w) < 0)
    assert 0.15 < w[0] < 0.17
    assert w[:10].sum() > 0.6
    assert w[150] < 1e-3
    u = _universe(300)
    for venue in VENUES:
        members = u.members[venue.name]
        assert len(members) == 302
        assert sum(m.listing.rate_factor for m in members) == pytest.approx(venue.rate_factor)
        assert [m.rank for m in members] == list(range(1, 303))


def test_every_fourth_past_the_busiest_tenth_is_silent() -> None:
    """Silent symbols are universe symbols (never the listed ones), every fourth from the busiest tenth on."""
    u = _universe(40)
    universe = u.members["coinbase"][2:]
    assert [j for j, m in enumerate(universe) if m.silent] == [7, 11, 15, 19, 23, 27, 31, 35, 39]
    assert all(m.listing.params and m.listing.params.silences for m in universe if m.silent)
    assert not any(m.silent for m in u.members["coinbase"][:2])
    assert u.status() == {
        "size": 40,
        "venues": {v: {"symbols": 42, "silent": 9} for v in ("binance", "coinbase", "kraken")},
    }


def test_cli_universe_and_its_bounds() -> None:
    """--universe N sets the size; a negative or too large one is refused."""
    assert parse_args(["--universe", "300", "--rate", "30000"]).universe == 300
    assert parse_args([]).universe == 0
    for bad in ("-1", "10001"):
        with pytest.raises(SystemExit):
            parse_args(["--universe", bad])


# -- silences ---------------------------------------------------------------------------------------------
def test_silent_stretches_are_whole_minutes_inside_each_hour() -> None:
    """One stretch an hour of 2 to 10 whole minutes; ``overlap`` and ``within`` agree with the stretches."""
    s = Silences(seed=1, key=zlib.crc32(b"QOVUSDT"))
    hours = np.arange(T0 // HOUR, T0 // HOUR + 200)
    lo, hi = s.stretches(hours)
    assert np.all(lo % MINUTE == 0)
    assert np.all(hi % MINUTE == 0)
    assert np.all((hi - lo >= 2 * MINUTE) & (hi - lo <= 10 * MINUTE))
    assert np.all((lo >= hours * HOUR) & (hi <= (hours + 1) * HOUR))
    assert len(set((lo - hours * HOUR).tolist())) > 10, "the stretch moves from hour to hour"
    a, b = int(lo[3]), int(hi[3])
    assert s.overlap(np.array([a - 5000, a, T0]), np.array([a + 7000, b, T0 + DAY])).tolist() == [
        7000,
        b - a,
        int((hi[:24] - lo[:24]).sum()),
    ]
    assert s.within(a - 5000, b + 1) == ((5000, 5000 + b - a),)
    assert s.within(a - 5000, a) == ()
    with pytest.raises(ValueError, match="do not fit an hour"):
        Silences(1, 2, min_minutes=5, max_minutes=61)


def test_history_blocks_keep_silences_and_their_declared_counts() -> None:
    """Hour-long history blocks of a silent symbol put no trade inside a stretch; every block holds the trades and
    aggregate groups it declares; ids are contiguous."""
    silences = Silences(seed=4, key=99)
    prod = SyntheticProducer(synthetic_spec("QOVUSDT"), 4, SynthParams(silences=silences, history_block_ms=HOUR))
    blocks = prod.history(T0, T0 + DAY, MINUTE, 2.0)
    assert len(blocks) == 24
    lo, hi = silences.stretches(np.arange(T0 // HOUR, T0 // HOUR + 24))
    partly = [b for b in blocks if b.gen.silent]
    assert partly, "every hour block holds a stretch"
    for b in blocks:
        t = prod.generate(b)
        assert len(t) == b.n
        assert len(group_starts(t)) == b.k
        assert np.all((t.times >= b.t_start) & (t.times < b.t_end))
        assert np.all(np.diff(t.times) >= 0)
        inside = np.zeros(len(t), dtype=bool)
        for a, z in zip(lo, hi, strict=True):
            inside |= (t.times >= a) & (t.times < z)
        assert not inside.any()
    assert all(b.first_id == a.first_id + a.n for a, b in itertools.pairwise(blocks))


def test_live_blocks_keep_silences() -> None:
    """A market ticked by hand across a silent symbol's stretch emits none of its trades inside the stretch, and
    its busy neighbours go on trading."""
    u = _universe(20, rate=400.0)
    member = _first_silent(u, "binance")
    assert member.listing.params is not None
    assert member.listing.params.silences is not None
    lo, hi = (int(x[0]) for x in member.listing.params.silences.stretches(np.array([T0 // HOUR])))
    m = _market(u, 400.0, lo - 2 * MINUTE, 0.0)
    times: dict[str, list[int]] = {}
    for t in range(lo - 2 * MINUTE + 20, hi + 2 * MINUTE, 2000):
        for e in m.tick(t):
            times.setdefault(e.symbol, []).extend(e.trades.times.tolist())
    mine = np.array(times.get(member.symbol, []))
    assert len(mine)
    assert not np.any((mine >= lo) & (mine < hi))
    busiest = np.array(times[u.members["binance"][2].symbol])
    assert np.any((busiest >= lo) & (busiest < hi))


# -- cost -------------------------------------------------------------------------------------------------
def test_history_block_length_follows_the_rate() -> None:
    """About ``Market.BLOCK_TRADES`` trades a block, from a minute (busy) to an hour (quiet)."""
    assert history_block_ms(100.0) == MINUTE
    assert history_block_ms(5.0) == 10 * MINUTE
    assert history_block_ms(0.01) == 60 * MINUTE
    assert history_block_ms(0.0) == 60 * MINUTE


def test_a_universe_has_an_hour_or_two_of_cheap_history() -> None:
    """Started at 12:30 with a week of history asked, every symbol of a universe has its history from 11:00: a
    quiet one in two blocks, a busy one in a block a minute; the assets' price paths start there too."""
    u = _universe(100, rate=500.0)
    live_from = T0 + 12 * HOUR + 30 * MINUTE
    m = _market(u, 500.0, live_from + 1234, 7.0)
    for venue in VENUES:
        for member in u.members[venue.name]:
            tape = m.tapes[member.listing.key]
            assert tape.first_time == T0 + 11 * HOUR
            history = [b for b in tape.blocks if b.t_end <= live_from]
            rate = 500.0 * member.listing.rate_factor
            if rate * 3600 < Market.BLOCK_TRADES:
                assert len(history) == 2
            if rate * 60 >= Market.BLOCK_TRADES:
                assert len(history) == 90
    assert {p.t0 for p in m.reference.paths.values()} == {T0 + 11 * HOUR}


def test_every_trade_is_emitted_once_across_ticks_pauses_and_silences() -> None:
    """Ticked by hand every 20 ms for two minutes, with a pause and a stale symbol in between, a universe's
    market emits each tape's trades exactly once, in order: what it emitted is what its tape holds (a tape
    with nothing due skips the work, never a trade)."""
    u = _universe(20, rate=300.0)
    start = T0 + 5 * HOUR + 30_000
    m = _market(u, 300.0, start, 0.0)
    quiet = u.members["kraken"][-1].listing.key
    got: dict[str, list[np.ndarray]] = {}
    m.listeners.append(lambda _t, emissions: [got.setdefault(e.symbol, []).append(e.trades.ids) for e in emissions])
    for t in range(start + 20, start + 2 * MINUTE, 20):
        if t == start + 30_000:
            m.set_flow(paused=True, at_ms=t)
        if t == start + 40_000:
            m.set_flow(paused=False, at_ms=t)
        if t == start + 50_000:
            m.stale_until[quiet] = t + 20_000
            m._cut(quiet, t)
        m.tick(t)  # what a cut emits goes to the listeners too
    end = start + 2 * MINUTE - 20
    for key, tape in m.tapes.items():
        ids = np.concatenate(got.get(key, [np.empty(0, dtype=np.int64)]))
        want = tape.trades_between(start + 1, end, 10**7).ids
        assert np.array_equal(ids, want), key
    assert len(got[u.members["binance"][0].listing.key]) > 1000
