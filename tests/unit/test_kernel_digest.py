"""CI's key of the compiled-kernel cache: kernel sources change it, other modules do not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import kernel_digest  # noqa: E402


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def test_the_digest_follows_the_kernels_and_what_they_import(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    first = kernel_digest.digest(src)
    assert len(first) == 16 and first == kernel_digest.digest(ROOT / "src")
    sources = {p.relative_to(src).as_posix() for p in kernel_digest.kernel_sources(src)}
    assert "marketpulse/stream/windows.py" in sources  # it imports numba
    assert "marketpulse/models.py" in sources  # a kernel module imports it
    assert "marketpulse/cli/app.py" not in sources

    _edit(src / "marketpulse" / "cli" / "app.py")
    assert kernel_digest.digest(src) == first
    _edit(src / "marketpulse" / "models.py")
    second = kernel_digest.digest(src)
    assert second != first
    _edit(src / "marketpulse" / "stream" / "windows.py")
    assert kernel_digest.digest(src) not in (first, second)


def test_the_script_prints_the_digest_or_one_line_on_a_wrong_tree(tmp_path):
    script = ROOT / "scripts" / "kernel_digest.py"
    ok = subprocess.run([sys.executable, script], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == kernel_digest.digest(ROOT / "src")
    bad = subprocess.run([sys.executable, script, tmp_path], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"kernel_digest: no marketpulse package under {tmp_path}"
