"""Typed settings, read from a TOML file and ``MARKETPULSE_*`` environment variables.

Precedence, lowest first: defaults, the TOML file (``--config``, else
``./marketpulse.toml`` when present), environment variables, command-line
options. Only entry points (the CLI, services) call :func:`load_settings`.

A variable is named after its key: ``lake`` → ``MARKETPULSE_LAKE``,
``[kafka] bootstrap`` → ``MARKETPULSE_KAFKA_BOOTSTRAP``.

Every default the lower packages share (the processor's, the process
service's timings, Kafka's compression and topic layout) is defined here once,
as a module constant; ``stream``, ``services`` and ``bus`` take their own
defaults from these constants, so a value here is the value everywhere.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from marketpulse.exceptions import ConfigError
from marketpulse.redaction import redact_url

__all__ = [
    "BAR_INTERVALS",
    "COMMIT_INTERVAL",
    "COMPRESSION",
    "DEFAULT_CONFIG",
    "GUARANTEE",
    "GUARANTEES",
    "IDLE_TIMEOUT",
    "KAFKA_COMPRESSIONS",
    "LATENESS",
    "MAX_BATCH",
    "MAX_SYMBOLS",
    "MAX_TIME_JUMP",
    "METRICS_HOST",
    "OUTPUT_GRACE",
    "QUIET_COMMIT_INTERVAL",
    "SESSION_TZ",
    "STEP_TIMEOUT",
    "STORAGE_RETRY",
    "TOPIC_PARTITIONS",
    "TOPIC_REPLICATION",
    "TOPIC_RETENTION_HOURS",
    "TRANSACTION_TIMEOUT",
    "KafkaSettings",
    "ProcessSettings",
    "S3Settings",
    "Secret",
    "Settings",
    "SimulatorSettings",
    "check_setting",
    "load_settings",
    "masked",
    "read_env_file",
    "redact_url",
    "vendor_credentials",
]

DEFAULT_CONFIG = Path("marketpulse.toml")
DEFAULT_ENV_FILE = Path(".env")
_PREFIX = "MARKETPULSE_"

# The processor (``stream.ProcessorSettings``).
#: Bar intervals built from trades.
BAR_INTERVALS: tuple[str, ...] = ("1s", "1m", "5m")
#: Allowed lateness of trades, seconds.
LATENESS = 0.5
#: Seconds without input before a partition's bars close by processing time
#: (in the settings, 0 means never; the processor takes ``None`` for it).
IDLE_TIMEOUT = 2.0
#: Exchange time zone of the session VWAP.
SESSION_TZ = "America/New_York"
#: Seconds a trade may be ahead of its partition's newest event time (0: no limit).
MAX_TIME_JUMP = 14 * 86_400.0
#: Most symbols one input partition holds: each costs about 26 kB of memory for
#: the rest of the run (windows, indicators, alerts, quotes), so a file or topic
#: of endless new names would otherwise size the process; rows of symbols
#: beyond go to the DLQ with reason ``max_symbols``.
MAX_SYMBOLS = 50_000

# The process service's [process] settings (ProcessSettings below, which
# runtime.process_options.ProcessOptions nests).
#: Processing guarantees of the process service on Kafka.
GUARANTEES = ("exactly-once", "at-least-once")
#: The default: outputs, state and offsets commit together in Kafka transactions.
GUARANTEE = "exactly-once"
# Seconds a transaction holding outputs may stay open while input keeps coming
# faster than it is handled (catching up). Otherwise outputs do not wait for it:
# they are committed as soon as the input at hand is handled (read_committed
# readers see them then).
COMMIT_INTERVAL = 0.1
# Seconds a transaction holding no outputs (only consumed offsets and changed
# state) may stay open while input keeps arriving; its work is otherwise committed
# with the next outputs, or when input pauses. Each commit makes the next
# transaction wait until the broker has written its markers (librdkafka retries
# the refused AddPartitionsToTxn after a fixed 20 ms) and costs the broker a marker
# per partition, so committing offsets alone often delays the outputs.
QUIET_COMMIT_INTERVAL = 2.5
# Seconds outputs may wait, from the first output of a transaction, for more input
# before they are committed: the partitions of one produced request reach the
# consumer one by one, and the outputs they close then share one commit. Input
# that keeps arriving within it is handled; a poll that finds none commits at once,
# and so does the first poll after every partition with recent input has closed the
# bars the transaction holds. 20 ms: a producer's linger spreads the partitions of
# one moment over several fetches, several milliseconds apart, and a partition that
# misses the commit waits a whole commit longer (10 to 30 ms).
OUTPUT_GRACE = 0.02
# Records consumed per poll at most.
MAX_BATCH = 20_000
# Seconds after which the broker aborts a transaction of a crashed instance (when
# another instance takes over its partitions).
TRANSACTION_TIMEOUT = 10.0
# Seconds a transaction step (offsets, commit) may take before the producer counts
# as stuck and is replaced, its work redone.
STEP_TIMEOUT = 15.0
#: Whether the trades the processor kept go to the ``trades`` topic (and table).
STORE_TRADES = True

# Storage.
#: Seconds a database sink (PostgreSQL, InfluxDB) retries a write whose server went
#: away mid-run (restarted, unreachable) before the command ends saying what it did not store.
STORAGE_RETRY = 60.0

# The services' own HTTP endpoint (/metrics, /healthz, /readyz; ``runtime.endpoint``).
#: Address the endpoint listens on: every interface, for Prometheus and probes
#: in other containers (it serves figures only, never data or secrets).
METRICS_HOST = "0.0.0.0"

# Kafka.
#: Producer compression codecs librdkafka offers.
KAFKA_COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "none")
#: The producers' codec.
COMPRESSION = "lz4"
#: Partitions, replication factor and retention (-1: for ever) of topics MarketPulse creates.
TOPIC_PARTITIONS = 6
TOPIC_REPLICATION = 1
TOPIC_RETENTION_HOURS = 168.0


class Secret:
    """A string that never shows itself when printed or logged."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value, for the one place that must use it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """The simulated market."""

    symbols: int = field(default=50, metadata={"min": 1})
    rate: float = field(default=5000.0, metadata={"above": 0})
    seed: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Connection to a Kafka cluster, and how topics are made and written.

    ``partitions``, ``replication`` and ``retention_hours`` (``-1``: keep
    forever) apply to topics ``marketpulse topics create`` makes;
    ``compression`` is the producers' codec.
    """

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "marketpulse."
    client_id: str = "marketpulse"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = field(default_factory=lambda: Secret(""))
    ssl_ca: str = ""
    ssl_certificate: str = ""
    ssl_key: str = ""
    partitions: int = field(default=TOPIC_PARTITIONS, metadata={"min": 1})
    replication: int = field(default=TOPIC_REPLICATION, metadata={"min": 1})
    retention_hours: float = TOPIC_RETENTION_HOURS
    compression: str = field(default=COMPRESSION, metadata={"choices": KAFKA_COMPRESSIONS})


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    """The ``process`` service's settings (``runtime.process_options.ProcessOptions.settings``).

    ``commit_interval``: seconds a transaction with outputs may stay open while
    catching up on a backlog; ``quiet_commit_interval``: the same for a
    transaction holding only offsets and state; ``output_grace``: seconds outputs
    wait for more input before they are committed; ``max_batch``: records
    consumed per poll at most; ``transaction_timeout``: seconds after which the
    broker aborts a crashed instance's transaction; ``step_timeout``: seconds a
    transaction step may take before the producer is replaced; ``store_trades``:
    store the trades the processor kept (as ``run``/``replay`` store them in the
    lake): on Kafka, references to their offsets on ``ticks`` go to the
    ``trades`` topic in the same transaction as the bars, and the sinks read the
    trades there; off, the topic is neither required nor written;
    ``guarantee``: ``exactly-once`` (outputs in the transactions) or
    ``at-least-once`` (outputs sent at once, outside them; see
    ``runtime.process``).
    """

    commit_interval: float = field(default=COMMIT_INTERVAL, metadata={"above": 0})
    quiet_commit_interval: float = field(default=QUIET_COMMIT_INTERVAL, metadata={"min": 0})
    output_grace: float = field(default=OUTPUT_GRACE, metadata={"min": 0})
    max_batch: int = field(default=MAX_BATCH, metadata={"min": 1})
    transaction_timeout: float = field(default=TRANSACTION_TIMEOUT, metadata={"min": 1})
    step_timeout: float = field(default=STEP_TIMEOUT, metadata={"above": 0})
    store_trades: bool = STORE_TRADES
    guarantee: str = field(default=GUARANTEE, metadata={"choices": GUARANTEES})


