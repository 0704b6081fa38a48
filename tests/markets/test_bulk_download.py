"""Binance's bulk files downloaded and checked (markets.exchanges.binance_vision_download), and which whole days a
trades backfill asks the files for (markets.bulk), against a small file host of the test's own."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from markets.bulk import files_fill, periods, wanted_days
from markets.exchanges.binance_vision_download import ChecksumMismatch, VisionDownloader, daily_url, monthly_url
from markets.exchanges.errors import ExchangeUnavailable
from tradingsite.devstack import free_port


class FileHost:
    """Files served over HTTP by path, as data.binance.vision serves them: ``files`` maps a path to its bytes (404 for
    any other path), ``corrupt`` how many more answers of a path have a byte flipped, ``status`` a path answered with
    that HTTP status instead. ``log`` lists the paths asked for, in order."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.corrupt: dict[str, int] = {}
        self.status: dict[str, int] = {}
        self.log: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.log.append(self.path)
                body = host.files.get(self.path)
                status = host.status.get(self.path, 200 if body is not None else 404)
                if status != 200 or body is None:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if host.corrupt.get(self.path, 0) > 0:
                    host.corrupt[self.path] -= 1
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def publish(self, url: str, rows: list[str], *, checksum: str | None = None) -> str:
        """``rows`` (CSV lines) zipped under ``url``'s name, with its CHECKSUM (or ``checksum`` instead of the
        true digest); the zip's path on this host."""
        path = url.removeprefix(self.url)
        name = path.rsplit("/", 1)[-1]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name.removesuffix(".zip") + ".csv", "".join(r + "\n" for r in rows))
        self.files[path] = buf.getvalue()
        digest = checksum or hashlib.sha256(buf.getvalue()).hexdigest()
        self.files[path + ".CHECKSUM"] = f"{digest}  {name}\n".encode()
        return path

    def zips_asked(self) -> list[str]:
        return [p for p in self.log if p.endswith(".zip")]

    def __enter__(self) -> FileHost:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host() -> Iterator[FileHost]:
    with FileHost() as h:
        yield h


ROW = "1001,61837.63000000,0.06800000,2001,2002,1723161255342,True,True"
DAY = date(2024, 8, 8)


def test_urls_are_data_binance_visions_paths() -> None:
    assert daily_url("https://data.binance.vision/", "btcusdt", DAY) == (
        "https://data.binance.vision/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-08-08.zip"
    )
    assert monthly_url("http://sim/binance-data", "BTCUSDT", DAY) == (
        "http://sim/binance-data/data/spot/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-08.zip"
    )


def test_a_published_file_is_saved_when_its_digest_matches(host: FileHost, tmp_path: Path) -> None:
    url = daily_url(host.url, "BTCUSDT", DAY)
    host.publish(url, [ROW])
    seen: list[tuple[str, int, int | None]] = []
    dl = VisionDownloader("binance", on_bytes=lambda *a: seen.append(a))
    path = dl.fetch(url, tmp_path)
    assert path == tmp_path / "BTCUSDT-aggTrades-2024-08-08.zip"
    assert path.read_bytes() == host.files[url.removeprefix(host.url)]
    assert dl.requests == 2
    assert dl.bytes == path.stat().st_size
    assert seen[-1] == (path.name, path.stat().st_size, path.stat().st_size)


