"""Routes of the staff actions (``orders.views``), mounted at ``/orders/`` (no trailing slash, like the drop)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    # <str:pk>, not an ObjectId converter: an ill-formed id must reach the view for its JSON 404.
    path("positions/<str:pk>/close", views.position_close_view, name="position-close"),
    path("orders/<str:pk>/cancel", views.order_cancel_view, name="order-cancel"),
]
