"""MkDocs hooks: reference pages generated from the code at each build.

A page holds a marker, ``<!-- generated: NAME -->``, which the build replaces with
Markdown made from the code itself, so the pages cannot drift from it:

- ``settings``: every setting of :class:`marketpulse.config.Settings`, walked
  through its nested dataclasses (TOML key, environment variable, type, default,
  allowed values, and the description the code gives it);
- ``rest-api``: the paths of the dashboard's OpenAPI document, as
  ``/openapi.json`` serves it;
- ``tables``: each stored table's columns with their lake and PostgreSQL types,
  from the lake's row schemas and the PostgreSQL sink's tables.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import tempfile
import typing
import warnings
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace each generated-content marker of a page with its Markdown."""
    return _MARKER.sub(lambda m: _GENERATORS[m.group(1)](), markdown)


# Settings ------------------------------------------------------------------


def _settings() -> str:
    from marketpulse import config

    comments = _constant_comments(Path(config.__file__))
    out: list[str] = []
    _settings_section(config.Settings, (), comments, out)
    return "\n".join(out)


def _settings_section(
    cls: type, path: tuple[str, ...], comments: dict[str, str], out: list[str]
) -> None:
    from marketpulse import config

    title = "Top level" if not path else f"`[{'.'.join(path)}]`"
    out += [f"## {title}", "", _paragraph(inspect.getdoc(cls) or ""), ""]
    out += [
        "| key | environment | type | default | allowed | description |",
        "|---|---|---|---|---|---|",
    ]
    hints = typing.get_type_hints(cls)
    defaults = _field_defaults(cls)
    nested = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            nested.append((f.name, kind))
            continue
        env = "MARKETPULSE_" + "_".join((*path, f.name)).upper()
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        described = comments.get(defaults.get(f.name, ""), "") or _clause(cls, f.name)
        out.append(
            f"| `{f.name}` | `{env}` | {_type_name(kind)} | {_default(default, config)} "
            f"| {_allowed(f.metadata)} | {described} |"
        )
    out.append("")
    for name, kind in nested:
        _settings_section(kind, (*path, name), comments, out)


def _constant_comments(source: Path) -> dict[str, str]:
    """Map each module constant to the ``#:`` comment lines above it."""
    lines = source.read_text().splitlines()
    found = {}
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name):
                above = []
                i = node.lineno - 2
                while i >= 0 and lines[i].lstrip().startswith("#:"):
                    above.insert(0, lines[i].lstrip()[2:].strip())
                    i -= 1
                if above:
                    found[target.id] = _md(" ".join(above))
    return found


def _field_defaults(cls: type) -> dict[str, str]:
    """Map each field of ``cls`` to the module constant its default names, if any."""
    tree = ast.parse(inspect.getsource(cls))
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            value = node.value
            if isinstance(value, ast.Call):
                value = next((k.value for k in value.keywords if k.arg == "default"), None)
            if isinstance(value, ast.Name):
                names[node.target.id] = value.id
    return names


def _clause(cls: type, name: str) -> str:
    """The part of ``cls``'s docstring that begins with the field's name, if one does."""
    doc = " ".join((inspect.getdoc(cls) or "").split())
    match = re.search(rf"``{name}``[: ]([^;]*?)(?:;|\. (?=``|[A-Z])|\.$)", doc)
    return _md(match.group(1).strip(" :")) if match else ""


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return "list of " + _type_name(typing.get_args(kind)[0])
    return getattr(kind, "__name__", str(kind)).replace("Secret", "secret")


def _default(value: Any, config: Any) -> str:
    if isinstance(value, config.Secret):
        return "(empty)" if not value.reveal() else "(set)"
    if isinstance(value, tuple):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _allowed(metadata: Any) -> str:
    parts = []
    if "choices" in metadata:
        parts.append(", ".join(f"`{c}`" for c in metadata["choices"]))
    if "min" in metadata:
        parts.append(f"≥ {metadata['min']}")
    if "above" in metadata:
        parts.append(f"> {metadata['above']}")
    if "max" in metadata:
        parts.append(f"≤ {metadata['max']}")
    return "; ".join(parts)


