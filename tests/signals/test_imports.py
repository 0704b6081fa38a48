"""Every module of ``signals`` loads with ``orders`` and ``live`` absent: signals imports markets only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: this one has long since loaded orders (an installed app). There the apps above
# signals are left out of INSTALLED_APPS and any import of them is refused, naming the module; sys.modules is
# checked as well. (Imports under TYPE_CHECKING never run: the import-direction test reads those.)
PROBE = """
import importlib, pkgutil, sys
from importlib.abc import MetaPathFinder

ABOVE = ("orders", "live")

class Refuse(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABOVE:
            raise ImportError(f"signals loaded {name}, an app above it")
        return None

import django
from django.conf import settings

settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a.split(".")[0] not in ABOVE]
sys.meta_path.insert(0, Refuse())
django.setup()
import signals

for info in pkgutil.walk_packages(signals.__path__, "signals."):
    importlib.import_module(info.name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ABOVE)
assert not loaded, loaded
print("ok", len([m for m in sys.modules if m.startswith("signals.")]))
"""


def test_signals_loads_without_orders_or_live() -> None:
    """Loading every signals module (services, api, the listener, ...) imports nothing from orders or live."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "tradingsite.settings"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok ")
