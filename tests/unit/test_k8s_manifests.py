"""The Kubernetes manifests (deploy/k8s/), checked without a cluster.

Every object validates against the Kubernetes 1.32 JSON schemas (strict: an
unknown field is an error) bundled by ``kubernetes-validate``; every
``marketpulse`` command a container or probe runs is a real command whose
options parse; HTTP probes name the open ``/healthz`` and ``/readyz`` of
the dashboard and of the services' metrics port, which they really answer;
every ``MARKETPULSE_*`` variable is one MarketPulse reads; the processor
is a StatefulSet whose pods name themselves; every container has resource
requests within its limits. ``kubectl kustomize`` renders the same objects
in tests/integration/test_deploy_k8s_kustomize.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from marketpulse.config import Secret, load_settings
from marketpulse.exceptions import ConfigError
from marketpulse.runtime.endpoint import ServiceEndpoint
from marketpulse.serve import LakeData, LakeMarket, ServeSettings, create_app

from .test_deploy_files import IMAGE, check_invocation, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"  # Debian's kubectl 1.32 renders them (the integration test)
NAMESPACE = "marketpulse"
SECRET_EXAMPLE = "secret.example.yaml"  # not applied: users make their own from it
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$")
_UNITS = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def manifest_objects(names: list[str] | None = None) -> list[dict]:
    """The objects of the files ``names`` (default: those kustomization.yaml lists)."""
    names = kustomization()["resources"] if names is None else names
    return [o for name in names for o in yaml.safe_load_all((K8S / name).read_text()) if o]


def workloads() -> dict[str, dict]:
    """Deployments, StatefulSets and Jobs by name."""
    kinds = {"Deployment", "StatefulSet", "Job"}
    return {o["metadata"]["name"]: o for o in manifest_objects() if o["kind"] in kinds}


def containers() -> list[tuple[str, dict]]:
    return [
        (name, c)
        for name, w in workloads().items()
        for c in w["spec"]["template"]["spec"]["containers"]
    ]


def configmap() -> dict[str, str]:
    (config,) = [o for o in manifest_objects() if o["kind"] == "ConfigMap"]
    return config["data"]


def secret_example() -> dict:
    (secret,) = manifest_objects([SECRET_EXAMPLE])
    return secret


def environment(container: dict) -> dict[str, str]:
    """The variables a container sees: its ConfigMap and Secret (envFrom), then ``env``."""
    names = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= configmap()
        elif source["secretRef"]["name"] == secret_example()["metadata"]["name"]:
            names |= secret_example()["stringData"]
    for var in container.get("env", []):
        names[var["name"]] = var.get("value", f"<{var['name']}>")
    return names


def expand(words: list[str], env: dict[str, str]) -> list[str]:
    """Expand ``$(VAR)`` as the kubelet does; an unknown name fails the test."""

    def one(match: re.Match) -> str:
        assert match.group(1) in env, f"$({match.group(1)}) is not in the container's environment"
        return env[match.group(1)]

    return [_REFERENCE.sub(one, w) for w in words]


def quantity(text: str | int) -> float:
    number, unit = _QUANTITY.match(str(text)).groups()
    return float(number) * _UNITS[unit]


def validate(obj: dict) -> None:
    """Validate ``obj`` against the Kubernetes schemas of KUBERNETES_VERSION, strictly."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")  # the dev extra
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# The files


def test_kustomization_lists_every_manifest_but_the_secret_example():
    listed = kustomization()["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", SECRET_EXAMPLE}
    assert sorted(listed) == sorted(on_disk)
    assert kustomization()["namespace"] == NAMESPACE
    assert SECRET_EXAMPLE not in listed


def test_the_stack_of_objects():
    kinds = {(o["kind"], o["metadata"]["name"]) for o in manifest_objects()}
    assert kinds == {
        ("Namespace", NAMESPACE), ("ConfigMap", "marketpulse-config"),
        ("PersistentVolumeClaim", "lake"), ("Job", "topics-create"),
        ("Deployment", "produce"), ("StatefulSet", "process"), ("Service", "process"),
        ("Deployment", "sink-lake"), ("Deployment", "sink-postgres"),
        ("Deployment", "dashboard"), ("Service", "dashboard"),
    }  # fmt: skip


