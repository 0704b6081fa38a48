"""Routes of the market-data API, mounted at ``/api/v1/`` (no trailing slash) by ``tradingsite.urls``, beside the
signals' (``signals.urls``) and the trading records' (``orders.urls.api_urlpatterns``)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("instruments", views.InstrumentsView.as_view(), name="api-instruments"),
    path("candles", views.CandlesView.as_view(), name="api-candles"),
    path("ticks", views.TicksView.as_view(), name="api-ticks"),
    path("gaps", views.GapsView.as_view(), name="api-gaps"),
    path("feeds", views.FeedsView.as_view(), name="api-feeds"),
    path("consolidated", views.ConsolidatedView.as_view(), name="api-consolidated"),
]
