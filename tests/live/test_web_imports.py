"""The web process does not import the stream: loading the ASGI application (what Daphne serves) and every view
module its URLconf names leaves the stream package, the stream's listeners, their wiring and the trader out of
``sys.modules``. Checked in a fresh interpreter, since this test process has imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STREAM_SIDE = (
    "markets.stream",
    "markets.streaming",
    "live.wiring",
    "orders.trader",
    "orders.listener",
    "signals.listener",
)
# Run in the fresh interpreter: records which module first imported each module (the first frame outside the
# import machinery), loads the ASGI app, walks the URLconf importing every view's module, and prints as JSON which
# of the stream side got in and through whom.
LOAD_WEB = """
import importlib, importlib.abc, json, sys

first_importer = {}

class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
            frame = frame.f_back
        first_importer.setdefault(fullname, frame.f_globals.get("__name__") if frame else None)
        return None

sys.meta_path.insert(0, Recorder())
import tradingsite.asgi
from django.urls import get_resolver
from django.urls.resolvers import URLResolver

def views(patterns):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from views(p.url_patterns)
        else:
            yield p.callback

modules = sorted({v.__module__ for v in views(get_resolver().url_patterns)})
for name in modules:
    importlib.import_module(name)

def chain(name):
    out = [name]
    while (name := first_importer.get(name)) and name not in out and name != "__main__":
        out.append(name)
    return " <- ".join(out)

print(json.dumps({"views": modules, "stream_side": {m: chain(m) for m in sys.argv[1:] if m in sys.modules}}))
"""


def test_loading_the_web_app_imports_no_stream_module() -> None:
    """The ASGI app and every view of the URLconf load without the stream package, its listeners, their wiring
    or the trader; no database is needed for it (the URIs given point nowhere)."""
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tradingsite.settings",
        # Loading the app must not connect anywhere: a reachable database would hide a connect at import time.
        "MONGODB_URI": "mongodb://127.0.0.1:9/tradingsite_web_imports",
        "REDIS_URL": "redis://127.0.0.1:9/0",
    }
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WEB, *STREAM_SIDE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "live.views" in found["views"]  # the walk reached the page's views
    assert found["stream_side"] == {}, "the web process imported the stream side (module <- first importer):\n" + (
        "\n".join(found["stream_side"].values())
    )
