#!/usr/bin/env python
"""Django's command-line utility. Takes what ``make run`` published about its stack (databases, exchange URLs;
tradingsite.running_stack) for the variables this environment leaves unset, then starts the local
MongoDB/Redis (tradingsite.devstack) when MONGODB_URI / REDIS_URL are still unset, for as long as the command
runs."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    from django.core.management import execute_from_command_line

    from tradingsite.devstack import DevStackError, dev_services
    from tradingsite.env import ConfigError, load_env_file
    from tradingsite.running_stack import adopted, running_stack_env, stack_dir

    data = stack_dir(ROOT)
    taken = adopted(os.environ, running_stack_env(data))
    os.environ.update(taken)
    try:
        load_env_file(ROOT / ".env")  # after the running stack: the terminal, then make run's stack, then .env
    except ConfigError as exc:
        print(f"manage.py: {exc}", file=sys.stderr)
        return 2
    sim_urls = [v for k, v in taken.items() if k.endswith(("_REST_URL", "_WS_URL"))]
    if taken.get("MARKET_SIMULATED") and sim_urls:
        print(
            f"manage.py: using the exchange simulator of the running make run ({sim_urls[0]}); "
            "set BINANCE_REST_URL and the others to use other exchanges",
            file=sys.stderr,
        )
    needs_services = len(sys.argv) > 1 and sys.argv[1] not in ("help", "--help", "-h", "version", "--version", "check")
    if needs_services and not (os.environ.get("MONGODB_URI") and os.environ.get("REDIS_URL")):
        try:
            with dev_services(data) as uris:
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
