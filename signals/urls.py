"""Routes of the signals API, mounted at ``/api/v1/`` (no trailing slash) by ``tradingsite.urls``."""

from __future__ import annotations

from django.urls import path

from .api import SignalsView

urlpatterns = [
    path("signals", SignalsView.as_view(), name="api-signals"),
]
