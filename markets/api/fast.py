"""Answers built from output rows (``markets.reads``) rather than through DRF serializers: JSON encoded by orjson,
and CSV streamed a chunk of rows at a time.

The serializers in ``serializers.py`` stay the schema: these answers carry exactly their fields, in their order, with
their types (``tests/markets/test_api_fast.py`` compares the two on the same stored data).

CSV: a header row of the JSON fields, then one line per row; numbers as in JSON (``markets.numbers.plain``), times
ISO-8601 UTC with milliseconds and ``Z``, booleans ``true``/``false``, null empty. ``?format=csv`` or
``Accept: text/csv`` asks for it; an error is still the JSON body (``errors.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ..history import PriceHistory
from .serializers import utc_iso

CSV = "text/csv"
CSV_CHUNK = 1000  # rows per piece of a streamed CSV body


class CsvRenderer(BaseRenderer):
    """Lets content negotiation pick CSV (``?format=csv``, ``Accept: text/csv``); the views answer CSV themselves
    (:func:`csv_response`), so this renders only what reaches it otherwise, as text."""

    media_type = CSV
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b"" if data is None else str(data).encode()


def wants_csv(request: Request) -> bool:
    """Whether content negotiation chose CSV for ``request``."""
    return isinstance(getattr(request, "accepted_renderer", None), CsvRenderer)


def json_answer(request: Request, body: Any) -> HttpResponse | Response:
    """``body`` (plain dicts, lists, strings, numbers) as JSON encoded by orjson; for any other renderer that content
    negotiation chose (the browsable API), a DRF Response of the same data."""
    if type(request.accepted_renderer) is JSONRenderer:
        return HttpResponse(orjson.dumps(body), content_type="application/json")
    return Response(body)


def history_body(h: PriceHistory) -> dict[str, Any]:
    """The candles answer (``PriceHistoryOut``) of a history read with ``shaped`` rows."""
    return {
        "exchange": h.exchange,
        "symbol": h.symbol,
        "interval": h.interval,
        "start": utc_iso(h.start),
        "end": utc_iso(h.end),
        "complete": h.complete,
        "missing": _ranges(h.missing),
        "spans": [{"start": utc_iso(s.start), "end": utc_iso(s.end), "source": s.source} for s in h.spans],
        "exchange_requests": h.exchange_requests,
        "queued": _ranges(h.queued),
        "candles": h.rows,
    }


def _ranges(ranges: list[tuple[datetime, datetime]]) -> list[dict[str, str]]:
    return [{"start": utc_iso(a), "end": utc_iso(b)} for a, b in ranges]


def csv_cell(v: Any) -> Any:
    """A value as CSV prints it: booleans ``true``/``false``, null empty, the rest as it is."""
    if v is True:
        return "true"
    if v is False:
        return "false"
    return "" if v is None else v


def csv_lines(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> Iterator[str]:
    """The header and the rows as CSV text, ``CSV_CHUNK`` rows a piece."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(fields)
    for n, row in enumerate(rows, 1):
        out.writerow([csv_cell(row[f]) for f in fields])
        if n % CSV_CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def csv_response(
    request: Request,
    rows: Iterable[dict[str, Any]],
    fields: Sequence[str],
    filename: str,
    headers: dict[str, str] | None = None,
) -> StreamingHttpResponse:
    """A streamed CSV answer of ``rows`` (read as it is sent), offered for download as ``filename``. Served by
    ASGI (Daphne) the pieces come through an asynchronous iterator, each read in Django's sync thread: given a
    synchronous one, Django's ASGI handler would read the whole answer into memory before sending it."""
    lines = csv_lines(rows, fields)
    body = _pieces(lines) if isinstance(request._request, ASGIRequest) else lines
    response = StreamingHttpResponse(body, content_type=f"{CSV}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    for name, value in (headers or {}).items():
        response[name] = value
    return response


async def _pieces(lines: Iterator[str]) -> AsyncIterator[str]:
    """``lines`` as an asynchronous iterator, each piece read in Django's sync thread (where the cursor was made)."""
    read = sync_to_async(next, thread_sensitive=True)
    while (piece := await read(lines, None)) is not None:
        yield piece


def filename_time(t: datetime) -> str:
    """A time for a file name: ``2026-11-24T00-00Z`` (no colons), to the minute, or to the millisecond when it has
    seconds."""
    iso = utc_iso(t)
    if iso.endswith(":00.000Z"):
        return iso[: -len(":00.000Z")].replace(":", "-") + "Z"
    return iso.replace(":", "-")
