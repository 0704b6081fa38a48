"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from django.conf import settings

from exchangesim.server import Simulator, running_in_thread
from tests.conftest import sim_config
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
# Without the background-networking flags chromium keeps dialling Google's hosts, refused on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def start_web(port: int, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Daphne serving the site on 127.0.0.1:``port`` with ``env``; its output is piped, for the test to read when
    it stops it (a traceback there fails the test)."""
    return subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradingsite.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def fast_sim() -> Iterator[Simulator]:
    """A simulator with 200 synthetic trades/s per symbol."""
    with running_in_thread(sim_config(rate=200.0)) as sim:
        yield sim


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Headless chromium. Playwright's sync API keeps an event loop on this thread, which Django would take for
    an async context; the test's own ORM reads are plain synchronous calls, so that guard is lifted here."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not at {CHROMIUM}: `make browser` (which .ci/run runs) installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def manage_env(sim: Simulator, dev_stack: Mapping[str, Service], **extra: str) -> dict[str, str]:
    """The environment of a ``manage.py`` process of an end-to-end test: the session's mongod and Redis, this test's
    database, the simulator as Binance, INFO logs; ``extra`` on top."""
    return os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "BINANCE_REST_URL": sim.url,
        "BINANCE_WS_URL": sim.ws_url,
        "BINANCE_DATA_URL": sim.url,
        "LOG_LEVEL": "INFO",
        **extra,
    }
