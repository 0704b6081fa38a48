"""The live market page (``/``, ``/market/<exchange>/<symbol>/``) and its staff-only feed control.

The page is one template and one script (``markets/static/markets/live.js``); everything live reaches it
over ``/ws/market/<exchange>/<symbol>/`` (``markets.consumers``). Its Positions and Recent orders panels are for
staff (or anyone with ``TRADING_DATA_PUBLIC``): others get a short note in their place. The drop button POSTs to
``/market/<exchange>/feed/drop`` (CSRF-protected; 403 for anyone who is not staff).
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

from orders.access import may_see_trading

from . import selectors
from .control import DROP_MODES, MAX_DROP_SECONDS, ControlUnavailable, drop_problems, request_drop
from .venues import DEFAULT_INSTRUMENTS


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
    return render(request, "markets/empty.html", status=200)


@require_GET
def market(request: HttpRequest, exchange: str, symbol: str) -> HttpResponse:
    if symbol != symbol.upper():
        return redirect("market-live", exchange=exchange, symbol=symbol.upper())
    instruments = selectors.instrument_list()
    this = next((i for i in instruments if i.exchange == exchange and i.symbol == symbol), None)
    if this is None:
        raise Http404(f"no instrument {exchange}:{symbol}")
    return render(
        request,
        "markets/live.html",
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
    """Staff only: take the stream's socket down for ``seconds`` (default 10) in ``mode`` (close|stall)."""
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
        request_drop(exchange, seconds, mode)
    except ControlUnavailable as exc:
        return JsonResponse({"error": "unavailable", "detail": str(exc)}, status=503)
    return JsonResponse(
        {
            "exchange": exchange,
            "seconds": seconds,
            "mode": mode,
            "detail": f"the {exchange} stream drops its socket for {seconds:g} s",
        },
        status=202,
    )


def _decimals(step: Decimal | None) -> int | None:
    """Digits after the point of an exchange filter step (0.01 -> 2), or None when unknown."""
    if not step:
        return None
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else None


def _body(request: HttpRequest) -> dict[str, Any] | None:
    """The request's fields: a JSON object, or a form."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return request.POST.dict()
