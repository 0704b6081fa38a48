# The project's two front doors: `make run` and `make test`. Both bootstrap the virtualenv from
# the pinned requirements on first use, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo sim test test-fast lint bench clean venv node browser compose-check

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# Front-end packages (lightweight-charts) from npm, exactly as package-lock.json says; served by Django from
# node_modules (settings.STATICFILES_DIRS). Node.js comes from Debian when it is missing and we may install it.
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }; } || \
		{ echo "npm is needed for the page's chart library: install Node.js (e.g. apt-get install nodejs npm)"; exit 2; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

node: $(NODE_STAMP)

## browser: Debian's chromium for the live page's browser test (Playwright drives it; nothing is downloaded)
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } || \
		{ echo "make browser: install Debian's chromium (apt-get install chromium) as root"; exit 2; }
	@/usr/bin/chromium --version 2>/dev/null

## compose-check: docker-compose.yml (and the simulator override) validated by Debian's docker-compose; no engine needed
compose-check:
	@command -v docker-compose >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; } || \
		{ echo "make compose-check: install docker-compose (apt-get install docker-compose) as root"; exit 2; }
	DJANGO_SECRET_KEY=compose-config-check docker-compose -f docker-compose.yml config -q
	DJANGO_SECRET_KEY=compose-config-check docker-compose -f docker-compose.yml -f docker-compose.sim.yml config -q
	@echo "docker-compose.yml and docker-compose.sim.yml: valid"

## run: MongoDB + Redis (started locally when MONGODB_URI/REDIS_URL are unset), migrations, default
## instruments, and the site on http://WEB_HOST:PORT (127.0.0.1:8000) against live Binance (the simulator on
## port SIM_PORT, 9900, if unreachable). `PORT=8123 make run` (or `make run PORT=8123`) moves the site.
run: $(STAMP) $(NODE_STAMP)
	$(PY) -m tradingsite.run

## demo: the same against the local exchange simulator (simulated data)
demo: $(STAMP) $(NODE_STAMP)
	$(PY) -m tradingsite.run --demo

## sim: the exchange simulator alone on 127.0.0.1:SIM_PORT (9900)
sim: $(STAMP)
	$(PY) -m exchangesim --host 127.0.0.1 --port $${SIM_PORT:-9900}

## test: the whole suite (slow end-to-end tests included)
test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest

## test-fast: skip tests marked slow
test-fast: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) bench/exchangesim_throughput.py
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .hypothesis node_modules test-artifacts
