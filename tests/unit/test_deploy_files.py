"""The container deployment files (compose.yaml, deploy/, .env.example), checked without containers.

Every ``marketpulse`` command the stack runs is a real command whose options
parse; every service has a health check or is a one-shot; every
``MARKETPULSE_*`` variable is one the settings know; Prometheus scrapes every
service's ``/metrics`` (produce, process and the sinks on their metrics port,
whose ``/readyz`` their health checks ask); Grafana's provisioning parses and
its PromQL names only metrics MarketPulse exposes. The dashboards' SQL is run
against PostgreSQL in tests/integration/test_deploy_grafana_sql.py;
``docker-compose config`` runs in tests/integration/test_deploy_compose_config.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer.main
import yaml
from prometheus_client.parser import text_string_to_metric_families

from marketpulse.bus.base import TopicPartition
from marketpulse.bus.topics import Topics
from marketpulse.cli.app import app
from marketpulse.cli.feed_options import FeedName
from marketpulse.config import Settings, load_settings, read_env_file
from marketpulse.runtime import Metrics
from marketpulse.runtime.endpoint import render as render_service
from marketpulse.runtime.process import ProcessStats
from marketpulse.runtime.service_figures import ProcessFigures, ProduceFigures, SinkFigures
from marketpulse.runtime.sink import SinkServiceStats
from marketpulse.serve.prometheus import render
from marketpulse.serve.push import Clients

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
IMAGE = "marketpulse:local"
ONE_SHOT_RESTARTS = {"no", "on-failure"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _interpolate(value: str) -> str:
    """Resolve ``${VAR:-default}`` to the default, ``${VAR:?..}`` to a value, ``$$`` to ``$``."""

    def one(match: re.Match) -> str:
        text = match.group(0)
        return text.split(":-", 1)[1][:-1] if ":-" in text else "x"

    return _VAR.sub(one, value).replace("$$", "$")


def marketpulse_args(service: dict) -> list[str] | None:
    """Return the arguments a service gives ``marketpulse`` (None: not a MarketPulse service)."""
    if service.get("image") != IMAGE:
        return None
    command = [_interpolate(str(a)) for a in service.get("command") or []]
    entrypoint = service.get("entrypoint")
    if entrypoint is None:
        return command
    assert entrypoint[:2] == ["sh", "-c"], entrypoint
    words = shlex.split(_interpolate(entrypoint[2]))
    assert words[:2] == ["exec", "marketpulse"], words
    words = [w.replace("$HOSTNAME", "container-1") for w in words[2:]]
    return [w for w in words if w != "$@"] + command


def resolve(args: list[str]) -> tuple[object, list[str], list[str]]:
    """Return the click command ``args`` name, its path and its own arguments."""
    command = typer.main.get_command(app)
    path: list[str] = []
    while getattr(command, "commands", None) is not None:
        assert args and args[0] in command.commands, f"no command {' '.join([*path, *args[:1]])}"
        command = command.commands[args[0]]
        path.append(args[0])
        args = args[1:]
    return command, path, args


def check_invocation(args: list[str]) -> list[str]:
    """Parse ``args`` as the CLI would (types, choices, ranges); return the command's path."""
    command, path, rest = resolve(args)
    command.make_context(" ".join(["marketpulse", *path]), list(rest), resilient_parsing=False)
    return path


def known_variables() -> set[str]:
    """Every ``MARKETPULSE_*`` name the settings, the CLI and the vendor feeds read."""
    names = set()
    for f in dataclasses.fields(Settings):
        if dataclasses.is_dataclass(f.default_factory if callable(f.default_factory) else None):
            section = f.default_factory
            names |= {f"MARKETPULSE_{f.name}_{s.name}".upper() for s in dataclasses.fields(section)}
        else:
            names.add(f"MARKETPULSE_{f.name}".upper())

    def walk(command) -> None:
        for param in command.params:
            if isinstance(param.envvar, str):
                names.add(param.envvar)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    for vendor in FeedName:  # config.vendor_credentials: MARKETPULSE_<VENDOR>_KEY and _SECRET
        names |= {f"MARKETPULSE_{vendor.upper()}_KEY", f"MARKETPULSE_{vendor.upper()}_SECRET"}
    return names


