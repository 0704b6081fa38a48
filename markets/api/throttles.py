"""Per-client request limits of the API: DRF throttling counted in Django's cache (Redis, shared by every web
process).

Every request counts against one bucket, by who sends it: staff by account at the ``staff`` rate, other
signed-in users by account at the ``user`` rate, anonymous clients by address at the ``anon`` rate
(``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, from ``API_THROTTLE_STAFF``/``_USER``/``_ANON``; no rate means
no limit). The address is ``REMOTE_ADDR``, or the one ``NUM_PROXIES`` trusted proxies put in
``X-Forwarded-For``. Over the limit DRF raises ``Throttled``: a 429 with ``Retry-After`` (``errors.py``).

When the cache cannot be reached the request is let through and the failure logged: market data stays served
while Redis is down, and ``/readyz`` is where that outage shows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:  # rest_framework.views imports this module (DEFAULT_THROTTLE_CLASSES) while it loads
    from rest_framework.request import Request
    from rest_framework.views import APIView

log = logging.getLogger(__name__)


def scope_of(user: Any) -> str:
    """The rate bucket of a request's user: "staff", "user" or "anon"."""
    if user is None or not user.is_authenticated:
        return "anon"
    return "staff" if user.is_staff else "user"


class ClientRateThrottle(SimpleRateThrottle):
    """One limit per client, at the rate of its scope (see the module docstring). Rates are read per request, so
    a settings change (a test's, a reload's) takes effect at once."""

    def __init__(self) -> None:  # the scope, hence the rate, is the request's: chosen in allow_request
        self.scope = "anon"
        self.rate: str | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.scope = scope_of(getattr(request, "user", None))
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            log.warning("API throttling skipped: the cache cannot be reached (%s)", exc)
            return True

    def get_cache_key(self, request: Request, view: APIView) -> str:
        user = request.user
        ident = str(user.pk) if self.scope != "anon" else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
