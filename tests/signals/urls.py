"""The site's URLs with ``/api/v1/signals`` mounted, for the tests (the real route is added in markets/api/urls.py)."""

from django.urls import path

from signals.api import SignalsView
from tradingsite.urls import urlpatterns as site

urlpatterns = [path("api/v1/signals", SignalsView.as_view(), name="api-signals"), *site]

handler404 = "markets.api.errors.not_found"
handler500 = "markets.api.errors.server_error"
