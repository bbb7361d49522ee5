"""``kubectl kustomize deploy/k8s`` (Debian's kubectl): renders offline, no cluster.

The rendered objects are the files' objects, every namespaced one in the
``marketpulse`` namespace, each validated against the Kubernetes schemas as
tests/unit/test_k8s_manifests.py validates the files; a broken kustomization
is refused with kustomize's message.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"
CLUSTER_SCOPED = {"Namespace"}


def _kustomize(directory: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("kubectl")
    assert executable, "kubectl is not installed (Debian: apt-get install kubectl)"
    return subprocess.run(
        [executable, "kustomize", str(directory)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _objects(texts: list[str]) -> dict[tuple[str, str], dict]:
    return {
        (o["kind"], o["metadata"]["name"]): o
        for text in texts
        for o in yaml.safe_load_all(text)
        if o
    }


def test_kustomize_renders_the_files_objects_in_the_namespace():
    result = _kustomize(K8S)
    assert result.returncode == 0, result.stderr
    rendered = _objects([result.stdout])
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert set(rendered) == set(_objects([(K8S / name).read_text() for name in listed]))
    validator = pytest.importorskip("kubernetes_validate")  # the dev extra
    for (kind, name), obj in rendered.items():
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "marketpulse", name
        if kind not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == "marketpulse", (kind, name)
        validator.validate(obj, KUBERNETES_VERSION, strict=True)


def test_kustomize_refuses_a_missing_resource(tmp_path):
    for path in K8S.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "process-statefulset.yaml").unlink()
    result = _kustomize(tmp_path)
    assert result.returncode != 0
    assert "process-statefulset.yaml" in result.stderr
