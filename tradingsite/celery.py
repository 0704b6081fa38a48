"""The Celery app: Redis broker, configured from Django settings (the ``CELERY_*`` names), tasks found in
each app's ``tasks.py``. Beat's schedule is in settings too (``CELERY_BEAT_SCHEDULE``); no django-celery-beat.

Run a worker with ``celery -A tradingsite worker`` and beat with ``celery -A tradingsite beat`` (see Procfile).
A worker serves its Prometheus metrics on ``WORKER_METRICS_PORT`` (markets/metrics.py): those of the tasks run
in its own process, so all of them with ``--pool threads`` or ``solo``, not those of prefork's children.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

app = Celery("tradingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def serve_worker_metrics(sender: Any = None, **_: Any) -> None:
    """Serve the worker's metrics once it starts (not in beat, nor in a process that only sends tasks)."""
    import logging

    from django.conf import settings

    from markets import metrics

    pool = str(getattr(sender, "pool_cls", ""))
    if metrics.serve(settings.WORKER_METRICS_PORT, settings.METRICS_ADDR, "worker") and "prefork" in pool:
        logging.getLogger(__name__).warning(
            "worker metrics cover this process only: tasks run in prefork's children; use --pool threads"
        )
