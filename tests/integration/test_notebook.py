"""notebooks/indicators.ipynb run from top to bottom by a real IPython kernel (nbclient).

The kernel is this interpreter (a kernel spec written to a temporary
JUPYTER_PATH), so the notebook sees the installed MarketPulse; it builds its
lake in a temporary directory the test then reads on its own.
"""

import json
import os
import re
import sys

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


@pytest.fixture
def executed(tmp_path, monkeypatch):
    """The notebook executed with its lake at tmp_path/lake; returns (notebook, lake)."""
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
    lake = tmp_path / "lake"
    for name in list(os.environ):
        if name.startswith("MARKETPULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    monkeypatch.setenv("MARKETPULSE_NOTEBOOK_LAKE", str(lake))
    monkeypatch.setenv("MARKETPULSE_NOTEBOOK_TRADES", str(LEAN_TRADES))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    return notebook, lake


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
