"""The endpoints of the staff actions on the trading records: the live page's Close and Cancel buttons POST here;
the work is done by :mod:`orders.services` (``staff_close``, ``staff_cancel``), as for the admin's actions.

- ``POST /orders/positions/<id>/close``: close an open position now (exit reason ``manual``);
- ``POST /orders/orders/<id>/cancel``: cancel an open order.

Every answer is JSON. A request without a valid CSRF token (``X-CSRFToken``, the page's ``config.csrf``) is a 403,
as is anyone who is not staff; an unknown or ill-formed id is a 404; a record that cannot be acted on (closed, not
open, no price to close a paper position at, an executor that refuses) is a 409 with the reason. A close is all or
nothing: one that cannot complete (an entry id the trader did not make, too little held, an OCO that will not
cancel, an exit refused) leaves the position open and protected, and the 409 says so; a record whose
mode has no executor here (Binance keys unset) is a 503; an exchange that fails is a 502. A success is a 200 with
the record and its orders in the live page's shapes (:mod:`orders.live`), and the same change is pushed to every
live page (``orders.update`` on ``ORDERS_GROUP``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bson import ObjectId
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from markets.places import priced_rows

from .live import ORDER_NUMBERS, POSITION_NUMBERS, order_data, position_data
from .models import Order, Position
from .services import ActionRefused, orders_announce, positions_announce, staff_cancel, staff_close

M = TypeVar("M", Position, Order)


# -- the endpoints ---------------------------------------------------------------------------------------------


class _JsonCsrf(CsrfViewMiddleware):
    """Django's CSRF check, answering a refusal in JSON like every other answer of these endpoints."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        return JsonResponse({"error": "forbidden", "detail": f"CSRF check failed: {reason}"}, status=403)


# The site-wide check is swapped for the JSON one: exempt from the middleware, checked by the decorator.
def _staff_action(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    return csrf_exempt(decorator_from_middleware(_JsonCsrf)(require_POST(view)))


def _forbidden(request: HttpRequest) -> JsonResponse | None:
    if request.user.is_staff:
        return None
    return JsonResponse({"error": "forbidden", "detail": "only staff may close positions or cancel orders"}, status=403)


def _found(model: type[M], pk: str) -> M | None:
    return model.objects.filter(pk=ObjectId(pk)).first() if ObjectId.is_valid(pk) else None


def _not_found(what: str, pk: str) -> JsonResponse:
    return JsonResponse({"error": "not found", "detail": f"no {what} with id {pk!r}"}, status=404)


def _refused(exc: ActionRefused) -> JsonResponse:
    return JsonResponse({"error": exc.error, "detail": exc.detail}, status=exc.status)


@_staff_action
def position_close_view(request: HttpRequest, pk: str) -> JsonResponse:
    """Staff only: close the position now (paper: at its last price)."""
    if (denied := _forbidden(request)) is not None:
        return denied
    position = _found(Position, pk)
    if position is None:
        return _not_found("position", pk)
    try:
        closed = staff_close(position, now=timezone.now())
    except ActionRefused as exc:
        return _refused(exc)
    positions, orders = positions_announce([closed])
    at = f" at {closed.exit_price.normalize():f}" if closed.exit_price is not None else ""
    return JsonResponse(_answer(positions, orders, f"{closed.symbol} position {closed.status}{at}"))


@_staff_action
def order_cancel_view(request: HttpRequest, pk: str) -> JsonResponse:
    """Staff only: cancel the open order."""
    if (denied := _forbidden(request)) is not None:
        return denied
    order = _found(Order, pk)
    if order is None:
        return _not_found("order", pk)
    try:
        cancelled = staff_cancel(order, now=timezone.now())
    except ActionRefused as exc:
        return _refused(exc)
    positions, orders = orders_announce([cancelled])
    return JsonResponse(_answer(positions, orders, f"order {cancelled.client_order_id} is {cancelled.status}"))


def _answer(positions: list[Position], orders: list[Order], detail: str) -> dict[str, Any]:
    memo: dict[tuple[str, str], Any] = {}  # the page shows the strings as they come: printed by markets.numbers.plain
    return {
        "detail": detail,
        "positions": priced_rows([position_data(p) for p in positions], POSITION_NUMBERS, memo),
        "orders": priced_rows([order_data(o) for o in orders], ORDER_NUMBERS, memo),
    }
