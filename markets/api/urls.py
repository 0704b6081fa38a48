"""Routes of the history API, mounted at ``/api/v1/`` (no trailing slash)."""

from __future__ import annotations

from django.urls import path

from orders.api import OrdersView, PositionsView
from signals.api import SignalsView

from . import views

urlpatterns = [
    path("instruments", views.InstrumentsView.as_view(), name="api-instruments"),
    path("candles", views.CandlesView.as_view(), name="api-candles"),
    path("ticks", views.TicksView.as_view(), name="api-ticks"),
    path("gaps", views.GapsView.as_view(), name="api-gaps"),
    path("feeds", views.FeedsView.as_view(), name="api-feeds"),
    path("consolidated", views.ConsolidatedView.as_view(), name="api-consolidated"),
    path("signals", SignalsView.as_view(), name="api-signals"),
    path("orders", OrdersView.as_view(), name="api-orders"),
    path("positions", PositionsView.as_view(), name="api-positions"),
]