def unknown_variables(text: str) -> set[str]:
    """The ``MARKETPULSE_*`` names in ``text`` that nothing in MarketPulse reads."""
    return set(re.findall(r"MARKETPULSE_[A-Z0-9_]+", text)) - known_variables()


#: The metrics port compose.yaml and the Kubernetes ConfigMap give the services.
METRICS_PORT = "9100"
#: The commands that serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``--metrics-port``.
METRICS_COMMANDS = {("produce",), ("process",), ("sink", "lake"), ("sink", "postgres")}


def _consumer_service(stats: object, lag: dict) -> SimpleNamespace:
    """A consumer service that joined its group, with figures to show."""
    return SimpleNamespace(
        stats=stats, lag=lag, stop=threading.Event(), joined=True, beat=time.monotonic(),
        topics=Topics("t."), options=SimpleNamespace(group="g"), sink=SimpleNamespace(name="lake"),
    )  # fmt: skip


def exposed_metric_names() -> set[str]:
    """The sample names of every MarketPulse ``/metrics``, from the real renderers.

    The dashboard's, and the services' (each with a partition's lag and a table's rows).
    """
    texts = [render(Metrics(), Clients()).decode()]
    process = ProcessFigures()
    process.attach(_consumer_service(ProcessStats(), {0: 1}))
    sink = SinkFigures(_consumer_service(SinkServiceStats(rows={"bars": 1}),
                                         {TopicPartition("t.bars", 0): 1}))  # fmt: skip
    texts.append(render_service([ProduceFigures(), process, sink]).decode())
    return {
        sample.name
        for text in texts
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (``marketpulse_*`` and ``up``)."""
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", without_labels))
    return {w for w in words if w.startswith("marketpulse_") or w == "up"}


def dashboards() -> dict[str, dict]:
    return {
        p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


# compose.yaml


def test_compose_has_the_stack_of_services():
    services = _compose()["services"]
    assert set(services) == {
        "kafka", "topics", "produce", "process", "sink-lake", "sink-postgres",
        "dashboard", "postgres", "prometheus", "grafana", "kafka-ui",
        "spark", "influxdb", "pgadmin",  # the spark profile: test_deploy_spark_profile.py
    }  # fmt: skip
    assert services["kafka"]["image"].startswith("docker.io/apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("docker.io/library/postgres:16")
    assert "timescale/timescaledb" in COMPOSE.read_text()  # the documented option
    # Fully qualified: podman has no default registry for short names (the images
    # built from the Dockerfile, marketpulse:local and marketpulse-spark:local, aside).
    for name, service in services.items():
        if "build" not in service:
            assert service["image"].split("/")[0] in {"docker.io", "ghcr.io"}, name
    # --scale process=3 needs containers compose may name itself.
    assert "container_name" not in services["process"]
    assert "ports" not in services["process"]


def test_every_marketpulse_command_is_real_and_its_options_parse():
    commands = {}
    for name, service in _compose()["services"].items():
        args = marketpulse_args(service)
        if args is not None:
            commands[name] = check_invocation(args)
    assert commands == {
        "topics": ["topics", "create"],
        "produce": ["produce"],
        "process": ["process"],
        "sink-lake": ["sink", "lake"],
        "sink-postgres": ["sink", "postgres"],
        "dashboard": ["dashboard"],
    }
    health = {
        tuple(check_invocation(test[2:]))
        for s in _compose()["services"].values()
        if (test := (s.get("healthcheck") or {}).get("test", []))[1:2] == ["marketpulse"]
    }
    assert health == set()  # every long-running service answers over HTTP
    assert marketpulse_args(_compose()["services"]["process"]) == [
        "process", "--instance-id", "container-1",
    ]  # fmt: skip


def _readyz_url(check: list[str], env: dict[str, str]) -> str:
    """The URL a compose health check of ``python -c`` opens, with the service's variables."""
    assert check[:3] == ["CMD", "python", "-c"], check
    code = check[3]
    url = code.split("urlopen(", 1)[1].split(" % ", 1)
    assert "os.environ['MARKETPULSE_METRICS_PORT']" in url[1], code
    return url[0].strip("'") % env["MARKETPULSE_METRICS_PORT"]


def test_services_health_checks_ask_their_readyz_on_the_metrics_port():
    checked = set()
    for name, service in _compose()["services"].items():
        args = marketpulse_args(service)
        if args is None or tuple(check_invocation(args)) not in METRICS_COMMANDS:
            continue
        env = {k: _interpolate(str(v)) for k, v in service["environment"].items()}
        assert env["MARKETPULSE_METRICS_PORT"] == METRICS_PORT, name
        assert load_settings(environ=env).metrics_port == int(METRICS_PORT), name
        check = service["healthcheck"]
        assert _readyz_url(check["test"], env) == f"http://127.0.0.1:{METRICS_PORT}/readyz", name
        assert "ports" not in service, name  # scraped inside the stack's network only
        checked.add(name)
    assert checked == {"produce", "process", "sink-lake", "sink-postgres"}
    # the health check runs in a test against a real process: test_kafka_metrics_endpoint.py


@pytest.mark.parametrize(
    "path",
    [["topics", "create"], ["sink", "postgres"], ["dashboard"], ["process"], ["produce"]],
)
def test_the_commands_help_lists_the_options_compose_gives(path):
    services = {tuple(check_invocation(a)): a for s in _compose()["services"].values()
                if (a := marketpulse_args(s)) is not None}  # fmt: skip
    args = services[tuple(path)]
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", *path, "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for option in (a for a in args[len(path) :] if a.startswith("--")):
        assert option in result.stdout, f"{' '.join(path)} --help does not list {option}"


@pytest.mark.parametrize(
    "args",
    [
        ["topics", "creat"],
        ["process", "--no-such-option"],
        ["dashboard", "--port", "70000"],
        ["produce", "--feed", "nasdaq"],
        ["sink", "lake", "--max-age", "soon"],
    ],
)
def test_a_wrong_command_or_option_is_caught(args):
    # typer's own copy of click raises its UsageError (BadParameter, NoSuchOption).
    with pytest.raises(Exception) as caught:
        check_invocation(args)
    assert isinstance(caught.value, AssertionError) or any(
        cls.__name__ == "UsageError" for cls in type(caught.value).__mro__
    ), repr(caught.value)


def test_every_service_has_a_healthcheck_or_is_one_shot_and_a_restart_policy():
    services = _compose()["services"]
    waited_on = {
        dep
        for s in services.values()
        for dep, cond in (s.get("depends_on") or {}).items()
        if cond["condition"] == "service_completed_successfully"
    }
    for name, service in services.items():
        assert service.get("restart") in {"unless-stopped", "always", *ONE_SHOT_RESTARTS}, name
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check:
            assert service["restart"] in ONE_SHOT_RESTARTS and name in waited_on, name
        else:
            assert check["test"][0] == "CMD" and len(check["test"]) > 1, name
    assert waited_on == {"topics"}


def test_data_lives_in_volumes():
    compose = _compose()
    services = compose["services"]
    mounts = {n: [v.split(":")[:2] for v in s.get("volumes", [])] for n, s in services.items()}
    assert ["lake", "/data"] in mounts["sink-lake"]
    assert ["lake", "/data"] in mounts["dashboard"]
    assert ["postgres-data", "/var/lib/postgresql/data"] in mounts["postgres"]
    assert ["kafka-data", services["kafka"]["environment"]["KAFKA_LOG_DIRS"]] in mounts["kafka"]
    named = {m[0] for ms in mounts.values() for m in ms if not m[0].startswith(".")}
    assert named == set(compose["volumes"])
    for m in (m for ms in mounts.values() for m in ms if m[0].startswith(".")):
        assert (ROOT / m[0]).exists(), m


# MARKETPULSE_* variables


def test_every_marketpulse_variable_is_one_marketpulse_reads():
    for path in (COMPOSE, ENV_EXAMPLE):
        assert unknown_variables(path.read_text()) == set(), path
    assert "MARKETPULSE_SIMULATOR_RATE" in ENV_EXAMPLE.read_text()


def test_a_misspelt_variable_is_caught():
    assert unknown_variables("MARKETPULSE_SIMULATOR_RATS: 5") == {"MARKETPULSE_SIMULATOR_RATS"}
    assert unknown_variables("MARKETPULSE_KAFKA_BOOTSTRAP: kafka:9092") == set()


def test_the_env_example_and_each_services_environment_load_as_settings():
    example = read_env_file(ENV_EXAMPLE)
    settings = load_settings(environ=example)
    assert settings.simulator.rate == float(example["MARKETPULSE_SIMULATOR_RATE"])
    assert settings.kafka.partitions == int(example["MARKETPULSE_KAFKA_PARTITIONS"])
    for name, service in _compose()["services"].items():
        if service.get("image") == IMAGE:
            env = {k: _interpolate(str(v)) for k, v in service["environment"].items()}
            settings = load_settings(environ=env)
            assert settings.kafka.bootstrap == "kafka:9092", name
            assert settings.lake == "/data/lake", name


# Prometheus


def test_prometheus_scrapes_the_metrics_port_of_every_service_that_serves_it():
    config = yaml.safe_load(PROMETHEUS.read_text())
    services = _compose()["services"]
    serving = {}
    for name, service in services.items():
        args = marketpulse_args(service)
        if args is None:
            continue
        if check_invocation(args) == ["dashboard"]:
            serving[name] = args[args.index("--port") + 1]
        elif tuple(check_invocation(args)) in METRICS_COMMANDS:
            serving[name] = _interpolate(str(service["environment"]["MARKETPULSE_METRICS_PORT"]))
    targets = set()
    for job in config["scrape_configs"]:
        if job.get("metrics_path", "/metrics") != "/metrics" or job["job_name"] == "prometheus":
            continue
        assert job["job_name"].startswith("marketpulse-"), job  # the Grafana panels' job=~
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
        for dns in job.get("dns_sd_configs", []):  # every replica of a scaled service
            assert dns["type"] == "A"
            targets.update(f"{n}:{dns['port']}" for n in dns["names"])
    assert targets == {f"{name}:{port}" for name, port in serving.items()}
    assert targets == {
        "dashboard:8050", "produce:9100", "process:9100", "sink-lake:9100", "sink-postgres:9100",
    }  # fmt: skip
    (process,) = [j for j in config["scrape_configs"] if j["job_name"] == "marketpulse-process"]
    assert "dns_sd_configs" in process  # --scale process=3: each replica is scraped
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "marketpulse-dashboard")
    token_file = job["authorization"]["credentials_file"]
    assert token_file in " ".join(services["prometheus"]["command"])
    assert "/prometheus" in [v.split(":")[1] for v in services["prometheus"]["volumes"]]


