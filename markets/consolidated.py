"""The consolidated price of one base asset across venues: a median that stale and outlying venues cannot move.
Pure: plain values in, a frozen record out, no Django (ARCHITECTURE §7).

Given each venue's last trade (any exchange, any US-dollar quote: USD, USDT and USDC are taken as one dollar):

1. a venue is **stale** when it has no trade, or its last trade is older than ``config.stale_after``;
2. the **reference** is the median of the fresh venues' prices;
3. each priced venue's **deviation** from the reference is ``(price - reference) / reference`` in basis points,
   rounded half-even to 0.01 bp; a venue is an **outlier** when that rounded deviation is beyond
   ``config.outlier_bps`` in either direction (strictly greater: exactly at the limit is not an outlier);
4. the consolidated **price** is the median of the fresh venues that are not outliers.

With no usable venue left (none stored, every one stale, or the fresh ones all far from their median) the price
is None and ``reason`` says why. A median of an even count is the mean of the two middle prices. All arithmetic
is Decimal at a precision wide enough for two 38-digit prices, so medians are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

USD_QUOTES = ("USD", "USDT", "USDC")  # quotes whose prices are comparable as dollars
BPS = Decimal(10_000)
BPS_STEP = Decimal("0.01")  # deviations are reported (and judged) to 0.01 bp
_PRECISION = 80  # digits: a sum of two 38-digit prices, halved, is exact; a ratio is far finer than 0.01 bp


@dataclass(frozen=True, slots=True)
class ConsolidatedConfig:
    """How old a last trade may be (``stale_after``) and how far from the reference a venue may be
    (``outlier_bps``) for its price to count."""

    stale_after: timedelta
    outlier_bps: Decimal


@dataclass(frozen=True, slots=True)
class VenuePrice:
    """One venue's last stored trade of an instrument (``price``/``ts``/``trade_id`` None when it has none);
    ``ts`` is exchange time, UTC."""

    exchange: str
    symbol: str
    canonical: str
    quote: str
    price: Decimal | None
    ts: datetime | None
    trade_id: int | None


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """A venue as the consolidation judged it: its last trade, its age at ``now``, its deviation from the
    reference (None without a price or a reference), its flags, and whether its price went into the median."""

    venue: VenuePrice
    age: timedelta | None
    deviation_bps: Decimal | None
    stale: bool
    outlier: bool

    @property
    def used(self) -> bool:
        """Whether this venue's price is one the consolidated median was taken over."""
        return not self.stale and not self.outlier


@dataclass(frozen=True, slots=True)
class Consolidated:
    """The consolidated price of ``base`` at ``now`` (None with a ``reason`` when no venue is usable), the
    reference median the outliers were judged against, and every venue in the order given."""

    base: str
    now: datetime
    price: Decimal | None
    reference: Decimal | None
    reason: str | None
    venues: tuple[VenueQuote, ...]
    config: ConsolidatedConfig

    @property
    def used(self) -> int:
        """How many venues the price is the median of."""
        return sum(v.used for v in self.venues)


def median(values: list[Decimal]) -> Decimal:
    """The median of a non-empty list: the middle value of an odd count, the mean of the two middle ones of an
    even count (exact)."""
    if not values:
        raise ValueError("the median of no values is undefined")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    with localcontext(prec=_PRECISION):
        return (ordered[mid - 1] + ordered[mid]) / 2


def deviation_bps(price: Decimal, reference: Decimal) -> Decimal:
    """``price``'s distance from ``reference`` in basis points, signed (above is positive), rounded half-even
    to 0.01 bp."""
    if reference <= 0:
        raise ValueError(f"a reference price must be positive, got {reference}")
    with localcontext(prec=_PRECISION):
        return ((price - reference) * BPS / reference).quantize(BPS_STEP, rounding=ROUND_HALF_EVEN)


def consolidate(*, base: str, venues: list[VenuePrice], now: datetime, config: ConsolidatedConfig) -> Consolidated:
    """The consolidated price of ``base`` over ``venues`` at ``now`` (see the module docstring for the rules)."""
    ages = [None if v.ts is None else now - v.ts for v in venues]
    stale = [v.price is None or age is None or age > config.stale_after for v, age in zip(venues, ages, strict=True)]
    fresh = [v.price for v, s in zip(venues, stale, strict=True) if not s and v.price is not None]
    reference = median(fresh) if fresh else None
    quotes = []
    for v, age, is_stale in zip(venues, ages, stale, strict=True):
        dev = None if v.price is None or reference is None else deviation_bps(v.price, reference)
        outlier = dev is not None and abs(dev) > config.outlier_bps
        quotes.append(VenueQuote(v, age, dev, is_stale, outlier))
    usable = [q.venue.price for q in quotes if q.used and q.venue.price is not None]
    price = median(usable) if usable else None
    return Consolidated(
        base, now, price, reference, None if usable else _why(venues, fresh, config), tuple(quotes), config
    )


def _why(venues: list[VenuePrice], fresh: list[Decimal], config: ConsolidatedConfig) -> str:
    """Why no venue is usable."""
    seconds = f"{config.stale_after.total_seconds():g}"
    if not venues:
        return "no venue: no stored instrument of this base is quoted in " + "/".join(USD_QUOTES)
    if not any(v.price is not None for v in venues):
        return f"no venue has a stored trade ({len(venues)} instrument{'s' * (len(venues) != 1)})"
    if not fresh:
        return f"every venue is stale: none has traded in the last {seconds} s"
    return (
        f"no usable venue: each of the {len(fresh)} fresh venues is more than {config.outlier_bps} bps from "
        "their median"
    )