@pytest.mark.parametrize("name", [*kustomization()["resources"], SECRET_EXAMPLE])
def test_every_object_validates_against_the_kubernetes_schema(name):
    for obj in manifest_objects([name]):
        validate(obj)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda spec: spec["containers"][0].update(image_pull="Always"), "Additional properties"),
        (lambda spec: spec["containers"][0]["ports"][0].update(containerPort="http"), "integer"),
        (lambda spec: spec["containers"][0].pop("name"), "'name' is a required property"),
    ],
)
def test_the_schema_check_refuses_a_broken_object(change, complaint):
    dashboard = workloads()["dashboard"]
    change(dashboard["spec"]["template"]["spec"])
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    with pytest.raises(kubernetes_validate.ValidationError, match=complaint):
        validate(dashboard)


# MarketPulse's side: commands, probes, variables


def test_every_container_runs_a_real_marketpulse_command():
    commands = {}
    for name, container in containers():
        assert container["image"] == IMAGE
        assert "command" not in container  # the image's entrypoint: marketpulse
        args = expand(container["args"], environment(container))
        commands[name] = check_invocation(args)
    assert commands == {
        "topics-create": ["topics", "create"], "produce": ["produce"], "process": ["process"],
        "sink-lake": ["sink", "lake"], "sink-postgres": ["sink", "postgres"],
        "dashboard": ["dashboard"],
    }  # fmt: skip


def test_a_bad_command_or_option_is_caught():
    with pytest.raises(AssertionError, match="no command process-all"):
        check_invocation(["process-all"])
    with pytest.raises(Exception, match="No such option"):
        check_invocation(["process", "--instance", "x"])
    with pytest.raises(AssertionError, match=r"\$\(POD\) is not in"):
        expand(["process", "--instance-id", "$(POD)"], {"POD_NAME": "process-0"})


def test_exec_probes_run_real_marketpulse_commands():
    probed = 0
    for name, container in containers():
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = container.get(kind)
            if probe and "exec" in probe:
                command = probe["exec"]["command"]
                assert command[0] == "marketpulse", (name, kind)
                check_invocation(command[1:])
                probed += 1
    assert probed == 0  # every long-running container answers HTTP probes


SERVICES = {"produce", "process", "sink-lake", "sink-postgres"}


def test_the_services_probe_healthz_and_readyz_on_their_metrics_port():
    probed = {}
    for name, container in containers():
        if name not in SERVICES:
            continue
        env = environment(container)
        port = load_settings(environ=env).metrics_port
        assert port > 0 and str(port) == env["MARKETPULSE_METRICS_PORT"], name
        assert [p["containerPort"] for p in container["ports"] if p["name"] == "metrics"] == [port]
        paths = {}
        for kind in ("livenessProbe", "readinessProbe"):
            assert container[kind]["httpGet"]["port"] in ("metrics", port), (name, kind)
            paths[kind] = container[kind]["httpGet"]["path"]
        assert paths == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}, name
        pod = workloads()[name]["spec"]["template"]["metadata"]
        assert pod["annotations"]["prometheus.io/port"] == str(port), name
        probed[name] = port
    assert set(probed) == SERVICES
    # The paths are the endpoint's own: alive at once, not ready until the service runs.
    with ServiceEndpoint(0, "127.0.0.1", "probe") as endpoint:
        base = f"http://127.0.0.1:{endpoint.port}"
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        assert httpx.get(base + "/readyz", timeout=5).status_code == 503
        assert httpx.get(base + "/metrics", timeout=5).status_code == 200


