"""The API key and secret never leave the environment: a whole trading run on the Binance executor (an entry with
its OCO, an answer lost to a timeout, a skewed clock, a wrong secret, a SELL signal closing the position) is
captured at DEBUG level, every admin page and API answer about it is rendered, every stored document dumped and
Django's debug error page rendered: neither the key nor either secret appears anywhere."""

from __future__ import annotations

import io
import json
import logging
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.debug import ExceptionReporter

from exchangesim.server import Simulator
from markets import intervals as iv
from orders.executors.binance import BinanceExecutor
from orders.models import Fill, Order, Position, RiskDecision
from orders.services import SignalRef
from orders.trader import trader_for
from tests.conftest import API_KEY, API_SECRET

pytestmark = pytest.mark.django_db
WRONG_SECRET = "wrongSecretXyz789"
SECRETS = (API_KEY, API_SECRET, WRONG_SECRET)
LOGGERS = ("", "urllib3", "requests", "binance", "orders", "markets", "django", "django.request")


@pytest.fixture
def every_log_line() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger at DEBUG, formatted with its traceback, whatever a logger's own level."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    logging.getLogger().addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def control(sim: Simulator, path: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        f"{sim.url}{path}", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(req, timeout=5).close()


def price_of(sim: Simulator, symbol: str) -> Decimal:
    with urllib.request.urlopen(f"{sim.url}/api/v3/ticker/price?symbol={symbol}", timeout=5) as r:
        return Decimal(json.loads(r.read())["price"])


def trading_run(sim: Simulator) -> None:
    call_command("seed_instruments", "--exchange", "binance", "--symbols", "BTCUSDT,ETHUSDT", stdout=io.StringIO())
    trader = trader_for("binance")
    assert trader is not None
    assert isinstance(trader.executor, BinanceExecutor)
    minute = iv.floor(datetime.now(UTC), "1m")

    def signal(action: str, symbol: str, m: int) -> SignalRef:
        return SignalRef("ta-vote", "binance", symbol, "1m", minute.replace(minute=m), action)

    trader.on_decisions([signal("BUY", "BTCUSDT", 1)], {"BTCUSDT": price_of(sim, "BTCUSDT")}, datetime.now(UTC))
    control(sim, "/_sim/rest/fault", {"path_prefix": "/api/v3/order", "delay_ms": 1500, "count": 1})
    trader.on_decisions([signal("BUY", "ETHUSDT", 2)], {"ETHUSDT": price_of(sim, "ETHUSDT")}, datetime.now(UTC))
    control(sim, "/_sim/config", {"clock_offset_ms": -3000})
    trader.on_decisions([signal("SELL", "BTCUSDT", 3)], {"BTCUSDT": price_of(sim, "BTCUSDT")}, datetime.now(UTC))
    wrong = BinanceExecutor(rest_url=sim.url, key=API_KEY, secret=WRONG_SECRET, mode="testnet", timeout=1.0)
    from orders.services import act_on_signal

    act_on_signal(signal("BUY", "BTCUSDT", 4), wrong, price=price_of(sim, "BTCUSDT"), now=datetime.now(UTC))


def pages(client: Client) -> dict[str, str]:
    out = {}
    for model in (Order, Position, RiskDecision, Fill):
        assert model in admin.site._registry, f"{model.__name__} is not in the admin"
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        out[reverse(f"{name}_changelist")] = ""
        for pk in model.objects.values_list("pk", flat=True):
            out[reverse(f"{name}_change", args=[pk])] = ""
    out.update({"/api/v1/orders": "", "/api/v1/positions": "", "/api/v1/orders?mode=testnet&limit=1000": ""})
    for url in out:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        out[url] = response.content.decode()
    return out


def test_no_key_or_secret_in_logs_pages_documents_or_error_pages(
    sim_thread: Simulator, settings: Any, every_log_line: list[logging.LogRecord]
) -> None:
    settings.BINANCE_REST_URL = sim_thread.url
    settings.BINANCE_API_KEY, settings.BINANCE_API_SECRET = API_KEY, API_SECRET
    settings.TRADING_MODE, settings.BINANCE_TIMEOUT_SECONDS = "testnet", 1.0
    trading_run(sim_thread)

    # What the run did, so that the scan below looks at real output.
    positions = {p.symbol: p for p in Position.objects.all()}
    assert positions["BTCUSDT"].exit_reason == "signal", "the SELL signal closed the position (clock skewed 3 s)"
    assert positions["ETHUSDT"].status == "open", "the entry answered late was taken, not sent twice"
    refused = RiskDecision.objects.get(approved=False)  # the account cannot even be read with a wrong secret
    assert (refused.rejection, refused.reasons) == (
        "unavailable",
        ["nothing traded: the Binance account could not be read: Signature for this request is not valid. (-1022)"],
    )

    staff = get_user_model().objects.create_user("ops", password="pw", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    rendered = pages(client)
    assert any(positions["ETHUSDT"].entry_client_order_id in html for html in rendered.values())

    documents = []
    for name in connection.database.list_collection_names():
        documents += [json.dumps(d, default=str) for d in connection.database[name].find()]

    settings.DEBUG = True
    request = RequestFactory().get("/api/v1/orders")
    try:
        raise RuntimeError("an error page of the trading run")
    except RuntimeError:
        error_page = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
    assert "BINANCE_API_SECRET" in error_page  # the setting is listed, its value hidden

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(r) for r in every_log_line]
    assert len(lines) > 20
    assert any("/api/v3/order" in line for line in lines), "the HTTP requests were logged (urllib3 at DEBUG)"
    print(
        f"\nscanned {len(lines)} log lines, {len(rendered)} admin/API pages, {len(documents)} documents and "
        "the debug error page"
    )
    for secret in SECRETS:
        assert not [line for line in lines if secret in line], f"{secret!r} in the logs"
        assert not [url for url, html in rendered.items() if secret in html], f"{secret!r} in a page"
        assert not [d for d in documents if secret in d], f"{secret!r} in the database"
        assert secret not in error_page
