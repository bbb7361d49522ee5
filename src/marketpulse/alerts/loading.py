"""Loading alert rules from YAML or TOML files.

A rules file holds a top-level list of rule tables: ``rules:`` in YAML,
``[[rules]]`` in TOML. Each table has a ``type`` (one of
:data:`~marketpulse.alerts.rules.RULE_TYPES`), a unique ``name`` and the fields
of its type; see ``default_rules.yaml`` for a documented example. Any problem
raises :class:`~marketpulse.exceptions.RulesError` with a ``<file>:<line>: <reason>``
message.
"""

from __future__ import annotations

import difflib
import logging
import re
import tomllib
from dataclasses import dataclass
from dataclasses import field as _dc_field
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import yaml

from marketpulse.alerts.rules import RULE_TYPES, Rule
from marketpulse.alerts.yaml_text import refuse_aliases
from marketpulse.exceptions import RulesError
from marketpulse.timeframes import is_interval

__all__ = ["default_rules", "load_rules"]

logger = logging.getLogger(__name__)


def load_rules(path: str | Path) -> list[Rule]:
    """Load and validate the rules of a ``.yaml``/``.yml`` or ``.toml`` file.

    Raises:
        RulesError: the file cannot be read or holds an invalid rule; the
            message is ``<file>:<line>: <reason>``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}:0: cannot read rules file: {exc}") from exc
    rules = _parse(text, path.suffix.lower(), str(path))
    logger.debug("loaded %d rules from %s", len(rules), path)
    return rules


def default_rules() -> list[Rule]:
    """Return the default rule set (the package's ``default_rules.yaml``)."""
    text = resources.files(__package__).joinpath("default_rules.yaml").read_text(encoding="utf-8")
    return _parse(text, ".yaml", "default_rules.yaml")


@dataclass
class _Locator:
    """Line numbers of rules and their fields in the source text (1-based)."""

    top: dict[str, int] = _dc_field(default_factory=dict)  # top-level key -> line
    rules: list[int] = _dc_field(default_factory=list)  # rule index -> line of the rule
    fields: list[dict[str, int]] = _dc_field(default_factory=list)  # rule -> field -> line
    items: list[dict[str, list[int]]] = _dc_field(default_factory=list)  # rule -> field -> items

    def rule(self, i: int) -> int:
        return self.rules[i] if i < len(self.rules) else self.top.get("rules", 1)

    def line_of(self, i: int, field: str, item: int | None = None) -> int:
        fields = self.fields[i] if i < len(self.fields) else {}
        if item is not None:
            lines = self.items[i].get(field, []) if i < len(self.items) else []
            if item < len(lines):
                return lines[item]
        return fields.get(field, self.rule(i))


def _yaml_locator(root: yaml.Node | None, source: str) -> _Locator:
    loc = _Locator()
    if not isinstance(root, yaml.MappingNode):
        return loc
    for key, value in root.value:
        loc.top[str(key.value)] = key.start_mark.line + 1
        if key.value != "rules" or not isinstance(value, yaml.SequenceNode):
            continue
        for node in value.value:
            loc.rules.append(node.start_mark.line + 1)
            fields: dict[str, int] = {}
            items: dict[str, list[int]] = {}
            for k, v in node.value if isinstance(node, yaml.MappingNode) else ():
                line = k.start_mark.line + 1
                if k.value in fields:
                    raise RulesError(f"{source}:{line}: duplicate key {k.value!r}")
                fields[k.value] = line
                if isinstance(v, yaml.SequenceNode):
                    items[k.value] = [n.start_mark.line + 1 for n in v.value]
            loc.fields.append(fields)
            loc.items.append(items)
    return loc


_TOML_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]*?)\s*\]\]?")
_TOML_KEY = re.compile(r"""^\s*["']?([A-Za-z0-9_-]+)["']?\s*=""")


def _toml_locator(text: str) -> _Locator:
    """Find rule blocks by scanning the text (best effort: no inline tables)."""
    loc = _Locator()
    table = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(line)
        if header:
            table = header.group(1)
            loc.top.setdefault(table, lineno)
            if table == "rules" and line.lstrip().startswith("[["):
                loc.rules.append(lineno)
                loc.fields.append({})
                loc.items.append({})
            continue
        key = _TOML_KEY.match(line)
        if key is None:
            continue
        if table is None:
            loc.top.setdefault(key.group(1), lineno)
        elif table == "rules" and loc.fields:
            loc.fields[-1].setdefault(key.group(1), lineno)
    return loc


