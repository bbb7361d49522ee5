# syntax=docker/dockerfile:1
# The MarketPulse image: `docker build -t marketpulse .`, then
# `docker run --rm marketpulse --help`. The base images are build arguments so
# the same file builds on locally made images (a CI override file sets them).
ARG PYTHON_BUILD_IMAGE=docker.io/library/python:3.11-slim-bookworm
ARG PYTHON_RUNTIME_IMAGE=docker.io/library/python:3.11-slim-bookworm

# Dependencies stage: a virtual environment with MarketPulse's production
# dependencies only (never the `dev` extra), from pyproject.toml alone, so a
# change to the source does not download them again. Their test suites and C
# headers are left out.
FROM ${PYTHON_BUILD_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/marketpulse
WORKDIR /src
# pyproject.toml alone: its readme may be empty here (the wheel below has the real one).
COPY pyproject.toml ./
# A network that re-signs TLS needs its CA bundle to reach PyPI: pass it as a
# build secret (`--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt`);
# it is mounted for this step only and never stored in a layer. Without it,
# pip uses its own certificates.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && mkdir -p src/marketpulse && touch README.md src/marketpulse/__init__.py \
    && /opt/marketpulse/bin/pip install . \
    && /opt/marketpulse/bin/pip uninstall --yes marketpulse \
    && site="$(/opt/marketpulse/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && find "$site" -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf "$site/pyarrow/include" "$site/pyarrow/src" \
    && find "$site" \( -name '*.pyx' -o -name '*.pxd' \) -delete

# Build stage: MarketPulse's own wheel.
FROM deps AS build
COPY README.md ./
COPY src ./src
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && /opt/marketpulse/bin/pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_RUNTIME_IMAGE} AS runtime
ENV PATH=/opt/marketpulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/opt/marketpulse-numba-cache \
    MARKETPULSE_LAKE=/data/lake
RUN groupadd --system --gid 10001 marketpulse \
    && useradd --system --uid 10001 --gid marketpulse --home-dir /data --shell /usr/sbin/nologin marketpulse \
    && mkdir -p /data/lake "$NUMBA_CACHE_DIR" \
    && chown -R marketpulse:marketpulse /data
COPY --from=deps /opt/marketpulse /opt/marketpulse
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps --no-cache-dir --disable-pip-version-check /tmp/wheels/*.whl \
    && pip uninstall --yes pip \
    && rm -rf /tmp/wheels
# Compile the numba kernels once, here: a container's first batch then loads
# them from the cache instead of compiling (about 17 s). The inputs: a
# simulated market (trades and quotes), a daily-bars file (bars take their own
# signatures: 8 kernels, seen compiling for 8 s on a first `replay` of one),
# every indicator kind (declared indicators) and the PostgreSQL sink's COPY
# encoder. scripts/containers/check_numba_cache.py checks that none compiles.
# The cache belongs to the image's user: numba uses a cache directory only
# where it can write, and compiles anew on every start otherwise (seen: 15 s).
RUN marketpulse run --duration 2 --no-dashboard --lake /tmp/warm --alerts-file /tmp/warm/alerts.jsonl \
    && printf 'Index,Date,Open,High,Low,Close,Adj Close,Volume\n' > /tmp/warm/bars.csv \
    && for d in $(seq 10 28); do echo "IDX,2020-01-$d,100,101,99,100.5,100.5,1000" >> /tmp/warm/bars.csv; done \
    && marketpulse replay /tmp/warm/bars.csv --lake /tmp/warm --alerts-file '' \
    && rm -rf /tmp/warm \
    && python -c "import marketpulse.indicators as mi, marketpulse.sinks.pgcopy as pg; mi.warm_up(); pg.warm_up()" \
    && chown -R marketpulse:marketpulse "$NUMBA_CACHE_DIR"
USER marketpulse
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8050
ENTRYPOINT ["marketpulse"]
CMD ["--help"]