def test_a_file_not_published_is_none(host: FileHost, tmp_path: Path) -> None:
    url = daily_url(host.url, "BTCUSDT", DAY)
    assert VisionDownloader("binance").fetch(url, tmp_path) is None
    host.publish(url, [ROW])
    del host.files[url.removeprefix(host.url)]  # a CHECKSUM without its zip
    assert VisionDownloader("binance").fetch(url, tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_download_is_fetched_once_more(host: FileHost, tmp_path: Path) -> None:
    url = daily_url(host.url, "BTCUSDT", DAY)
    path = host.publish(url, [ROW])
    host.corrupt[path] = 1
    got = VisionDownloader("binance").fetch(url, tmp_path)
    assert got is not None
    assert got.read_bytes() == host.files[path]
    assert host.zips_asked() == [path, path]


def test_a_digest_that_differs_twice_fails_naming_the_file_and_both_digests(host: FileHost, tmp_path: Path) -> None:
    url = daily_url(host.url, "BTCUSDT", DAY)
    path = host.publish(url, [ROW], checksum="ab" * 32)
    with pytest.raises(ChecksumMismatch) as caught:
        VisionDownloader("binance").fetch(url, tmp_path)
    actual = hashlib.sha256(host.files[path]).hexdigest()
    message = str(caught.value)
    assert "BTCUSDT-aggTrades-2024-08-08.zip" in message
    assert "ab" * 32 in message
    assert actual in message
    assert (caught.value.expected, caught.value.got) == ("ab" * 32, actual)
    assert host.zips_asked() == [path, path]
    assert list(tmp_path.iterdir()) == []  # nothing left to be read


def test_failures_name_the_url(host: FileHost, tmp_path: Path) -> None:
    url = daily_url(host.url, "BTCUSDT", DAY)
    path = host.publish(url, [ROW])
    host.status[path] = 503
    with pytest.raises(ExchangeUnavailable, match=re.escape(f"{url}: HTTP 503")):
        VisionDownloader("binance").fetch(url, tmp_path)
    host.files[path + ".CHECKSUM"] = b"not a checksum\n"
    with pytest.raises(ExchangeUnavailable, match=re.escape(f"{url}.CHECKSUM: expected")):
        VisionDownloader("binance").fetch(url, tmp_path)
    gone = daily_url(f"http://127.0.0.1:{free_port()}", "BTCUSDT", DAY)
    with pytest.raises(ExchangeUnavailable, match=re.escape(f"{gone}.CHECKSUM: not reachable")):
        VisionDownloader("binance", timeout=5).fetch(gone, tmp_path)


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_whole_days_before_today_that_hold_a_hole_are_wanted() -> None:
    start, end, today = at(date(2024, 8, 1), 5), at(date(2024, 8, 6), 2), date(2024, 8, 9)
    everything = [(start, end)]
    assert wanted_days(everything, start, end, today) == [date(2024, 8, d) for d in (2, 3, 4, 5)]
    assert wanted_days(everything, start, end, date(2024, 8, 4)) == [date(2024, 8, 2), date(2024, 8, 3)]
    assert wanted_days(everything, at(date(2024, 8, 2)), at(date(2024, 8, 3)), today) == [date(2024, 8, 2)]
    hole = [(at(date(2024, 8, 3), 23), at(date(2024, 8, 4), 1))]  # a hole across one midnight
    assert wanted_days(hole, start, end, today) == [date(2024, 8, 3), date(2024, 8, 4)]
    assert wanted_days([], start, end, today) == []


def test_days_are_grouped_by_month() -> None:
    days = [date(2024, 7, 30), date(2024, 7, 31), date(2024, 8, 1)]
    assert list(periods(days)) == [(date(2024, 7, 1), days[:2]), (date(2024, 8, 1), days[2:])]


@pytest.mark.django_db
def test_a_whole_ended_month_is_asked_as_one_file_then_by_day(host: FileHost, settings: object) -> None:
    """A month wanted whole and ended: its monthly file first; not published, its days one by one (not published
    either here: all of them reported so, for REST)."""
    settings.BINANCE_DATA_URL = host.url  # type: ignore[attr-defined]
    july = [date(2024, 7, 1) + timedelta(days=i) for i in range(31)]
    got = files_fill(exchange="binance", symbol="BTCUSDT", days=[*july, date(2024, 8, 1)], today=date(2024, 8, 9))
    assert got.files == 0
    assert got.unpublished == (*july, date(2024, 8, 1))
    asked = [p.rsplit("/", 1)[-1].removesuffix(".CHECKSUM") for p in host.log]  # none published: no zip asked
    assert asked[0] == "BTCUSDT-aggTrades-2024-07.zip"
    assert asked[1:] == [f"BTCUSDT-aggTrades-{d:%Y-%m-%d}.zip" for d in [*july, date(2024, 8, 1)]]
