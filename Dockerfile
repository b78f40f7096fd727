# syntax=docker/dockerfile:1
# One image for every ArtStore service; the command picks the service:
#   docker run artstore                          -> serve storage-element (the default)
#   docker run artstore migrate                  -> apply the database migrations
#   docker run artstore serve <service>          -> any service `artstore serve` knows
# Settings come from the environment (architecture §3); see docker-compose.yml.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: a venv with the locked runtime dependencies and the project -------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
RUN python -m venv /opt/venv

# Dependencies first (cached until pyproject.toml or the lock change): what the services
# need -- the core dependencies of pyproject.toml and the `se` and `admin` extras -- at the
# versions pinned in requirements.lock. Left out: the dev extra and `embedded` (the image
# always talks to a real PostgreSQL, DATABASE_URL; the embedded one is for `artstore up`).
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extra = p['optional-dependencies']; print('\n'.join(p['dependencies'] + extra['se'] + extra['admin']))" > /tmp/runtime.txt \
    && pip install -c requirements.lock -r /tmp/runtime.txt

# The project itself, installed editable: the migrations are found next to the code
# (alembic.ini and migrations/ at the root), so /app is kept as it is.
COPY . .
RUN pip install --no-deps -e . \
    && python -m compileall -q /app/lib /app/storage-element

# --- runtime: slim, non-root ------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# PORT is the port the service in this container listens on; only the health check reads
# it, so set it together with the service's own setting (SE_PORT, ...).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8010 \
    SE_HOST=0.0.0.0 \
    SE_DATA_DIR=/data/se \
    LOG_FORMAT=json

# Every directory a compose named volume mounts exists here, owned by the service's user:
# Docker seeds a new named volume from the image's directory (owner included), so the
# non-root services can write to it; a directory missing here is made root-owned.
RUN groupadd --system --gid 10001 artstore \
    && useradd --system --uid 10001 --gid artstore --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin artstore \
    && mkdir -p /data/se /data/admin /data/bootstrap /data/query \
    && chown -R artstore:artstore /data

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000 8010 8020 8030 8040

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8010') + '/health/live', timeout=4)"]

ENTRYPOINT ["artstore"]
CMD ["serve", "storage-element"]
