"""Downloads of Binance's public bulk files (https://data.binance.vision, or the simulator's copy). No Django.

The paths are data.binance.vision's, under any base URL::

    {base}/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-08-08.zip
    {base}/data/spot/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-08.zip

each with ``<zip>.CHECKSUM`` beside it, one line ``"<sha256 hex>  <name>.zip"``. A 404 for either means the file
is not published (yet): :meth:`VisionDownloader.fetch` answers None and the caller takes that period from REST.

A zip is streamed to a local file in chunks (constant memory) while its SHA-256 is computed; a digest other than
the published one is downloaded once more, then :class:`ChecksumMismatch` names the file and both digests, and the
bad file is deleted (nothing is read from it). Downloads are one at a time, with a timeout; they do not spend the
REST API's request weight. Every failure names the URL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import requests

from .errors import ExchangeError, ExchangeUnavailable

DAILY = "{base}/data/spot/daily/aggTrades/{symbol}/{symbol}-aggTrades-{day:%Y-%m-%d}.zip"
MONTHLY = "{base}/data/spot/monthly/aggTrades/{symbol}/{symbol}-aggTrades-{month:%Y-%m}.zip"
CHUNK = 1 << 20  # bytes read and hashed at a time
ATTEMPTS = 2  # a file whose digest differs from its CHECKSUM is downloaded once more, then refused

OnBytes = Callable[[str, int, int | None], None]  # (file name, bytes so far, total bytes or None)
_CHECKSUM = re.compile(r"(?P<digest>[0-9a-fA-F]{64})\s+\*?(?P<name>\S+)\s*")


def daily_url(base: str, symbol: str, day: date) -> str:
    """The URL of ``symbol``'s aggTrades zip of the UTC day ``day``."""
    return DAILY.format(base=base.rstrip("/"), symbol=symbol.upper(), day=day)


def monthly_url(base: str, symbol: str, month: date) -> str:
    """The URL of ``symbol``'s aggTrades zip of the month of ``month``."""
    return MONTHLY.format(base=base.rstrip("/"), symbol=symbol.upper(), month=month)


class ChecksumMismatch(ExchangeError):
    """A downloaded file's SHA-256 differs from its published CHECKSUM (after a second download too)."""

    def __init__(self, exchange: str, message: str, *, url: str = "", expected: str = "", got: str = "") -> None:
        super().__init__(exchange, message)
        self.url, self.expected, self.got = url, expected, got


class VisionDownloader:
    """Fetches published bulk files one at a time. ``requests`` counts the HTTP requests sent and ``bytes`` the zip
    bytes received; ``on_bytes`` hears each chunk's progress. Not thread-safe: one per thread; :meth:`close` it."""

    def __init__(
        self,
        exchange: str,
        *,
        timeout: float = 30.0,
        on_bytes: OnBytes | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.exchange = exchange
        self.timeout = timeout
        self.requests = 0
        self.bytes = 0
        self._on_bytes = on_bytes
        self._session = session or requests.Session()

    def close(self) -> None:
        self._session.close()

    def fetch(self, url: str, folder: Path) -> Path | None:
        """The zip at ``url`` saved in ``folder`` under its own name, its SHA-256 equal to the published one; None
        when it (or its CHECKSUM) is not published. :class:`ChecksumMismatch` after :data:`ATTEMPTS` downloads
        that differ; :class:`ExchangeUnavailable` (naming the URL) when the host does not answer usefully."""
        name = url.rsplit("/", 1)[-1]
        path = folder / name
        expected = got = ""
        for _ in range(ATTEMPTS):
            expected = self._published_digest(url)
            if not expected:
                return None
            got = self._download(url, path)
            if not got:
                return None
            if got == expected:
                return path
            path.unlink(missing_ok=True)
        raise ChecksumMismatch(
            self.exchange,
            f"{name}: SHA-256 {got} differs from the published {expected} ({url}.CHECKSUM), "
            f"{ATTEMPTS} downloads; nothing imported from it",
            url=url,
            expected=expected,
            got=got,
        )

    def _published_digest(self, url: str) -> str:
        """The lower-case hex SHA-256 in ``url``'s CHECKSUM file, or "" when it is not published."""
        resp = self._get(url + ".CHECKSUM", stream=False)
        if resp is None:
            return ""
        match = _CHECKSUM.fullmatch(resp.text.strip())
        name = url.rsplit("/", 1)[-1]
        if match is None or match["name"] != name:
            raise ExchangeUnavailable(
                self.exchange,
                f"{url}.CHECKSUM: expected '<sha256 hex>  {name}', got {resp.text[:120]!r}",
                url=url + ".CHECKSUM",
            )
        return match["digest"].lower()

    def _download(self, url: str, path: Path) -> str:
        """Stream ``url`` into ``path``; its hex SHA-256, or "" when it is not published."""
        resp = self._get(url, stream=True)
        if resp is None:
            return ""
        name, digest, done = path.name, hashlib.sha256(), 0
        total = int(resp.headers["Content-Length"]) if resp.headers.get("Content-Length", "").isdigit() else None
        try:
            with resp, path.open("wb") as out:
                for chunk in resp.iter_content(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    self.bytes += len(chunk)
                    if self._on_bytes is not None:
                        self._on_bytes(name, done, total)
        except requests.RequestException as exc:
            path.unlink(missing_ok=True)
            raise self._unavailable(url, f"download broken off after {done:,} bytes ({type(exc).__name__})") from None
        return digest.hexdigest()

    def _get(self, url: str, *, stream: bool) -> requests.Response | None:
        """The 200 answer to GET ``url``; None for a 404; :class:`ExchangeUnavailable` naming the URL otherwise."""
        self.requests += 1
        try:
            resp = self._session.get(url, timeout=self.timeout, stream=stream)
        except requests.Timeout:
            raise self._unavailable(url, f"no answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise self._unavailable(url, f"not reachable ({type(exc).__name__})") from None
        if resp.status_code == 404:
            resp.close()
            return None
        if resp.status_code != 200:
            resp.close()
            raise self._unavailable(url, f"HTTP {resp.status_code}")
        return resp

    def _unavailable(self, url: str, cause: str) -> ExchangeUnavailable:
        return ExchangeUnavailable(self.exchange, f"{url}: {cause}", url=url, cause=cause)