@dataclass(frozen=True, slots=True)
class S3Settings:
    """An S3-compatible object store, for a lake at ``s3://bucket/prefix``.

    Empty values fall back to the AWS SDK's own lookup (``AWS_*`` variables,
    ``~/.aws``); ``endpoint`` names a non-AWS store (``http://127.0.0.1:9000``).
    """

    endpoint: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: Secret = field(default_factory=lambda: Secret(""))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything MarketPulse can be configured with.

    ``dataset`` names what a run's rows are filed under; empty: the source's
    own name (``simulator``, the replayed file's name, the vendor; ``live``
    for ``process``), see :mod:`marketpulse.feeds.dataset`. ``idle_timeout``
    0: a partition's bars never close by processing time (by input alone).
    ``max_symbols``: most symbols one input partition holds (:data:`MAX_SYMBOLS`);
    rows of further symbols go to the DLQ (reason ``max_symbols``).
    ``plugins``: ``module:function`` of each plugin (:mod:`marketpulse.plugins`);
    ``MARKETPULSE_PLUGINS`` separates them with commas. ``metrics_port``: the
    TCP port on which ``produce``, ``process`` and the sinks serve ``/metrics``,
    ``/healthz`` and ``/readyz`` (0: none); ``metrics_host``: the address it
    listens on. ``indicators``: the declared indicators (``ema(50)``,
    ``bb=bbands(20, 2.5)``; :mod:`marketpulse.indicators`); empty: the default
    thirteen columns. ``forecast_models``: the forecasting models the processor
    runs on each closed bar (``online-linear``, ``online-tree``, ``persistence``,
    ``always-up``, ``drift``, ``random``; :mod:`marketpulse.forecast`), their
    predictions stored in the ``predictions`` table; empty: none.
    ``forecast_horizons``: bars ahead they predict. ``storage_retry``: seconds the
    database sinks retry a write whose server went away mid-run before the command
    stops (exit code 1).
    """

    lake: str = "./data/lake"
    dataset: str = ""
    rules: str = ""
    alerts_file: str = "./data/alerts.jsonl"
    intervals: tuple[str, ...] = BAR_INTERVALS
    lateness: float = field(default=LATENESS, metadata={"min": 0})
    idle_timeout: float = field(default=IDLE_TIMEOUT, metadata={"min": 0})
    session_tz: str = SESSION_TZ
    session_calendar: str = ""
    fill_gaps: bool = False
    conditions: str = "none"
    max_time_jump: float = field(default=MAX_TIME_JUMP, metadata={"min": 0})
    max_symbols: int = field(default=MAX_SYMBOLS, metadata={"min": 1})
    partitions: int = field(default=1, metadata={"min": 1})
    log_level: str = "INFO"
    metrics_port: int = field(default=0, metadata={"min": 0, "max": 65535})
    metrics_host: str = METRICS_HOST
    plugins: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    forecast_models: tuple[str, ...] = ()
    forecast_horizons: tuple[int, ...] = (1,)
    postgres_url: Secret = field(default_factory=lambda: Secret(""))
    influx_url: Secret = field(default_factory=lambda: Secret(""))
    storage_retry: float = field(default=STORAGE_RETRY, metadata={"min": 0})
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    process: ProcessSettings = field(default_factory=ProcessSettings)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes``; ``None`` values are ignored (unset options)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        nested = {}
        for name in _SECTIONS:
            sub = {k.split(".", 1)[1]: v for k, v in changes.items() if k.startswith(name + ".")}
            if sub:
                nested[name] = dataclasses.replace(getattr(self, name), **sub)
        flat = {k: v for k, v in changes.items() if "." not in k}
        return dataclasses.replace(self, **flat, **nested)


_SECTIONS: dict[str, type] = {
    "simulator": SimulatorSettings,
    "kafka": KafkaSettings,
    "s3": S3Settings,
    "process": ProcessSettings,
}


def _convert(value: Any, kind: Any, where: str, limits: Mapping[str, Any] | None = None) -> Any:
    origin = getattr(kind, "__origin__", None)
    try:
        if kind is Secret:
            return value if isinstance(value, Secret) else Secret(str(value))
        if origin is tuple:
            if isinstance(value, str):
                # commas inside parentheses belong to an item: "ema(50), bbands(20, 2.5)"
                value = [v.strip() for v in re.split(r",(?![^()]*\))", value) if v.strip()]
            if not isinstance(value, list | tuple):
                raise TypeError
            if kind.__args__[0] is int:  # whole numbers: "1,5" or [1, 5]
                if any(isinstance(v, bool | float) for v in value):
                    raise TypeError
                return tuple(int(v) for v in value)
            return tuple(str(v) for v in value)
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind in (int, float):
            if isinstance(value, bool):
                raise TypeError
            return kind(value)
        if kind is str:
            if not isinstance(value, str | int | float):
                raise TypeError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: expected {_expected(kind, limits or {})}, got {value!r}"
        ) from None
    return value


#: What a value of each setting type is, in words.
_KINDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false",
          Secret: "text"}  # fmt: skip


def _expected(kind: Any, limits: Mapping[str, Any]) -> str:
    """What a setting of type ``kind`` within ``limits`` takes: ``a whole number at least 1``."""
    if getattr(kind, "__origin__", None) is tuple:
        if kind.__args__[0] is int:
            return "whole numbers, as a list or comma-separated text"
        return "a list, or comma-separated text"
    words = _KINDS.get(kind, getattr(kind, "__name__", str(kind)))
    if "choices" in limits:
        return f"one of {', '.join(limits['choices'])}"
    named = (("min", "at least"), ("above", "above"), ("max", "at most"))
    bounds = [f"{word} {limits[key]}" for key, word in named if key in limits]
    return " ".join([words, " and ".join(bounds)]) if bounds else words


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {sorted(unknown)[0]!r} (known: {', '.join(sorted(known))})"
        )
    values = {}
    limits = {f.name: f.metadata for f in fields(cls)}
    for name, value in data.items():
        kind = hints[name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{name}] must be a table")
            values[name] = _build(kind, value, f"{where} [{name}]")
        else:
            values[name] = _convert(value, kind, f"{where}: {name}", limits[name])
            _check_limits(values[name], limits[name], f"{where}: {name}")
    return cls(**values)


def _check_limits(value: Any, limits: Mapping[str, Any], where: str) -> None:
    """Refuse a number outside its field's ``min`` / ``max`` / ``above`` bound (or not finite).

    A field with ``choices`` refuses any other value.
    """
    if "choices" in limits and value not in limits["choices"]:
        raise ConfigError(f"{where}: expected one of {', '.join(limits['choices'])}, got {value!r}")
    if "min" in limits and not (math.isfinite(value) and value >= limits["min"]):
        raise ConfigError(f"{where}: expected a number at least {limits['min']}, got {value!r}")
    if "max" in limits and not value <= limits["max"]:
        raise ConfigError(f"{where}: expected a number at most {limits['max']}, got {value!r}")
    if "above" in limits and not (math.isfinite(value) and value > limits["above"]):
        raise ConfigError(f"{where}: expected a number above {limits['above']}, got {value!r}")


def check_setting(key: str, value: Any, where: str) -> Any:
    """Return ``value`` converted to the type of setting ``key``, within its bounds.

    Args:
        key: the setting, dotted for a section's (``lake``, ``simulator.rate``).
        value: the value given.
        where: what gave it, leading the message of an error (``Pipeline: rate``).

    Raises:
        ConfigError: the value has the wrong type or is out of bounds (one line).
    """
    section, _, name = key.rpartition(".")
    cls = _SECTIONS[section] if section else Settings
    limits = {f.name: f.metadata for f in fields(cls)}
    converted = _convert(value, get_type_hints(cls)[name], where, limits[name])
    _check_limits(converted, limits[name], where)
    return converted


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in _SECTIONS:
            for sub in fields(_SECTIONS[f.name]):
                name = f"{_PREFIX}{f.name}_{sub.name}".upper()
                if name in environ:
                    out.setdefault(f.name, {})[sub.name] = environ[name]
        else:
            name = f"{_PREFIX}{f.name}".upper()
            if name in environ:
                out[f.name] = environ[name]
    return out


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from the TOML file and the environment.

    Args:
        path: the config file; ``None`` reads ``./marketpulse.toml`` when it exists.
        environ: the environment (default ``os.environ``).

    Raises:
        ConfigError: the file is missing (when named), malformed, or a value is invalid.
    """
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    where = "defaults"
    file = Path(path) if path else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    if file is not None:
        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from None
        where = str(file)
    settings = _build(Settings, data, where)
    env = _from_env(environ)
    if env:
        settings = _build(Settings, _merge(_as_dict(settings), env), "environment")
    return settings


