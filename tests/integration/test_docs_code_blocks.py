"""Code blocks of the README and the docs site run as written (the cheap ones).

Every ``sql`` block of ``docs/`` runs through ``marketpulse sql`` on a lake of the Lean
day, every ``python`` block runs as a script in a folder whose ``data/lake`` is that lake
(where ``make run`` leaves one), and the README's five examples run in order from the
repository's folder (the lake and the alerts file in a temporary directory). Blocks of
other languages (shell sessions, configuration files) are not run yet.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from .conftest import LEAN_TRADES, ROOT, marketpulse

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

_SQL_BLOCKS = [
    pytest.param(block, id=f"{path.relative_to(ROOT)}#{n}")
    for path in sorted((ROOT / "docs").rglob("*.md"))
    for n, block in enumerate(re.findall(r"```sql\n(.*?)```", path.read_text(), re.S))
]


_PYTHON_BLOCKS = [
    pytest.param(block, id=f"{path.relative_to(ROOT)}#{n}")
    for path in sorted((ROOT / "docs").rglob("*.md"))
    for n, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S))
]


@pytest.fixture(scope="module")
def lean_lake(tmp_path_factory):
    lake = tmp_path_factory.mktemp("docs") / "lake"
    result = marketpulse("replay", LEAN_TRADES, "--lake", lake, cwd=lake.parent)
    assert result.returncode == 0, result.stderr
    return lake


@pytest.mark.parametrize("query", _SQL_BLOCKS)
def test_docs_sql_block_runs(lean_lake, query):
    result = marketpulse("sql", query, "--lake", lean_lake, "--format", "json")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", _PYTHON_BLOCKS)
def test_docs_python_block_runs(lean_lake, tmp_path, script):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lake").symlink_to(lean_lake)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr


def _readme_examples() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Five examples") : text.index("## Documentation")]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        lines = [line.strip() for line in block.splitlines()]
        commands += [shlex.split(line) for line in " ".join(lines).split("marketpulse ")[1:]]
    return commands


def test_readme_examples_run_in_order(tmp_path):
    commands = _readme_examples()
    assert len(commands) >= 5
    env = {
        "MARKETPULSE_LAKE": str(tmp_path / "lake"),
        "MARKETPULSE_ALERTS_FILE": str(tmp_path / "alerts.jsonl"),
    }
    # `make run` first, as the README says: the lake then holds the simulator's dataset too
    first = marketpulse("run", "--duration", "2", "--no-dashboard", cwd=ROOT, env=env)
    assert first.returncode == 0, first.stderr
    for args in commands:
        result = marketpulse(*args, cwd=ROOT, env=env)
        assert result.returncode == 0, f"marketpulse {shlex.join(args)}: {result.stderr}"
