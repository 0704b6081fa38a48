"""``manage.py seed_instruments``: the default instruments (or the ones named), as their exchange lists them."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from markets.listing import InstrumentRefused, instruments_lookup
from markets.services import instruments_store
from markets.venues import DEFAULT_INSTRUMENTS, KNOWN_EXCHANGES


class Command(BaseCommand):
    help = (
        "Store the default instruments (BTCUSDT, ETHUSDT, BNBUSDT, SOLUSDT on Binance; BTC-USD, ETH-USD on "
        "Coinbase; XBTUSD, ETHUSD on Kraken), or the --symbols given, with the exchange's own data and filters. "
        "A symbol the exchange does not list is named and not stored; the others are, and the command then fails. "
        "An exchange that cannot be reached stores nothing. With --exchange all, what an exchange refuses is "
        "reported and the others are seeded; the command fails only when nothing could be. An instrument removed "
        "with `manage.py instruments remove` stays removed (its data is refreshed)."
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
            refused = self.seed(opts["exchange"], opts["symbols"])
            if refused:
                raise CommandError(refused)
            return
        if opts["symbols"]:
            raise CommandError("--symbols names one exchange's symbols: give --exchange too")
        seeded = 0
        for exchange in KNOWN_EXCHANGES:
            try:
                refused = self.seed(exchange, None)
            except CommandError as exc:
                self.stderr.write(str(exc))
                continue
            if refused:
                self.stderr.write(f"{refused} (the other defaults of {exchange} are stored)")
            seeded += 1
        if not seeded:
            raise CommandError("no exchange could be seeded (see above)")

    def seed(self, exchange: str, given: str | None) -> str | None:
        """Store what ``exchange`` lists of the symbols; the refusal naming those it does not list, if any. A
        CommandError when it cannot be asked, or lists none of them."""
        symbols = (given or ",".join(s for s, _, _ in DEFAULT_INSTRUMENTS[exchange])).split(",")
        try:
            lookup = instruments_lookup(exchange=exchange, symbols=symbols)
        except InstrumentRefused as exc:
            raise CommandError(str(exc)) from None
        if not lookup.found:
            raise CommandError(lookup.refusal())
        result = instruments_store(instruments=lookup.found)
        self.stdout.write(f"{exchange}: {result.written} instruments created, {result.duplicates} updated")
        return lookup.refusal() if lookup.unknown else None
