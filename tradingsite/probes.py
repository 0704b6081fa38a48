"""Health probes and metrics of the web process: ``/healthz``, ``/readyz`` and ``/metrics``.

* ``/healthz``: liveness. 200 and ``{"status": "alive"}``; it touches nothing.
* ``/readyz``: readiness. MongoDB and Redis are each pinged with a short timeout (``PROBE_SECONDS``, in
  parallel, never hanging), and every live feed is judged by :mod:`markets.freshness` against
  ``FEED_STALL_SECONDS``. 200 when all is well, 503 when a dependency is down or a feed is stale; the JSON
  says which and why. No feed at all is not a problem here (``manage.py feed check`` makes it one).
  ``/readyz?feeds=0`` checks the dependencies only: the web's own healthcheck, which a dead stream should not fail.
* ``/metrics``: this process's Prometheus metrics (:mod:`markets.metrics`); the stream and the worker serve
  their own on ``STREAM_METRICS_PORT`` and ``WORKER_METRICS_PORT``.

``probe_middleware``, first in ``MIDDLEWARE``, answers these paths before anything that could turn a
probe away: the HTTPS redirect, the allowed-hosts check (a probe asks for 127.0.0.1, whatever the site's
name), sessions and authentication. They are also in the URL map, so they work without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from pymongo import MongoClient

from markets.freshness import FeedReport, feed_verdicts
from markets.models import Feed

log = logging.getLogger(__name__)
PROBE_SECONDS = 1.5  # each dependency answers within this, or counts as down
SAFE_METHODS = ("GET", "HEAD")
_mongo_clients: dict[str, MongoClient[Any]] = {}


async def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    if request.method not in SAFE_METHODS:
        return HttpResponseNotAllowed(SAFE_METHODS)
    return JsonResponse({"status": "alive"})


async def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: MongoDB and Redis reachable and every feed fresh (200), else 503 naming each problem."""
    if request.method not in SAFE_METHODS:
        return HttpResponseNotAllowed(SAFE_METHODS)
    with_feeds = request.GET.get("feeds", "1")
    if with_feeds not in ("0", "1"):
        return JsonResponse(
            {"error": f"feeds must be 1 (judge the feeds) or 0 (do not), got {with_feeds!r}"}, status=400
        )
    stall = float(settings.FEED_STALL_SECONDS)
    mongo, redis_ = await asyncio.gather(asyncio.to_thread(_check, _mongo_ping), asyncio.to_thread(_check, _redis_ping))
    checks = {"mongodb": mongo, "redis": redis_}
    problems = [f"{name}: {check['error']}" for name, check in checks.items() if not check["ok"]]
    feeds: list[dict[str, Any]] | None = None
    if mongo["ok"] and with_feeds == "1":
        try:
            reports = await asyncio.to_thread(_feed_reports)
        except Exception as exc:  # mongod went away after the ping: as good as down
            log.warning("readyz: reading the feeds failed: %r", exc)
            problems.append(f"mongodb: the feeds could not be read ({type(exc).__name__})")
        else:
            verdicts = feed_verdicts(reports, now=datetime.now(UTC), stall_seconds=stall)
            feeds = [v.as_dict() for v in verdicts]
            problems += [f"{v.name}: {v.problem}" for v in verdicts if not v.fresh]
    body = {
        "status": "not ready" if problems else "ready",
        "checks": checks,
        "stall_seconds": stall,
        "feeds": feeds,
        "problems": problems,
    }
    return JsonResponse(body, status=503 if problems else 200)


async def metrics(request: HttpRequest) -> HttpResponse:
    """This process's metrics in Prometheus' text format (or OpenMetrics, when the scraper asks for it)."""
    if request.method not in SAFE_METHODS:
        return HttpResponseNotAllowed(SAFE_METHODS)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(REGISTRY), content_type=content_type)


PROBES: dict[str, Callable[[HttpRequest], Awaitable[HttpResponse]]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


@sync_and_async_middleware
def probe_middleware(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Answer the probe paths at once (see the module's docstring); pass everything else on."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            probe = PROBES.get(request.path_info)
            return await (probe or get_response)(request)

        return middleware

    def sync_middleware(request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        return async_to_sync(probe)(request) if probe is not None else get_response(request)

    return sync_middleware


def _check(ping: Callable[[], None]) -> dict[str, Any]:
    """Run one dependency's ping: ``{"ok", "seconds"}``, with an ``error`` when it failed. The error is short and
    names no host or credential (the endpoint is public); the log has the whole exception."""
    began = time.monotonic()
    try:
        ping()
    except Exception as exc:
        seconds = time.monotonic() - began
        log.warning("readyz: %s failed after %.2f s: %r", ping.__name__, seconds, exc)
        reason = "no answer" if seconds >= PROBE_SECONDS * 0.9 else "refused or failed"
        return {
            "ok": False,
            "seconds": round(seconds, 3),
            "error": f"{reason} within {PROBE_SECONDS:g} s ({type(exc).__name__})",
        }
    return {"ok": True, "seconds": round(time.monotonic() - began, 3)}


def _mongo_client() -> MongoClient[Any]:
    """A client to Django's database (the backend's own connection parameters: URI, OPTIONS, user) with short
    timeouts, kept per set of parameters: Django's own client waits 30 s for a server."""
    params = connections["default"].get_connection_params()
    key = repr(sorted(params.items()))
    client = _mongo_clients.get(key)
    if client is None:
        ms = int(PROBE_SECONDS * 1000)
        short = {"serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms, "socketTimeoutMS": ms, "tz_aware": True}
        client = MongoClient(**{**params, **short, "appname": "tradingsite-readyz"})
        _mongo_clients[key] = client
    return client


def _mongo_ping() -> None:
    _mongo_client().admin.command("ping")


def _feed_reports() -> list[FeedReport]:
    coll = _mongo_client()[connections["default"].settings_dict["NAME"]][Feed._meta.db_table]
    return [FeedReport.of(doc) for doc in coll.find({}, {"_id": 0}, max_time_ms=int(PROBE_SECONDS * 1000))]


def _redis_url() -> str:
    """The Redis of the channel layer (live push and feed commands), as settings configure it."""
    return str(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"])


def _redis_ping() -> None:
    client = redis.Redis.from_url(_redis_url(), socket_connect_timeout=PROBE_SECONDS, socket_timeout=PROBE_SECONDS)
    try:
        client.ping()
    finally:
        client.close()
