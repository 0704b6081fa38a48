"""The live market page (``/``, ``/market/<exchange>/<symbol>/``) and its staff-only feed control.

The page is one template (``templates/live/page.html``, extending the site's ``base.html``) and its script;
everything live reaches it over ``/ws/market/<exchange>/<symbol>/`` (``live.consumers``). Its Positions and Recent
orders panels are for staff (or anyone with ``TRADING_DATA_PUBLIC``, :mod:`orders.access`): others get a short note
in their place. The drop button POSTs to ``/market/<exchange>/feed/drop`` (CSRF-protected; 403 for anyone who is not
staff), which reaches the stream through ``markets.control`` over the channel layer and waits for the stream's
acknowledgement: the web process never imports the stream itself.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from markets import selectors
from markets.control import (
    DROP_MODES,
    MAX_DROP_SECONDS,
    ControlUnavailable,
    NotAcknowledged,
    drop_problems,
    request_drop,
)
from markets.numbers import places
from markets.venues import DEFAULT_INSTRUMENTS
from orders.access import may_see_trading


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The first default instrument that is stored (BTCUSDT on a fresh `make run`), else any."""
    instruments = selectors.instrument_list()
    stored = {(i.exchange, i.symbol) for i in instruments}
    for exchange, defaults in DEFAULT_INSTRUMENTS.items():
        for symbol, _, _ in defaults:
            if (exchange, symbol) in stored:
                return redirect("market-live", exchange=exchange, symbol=symbol)
    if instruments:
        return redirect("market-live", exchange=instruments[0].exchange, symbol=instruments[0].symbol)
    return render(request, "live/empty.html", status=200)


@require_GET
def market(request: HttpRequest, exchange: str, symbol: str) -> HttpResponse:
    """One stored instrument's live page (a lower-case symbol redirects to its upper-case page; 404 if unknown)."""
    if symbol != symbol.upper():
        return redirect("market-live", exchange=exchange, symbol=symbol.upper())
    instruments = selectors.instrument_list()
    this = next((i for i in instruments if i.exchange == exchange and i.symbol == symbol), None)
    if this is None:
        raise Http404(f"no instrument {exchange}:{symbol}")
    return render(
        request,
        "live/page.html",
        {
            "exchange": exchange,
            "symbol": symbol,
            "instruments": instruments,
            "simulated": settings.MARKET_SIMULATED,
            "can_control": request.user.is_staff,
            "show_trading": may_see_trading(request.user),
            "drop_modes": DROP_MODES,
            "config": {
                "exchange": exchange,
                "symbol": symbol,
                "socket": f"/ws/market/{exchange}/{symbol}/",
                "csrf": get_token(request),
                "price_decimals": _decimals(this.tick_size),
                "qty_decimals": _decimals(this.step_size),
                "base": this.base,
            },
        },
    )


@require_POST
def feed_drop(request: HttpRequest, exchange: str) -> JsonResponse:
    """Staff only: take the stream's socket down for ``seconds`` (default 10) in ``mode`` (close|stall). 202 once a
    stream acknowledged it (``acknowledged``: how many), 504 ``no_stream`` when none did within
    ``FEED_CONTROL_ACK_SECONDS``, 503 when Redis cannot be reached."""
    if not request.user.is_staff:
        return JsonResponse({"error": "forbidden", "detail": "only staff may control the feed"}, status=403)
    body = _body(request)
    if body is None:
        return JsonResponse({"error": "invalid request", "fields": {"body": ["not valid JSON"]}}, status=400)
    try:
        seconds = float(body.get("seconds", 10))
    except (TypeError, ValueError):
        seconds = float("nan")
    mode = str(body.get("mode", "close"))
    problems = (
        drop_problems(exchange, seconds, mode)
        if seconds == seconds
        else {"seconds": f"must be a number of seconds (at most {MAX_DROP_SECONDS:g}), got {body.get('seconds')!r}"}
    )
    if problems:
        return JsonResponse({"error": "invalid request", "fields": {k: [v] for k, v in problems.items()}}, status=400)
    try:
        streams = request_drop(exchange, seconds, mode)
    except ControlUnavailable as exc:
        return JsonResponse({"error": "unavailable", "detail": str(exc)}, status=503)
    except NotAcknowledged as exc:
        return JsonResponse({"error": "no_stream", "detail": str(exc)}, status=504)
    return JsonResponse(
        {
            "exchange": exchange,
            "seconds": seconds,
            "mode": mode,
            "acknowledged": len(streams),
            "streams": list(streams),
            "detail": f"the {exchange} stream acknowledged: it drops its socket for {seconds:g} s",
        },
        status=202,
    )


def _decimals(step: Decimal | None) -> int | None:
    """Digits after the point of an exchange filter step (0.01 -> 2, ``markets.numbers.places``), or None when
    unknown, for the page's config; its prices and quantities arrive printed by the server (``live.payloads``)."""
    return places(step) if step else None


def _body(request: HttpRequest) -> dict[str, Any] | None:
    """The request's fields: a JSON object, or a form."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return request.POST.dict()
