"""Routes of the orders app, in two lists that ``tradingsite.urls`` mounts apart (no trailing slash on either):

- ``urlpatterns``: the staff actions behind the live page's Close and Cancel buttons (``orders.views``), at
  ``/orders/``;
- ``api_urlpatterns``: the trading records' API (``orders.api``: orders, positions; staff only unless
  ``TRADING_DATA_PUBLIC``), at ``/api/v1/`` beside the market data's and the signals'.
"""

from __future__ import annotations

from django.urls import path

from . import api, views

urlpatterns = [
    # <str:pk>, not an ObjectId converter: an ill-formed id must reach the view for its JSON 404.
    path("positions/<str:pk>/close", views.position_close_view, name="position-close"),
    path("orders/<str:pk>/cancel", views.order_cancel_view, name="order-cancel"),
]

api_urlpatterns = [
    path("orders", api.OrdersView.as_view(), name="api-orders"),
    path("positions", api.PositionsView.as_view(), name="api-positions"),
]
