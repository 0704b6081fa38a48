"""``manage.py feed check``, the stream's healthcheck: exit status 0 when every feed is live and fresh, 1 with one
line per stale feed, or when no stream has reported at all."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from markets.models import Feed
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]


def _feed(exchange: str, symbol: str, *, age: float, state: str = "connected") -> None:
    Feed.objects.create(
        exchange=exchange, symbol=symbol, state=state, last_trade_at=datetime.now(UTC) - timedelta(seconds=age)
    )


def _check(*args: str) -> str:
    out = io.StringIO()
    call_command("feed", "check", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_no_feed_reported_fails() -> None:
    """Before any stream has reported, the check fails and says what to start."""
    with pytest.raises(CommandError, match=r"no feed reported: is `manage.py stream` running\?") as exc:
        _check()
    assert exc.value.returncode == 1


@pytest.mark.django_db
def test_every_feed_fresh_passes() -> None:
    """Feeds whose last trades are within the stall limit: exit status 0 and one line naming them."""
    _feed("binance", "BTCUSDT", age=0.2)
    _feed("kraken", "XBTUSD", age=1.0)
    out = _check()
    assert out.startswith("2 feeds live (last trade: binance:BTCUSDT 0.")
    assert "kraken:XBTUSD 1." in out


@pytest.mark.django_db
def test_a_connected_feed_with_no_trade_yet_is_live() -> None:
    """A quiet symbol's socket is connected before its first trade: live, and said to have no trade yet."""
    _feed("binance", "BTCUSDT", age=0.2)
    Feed.objects.create(exchange="binance", symbol="XRPUSDT", state="connected", last_trade_at=None)
    assert "binance:XRPUSDT none yet" in _check()


@pytest.mark.django_db
def test_one_line_per_stale_feed() -> None:
    """Each stale or stopped feed gets its own line with the reason; fresh ones are not listed."""
    _feed("binance", "BTCUSDT", age=0.2)
    _feed("binance", "ETHUSDT", age=30, state="reconnecting")
    _feed("coinbase", "BTC-USD", age=0.2, state="down")
    with pytest.raises(CommandError) as exc:
        _check()
    lines = str(exc.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("binance:ETHUSDT: reconnecting, no trade for 30.")
    assert lines[0].endswith(f"(limit {settings.FEED_STALL_SECONDS:g} s)")
    assert lines[1] == "coinbase:BTC-USD: down"


@pytest.mark.django_db
def test_exchange_and_stall_limit_options() -> None:
    """``--exchange`` judges that exchange's feeds only; ``--stall-seconds`` sets the limit."""
    _feed("binance", "BTCUSDT", age=3, state="reconnecting")
    _feed("coinbase", "BTC-USD", age=30)
    assert _check("--exchange", "binance").startswith("1 feed live")
    with pytest.raises(CommandError, match=r"binance:BTCUSDT: reconnecting, no trade for 3\.\d s \(limit 2 s\)"):
        _check("--exchange", "binance", "--stall-seconds", "2")
    with pytest.raises(CommandError, match="no kraken feed reported"):
        _check("--exchange", "kraken")
    with pytest.raises(CommandError, match="--stall-seconds must be positive, got -1"):
        _check("--stall-seconds", "-1")


@pytest.mark.django_db(transaction=True)
def test_exit_status_of_the_command(dev_stack: dict[str, Service]) -> None:
    """As a compose healthcheck runs it: exit status 1 and the reason on stderr for a stale feed, 0 once fresh."""
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
    }

    def run() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "manage.py", "feed", "check", "--stall-seconds", "10"]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    _feed("binance", "BTCUSDT", age=60, state="reconnecting")
    stale = run()
    assert stale.returncode == 1, stale.stdout + stale.stderr
    reason = r"binance:BTCUSDT: reconnecting, no trade for \d+\.\d s \(limit 10 s\)"
    assert re.fullmatch(f"CommandError: {reason}\n", stale.stderr)
    Feed.objects.filter(symbol="BTCUSDT").update(
        state="connected", last_trade_at=datetime.now(UTC), updated_at=datetime.now(UTC)
    )
    fresh = run()
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert fresh.stdout.startswith("1 feed live")
