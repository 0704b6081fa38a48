"""The history API's OpenAPI schema documents the endpoints, and Swagger UI serves it."""

from __future__ import annotations

from django.test import Client


def test_schema_documents_the_endpoints(client: Client) -> None:
    """The OpenAPI document lists the endpoints with their parameters, limits and the error shape."""
    response = client.get("/api/schema/", {"format": "json"})
    assert (response.status_code, response["Content-Type"]) == (200, "application/vnd.oai.openapi+json")
    schema = response.json()
    paths = schema["paths"]
    assert {
        "/api/v1/instruments",
        "/api/v1/candles",
        "/api/v1/ticks",
        "/api/v1/gaps",
        "/api/v1/feeds",
        "/api/v1/consolidated",
    } <= set(paths)
    candles_get = paths["/api/v1/candles"]["get"]
    params = {p["name"]: p for p in candles_get["parameters"]}
    assert set(params) == {"exchange", "symbol", "interval", "start", "end", "fetch", "format"}
    assert params["format"]["schema"]["enum"] == ["csv", "json"]
    assert set(candles_get["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {name for name, p in params.items() if p.get("required")} == {"end", "start", "symbol"}
    assert params["interval"]["schema"]["enum"] == ["1m", "5m", "15m", "1h", "4h", "1d"]
    assert "at most 31 days and at most 5000 candles" in params["end"]["description"]
    assert {"200", "400", "502", "503"} <= set(candles_get["responses"])
    ticks_params = {p["name"]: p for p in paths["/api/v1/ticks"]["get"]["parameters"]}
    assert set(paths["/api/v1/ticks"]["get"]["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert (ticks_params["limit"]["schema"]["minimum"], ticks_params["limit"]["schema"]["maximum"]) == (1, 5000)
    assert {"error", "fields"} <= set(schema["components"]["schemas"]["ErrorOut"]["properties"])


def test_docs_page_answers(client: Client) -> None:
    """Swagger UI is served at /api/docs/."""
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"/api/schema/" in response.content
