#!/usr/bin/env python
"""Django's command-line utility. Starts the local MongoDB/Redis (tradingsite.devstack) when
MONGODB_URI / REDIS_URL are unset, for as long as the command runs."""

import os
import sys
from pathlib import Path


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    from django.core.management import execute_from_command_line

    from tradingsite.devstack import DevStackError, dev_services
    from tradingsite.env import ConfigError, load_env_file

    try:
        load_env_file(Path(__file__).resolve().parent / ".env")  # before deciding whether to start the dev stack
    except ConfigError as exc:
        print(f"manage.py: {exc}", file=sys.stderr)
        return 2

    needs_services = len(sys.argv) > 1 and sys.argv[1] not in ("help", "--help", "-h", "version", "--version", "check")
    if needs_services and not (os.environ.get("MONGODB_URI") and os.environ.get("REDIS_URL")):
        try:
            with dev_services(Path(__file__).resolve().parent / ".data") as uris:
                os.environ.update(uris)
                execute_from_command_line(sys.argv)
        except DevStackError as exc:
            print(f"manage.py: {exc}", file=sys.stderr)
            return 2
        return 0
    execute_from_command_line(sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
