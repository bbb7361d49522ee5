"""An OpenAPI 3.1 document rewritten as OpenAPI 3.0, for the bundled Swagger UI.

FastAPI describes the API in OpenAPI 3.1 (JSON Schema 2020-12), which the
Swagger UI of the installed ``swagger-ui-bundle`` (4.x) refuses to render
("Unable to render this definition"). ``/openapi.json`` stays 3.1; the
``/docs`` page reads the same API from :func:`as_openapi_30`'s rewrite.

What is rewritten is what FastAPI and Pydantic write, in schemas only (never a
property, parameter or example *named* like a keyword):

- ``{"anyOf": [X, {"type": "null"}]}`` and ``"type": [X, "null"]`` become X with
  ``"nullable": true`` (a ``$ref`` X goes under ``allOf``, where 3.0 honours
  ``nullable`` beside it);
- ``const`` becomes a one-value ``enum``; a list of ``examples`` becomes one ``example``;
- numeric ``exclusiveMinimum``/``exclusiveMaximum`` become ``minimum``/``maximum``
  with the boolean flag;
- ``prefixItems`` (tuples) become ``items`` of any of the positions' schemas, and
  ``contentMediaType``/``contentEncoding`` become ``format: binary``/``byte``;
- 3.1-only document fields (``info.summary``, ``info.license.identifier``,
  ``webhooks``, ``jsonSchemaDialect``, ``$schema``, ``$id``, ``$comment``) are
  folded into the description or left out.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["OPENAPI_30", "as_openapi_30"]

#: The version the rewritten document declares.
OPENAPI_30 = "3.0.3"

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: Schema keywords holding one subschema, a list of them, or a map of names to them.
_ONE = ("items", "not", "additionalProperties", "contains", "propertyNames", "if", "then",
        "else", "unevaluatedItems", "unevaluatedProperties")  # fmt: skip
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_DROPPED = ("$schema", "$id", "$comment")


def as_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of an OpenAPI 3.1 document rewritten as OpenAPI 3.0.

    Args:
        document: the 3.1 document (left unchanged).
    """
    doc = copy.deepcopy(document)
    doc["openapi"] = OPENAPI_30
    doc.pop("webhooks", None)
    doc.pop("jsonSchemaDialect", None)
    doc.setdefault("paths", {})
    info = doc.setdefault("info", {})
    summary = info.pop("summary", None)
    if summary:
        info["description"] = "\n\n".join(filter(None, [summary, info.get("description")]))
    if isinstance(info.get("license"), dict):
        info["license"].pop("identifier", None)
    for item in doc["paths"].values():
        _path_item(item)
    components = doc.get("components", {})
    for name in ("schemas",):
        for key, schema in components.get(name, {}).items():
            components[name][key] = _schema(schema)
    for parameter in components.get("parameters", {}).values():
        _parameter(parameter)
    for body in components.get("requestBodies", {}).values():
        _content(body)
    for response in components.get("responses", {}).values():
        _response(response)
    for header in components.get("headers", {}).values():
        _parameter(header)
    return doc


def _path_item(item: dict[str, Any]) -> None:
    for parameter in item.get("parameters", []):
        _parameter(parameter)
    for method in _METHODS:
        operation = item.get(method)
        if not isinstance(operation, dict):
            continue
        for parameter in operation.get("parameters", []):
            _parameter(parameter)
        if isinstance(operation.get("requestBody"), dict):
            _content(operation["requestBody"])
        for response in operation.get("responses", {}).values():
            _response(response)
        for callback in operation.get("callbacks", {}).values():
            for nested in callback.values():
                _path_item(nested)


def _parameter(parameter: dict[str, Any]) -> None:
    if isinstance(parameter.get("schema"), dict):
        parameter["schema"] = _schema(parameter["schema"])
    _content(parameter)


def _response(response: dict[str, Any]) -> None:
    _content(response)
    for header in response.get("headers", {}).values():
        _parameter(header)


def _content(holder: dict[str, Any]) -> None:
    for media in holder.get("content", {}).values():
        if isinstance(media.get("schema"), dict):
            media["schema"] = _schema(media["schema"])


def _schema(schema: Any) -> Any:
    """Return a JSON Schema 2020-12 schema (or ``True``/``False``) as an OpenAPI 3.0 schema."""
    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in _DROPPED}
    for key in _ONE:
        if key in out and not (key == "additionalProperties" and isinstance(out[key], bool)):
            out[key] = _schema(out[key])
    for key in _LIST:
        if isinstance(out.get(key), list):
            out[key] = [_schema(s) for s in out[key]]
    for key in _MAP:
        if isinstance(out.get(key), dict):
            out[key] = {name: _schema(s) for name, s in out[key].items()}
    _keywords(out)
    return _nullable(out)


def _keywords(out: dict[str, Any]) -> None:
    """Rewrite, in place, the keywords of one schema that mean something else in 3.0."""
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list):
        examples = out.pop("examples")
        if examples:
            out.setdefault("example", examples[0])
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(exclusive)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[bound] = value
            out[exclusive] = True
    if "prefixItems" in out:
        options = out.pop("prefixItems")
        if out.get("items", {"not": {}}) != {"not": {}}:  # items: false closes the tuple
            options = [*options, out["items"]]
        if len(options) == 1:
            out["items"] = options[0]
        elif options:
            out["items"] = {"anyOf": options}
    encoding = out.pop("contentEncoding", None)
    media = out.pop("contentMediaType", None)
    if out.get("type") == "string" and "format" not in out and (encoding or media):
        out["format"] = "byte" if encoding == "base64" else "binary"


def _nullable(out: dict[str, Any]) -> dict[str, Any]:
    """Turn a ``null`` type or a ``{"type": "null"}`` alternative into ``nullable: true``."""
    kind = out.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        if len(kinds) == 1:
            out["type"] = kinds[0]
        else:
            del out["type"]
            if kinds:
                out["anyOf"] = [{"type": k} for k in kinds]
    elif kind == "null":
        del out["type"]
        out.update(nullable=True, enum=[None])
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if not isinstance(options, list):
            continue
        rest = [s for s in options if s != {"nullable": True, "enum": [None]}]
        if len(rest) == len(options) or not rest:
            continue
        del out[key]
        out["nullable"] = True
        if len(rest) > 1:
            out[key] = rest
        elif "$ref" in rest[0]:
            out["allOf"] = [rest[0], *out.get("allOf", [])]
        else:
            out = {**rest[0], **out}
    return out
