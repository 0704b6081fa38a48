"""Static files come from the app server itself (ServeStatic), with DEBUG off and no collectstatic."""

from __future__ import annotations

from django.test import Client


def test_the_pages_script_and_the_chart_library_are_served_with_debug_off(settings: object) -> None:
    client = Client()
    for path in (
        "/static/live/live.js",
        "/static/vendor/lightweight-charts/lightweight-charts.standalone.production.js",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert int(response["Content-Length"]) > 1000, path
        assert "javascript" in response["Content-Type"], path
    assert client.get("/static/markets/no-such-file.js").status_code == 404
