"""The live page against MongoDB (``live.views``, ``templates/live/``): home's redirect to a stored instrument or
its empty page, the page's config, instrument switcher, staff-only button and trading panels, other venues' pages,
404s for unknown instruments, and the redirect of a lower-case symbol. The drop endpoint and the consumers:
tests/live/test_consumers.py."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client

from markets.models import Instrument

pytestmark = pytest.mark.django_db
StaffClient = Callable[..., Client]  # the staff_client fixture (tests/live/conftest.py)


def test_home_redirects_to_the_first_default_instrument(instruments: None) -> None:
    resp = Client().get("/")
    assert resp.status_code == 302
    assert resp["Location"] == "/market/binance/BTCUSDT/"


def test_home_without_instruments_says_how_to_get_them() -> None:
    resp = Client().get("/")
    assert resp.status_code == 200
    assert b"seed_instruments" in resp.content


def test_page_has_config_switcher_and_no_button_for_visitors(instruments: None) -> None:
    resp = Client().get("/market/binance/ETHUSDT/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert '"socket": "/ws/market/binance/ETHUSDT/"' in html
    assert '"price_decimals": 2' in html
    assert '"qty_decimals": 5' in html
    assert html.count('<option value="/market/binance/') == 2
    assert "drop-button" not in html
    assert "lightweight-charts.standalone.production.js" in html


def test_page_shows_the_button_to_staff(instruments: None, staff_client: StaffClient) -> None:
    assert "drop-button" in staff_client().get("/market/binance/BTCUSDT/").content.decode()


def test_trading_panels_are_for_staff(instruments: None, settings: object, staff_client: StaffClient) -> None:
    """A visitor gets a note instead of the Positions and Recent orders panels; staff get the panels; with
    ``TRADING_DATA_PUBLIC`` a visitor gets them too (without the staff buttons' URLs)."""
    visitor = Client().get("/market/binance/BTCUSDT/").content.decode()
    assert 'id="trading"' not in visitor
    assert 'id="positions"' not in visitor
    assert "Positions and orders are for staff only" in visitor
    staff = staff_client().get("/market/binance/BTCUSDT/").content.decode()
    assert 'id="positions"' in staff
    assert "data-close-url" in staff
    assert "for staff only" not in staff
    settings.TRADING_DATA_PUBLIC = True  # type: ignore[attr-defined]
    public = Client().get("/market/binance/BTCUSDT/").content.decode()
    assert 'id="positions"' in public
    assert "data-close-url" not in public


@pytest.mark.parametrize(
    ("exchange", "symbol", "canonical"), [("coinbase", "BTC-USD", "BTC-USD"), ("kraken", "XBTUSD", "BTC-USD")]
)
def test_other_venues_have_their_page_and_socket(exchange: str, symbol: str, canonical: str) -> None:
    Instrument.objects.create(
        exchange=exchange,
        symbol=symbol,
        canonical=canonical,
        base="BTC",
        quote="USD",
        tick_size=Decimal("0.1"),
        step_size=Decimal("0.00000001"),
    )
    resp = Client().get(f"/market/{exchange}/{symbol}/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert f'"socket": "/ws/market/{exchange}/{symbol}/"' in html
    assert '"price_decimals": 1' in html


@pytest.mark.parametrize("path", ["/market/binance/NOPE/", "/market/kraken/BTCUSDT/", "/market/binance/"])
def test_unknown_instrument_is_a_404_page_not_a_500(instruments: None, path: str) -> None:
    assert Client().get(path).status_code == 404


def test_lower_case_symbol_redirects(instruments: None) -> None:
    resp = Client().get("/market/binance/btcusdt/")
    assert (resp.status_code, resp["Location"]) == (302, "/market/binance/BTCUSDT/")


def test_pages_share_the_sites_base_template(instruments: None) -> None:
    """The live page is built on ``templates/base.html``: one doctype and head, its own window title."""
    html = Client().get("/market/binance/BTCUSDT/").content.decode()
    assert html.startswith("<!doctype html>")
    assert html.count("<head>") == 1
    assert "<title>BTCUSDT · binance · tradingsite</title>" in html


def test_the_admin_names_the_site() -> None:
    """The admin's pages (``templates/admin/base_site.html``) say tradingsite in the window title and the header,
    not Django's names."""
    html = Client().get("/admin/login/").content.decode()
    assert "<title>Log in | tradingsite</title>" in html
    assert '<div id="site-name"><a href="/admin/">tradingsite</a></div>' in html
    assert "Django administration" not in html
    assert "Django site admin" not in html
