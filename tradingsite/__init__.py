"""The Django project: settings, ASGI entry point, URLs and the local development stack."""