# Grafana


def test_grafana_data_sources_point_at_the_stack():
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "marketpulse.yaml").read_text()
    )
    by_type = {d["type"]: d for d in config["datasources"]}
    assert set(by_type) == {"grafana-postgresql-datasource", "prometheus"}
    postgres = _compose()["services"]["postgres"]["environment"]
    pg = by_type["grafana-postgresql-datasource"]
    assert pg["url"] == "postgres:5432"
    assert pg["user"] == postgres["POSTGRES_USER"]
    assert pg["jsonData"]["database"] == postgres["POSTGRES_DB"]
    assert pg["secureJsonData"]["password"] == "$POSTGRES_PASSWORD"
    assert "POSTGRES_PASSWORD" in _compose()["services"]["grafana"]["environment"]
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "marketpulse.yaml").read_text()
    )
    mounted = dict(v.split(":")[:2] for v in _compose()["services"]["grafana"]["volumes"])
    assert mounted["./deploy/grafana/dashboards"] == providers["providers"][0]["options"]["path"]
    uids = {d["uid"] for d in config["datasources"]}
    for name, board in dashboards().items():
        for panel in board["panels"]:
            if "datasource" in panel:
                assert panel["datasource"]["uid"] in uids, (name, panel["title"])


def test_dashboards_show_candles_with_indicators_and_pipeline_health():
    boards = dashboards()
    assert set(boards) == {"marketpulse-candles.json", "marketpulse-pipeline-health.json"}
    candles = boards["marketpulse-candles.json"]
    assert {p["type"] for p in candles["panels"]} >= {"candlestick", "timeseries"}
    assert {v["name"] for v in candles["templating"]["list"]} == {"dataset", "symbol", "timeframe"}
    assert len({b["uid"] for b in boards.values()}) == len(boards)


