"""WebSocket routes of the live page and the admin (mounted by ``tradingsite.asgi``); anything else is closed with
4404, not a traceback."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from .consumers import NOT_FOUND, MarketConsumer, PricesConsumer


class NoSuchSocket(AsyncWebsocketConsumer):
    """Any socket path without a consumer: closed at once with 4404."""

    async def connect(self) -> None:
        await self.close(code=NOT_FOUND)


websocket_urlpatterns = [
    re_path(r"^ws/market/(?P<exchange>[a-z0-9_-]{1,32})/(?P<symbol>[A-Za-z0-9._-]{1,32})/$", MarketConsumer.as_asgi()),
    path("ws/prices/", PricesConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),
]
