"""The data contract's column tables, generated from the code by the docs build's hooks."""

import sys
from pathlib import Path

from marketpulse.sinks.lake_layout import ROW_SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "docs"))
import hooks  # noqa: E402


def _rows(markdown: str, table: str) -> dict[str, list[str]]:
    section = markdown.split(f"### `{table}`", 1)[1].split("### ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_every_stored_table_and_column_is_listed_with_its_types():
    markdown = hooks._tables()
    for table, schema in ROW_SCHEMAS.items():
        rows = _rows(markdown, table)
        assert [name for name in rows if "only" not in name] == [f"`{n}`" for n in schema.names]
    trades = _rows(markdown, "trades")
    assert trades["`ts`"] == ["`timestamp[ns, tz=UTC]`", "`TIMESTAMPTZ`", "`timestamptz`"]
    assert trades["`seq` (PostgreSQL only)"] == ["", "", "`integer`"]
    assert _rows(markdown, "alerts")["`details`"][1] == "`MAP(VARCHAR, DOUBLE)`"
    assert _rows(markdown, "quotes")["`bid`"] == ["`double`", "`DOUBLE`", ""]  # no such table


def test_the_data_contract_page_holds_the_generated_tables():
    page = (ROOT / "docs" / "reference" / "data-contract.md").read_text()
    assert "<!-- generated: tables -->" in page
    assert hooks.on_page_markdown(page).count("### `") == len(ROW_SCHEMAS)
