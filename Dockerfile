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

# The runtime's base: the Python runtime, the user and the dependencies, without
# MarketPulse itself. Both `app` and `spark-base` start from it, so what the Spark
# image adds (Java, pyspark, the connector's jars) is built once, not again for each
# change to MarketPulse's source.
FROM ${PYTHON_RUNTIME_IMAGE} AS runtime-base
ENV PATH=/opt/marketpulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/opt/marketpulse-numba-cache \
    MARKETPULSE_LAKE=/data/lake
RUN groupadd --system --gid 10001 marketpulse \
    && useradd --system --uid 10001 --gid marketpulse --home-dir /data --shell /usr/sbin/nologin marketpulse \
    && mkdir -p /data/lake "$NUMBA_CACHE_DIR" \
    && chown -R marketpulse:marketpulse /data
COPY --from=deps /opt/marketpulse /opt/marketpulse

# The application stage: everything the runtime image holds but its user. The
# `spark` stage below installs the same wheel and copies its compiled kernels, and
# `runtime`, the last stage (what `docker build .` builds), only sets the user: the
# default image is this one, as a non-root user.
FROM runtime-base AS app
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps --no-cache-dir --disable-pip-version-check /tmp/wheels/*.whl \
    && pip uninstall --yes pip \
    && rm -rf /tmp/wheels
# Compile the numba kernels once, here: a container's first batch then loads
# them from the cache instead of compiling (about 17 s). The inputs: a
# simulated market (trades and quotes), a daily-bars file (bars take their own
# signatures: 8 kernels, seen compiling for 8 s on a first `replay` of one),
# a processor warmed up for JSON records as the Kafka services read them (the
# JSON scanner's kernels, which `run` on its in-memory bus never calls), every
# indicator kind (declared indicators) and the PostgreSQL sink's COPY encoder.
# scripts/containers/check_numba_cache.py checks that none compiles.
# The cache belongs to the image's user: numba uses a cache directory only
# where it can write, and compiles anew on every start otherwise (seen: 15 s).
# The kernels compiled are also kept in a build cache, keyed by the digest of the
# sources they depend on (scripts/kernel_digest.py, as CI keys its own): a
# rebuild after a change elsewhere (the command line, the dashboard, a
# docstring) loads them instead of compiling them again; a builder without that
# cache compiles them as before. numba checks each kernel's own file by content.
COPY scripts/kernel_digest.py /tmp/kernel_digest.py
RUN --mount=type=cache,id=marketpulse-numba-kernels,target=/var/cache/marketpulse-numba \
    site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && kept="/var/cache/marketpulse-numba/$(python /tmp/kernel_digest.py "$site")" \
    && if [ -d "$kept" ]; then cp -a "$kept/." "$NUMBA_CACHE_DIR/"; fi \
    && marketpulse run --duration 2 --no-dashboard --lake /tmp/warm --alerts-file /tmp/warm/alerts.jsonl \
    && printf 'Index,Date,Open,High,Low,Close,Adj Close,Volume\n' > /tmp/warm/bars.csv \
    && for d in $(seq 10 28); do echo "IDX,2020-01-$d,100,101,99,100.5,100.5,1000" >> /tmp/warm/bars.csv; done \
    && marketpulse replay /tmp/warm/bars.csv --lake /tmp/warm --alerts-file '' \
    && rm -rf /tmp/warm \
    && python -c "import marketpulse.indicators as mi, marketpulse.sinks.pgcopy as pg; mi.warm_up(); pg.warm_up()" \
    && python -c "from marketpulse.cli.common import processor_settings as p, rules_from as r; \
from marketpulse.config import load_settings; from marketpulse.stream import Processor; \
s = load_settings(); Processor(p(s), r(s)).warm_up()" \
    && rm -rf "$kept" && mkdir -p "$kept" && cp -a "$NUMBA_CACHE_DIR/." "$kept/" \
    && (ls -1dt /var/cache/marketpulse-numba/*/ | tail -n +4 | xargs -r rm -rf) \
    && rm /tmp/kernel_digest.py \
    && chown -R marketpulse:marketpulse "$NUMBA_CACHE_DIR"
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8050
ENTRYPOINT ["marketpulse"]
CMD ["--help"]

# The Spark route's image (`docker build --target spark -t marketpulse-spark .`; the
# compose profile `spark`): the application plus Debian's headless Java 17, the `spark`
# extra of pyproject.toml (pyspark, pandas, protobuf) and Spark's Kafka connector
# (marketpulse.spark.job.KAFKA_PACKAGE) with its dependencies, resolved here from Maven
# Central into an Ivy cache inside the image. spark-defaults.conf points Spark at that
# cache (spark.jars.ivy), so `marketpulse spark` starts without reaching Maven Central.
FROM runtime-base AS spark-base
ENV SPARK_CONF_DIR=/opt/marketpulse-spark/conf
# OpenJDK's postinst links man pages into /usr/share/man/man1, which a base image
# without man pages lacks.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
# The spark extra's packages, pinned as pyproject.toml pins them (read from it: one
# definition); pip comes back for this step only (ensurepip).
COPY pyproject.toml /tmp/pyproject.toml
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && python -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["optional-dependencies"]["spark"]))' \
        > /tmp/spark-requirements.txt \
    && grep -q '^pyspark==' /tmp/spark-requirements.txt \
    && python -m ensurepip > /dev/null \
    && python -m pip install --no-cache-dir --disable-pip-version-check -r /tmp/spark-requirements.txt \
    && rm /tmp/spark-requirements.txt /tmp/pyproject.toml \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && find "$site" -depth -type d -name tests -exec rm -rf {} +
