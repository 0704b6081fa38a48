"""Instruments enter storage only as their exchange lists them: a known exchange, a symbol it lists, and its own
data (canonical name, base, quote, status, trading filters). The admin's add form and ``manage.py
seed_instruments`` go through :func:`instruments_verify`; anything else is refused with a message naming the bad
input, and an exchange that cannot be reached is refused too (nothing unverified is stored).

Instruments written directly through the ORM (tests, fixtures, a shell) are not checked: the rule is at the
door, not in ``Model.save``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .exchanges.base import InstrumentInfo, RestAdapter
from .exchanges.errors import BadRequest, ExchangeError, ExchangeUnavailable, RateLimited
from .exchanges.retry import RetryPolicy
from .services import WriteResult, instruments_store
from .venues import KNOWN_EXCHANGES, rest_adapter, rest_url

# Someone is waiting (a form, a command): a couple of quick tries, no long rate-limit sleeps.
VERIFY_POLICY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0, max_wait=5.0)


class InstrumentRefused(ValueError):
    """An instrument that may not be stored; ``field`` is the input at fault ("exchange", "symbol", or None
    when the exchange could not be asked), the message says why."""

    def __init__(self, message: str, *, field: str | None) -> None:
        super().__init__(message)
        self.field = field


def instruments_verify(*, exchange: str, symbols: Sequence[str]) -> list[InstrumentInfo]:
    """The exchange's own data of ``symbols`` (upper-cased), in their order; :class:`InstrumentRefused` for an
    unknown exchange, a symbol the exchange does not list, or an exchange that cannot be reached."""
    if exchange not in KNOWN_EXCHANGES:
        raise InstrumentRefused(
            f"{exchange!r} is not a known exchange; known: {', '.join(KNOWN_EXCHANGES)}", field="exchange"
        )
    wanted = [s.strip().upper() for s in symbols if s.strip()]
    if not wanted:
        raise InstrumentRefused("no symbol given", field="symbol")
    adapter = rest_adapter(exchange, policy=VERIFY_POLICY)
    try:
        listed = _listed(adapter, exchange, wanted)
    except (ExchangeUnavailable, RateLimited) as exc:
        raise InstrumentRefused(
            f"{exchange} could not be reached at {rest_url(exchange)} ({exc.message}); nothing was stored, try again "
            "when it answers",
            field=None,
        ) from exc
    except ExchangeError as exc:
        raise InstrumentRefused(f"{exchange} refused the instrument list ({exc.message})", field=None) from exc
    finally:
        adapter.close()
    unlisted = [s for s in wanted if s not in listed]
    if unlisted:
        raise InstrumentRefused(
            f"{', '.join(unlisted)} {'is' if len(unlisted) == 1 else 'are'} not listed on {exchange}", field="symbol"
        )
    return [listed[s] for s in wanted]


def instruments_register(*, exchange: str, symbols: Sequence[str]) -> WriteResult:
    """Verify ``symbols`` on ``exchange`` (see :func:`instruments_verify`) and store them with its data."""
    return instruments_store(instruments=instruments_verify(exchange=exchange, symbols=symbols))


def _listed(adapter: RestAdapter, exchange: str, symbols: list[str]) -> dict[str, InstrumentInfo]:
    """What the exchange lists of ``symbols``, by symbol. An exchange refuses a whole query for one unknown symbol
    (Binance, Coinbase, Kraken all do): then each is asked alone, so that the answer names the unknown ones."""
    try:
        infos = adapter.instruments(symbols)
        if len(symbols) == len(infos) == 1:  # asked by another of its names (Kraken's XBT/USD is XBTUSD)
            return {symbols[0]: infos[0]}
        return {i.symbol: i for i in infos}
    except BadRequest:
        if len(symbols) == 1:
            return {}
    found: dict[str, InstrumentInfo] = {}
    for symbol in symbols:
        try:
            found |= {i.symbol: i for i in adapter.instruments([symbol])}
        except BadRequest:
            continue
    return found
