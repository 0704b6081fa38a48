"""``manage.py seed_instruments``: the default instruments, with the exchange's filters when it answers."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from markets.exchanges.base import InstrumentInfo
from markets.exchanges.errors import BadRequest, ExchangeUnavailable, RateLimited
from markets.services import instruments_store
from markets.venues import DEFAULT_INSTRUMENTS, KNOWN_EXCHANGES, rest_adapter, rest_url


class Command(BaseCommand):
    help = (
        "Store the default instruments (BTCUSDT, ETHUSDT, BNBUSDT, SOLUSDT on Binance; BTC-USD, ETH-USD on "
        "Coinbase; XBTUSD, ETHUSD on Kraken) from the exchange's instrument list; if the exchange cannot be "
        "reached, store them without filters and say so."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--exchange",
            default="binance",
            choices=(*KNOWN_EXCHANGES, "all"),
            help="one exchange, or all of them (then with their default symbols)",
        )
        parser.add_argument("--symbols", help="comma-separated, instead of the defaults")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["exchange"] == "all":
            if opts["symbols"]:
                raise CommandError("--symbols names one exchange's symbols: give --exchange too")
            for exchange in KNOWN_EXCHANGES:
                self.seed(exchange, None)
        else:
            self.seed(opts["exchange"], opts["symbols"])

    def seed(self, exchange: str, given: str | None) -> None:
        defaults = {s: (b, q) for s, b, q in DEFAULT_INSTRUMENTS[exchange]}
        symbols = [s.strip().upper() for s in (given or ",".join(defaults)).split(",") if s.strip()]
        adapter = rest_adapter(exchange)
        try:
            infos = adapter.instruments(symbols)
        except BadRequest as exc:
            raise CommandError(str(exc)) from None
        except (ExchangeUnavailable, RateLimited) as exc:
            unknown = [s for s in symbols if s not in defaults]
            if unknown:
                raise CommandError(f"{exc}; cannot seed {', '.join(unknown)} without it") from None
            self.stderr.write(
                f"{exchange} at {rest_url(exchange)} did not answer ({exc}); seeding "
                f"{', '.join(symbols)} without exchange filters"
            )
            infos = [
                InstrumentInfo(exchange, s, f"{defaults[s][0]}-{defaults[s][1]}", *defaults[s], "TRADING")
                for s in symbols
            ]
        finally:
            adapter.close()
        result = instruments_store(instruments=infos)
        missing = sorted(set(symbols) - {i.symbol for i in infos})
        self.stdout.write(
            f"{exchange}: {result.written} instruments created, {result.duplicates} updated"
            + (f"; not listed by the exchange: {', '.join(missing)}" if missing else "")
        )
