"""The Django project: settings, ASGI entry point, URLs, the Celery app and the local development stack."""

# The Celery app is loaded with the project, so that ``shared_task``s are sent through it (its Redis broker)
# from any process: web, stream, manage.py commands and the worker alike.
from .celery import app as celery_app

__all__ = ("celery_app",)
