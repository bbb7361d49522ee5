"""notebooks/indicators.ipynb run from top to bottom by a real IPython kernel (nbclient).

The kernel is this interpreter (a kernel spec written to a temporary
JUPYTER_PATH), so the notebook sees the installed MarketPulse; it builds its
lake in a temporary directory the test then reads on its own. Its imports are
what the ``notebook`` extra installs, its outputs plain text, and a lake of its
own is gone when it ends.
"""

import ast
import importlib.metadata
import json
import os
import re
import sys
import tomllib

import nbformat
import pytest
from nbclient import NotebookClient

import marketpulse.indicators as mi
from marketpulse.analytics import query

from .conftest import LEAN_TRADES, ROOT

pytestmark = pytest.mark.integration

NOTEBOOK = ROOT / "notebooks" / "indicators.ipynb"
KERNEL = "marketpulse-test"


def _text(cell):
    """The text a cell printed or displayed (stdout and text/plain results)."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def _cell(notebook, fragment):
    """The only code cell whose source holds ``fragment``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and fragment in c.source]
    return cell


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def _requirement_name(text):
    return re.split(r"[\[=<>~! ;]", text, maxsplit=1)[0].lower().replace("_", "-")


def test_the_notebook_extra_installs_what_the_notebook_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["notebook"]
    assert all("==" in r for r in extra), extra  # pinned, as the other extras
    dev = {_requirement_name(r): r for r in project["optional-dependencies"]["dev"]}
    for requirement in extra:  # the same pins as the test tools'
        assert dev.get(_requirement_name(requirement), requirement) == requirement
    installed = {_requirement_name(r) for r in [*project["dependencies"], *extra]}
    assert {"ipykernel", "jupyterlab"} <= installed  # a kernel, and a place to open it
    providers = importlib.metadata.packages_distributions()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    imported = set()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Import):
                    imported.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"marketpulse"}
    assert {"matplotlib", "numpy"} <= third_party
    for module in third_party:
        names = {_requirement_name(d) for d in providers[module]}
        assert names & installed, f"the notebook imports {module}: not in the notebook extra"
    # .to_pandas() needs pandas, which no cell imports by name
    assert any(".to_pandas()" in c.source for c in notebook.cells) and "pandas" in installed


def _execute(tmp_path, monkeypatch, lake=None, cells=None):
    """Run the notebook (its first ``cells`` cells) until its kernel stops; return it.

    Its lake is ``lake``, or one of its own under tmp_path/tmp (TMPDIR).
    """
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "MarketPulse test",
                "language": "python",
            }
        )
    )
    for name in list(os.environ):
        if name.startswith("MARKETPULSE_"):
            monkeypatch.delenv(name)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    if lake is not None:
        monkeypatch.setenv("MARKETPULSE_NOTEBOOK_LAKE", str(lake))
    monkeypatch.setenv("MARKETPULSE_NOTEBOOK_TRADES", str(LEAN_TRADES))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if cells is not None:
        notebook.cells = notebook.cells[:cells]
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    return notebook


@pytest.fixture
def executed(tmp_path, monkeypatch):
    """The notebook executed with its lake at tmp_path/lake; returns (notebook, lake)."""
    lake = tmp_path / "lake"
    return _execute(tmp_path, monkeypatch, lake), lake


def test_the_outputs_are_plain_text(executed):
    """The kernel sets FORCE_COLOR for what it starts: no escape codes reach a cell."""
    notebook, lake = executed
    texts = [_text(c) for c in notebook.cells if c.cell_type == "code"]
    assert not [t for t in texts if "\x1b" in t]
    replayed = _text(_cell(notebook, 'marketpulse", "replay"')).splitlines()[0]
    assert replayed.startswith("done: ticks in 388,417 ") and replayed.endswith(" s")
    # a lake the test named is the test's: the notebook leaves it
    assert (lake / "bars").is_dir()
    assert _text(notebook.cells[-1]) == ""


@pytest.mark.parametrize("cells", [None, -1], ids=["to-the-end", "stopped-before-the-last-cell"])
def test_a_lake_of_its_own_is_removed(tmp_path, monkeypatch, cells):
    notebook = _execute(tmp_path, monkeypatch, cells=cells)
    (made,) = re.findall(r"^lake: (.*)$", _text(notebook.cells[1]), re.M)
    assert made.startswith(str(tmp_path / "tmp"))  # it made one, in the temporary folder
    assert "2310 bars of 4 symbols" in _text(_cell(notebook, "FROM bars WHERE dataset = ?"))
    if cells is None:
        assert _text(notebook.cells[-1]) == f"removed the temporary lake {made}\n"
    # gone, by the last cell or by the kernel's exit
    assert list((tmp_path / "tmp").iterdir()) == []


def test_notebook_runs_and_its_indicators_equal_the_lake(executed):
    notebook, lake = executed
    # the replay filled the lake the test named; the test reads it on its own
    (dataset,) = query(lake, "SELECT DISTINCT dataset FROM bars").column(0).to_pylist()
    assert dataset == "lean-2013-10-07-trades"
    count = query(lake, "SELECT count(*) FROM bars WHERE timeframe = '1m'").column(0)[0].as_py()
    assert count > 2000

    bars = _text(_cell(notebook, "FROM bars WHERE dataset = ? AND timeframe = '1m'"))
    assert bars.startswith(f"{count} bars of 4 symbols: AIG, BAC, IBM, SPY\n")

    computed = _cell(notebook, "mi.compute(frame, DECLARED)")
    declared = re.search(r"DECLARED = (\[.*\])", computed.source).group(1)
    columns = mi.parse_set(json.loads(declared)).columns
    assert "stoch_k" in columns and "bb_upper" in columns
    text = _text(computed)
    assert text.startswith(f"computed columns: {', '.join(columns)}\n")
    table = [o for o in computed.outputs if o.output_type == "execute_result"]
    (html,) = [o.data["text/html"] for o in table]
    for column in columns:  # the displayed SPY rows carry every computed column
        assert f"<th>{column}</th>" in html, column

    # the default columns computed in the notebook equal the stored ones, bit for bit
    equal = _text(_cell(notebook, "equal to the lake:")).splitlines()
    assert equal == [
        f"{count} of {count} bars matched to stored indicator rows",
        f"equal to the lake: {', '.join(mi.COLUMNS)}",
        "different: none",
    ]

    alerts = query(
        lake,
        "SELECT count(*) FROM alerts WHERE timeframe = '1m' AND symbol = 'SPY'",
    ).column(0)[0].as_py()  # fmt: skip
    assert alerts > 0
    assert _text(_cell(notebook, "alerts on {SYMBOL} 1m")).startswith(f"{alerts} alerts on SPY 1m")
    chart = _cell(notebook, "plt.subplots(")
    assert f"{alerts} alerts marked on the chart" in _text(chart)
    images = [o for o in chart.outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 1