def _parse(text: str, suffix: str, source: str) -> list[Rule]:
    if suffix in (".yaml", ".yml"):
        try:
            refuse_aliases(text, source)
            loc = _yaml_locator(yaml.compose(text, Loader=yaml.SafeLoader), source)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            raise RulesError(f"{source}:{line}: invalid YAML: {exc.problem or exc}") from exc
        except yaml.YAMLError as exc:
            raise RulesError(f"{source}:1: invalid YAML: {exc}") from exc
    elif suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            msg = str(exc)
            found = re.search(r"\(at line (\d+), column \d+\)", msg)
            line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else 1)
            reason = getattr(exc, "msg", None) or re.sub(r"\s*\(at .*\)$", "", msg)
            raise RulesError(f"{source}:{line}: invalid TOML: {reason}") from exc
        loc = _toml_locator(text)
    else:
        raise RulesError(f"{source}:0: unknown rules file type {suffix!r} (.yaml, .yml or .toml)")
    return _build(data, loc, source)


#: Top-level keys of a rules file; ``notifiers`` and ``routes`` (and each rule's
#: ``notify``) are read by :func:`~marketpulse.alerts.channels.load_notifications`.
_TOP_KEYS = ("rules", "notifiers", "routes")


def _build(data: Any, loc: _Locator, source: str) -> list[Rule]:
    if not isinstance(data, dict) or "rules" not in data:
        raise RulesError(f"{source}:1: expected a top-level 'rules' list")
    for key in data:
        if key not in _TOP_KEYS:
            raise RulesError(f"{source}:{loc.top.get(key, 1)}: unknown top-level key {key!r}")
    entries = data["rules"]
    if not isinstance(entries, list):
        raise RulesError(f"{source}:{loc.top.get('rules', 1)}: 'rules' must be a list of tables")
    rules: list[Rule] = []
    first_line: dict[str, int] = {}
    for i, entry in enumerate(entries):
        rule = _build_rule(i, entry, loc, source)
        line = loc.line_of(i, "name")
        if rule.name in first_line:
            raise RulesError(
                f"{source}:{line}: duplicate rule name {rule.name!r} "
                f"(first defined at line {first_line[rule.name]})"
            )
        first_line[rule.name] = line
        rules.append(rule)
    return rules


def _build_rule(i: int, entry: Any, loc: _Locator, source: str) -> Rule:
    def fail(reason: str, field: str | None = None, item: int | None = None) -> RulesError:
        line = loc.rule(i) if field is None else loc.line_of(i, field, item)
        return RulesError(f"{source}:{line}: {label}{reason}")

    label = f"rule #{i + 1}: "
    if not isinstance(entry, dict):
        raise fail(f"must be a table of fields, got {type(entry).__name__}")
    entry = {k: v for k, v in entry.items() if k != "notify"}  # where alerts go: not the rule's
    if isinstance(entry.get("name"), str):
        label = f"rule {entry['name']!r}: "
    kind = entry.get("type")
    if kind is None:
        raise fail(f"missing field 'type' (one of: {', '.join(RULE_TYPES)})")
    cls = RULE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise fail(f"unknown rule type {kind!r} (one of: {', '.join(RULE_TYPES)})", "type")
    known = [f.encode_name for f in msgspec.structs.fields(cls)]
    for field in entry:
        if field != "type" and field not in known:
            hint = difflib.get_close_matches(str(field), known, n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise fail(f"unknown field {field!r} for a {kind} rule{maybe}", str(field))
    for f in msgspec.structs.fields(cls):
        if f.required and f.encode_name not in entry:
            raise fail(f"missing required field {f.encode_name!r} for a {kind} rule")
    try:
        rule = msgspec.convert(entry, cls)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        at = re.search(r" - at `\$\.([A-Za-z0-9_]+)(?:\[(\d+)\])?`$", msg)
        if at is None:
            raise fail(msg) from None
        item = int(at.group(2)) if at.group(2) else None
        raise fail(
            f"field {at.group(1)!r}: {_plain(msg[: at.start()])}", at.group(1), item
        ) from None
    for field, reason in rule._problems():
        item = None
        if field == "intervals":
            item = next(j for j, iv in enumerate(rule.intervals or ()) if not is_interval(iv))
        raise fail(reason, field, item)
    return rule


_TYPE_WORDS = {
    "float": "a number",
    "int": "an integer",
    "str": "a string",
    "array": "a list",
    "null": "null",
    "bool": "true/false",
    "object": "a table",
}


def _plain(msg: str) -> str:
    """Reword msgspec's ``Expected `float`, got `str``` for people editing a rules file."""
    found = re.fullmatch(r"Expected `([^`]*)`, got `([^`]*)`", msg)
    if found is None:
        return msg.replace("`", "")
    wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in found.group(1).split(" | "))
    return f"expected {wanted}, got {found.group(2)}"
