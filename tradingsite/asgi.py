"""ASGI entry point (Daphne serves it; Channels routing joins with the live feed)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
application = get_asgi_application()
