"""The compose stack's two routes (profiles ``process`` and ``spark``), InfluxDB, pgAdmin.

Checked without containers: which services each profile starts, under Compose's
rules (a service without ``profiles`` always; a ``--profile`` option replaces
``COMPOSE_PROFILES``), so that no store or output topic has two writers in either
route; the spark service's command parses as ``marketpulse spark`` and its
``--help`` lists every option; its image is the Dockerfile's ``spark`` stage while
``docker build .`` still builds the plain image; pgAdmin's ``servers.json`` and
Grafana's InfluxDB data source name the stack's own services; the CI override and
the container test run the spark route on local images. ``scripts/containers/
stack_smoke.sh`` runs the route for real (its spark phase).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml

from marketpulse.cli.app import app
from marketpulse.config import load_settings, read_env_file

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
GRAFANA_INFLUX = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
PGADMIN_SERVERS = ROOT / "deploy" / "pgadmin" / "servers.json"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")

#: The profiles of the two routes from the ticks topic to the stores.
ROUTE_PROFILES = {"process", "spark"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _interpolate(value: str) -> str:
    """``${VAR:-default}`` as its default, ``${VAR:?...}`` as ``x``."""
    return _VAR.sub(lambda m: m.group(0).split(":-", 1)[1][:-1] if ":-" in m.group(0) else "x",
                    value)  # fmt: skip


def enabled(services: dict, active: set[str]) -> set[str]:
    """The services Compose starts with the profiles ``active`` (no profiles: always)."""
    return {
        name for name, service in services.items()
        if not service.get("profiles") or set(service["profiles"]) & active
    }  # fmt: skip


def active_profiles(env: dict[str, str], flags: list[str]) -> set[str]:
    """Compose's active profiles: the ``--profile`` options, else ``COMPOSE_PROFILES``."""
    if flags:
        return set(flags)
    return {p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()}


def marketpulse_args(service: dict) -> list[str] | None:
    """The arguments a service gives ``marketpulse`` (None: another program)."""
    if not str(service.get("image", "")).startswith("marketpulse"):
        return None
    command = [_interpolate(str(a)) for a in service.get("command") or []]
    entrypoint = service.get("entrypoint")
    if entrypoint is None:
        return command
    words = entrypoint[2].split()  # sh -c "exec marketpulse process ... $@"
    return [words[2], *command]


def writes(service: dict) -> set[str]:
    """What a service writes: ``topics`` (the output topics) and stores (``lake``, ...)."""
    args = marketpulse_args(service)
    if not args:
        return set()
    if args[0] == "process":
        return {"topics"}
    if args[0] == "sink":
        return {args[1]}
    if args[0] == "spark":
        out = set() if "--no-topics" in args else {"topics"}
        out |= {args[i + 1] for i, a in enumerate(args) if a == "--sink"}
        flags = {"--lake": "lake", "--postgres-url": "postgres", "--influx-url": "influx"}
        return out | {store for flag, store in flags.items() if flag in args}
    return set()


def double_writes(services: dict, active: set[str]) -> dict[str, list[str]]:
    """Each output with more than one writer among the services ``active`` starts."""
    writers: dict[str, list[str]] = {}
    for name in sorted(enabled(services, active)):
        for target in writes(services[name]):
            writers.setdefault(target, []).append(name)
    return {target: names for target, names in writers.items() if len(names) > 1}


def check_invocation(args: list[str]) -> list[str]:
    """Parse ``args`` as the CLI would; return the command's path."""
    command = typer.main.get_command(app)
    path: list[str] = []
    while getattr(command, "commands", None) is not None:
        assert args and args[0] in command.commands, f"no command {' '.join([*path, *args[:1]])}"
        command = command.commands[args[0]]
        path.append(args[0])
        args = args[1:]
    command.make_context(" ".join(["marketpulse", *path]), list(args), resilient_parsing=False)
    return path


def _env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


# the routes


def test_each_route_is_a_profile_and_every_writer_belongs_to_one():
    services = _compose()["services"]
    assert {n for n, s in services.items() if s.get("profiles") == ["process"]} == {
        "process", "sink-lake", "sink-postgres",
    }  # fmt: skip
    assert {n for n, s in services.items() if s.get("profiles") == ["spark"]} == {
        "spark", "influxdb",
    }  # fmt: skip
    for name, service in services.items():
        if writes(service):  # a writer outside the route profiles would run in both
            assert set(service.get("profiles", [])) & ROUTE_PROFILES, name
    assert writes(services["spark"]) == {"topics", "lake", "postgres", "influx"}
    assert writes(services["process"]) == {"topics"}


