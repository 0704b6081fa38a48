"""The adapters layer's one error hierarchy. No Django here.

- :class:`ExchangeError`: anything an exchange adapter could not do.
  - :class:`Refused`: the exchange answered with an error, so the request changed nothing.
    - :class:`RateLimited`: HTTP 429 (slow down) or 418 (our address is banned), with the wait asked for.
    - :class:`BadRequest`: any other 4xx; the exchange's own ``code``/``msg`` kept. Retrying will not help.
  - :class:`ExchangeUnavailable`: 5xx, timeouts, refused connections, unreadable answers. Worth retrying.
    - :class:`OutcomeUnknown`: the same for a request that changes something (a signed order): it may or may
      not have been executed, so it is looked up before it is sent again.

``str(error)`` is one sentence naming the exchange and what failed, fit for a log line or a progress bar.
Every class can be rebuilt from ``(exchange, message)`` alone (the other fields have defaults), so the
errors survive serializers that re-create an exception from its args.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """An exchange adapter could not do what it was asked; ``message`` says what, ``exchange`` where."""

    def __init__(self, exchange: str, message: str) -> None:
        super().__init__(exchange, message)
        self.exchange = exchange
        self.message = message

    def __str__(self) -> str:
        return f"{self.exchange}: {self.message}"


class Refused(ExchangeError):
    """The exchange answered the request with an error: it was not executed. ``status`` is the HTTP status,
    ``code`` the exchange's own error code (Binance: ``-2013``), None when it gave none."""

    def __init__(self, exchange: str, message: str, *, status: int = 400, code: int | None = None) -> None:
        super().__init__(exchange, message)
        self.status = status
        self.code = code


class RateLimited(Refused):
    """The exchange refused a request for going too fast: HTTP 429, or 418 once the address is banned.

    ``retry_after`` is the exchange's Retry-After in seconds (None when it sent none); no request may go
    to the exchange before that has passed. ``until`` is that moment as Unix time, once the exchange's limiter
    (:mod:`markets.exchanges.limiter`) has taken it in: the time no request to it is sent before, by any
    requester of this host. ``used_weight`` is the weight it reported, when it did.
    """

    def __init__(
        self,
        exchange: str,
        message: str,
        *,
        status: int = 429,
        retry_after: float | None = None,
        used_weight: int | None = None,
        code: int | None = None,
        until: float | None = None,
    ) -> None:
        super().__init__(exchange, message, status=status, code=code)
        self.retry_after = retry_after
        self.used_weight = used_weight
        self.until = until

    @property
    def banned(self) -> bool:
        """True for a 418: the exchange banned our address for continuing after a 429."""
        return self.status == 418


class ExchangeUnavailable(ExchangeError):
    """The exchange did not answer usefully: 5xx, a timeout, a refused connection or an unreadable body.

    ``url`` is the base URL talked to, ``cause`` the last failure in a few words and ``attempts`` how many
    requests were tried before giving up (1 for a single failure, before any retry).
    """

    def __init__(
        self, exchange: str, message: str, *, url: str = "", cause: str | None = None, attempts: int = 1
    ) -> None:
        super().__init__(exchange, message)
        self.url = url
        self.cause = cause if cause is not None else message
        self.attempts = attempts

    def after_attempts(self, attempts: int) -> ExchangeUnavailable:
        """The same failure, told as the last of ``attempts`` tries (what a caller sees after retries)."""
        where = f" at {self.url}" if self.url else ""
        return ExchangeUnavailable(
            self.exchange,
            f"unavailable{where} after {attempts} attempt{'s' if attempts != 1 else ''}; last error: {self.cause}",
            url=self.url,
            cause=self.cause,
            attempts=attempts,
        )


class OutcomeUnknown(ExchangeUnavailable):
    """A request that changes something (a signed order) got no answer, or a 5xx, or Binance's -1007 ("execution
    status unknown"): it may or may not have been executed. ``code`` is the exchange's, when it sent one."""

    def __init__(self, exchange: str, message: str, *, code: int | None = None) -> None:
        super().__init__(exchange, message)
        self.code = code


class BadRequest(Refused):
    """The exchange rejected the request itself (a 4xx other than 418/429): retrying will not help.

    ``code`` and ``msg`` are the exchange's own (Binance: ``{"code": -1121, "msg": "Invalid symbol."}``);
    ``status`` is the HTTP status.
    """

    def __init__(
        self, exchange: str, message: str, *, status: int = 400, code: int | None = None, msg: str = ""
    ) -> None:
        super().__init__(exchange, message, status=status, code=code)
        self.msg = msg
