"""Every error of the API as JSON: ``{"error": ..., "fields": {param: [messages]}}`` for bad input (400),
``{"error": ..., "detail": ...}`` otherwise. Never a traceback.

- DRF validation errors and :class:`markets.history.InvalidRequest` → 400 naming the field;
- :class:`markets.exchanges.errors.RateLimited` → 503 with ``Retry-After`` (when the exchange gave one);
  any other :class:`~markets.exchanges.errors.ExchangeError` (unavailable, rejected) → 502;
- a client over its request rate (``throttles.py``) → 429 with ``Retry-After`` (whole seconds, at least 1);
- unknown routes under ``/api/`` → 404 (``not_found``), an unexpected error there → 500 (``server_error``).

``exception_handler`` is DRF's ``EXCEPTION_HANDLER``; ``not_found`` and ``server_error`` are Django's
``handler404``/``handler500`` (JSON under ``/api/``, Django's own pages elsewhere).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..exchanges.errors import BadRequest, ExchangeError, ExchangeUnavailable, RateLimited
from ..history import InvalidRequest

INVALID = "invalid request"
API_PREFIX = "/api/"
# Most specific first: (error class, status, the body's "error").
_EXCHANGE_ERRORS: tuple[tuple[type[ExchangeError], int, str], ...] = (
    (RateLimited, status.HTTP_503_SERVICE_UNAVAILABLE, "exchange rate limited"),
    (ExchangeUnavailable, status.HTTP_502_BAD_GATEWAY, "exchange unavailable"),
    (BadRequest, status.HTTP_502_BAD_GATEWAY, "exchange rejected the request"),
    (ExchangeError, status.HTTP_502_BAD_GATEWAY, "exchange error"),
)
log = logging.getLogger(__name__)
_PUBLIC = {
    "exchange rate limited": "the exchange is rate limiting our requests",
    "exchange unavailable": "the exchange could not be reached; try again later",
    "exchange rejected the request": "the exchange refused the request",
    "exchange error": "the exchange answered with an error",
}
_NAMES = {
    status.HTTP_401_UNAUTHORIZED: "not authenticated",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method not allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not acceptable",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported media type",
    status.HTTP_429_TOO_MANY_REQUESTS: "too many requests",
}


def invalid(fields: dict[str, list[str]]) -> Response:
    """The 400 answer: each bad parameter with its messages."""
    return Response({"error": INVALID, "fields": fields}, status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, reshaped into this API's error bodies (see the module docstring)."""
    if isinstance(exc, InvalidRequest):
        return invalid({exc.field: [exc.message]})
    if isinstance(exc, ValidationError):
        return invalid(_fields(exc.detail))
    if isinstance(exc, ExchangeError):
        return _exchange_error(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django logs it and answers with server_error below
    detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
    response.data = {"error": _NAMES.get(response.status_code, "error"), "detail": str(detail)}
    if isinstance(exc, Throttled):
        seconds = max(1, math.ceil(exc.wait or 1))
        response.data["retry_after"] = seconds
        response.data["detail"] = f"too many requests from this client; retry in {seconds} s"
        response["Retry-After"] = str(seconds)
    return response


def _exchange_error(exc: ExchangeError) -> Response:
    """502 for an exchange that failed or refused; 503 with Retry-After while it rate limits us."""
    code, name = next((code, name) for cls, code, name in _EXCHANGE_ERRORS if isinstance(exc, cls))
    # The full error (base URL, request parameters) goes to the log, not to anonymous clients.
    log.warning("exchange error answered %s: %s", code, exc)
    body: dict[str, Any] = {"error": name, "detail": f"{exc.exchange}: {_PUBLIC[name]}"}
    headers = {}
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        seconds = max(1, math.ceil(exc.retry_after))
        body["retry_after"] = seconds
        body["detail"] += f"; retry in {seconds} s"
        headers["Retry-After"] = str(seconds)
    return Response(body, status=code, headers=headers)


def _fields(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(name): _messages(value) for name, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    if isinstance(value, list | tuple):
        return [m for v in value for m in _messages(v)]
    return [str(value)]


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: JSON under /api/ (naming the route that does exist when only a slash differs), Django's page elsewhere."""
    if not request.path.startswith(API_PREFIX):
        return defaults.page_not_found(request, exception or Resolver404())
    detail = (
        f"no endpoint at {request.path}; the API is /api/v1/ (instruments, candles, ticks, gaps, feeds, consolidated, "
        "signals, orders, positions), its schema /api/schema/ and docs /api/docs/"
    )
    other = request.path[:-1] if request.path.endswith("/") else request.path + "/"
    if _routable(other):
        detail = f"no endpoint at {request.path}; did you mean {other}?"
    return JsonResponse({"error": "not found", "detail": detail}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: a JSON body without a traceback under /api/ (the error is logged by Django), Django's page elsewhere."""
    if not request.path.startswith(API_PREFIX):
        return defaults.server_error(request)
    return JsonResponse(
        {"error": "internal error", "detail": "the server failed to answer; the error is logged"}, status=500
    )


def _routable(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.func is not not_found