@pytest.mark.parametrize(
    ("flags", "route"),
    [([], "process"), (["spark"], "spark"), (["process"], "process")],
)
def test_docker_compose_up_runs_one_route_and_nothing_writes_twice(flags, route):
    services = _compose()["services"]
    active = active_profiles(_env_example(), flags)
    assert active & ROUTE_PROFILES == {route}
    running = enabled(services, active)
    other = (ROUTE_PROFILES - {route}).pop()
    assert not {n for n in running if other in services[n].get("profiles", [])}
    assert double_writes(services, active) == {}
    # every store the route writes is written, and the stack's core runs
    written = {t for n in running for t in writes(services[n])}
    assert written >= {"topics", "lake", "postgres"}
    assert {"kafka", "topics", "produce", "postgres", "dashboard"} <= running


def test_the_env_example_picks_the_process_route():
    assert active_profiles(_env_example(), []) == {"process"}
    # a --profile option replaces it (Compose's rule): the spark route runs alone
    assert active_profiles(_env_example(), ["spark"]) == {"spark"}


def test_a_writer_left_without_a_profile_is_caught():
    services = _compose()["services"]
    services["process"] = {k: v for k, v in services["process"].items() if k != "profiles"}
    assert double_writes(services, {"spark"}) == {"topics": ["process", "spark"]}
    # both profiles at once (given on purpose) write twice, as the guide warns
    both = double_writes(_compose()["services"], {"process", "spark"})
    assert both == {"lake": ["sink-lake", "spark"], "postgres": ["sink-postgres", "spark"],
                    "topics": ["process", "spark"]}  # fmt: skip


# the spark service


def test_the_spark_service_runs_marketpulse_spark_in_local_mode_with_every_store():
    spark = _compose()["services"]["spark"]
    args = marketpulse_args(spark)
    assert check_invocation(args) == ["spark"]
    assert args[args.index("--master") + 1] == "local[*]"
    env = {k: _interpolate(str(v)) for k, v in spark["environment"].items()}
    settings = load_settings(environ=env)
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.lake == "/data/lake"
    assert settings.postgres_url and "@postgres:5432/" in settings.postgres_url.reveal()
    assert settings.influx_url.reveal() == "http://influxdb:8086/marketpulse"
    # the checkpoint and the lake are volumes: a restart resumes, the dashboard reads
    mounts = dict(v.split(":")[:2] for v in spark["volumes"])
    assert mounts["spark-checkpoint"] == args[args.index("--checkpoint") + 1]
    assert mounts["lake"] == "/data"
    dashboard = dict(v.split(":")[:2] for v in _compose()["services"]["dashboard"]["volumes"])
    assert dashboard["lake"] == "/data"
    assert set(spark["depends_on"]) == {"topics", "postgres", "influxdb"}


def test_the_spark_services_options_are_in_marketpulse_spark_help():
    args = marketpulse_args(_compose()["services"]["spark"])
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", "spark", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    options = [a for a in args[1:] if a.startswith("--")]
    assert {"--master", "--checkpoint", "--sink"} <= set(options)
    for option in options:
        assert option in result.stdout, f"marketpulse spark --help does not list {option}"


def test_a_wrong_spark_option_is_caught():
    with pytest.raises(Exception) as caught:
        check_invocation(["spark", "--checkpoint", "/c", "--sink", "kafka"])
    assert any(cls.__name__ == "UsageError" for cls in type(caught.value).__mro__)
    assert writes({"image": "marketpulse:local", "command": ["dashboard"]}) == set()


def test_the_spark_image_is_a_dockerfile_stage_and_the_default_image_stays_runtime():
    spark = _compose()["services"]["spark"]
    assert spark["build"] == {"context": ".", "target": "spark"}
    assert spark["image"] == "marketpulse-spark:local"
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    names = [name for _, name in stages]
    assert "spark" in names
    assert names[-1] == "runtime"  # `docker build .` builds the last stage
    base = dict((name, image) for image, name in stages)
    assert base["runtime"] == "app"
    # Java, the spark extra and the connector's jars sit on the runtime's base, before
    # MarketPulse: a change to its source rebuilds the wheel's steps only
    assert base["spark"] == "spark-base" and base["spark-base"] == base["app"] == "runtime-base"
    text = (ROOT / "Dockerfile").read_text()
    spark_base = text.split("AS spark-base\n", 1)[1].split("\nFROM ", 1)[0]
    assert "openjdk-17-jre-headless" in spark_base
    assert "spark.jars.ivy" in spark_base and "SPARK_CONF_DIR" in spark_base
    spark_stage = text.split("AS spark\n", 1)[1].split("\nFROM ", 1)[0]
    # the same application as `app`: its wheel, and the kernels it compiled
    assert "COPY --from=build /wheels" in spark_stage
    assert re.search(r"^COPY --from=app .*/opt/marketpulse-numba-cache", spark_stage, re.M)
    assert "spark_session" in spark_stage  # the job's own session finds the connector
    assert re.search(r"^USER marketpulse$", spark_stage, re.M)