def test_http_probes_are_the_dashboards_open_health_endpoints(tmp_path):
    (dashboard,) = [c for name, c in containers() if name == "dashboard"]
    args = expand(dashboard["args"], environment(dashboard))
    port = int(args[args.index("--port") + 1])
    assert [p["containerPort"] for p in dashboard["ports"] if p["name"] == "http"] == [port]
    paths = {}
    for kind in ("livenessProbe", "readinessProbe"):
        assert dashboard[kind]["httpGet"]["port"] in ("http", port)
        paths[kind] = dashboard[kind]["httpGet"]["path"]
    assert paths == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    # Probes carry no token: the dashboard, with its token, must answer them anyway.
    missing = LakeData(tmp_path / "no-lake-yet")
    settings = ServeSettings(host="0.0.0.0", port=port, token=Secret("a-token"))
    with TestClient(create_app(settings, missing, LakeMarket(missing))) as client:
        assert client.get(paths["livenessProbe"]).status_code == 200
        assert client.get(paths["readinessProbe"]).status_code == 503  # no lake: not ready
        assert client.get("/metrics").status_code == 401  # the rest needs the token
    missing.close()


def test_every_marketpulse_variable_is_one_marketpulse_reads():
    texts = [(K8S / name).read_text() for name in [*kustomization()["resources"], SECRET_EXAMPLE]]
    for text in texts:
        assert unknown_variables(text) == set()
    assert all(name.startswith("MARKETPULSE_") for name in configmap())
    assert unknown_variables("MARKETPULSE_KAFKA_BOOTSTRAPS: x") == {"MARKETPULSE_KAFKA_BOOTSTRAPS"}


def test_the_secret_example_holds_placeholders_only():
    values = secret_example()["stringData"].values()
    assert all(v == "" or "change-me" in v for v in values)
    assert "MARKETPULSE_DASHBOARD_TOKEN" in secret_example()["stringData"]
    assert "MARKETPULSE_POSTGRES_URL" in secret_example()["stringData"]


# The processor and resources


def test_the_processor_is_a_statefulset_whose_pods_name_themselves():
    process = workloads()["process"]
    assert process["kind"] == "StatefulSet"
    (container,) = process["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    instance = args[args.index("--instance-id") + 1]
    (source,) = [e for e in container["env"] if f"$({e['name']})" == instance]
    assert source["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # process-0, ...
    assert "--group" not in args  # one consumer group: the replicas share the partitions
    assert 1 < process["spec"]["replicas"] <= int(configmap()["MARKETPULSE_KAFKA_PARTITIONS"])
    headless = [o for o in manifest_objects() if o["kind"] == "Service"]
    assert {"process": "None"} == {
        s["metadata"]["name"]: s["spec"]["clusterIP"]
        for s in headless
        if s["metadata"]["name"] == process["spec"]["serviceName"]
    }


def test_every_container_requests_resources_within_its_limits():
    for name, container in containers():
        resources = container["resources"]
        for what in ("cpu", "memory"):
            request = quantity(resources["requests"][what])
            limit = quantity(resources["limits"][what])
            assert 0 < request <= limit, (name, what)
    assert quantity("250m") == 0.25 and quantity("384Mi") == 384 * 2**20


def test_resource_figures_cite_the_benchmarks():
    for name in ("produce-deployment.yaml", "process-statefulset.yaml",
                 "sink-lake-deployment.yaml", "sink-postgres-deployment.yaml",
                 "dashboard-deployment.yaml"):  # fmt: skip
        assert "docs/benchmarks.md" in (K8S / name).read_text(), name


def test_each_containers_environment_loads_as_settings():
    for name, container in containers():
        settings = load_settings(environ=environment(container))
        assert settings.kafka.bootstrap == configmap()["MARKETPULSE_KAFKA_BOOTSTRAP"], name
        assert settings.kafka.partitions == int(configmap()["MARKETPULSE_KAFKA_PARTITIONS"]), name
        assert settings.lake == "/data/lake", name
    bad = {**configmap(), "MARKETPULSE_SIMULATOR_RATE": "-5"}
    with pytest.raises(ConfigError, match="MARKETPULSE_SIMULATOR_RATE|rate"):
        load_settings(environ=bad)