def _md(text: str) -> str:
    """Docstring reST to Markdown, on one line fit for a table cell."""
    text = re.sub(r":(?:mod|class|data|func|meth|attr):`~?([^`]+)`", r"`\1`", text)
    return " ".join(text.replace("``", "`").replace("|", "\\|").split())


def _paragraph(doc: str) -> str:
    return _md(doc.replace("\n\n", " ")) if doc else ""


# REST API ------------------------------------------------------------------


def _rest_api() -> str:
    document = _openapi()
    out = [f"OpenAPI {document['openapi']}, *{document['info']['title']}* "
           f"{document['info']['version']}.", ""]  # fmt: skip
    for route, methods in document["paths"].items():
        for method, op in methods.items():
            out += [f"## `{method.upper()} {route}`", ""]
            out += [_md_block(op.get("summary", "")), "", _md_block(op.get("description", "")), ""]
            params = op.get("parameters", [])
            if params:
                out += ["| parameter | in | required | type | default | description |",
                        "|---|---|---|---|---|---|"]  # fmt: skip
                for p in params:
                    schema = p.get("schema", {})
                    default = f"`{schema['default']}`" if "default" in schema else ""
                    out.append(
                        f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} "
                        f"| {_schema_type(schema)} | {default} | {_md(p.get('description', ''))} |"
                    )
                out.append("")
            codes = ", ".join(
                f"`{code}` {_md(r.get('description', ''))}"
                for code, r in op.get("responses", {}).items()
            )
            out += [f"Responses: {codes}.", ""]
    return "\n".join(out)


def _openapi() -> dict[str, Any]:
    with warnings.catch_warnings():  # starlette's note on its test client's httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from marketpulse.serve import LakeData, LakeMarket, ServeSettings, create_app

    with tempfile.TemporaryDirectory() as empty:
        lake = LakeData(empty)
        try:
            app = create_app(ServeSettings(), lake, LakeMarket(lake))
            with TestClient(app, base_url="http://127.0.0.1") as client:
                return client.get("/openapi.json").json()
        finally:
            lake.close()


def _schema_type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_schema_type(s) for s in schema["anyOf"])
    return schema.get("type", schema.get("$ref", "").rsplit("/", 1)[-1] or "any")


def _md_block(text: str) -> str:
    return text.replace("|", "\\|")


# Data contract ------------------------------------------------------------


def _tables() -> str:
    """Each stored table's columns: their lake (Parquet) and PostgreSQL types, keys, partitions."""
    from marketpulse.analytics.sql import duckdb_type
    from marketpulse.sinks.lake_layout import PARTITION_KEYS, PERIOD, ROW_SCHEMAS
    from marketpulse.sinks.postgres_schema import PG_TABLES, SQL_TYPES, bar_table

    out: list[str] = []
    for table, schema in ROW_SCHEMAS.items():
        pg = bar_table(quoted=True) if table == "bars" else PG_TABLES.get(table)
        pg_types = dict(pg.columns) if pg is not None else {}
        keys = PARTITION_KEYS[table]
        out += [f"### `{table}`", ""]
        where = ", ".join(f"`{k}=...`" for k in (*keys, PERIOD))
        pg_text = f"PostgreSQL primary key ({', '.join(pg.key)})" if pg else "not in PostgreSQL"
        out += [f"Lake directories: {where}; {pg_text}.", ""]
        out += ["| column | lake (Parquet, Arrow) | `marketpulse sql` (DuckDB) | PostgreSQL |",
                "|---|---|---|---|"]  # fmt: skip
        for field in schema:
            sql_type = SQL_TYPES.get(pg_types.get(field.name, ""), "")
            out.append(
                f"| `{field.name}` | `{field.type}` | `{duckdb_type(field.type)}` "
                f"| {sql_type and f'`{sql_type}`'} |"
            )
        for name, kind in pg_types.items():  # the database's own columns (a trade's seq)
            if name not in schema.names:
                out.append(f"| `{name}` (PostgreSQL only) | | | `{SQL_TYPES[kind]}` |")
        out.append("")
    return "\n".join(out)


_GENERATORS = {"settings": _settings, "rest-api": _rest_api, "tables": _tables}
