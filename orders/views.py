"""Staff actions on the trading records: the live page's Close and Cancel buttons POST here, the admin's actions
call the same functions.

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

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from bson import ObjectId
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from markets.exchanges.errors import ExchangeError
from markets.selectors import recent_ticks

from .executors.base import ExecutionError, Executor
from .live import ORDERS_GROUP, order_data, orders_update, position_data
from .models import Mode, Order, Position
from .selectors import position_orders
from .services import order_cancel, position_close
from .trader import executor_of

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", Position, Order)


class Refused(Exception):
    """A staff action that was not done: ``status`` is the HTTP status that says why, ``detail`` the reason."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def close_price(position: Position) -> Decimal | None:
    """The price a paper position is closed at by hand: its last price, else its symbol's last stored trade."""
    if position.last_price is not None:
        return position.last_price
    last = recent_ticks(exchange=position.exchange, symbol=position.symbol, limit=1)
    return last[0].price if last else None


def staff_close(position: Position, *, now: datetime) -> Position:
    """Close ``position`` by hand through its mode's executor, or raise Refused saying why not."""
    if position.status != Position.Status.OPEN:
        reason = f" ({position.get_exit_reason_display()})" if position.exit_reason else ""
        raise Refused(409, "conflict", f"the {position.symbol} position is already closed{reason}")
    executor = _executor(position.mode, position.exchange)
    price = None
    if position.mode == Mode.PAPER:
        price = close_price(position)
        if price is None:
            raise Refused(
                409,
                "conflict",
                f"no price to close the paper {position.symbol} position at: it has no "
                f"last price and no {position.exchange} trade of {position.symbol} is stored",
            )
    return _act(lambda: position_close(executor=executor, position=position, now=now, price=price))


def staff_cancel(order: Order, *, now: datetime) -> Order:
    """Cancel an open order by hand through its mode's executor, or raise Refused saying why not."""
    if not order.is_open:
        raise Refused(
            409,
            "conflict",
            f"order {order.client_order_id} is {order.status}: only open orders "
            "(PENDING, NEW, PARTIALLY_FILLED) can be cancelled",
        )
    executor = _executor(order.mode, order.exchange)
    return _act(lambda: order_cancel(executor=executor, order=order, now=now))


def announce(positions: Iterable[Position], orders: Iterable[Order]) -> None:
    """Push changed records to every live page; a channel layer that fails is logged, never raised (the action
    is done and stored: the pages catch up on their next snapshot)."""
    try:
        async_to_sync(get_channel_layer().group_send)(ORDERS_GROUP, orders_update(positions, orders))
    except Exception as exc:  # Redis down: the action stands
        log.warning("the live pages were not told of a staff action: %r", exc)


def _executor(mode: str, exchange: str) -> Executor:
    try:
        return executor_of(mode, exchange)
    except ExecutionError as exc:
        raise Refused(503, "unavailable", str(exc)) from exc


def _act(action: Callable[[], T]) -> T:
    try:
        return action()
    except ExecutionError as exc:
        raise Refused(409, "conflict", str(exc)) from exc
    except ExchangeError as exc:
        log.warning("a staff action failed on the exchange: %s", exc)
        raise Refused(502, "exchange error", f"{exc.exchange}: the exchange failed or refused; see the log") from exc


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


def _refused(exc: Refused) -> JsonResponse:
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
    except Refused as exc:
        return _refused(exc)
    orders = position_orders(closed)
    announce([closed], orders)
    at = f" at {closed.exit_price.normalize():f}" if closed.exit_price is not None else ""
    return JsonResponse(_answer([closed], orders, f"{closed.symbol} position {closed.status}{at}"))


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
    except Refused as exc:
        return _refused(exc)
    positions = list(Position.objects.filter(pk=cancelled.position_id)) if cancelled.position_id else []
    announce(positions, [cancelled])
    return JsonResponse(_answer(positions, [cancelled], f"order {cancelled.client_order_id} is {cancelled.status}"))


def _answer(positions: list[Position], orders: list[Order], detail: str) -> dict[str, Any]:
    return {
        "detail": detail,
        "positions": [position_data(p) for p in positions],
        "orders": [order_data(o) for o in orders],
    }