# InfluxDB, Grafana, pgAdmin


def test_influxdb_is_1x_with_a_volume_and_a_health_check():
    influx = _compose()["services"]["influxdb"]
    assert influx["image"] == "docker.io/library/influxdb:1.8"
    assert "influxdb-data:/var/lib/influxdb" in influx["volumes"]
    assert influx["healthcheck"]["test"][:2] == ["CMD", "curl"]
    assert "8086/ping" in influx["healthcheck"]["test"][-1]


def test_grafanas_influxdb_data_source_reads_the_database_the_spark_route_writes():
    config = yaml.safe_load(GRAFANA_INFLUX.read_text())
    (source,) = config["datasources"]
    services = _compose()["services"]
    url = re.fullmatch(r"http://([^:/]+):(\d+)", source["url"])
    assert url and url.group(1) in services and url.group(1) == "influxdb"
    assert url.group(2) == "8086"
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"
    written = services["spark"]["environment"]["MARKETPULSE_INFLUX_URL"]
    assert written == f"{source['url']}/{source['jsonData']['dbName']}"
    mounted = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert GRAFANA_INFLUX.is_relative_to(ROOT / mounted_dir(mounted, "/etc/grafana/provisioning"))
    # the influxdb service is not always there: Grafana must not wait for it
    assert "influxdb" not in services["grafana"].get("depends_on", {})


def mounted_dir(mounts: dict[str, str], target: str) -> str:
    """The host folder mounted at ``target``."""
    (source,) = [s for s, t in mounts.items() if t == target]
    return source


def test_pgadmin_registers_the_stacks_postgres_with_credentials_from_env():
    services = _compose()["services"]
    pgadmin = services["pgadmin"]
    assert re.fullmatch(r"docker\.io/dpage/pgadmin4:\d+\.\d+", pgadmin["image"])  # pinned
    mounts = dict(v.split(":")[:2] for v in pgadmin["volumes"])
    assert (ROOT / mounted_dir(mounts, "/pgadmin4/servers.json")) == PGADMIN_SERVERS
    (server,) = json.loads(PGADMIN_SERVERS.read_text())["Servers"].values()
    postgres = services["postgres"]
    assert server["Host"] in services and server["Host"] == "postgres"
    assert server["Port"] == 5432
    assert server["Username"] == postgres["environment"]["POSTGRES_USER"]
    assert server["MaintenanceDB"] == postgres["environment"]["POSTGRES_DB"]
    example = _env_example()
    for variable in ("PGADMIN_DEFAULT_EMAIL", "PGADMIN_DEFAULT_PASSWORD"):
        assert f"${{{variable}:?" in pgadmin["environment"][variable]  # refused when unset
        assert example[variable]
    assert pgadmin["ports"] and pgadmin["healthcheck"]["test"][0] == "CMD"
    assert set(pgadmin["depends_on"]) == {"postgres"}


# the CI stack


def test_the_ci_override_and_the_container_test_run_the_spark_route_on_local_images():
    ci = yaml.safe_load((ROOT / "compose.ci.yaml").read_text())["services"]
    assert ci["spark"]["image"] == "localhost/marketpulse-spark:local"
    assert ci["influxdb"]["image"] == "localhost/marketpulse-influxdb:1"
    assert not {"grafana", "pgadmin", "kafka-ui"} & set(ci)  # no local stand-ins
    smoke = (ROOT / "scripts" / "containers" / "stack_smoke.sh").read_text()
    phase = smoke.split("export COMPOSE_PROFILES=spark", 1)[1]
    started = set(re.search(r"^services=\((.*)\)$", phase, re.M).group(1).split())
    services = _compose()["services"]
    assert started <= enabled(services, {"spark"})
    assert {"spark", "influxdb", "kafka", "topics", "produce", "postgres"} <= started
    assert double_writes({n: services[n] for n in started}, {"spark"}) == {}
    assert started <= set(ci)  # each on a local image
    make = (ROOT / "Makefile").read_text().split("\ncontainers:", 1)[1].split("\n\n", 1)[0]
    assert "build_image.sh influxdb" in make and "build_base.sh spark" in make