# The connector's jars: a Spark session with the connector of pyspark's version as a
# package resolves them into the Ivy cache (the `spark` stage checks that the job's own
# session, marketpulse.spark.job.KAFKA_PACKAGE, finds them with no network). Behind a
# TLS-re-signing network Java needs the build secret's CA too: the certificates the
# image does not already trust go into a throw-away copy of Java's trust store for this
# step only. The cache belongs to the image's user (Ivy
# writes its resolution reports there at each start).
RUN --mount=type=secret,id=ca-bundle \
    mkdir -p "$SPARK_CONF_DIR" /opt/marketpulse-spark/ivy /checkpoint \
    && printf '%s\n' 'spark.jars.ivy /opt/marketpulse-spark/ivy' \
        'spark.sql.warehouse.dir /tmp/spark-warehouse' > "$SPARK_CONF_DIR/spark-defaults.conf" \
    && if [ -s /run/secrets/ca-bundle ]; then \
        mkdir /tmp/trust && cp /etc/ssl/certs/java/cacerts /tmp/trust/cacerts \
        && awk -v dir=/tmp/trust '{ sub(/\r$/, "") } \
            /-----BEGIN CERTIFICATE-----/ { body = ""; pem = $0 "\n"; next } \
            /-----END CERTIFICATE-----/ { pem = pem $0 "\n"; \
                if (FNR == NR) { known[body] = 1 } \
                else if (!(body in known)) { n++; f = dir "/" n ".pem"; printf "%s", pem > f; close(f) } \
                next } \
            { body = body $0; pem = pem $0 "\n" }' \
            /etc/ssl/certs/ca-certificates.crt /run/secrets/ca-bundle \
        && for cert in /tmp/trust/*.pem; do \
            [ -e "$cert" ] || continue; \
            keytool -importcert -noprompt -storepass changeit -keystore /tmp/trust/cacerts \
                -alias "build-$(basename "$cert")" -file "$cert" > /dev/null; \
        done \
        && export JAVA_TOOL_OPTIONS="-Djavax.net.ssl.trustStore=/tmp/trust/cacerts -Djavax.net.ssl.trustStorePassword=changeit"; \
    fi \
    && cd /tmp \
    && python -c "import pyspark; from pyspark.sql import SparkSession; \
package = 'org.apache.spark:spark-sql-kafka-0-10_2.13:' + pyspark.__version__; \
SparkSession.builder.master('local[1]').config('spark.jars.packages', package).getOrCreate().stop()" \
    && ls /opt/marketpulse-spark/ivy/jars/*spark-sql-kafka* > /dev/null \
    && rm -rf /tmp/trust /tmp/spark-* /tmp/blockmgr-* /tmp/hsperfdata_* /tmp/spark-warehouse \
    && chown -R marketpulse:marketpulse /opt/marketpulse-spark /checkpoint

# The Spark image: the Spark base, then the same MarketPulse wheel as the application
# stage and the kernels it compiled (numba keys its cache by the source's content and
# path, the same here), then a check that MarketPulse's own session (the job's
# marketpulse.spark.job.spark_session) finds the connector with no network.
FROM spark-base AS spark
COPY --from=build /wheels /tmp/wheels
COPY --from=app --chown=marketpulse:marketpulse /opt/marketpulse-numba-cache /opt/marketpulse-numba-cache
RUN pip install --no-deps --no-cache-dir --disable-pip-version-check /tmp/wheels/*.whl \
    && pip uninstall --yes pip \
    && rm -rf /tmp/wheels \
    && cd /tmp \
    && python -c "from marketpulse.spark import SparkOptions; \
from marketpulse.spark.job import spark_session; \
s = spark_session(SparkOptions(checkpoint='/tmp/none')); \
s.readStream.format('kafka').option('kafka.bootstrap.servers', '127.0.0.1:9').option('subscribe', 'ticks').load(); \
s.stop()" \
    && rm -rf /tmp/spark-* /tmp/blockmgr-* /tmp/hsperfdata_* /tmp/spark-warehouse \
    && chown -R marketpulse:marketpulse /opt/marketpulse-spark
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8050
USER marketpulse
ENTRYPOINT ["marketpulse"]
CMD ["--help"]

# The default image: the application as its own non-root user.
FROM app AS runtime
USER marketpulse
ENTRYPOINT ["marketpulse"]
CMD ["--help"]
