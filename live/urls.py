"""Routes of the live page and its feed control, mounted at the site's root by ``tradingsite.urls``."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("market/<slug:exchange>/<str:symbol>/", views.market, name="market-live"),
    path("market/<slug:exchange>/feed/drop", views.feed_drop, name="feed-drop"),
]