def test_every_promql_metric_is_one_marketpulse_exposes():
    exposed = exposed_metric_names()
    used = set()
    for board in dashboards().values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if "expr" in target:
                    used |= promql_metric_names(target["expr"])
    assert used - {"up"} <= exposed, used - exposed
    assert {"marketpulse_ticks_per_second", "marketpulse_dlq_total"} <= used
    assert "marketpulse_tick_to_indicator_seconds_bucket" in used
    # the pipeline's health: lag, rows stored, readiness of each service
    assert {"marketpulse_consumer_lag", "marketpulse_sink_rows_total", "marketpulse_ready"} <= used


def test_the_pipeline_health_dashboard_has_a_lag_panel_per_job_and_topic():
    board = dashboards()["marketpulse-pipeline-health.json"]
    (lag,) = [p for p in board["panels"] if "lag" in p["title"].lower()]
    assert lag["type"] == "timeseries"
    exprs = [t["expr"] for t in lag["targets"]]
    assert any("by (job, topic)" in e and "marketpulse_consumer_lag" in e for e in exprs), exprs
    # no panel says lag is not exported any more
    assert not [p for p in board["panels"] if p["type"] == "text"]


def test_a_promql_metric_marketpulse_does_not_expose_is_caught():
    names = promql_metric_names('rate(marketpulse_ticks[1m]) + marketpulse_lag{job="x"}')
    assert names - exposed_metric_names() == {"marketpulse_ticks", "marketpulse_lag"}


