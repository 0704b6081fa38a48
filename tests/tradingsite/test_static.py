"""Static files come from the app server itself (ServeStatic), with DEBUG off and no collectstatic; the image's
manifest build hashes the live page's ES modules and the imports between them."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

# A static import between the page's modules: `import { x } from "./chart.js";` (all of them are relative).
MODULE_IMPORT = re.compile(r"""^import\s[^;]*?\sfrom\s*"(\.{1,2}/[^"]+)";""", re.MULTILINE)


def test_the_pages_script_and_the_chart_library_are_served_with_debug_off(settings: object) -> None:
    client = Client()
    for path in (
        "/static/live/live.js",
        "/static/live/chart.js",
        "/static/vendor/lightweight-charts/lightweight-charts.standalone.production.js",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert int(response["Content-Length"]) > 1000, path
        # A module script with another type is refused by the browser (strict MIME checking).
        assert "javascript" in response["Content-Type"], path
    assert client.get("/static/markets/no-such-file.js").status_code == 404


@pytest.mark.slow
def test_the_manifest_build_points_the_live_modules_at_their_hashed_siblings(settings: Any, tmp_path: Path) -> None:
    """collectstatic with the image's storage (DJANGO_STATIC_MANIFEST) succeeds, and the hashed live.js and every
    module it reaches import their siblings by hashed name, each a file the build wrote: a browser holding one
    release's modules never loads another's."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "tradingsite.static_storage.ModuleManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    paths = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    hashed = set(paths.values())
    reached: set[str] = set()
    todo = [paths["live/live.js"]]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        imports = MODULE_IMPORT.findall((tmp_path / name).read_text())
        for url in imports:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), url))
            assert target in hashed, f"{name} imports {url}, which is not a hashed file of this build"
            todo.append(target)
    modules = {hashed_name for name, hashed_name in paths.items() if name.startswith("live/") and name.endswith(".js")}
    assert reached == modules, "every module of the page is reached from live.js, by its hashed name"