def _as_dict(settings: Any) -> dict[str, Any]:
    return {
        f.name: _as_dict(v) if dataclasses.is_dataclass(v := getattr(settings, f.name)) else v
        for f in fields(settings)
    }


def masked(settings: Settings) -> dict[str, Any]:
    """Return the settings as plain data with every secret masked."""

    def plain(value: Any, name: str = "") -> Any:
        if isinstance(value, Secret):
            # connection strings keep everything but their secrets: where they point matters
            text = value.reveal()
            return redact_url(text) if name.endswith("_url") else ("********" if text else "")
        if isinstance(value, dict):
            return {k: plain(v, k) for k, v in value.items()}
        if isinstance(value, tuple):
            return list(value)
        return value

    return plain(_as_dict(settings))


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``NAME=value`` lines of a ``.env`` file (``export``, quotes and ``#`` comments allowed).

    A missing file reads as empty.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[name.strip()] = value
    return values


def vendor_credentials(
    vendor: str,
    needs_secret: bool = False,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = DEFAULT_ENV_FILE,
) -> tuple[Secret, Secret]:
    """Return a vendor's API key (and secret) from the environment or a ``.env`` file.

    The variables are ``MARKETPULSE_<VENDOR>_KEY`` and, for vendors that need
    one, ``MARKETPULSE_<VENDOR>_SECRET``; the environment wins over the file.

    Raises:
        ConfigError: a variable is missing or empty (the message names it).
    """
    environ = os.environ if environ is None else environ
    from_file = read_env_file(env_file) if env_file is not None else {}
    names = [f"{_PREFIX}{vendor.upper()}_KEY"]
    if needs_secret:
        names.append(f"{_PREFIX}{vendor.upper()}_SECRET")
    values = []
    for name in names:
        value = environ.get(name) or from_file.get(name, "")
        if not value:
            where = f" or {env_file}" if env_file is not None else ""
            raise ConfigError(f"{vendor}: set {name} in the environment{where}")
        values.append(Secret(value))
    return values[0], values[1] if needs_secret else Secret("")