# Dockerfile


def test_the_dockerfile_builds_a_small_non_root_image_with_production_dependencies():
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    for arg in ("PYTHON_BUILD_IMAGE", "PYTHON_RUNTIME_IMAGE"):
        assert f"ARG {arg}=docker.io/library/python:3.11-slim-bookworm" in lines
        assert any(line.startswith(f"FROM ${{{arg}}} AS ") for line in lines), arg
    code = "\n".join(line for line in lines if not line.startswith("#"))
    assert "pip install ." in code and "[dev]" not in code
    assert lines[-2:] == ['ENTRYPOINT ["marketpulse"]', 'CMD ["--help"]']
    user = next(line for line in lines if line.startswith("USER "))
    assert user.split()[1] not in {"root", "0"}
    assert lines.index(user) > max(i for i, line in enumerate(lines) if line.startswith("RUN "))


def test_the_dockerfile_warms_numba_with_a_real_command_into_a_cache_its_user_owns():
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    warm = next(line for line in text.splitlines() if line.startswith("RUN ") and (
        " marketpulse run " in line))  # fmt: skip
    args = shlex.split("run " + warm.split(" marketpulse run ", 1)[1].split("&&")[0])
    assert check_invocation(args) == ["run"]
    assert "--duration" in args and "--no-dashboard" in args
    # numba ignores a cache directory it cannot write to (and compiles on every start);
    # scripts/containers/check_numba_cache.py checks the built image for real
    assert "NUMBA_CACHE_DIR=/" in text
    assert 'chown -R marketpulse:marketpulse "$NUMBA_CACHE_DIR"' in text
    # a rebuild loads the kernels of unchanged sources from a build cache, keyed as CI keys
    # its own (scripts/kernel_digest.py, which the build context keeps)
    assert "--mount=type=cache," in warm and "kernel_digest.py" in warm
    assert warm.index('cp -a "$kept/."') < warm.index(" marketpulse run ")
    assert "!scripts/kernel_digest.py" in (ROOT / ".dockerignore").read_text().split()


def test_the_dockerignore_keeps_local_state_out_of_the_build():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "tests", "bench/results", ".env"} <= ignored
    assert not {"src", "pyproject.toml", "README.md"} & ignored
