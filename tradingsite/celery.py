"""The Celery app: Redis broker, configured from Django settings (the ``CELERY_*`` names), tasks found in
each app's ``tasks.py``. Beat's schedule is in settings too (``CELERY_BEAT_SCHEDULE``); no django-celery-beat.

Run a worker with ``celery -A tradingsite worker`` and beat with ``celery -A tradingsite beat`` (see Procfile).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

app = Celery("tradingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
