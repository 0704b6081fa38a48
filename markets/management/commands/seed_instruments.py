"""``manage.py seed_instruments``: the default instruments (or the ones named), as their exchange lists them."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from markets.listing import InstrumentRefused, instruments_register
from markets.venues import DEFAULT_INSTRUMENTS, KNOWN_EXCHANGES


class Command(BaseCommand):
    help = (
        "Store the default instruments (BTCUSDT, ETHUSDT, BNBUSDT, SOLUSDT on Binance; BTC-USD, ETH-USD on "
        "Coinbase; XBTUSD, ETHUSD on Kraken), or the --symbols given, with the exchange's own data and filters. "
        "A symbol the exchange does not list, or an exchange that cannot be reached, stores nothing. With "
        "--exchange all, an exchange that fails is reported and the others are seeded; the command fails only "
        "when none could be."
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
        if opts["exchange"] != "all":
            self.seed(opts["exchange"], opts["symbols"])
            return
        if opts["symbols"]:
            raise CommandError("--symbols names one exchange's symbols: give --exchange too")
        failed = []
        for exchange in KNOWN_EXCHANGES:
            try:
                self.seed(exchange, None)
            except CommandError as exc:
                self.stderr.write(str(exc))
                failed.append(exchange)
        if len(failed) == len(KNOWN_EXCHANGES):
            raise CommandError("no exchange could be seeded (see above)")

    def seed(self, exchange: str, given: str | None) -> None:
        symbols = (given or ",".join(s for s, _, _ in DEFAULT_INSTRUMENTS[exchange])).split(",")
        try:
            result = instruments_register(exchange=exchange, symbols=symbols)
        except InstrumentRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{exchange}: {result.written} instruments created, {result.duplicates} updated")
