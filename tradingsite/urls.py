"""URL configuration, the one map that mounts every app: the live page (``/``, ``/market/<exchange>/<symbol>/``,
the feed drop: ``live.urls``), the staff actions on positions and orders (``/orders/``: ``orders.urls``), the admin,
the API under ``/api/v1/`` (each app mounts its own: ``markets.api.urls``, ``signals.urls``,
``orders.urls.api_urlpatterns``), its OpenAPI schema and Swagger UI, and the operator's probes (``/healthz``,
``/readyz``, ``/metrics``: see tradingsite/probes.py).

Anything else under ``/api/`` is a JSON 404 (the catch-all stays last); ``handler404``/``handler500``
answer JSON under ``/api/`` and Django's pages elsewhere.
"""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from markets.api.errors import not_found
from orders.urls import api_urlpatterns as orders_api
from tradingsite import probes

urlpatterns = [
    path("", include("live.urls")),
    path("orders/", include("orders.urls")),
    path("admin/", admin.site.urls),
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", probes.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("markets.api.urls")),
    path("api/v1/", include("signals.urls")),
    path("api/v1/", include(orders_api)),
    re_path(r"^api/", not_found),
]

handler404 = "markets.api.errors.not_found"
handler500 = "markets.api.errors.server_error"
