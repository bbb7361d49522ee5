"""The OpenAPI 3.0 rewrite that the bundled Swagger UI of ``/docs`` reads."""

from __future__ import annotations

import copy
import re

import pytest
from fastapi.testclient import TestClient

from marketpulse.serve import LakeData, LakeMarket, ServeSettings, create_app
from marketpulse.serve.openapi30 import as_openapi_30

from .conftest import BASE_URL

#: Keywords of JSON Schema 2020-12 that OpenAPI 3.0 schemas do not have.
ONLY_31 = {"const", "examples", "prefixItems", "$defs", "$schema", "contentMediaType"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    lake = LakeData(tmp_path_factory.mktemp("empty") / "lake")
    with TestClient(create_app(ServeSettings(), lake, LakeMarket(lake)), base_url=BASE_URL) as c:
        yield c


def _schemas(node, inside_schema=False):
    """Yield every schema of an OpenAPI document (any dict under a ``schema``/``schemas`` key)."""
    if isinstance(node, dict):
        if inside_schema:
            yield node
        for key, value in node.items():
            if key == "schemas" and isinstance(value, dict):
                for schema in value.values():
                    yield from _schemas(schema, True)
            elif key in ("properties", "$defs"):
                for schema in value.values():
                    yield from _schemas(schema, True)
            elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
                for schema in value:
                    yield from _schemas(schema, True)
            elif key in ("schema", "items", "not", "additionalProperties"):
                yield from _schemas(value, True)
            elif not inside_schema:
                yield from _schemas(value, False)
    elif isinstance(node, list) and not inside_schema:
        for item in node:
            yield from _schemas(item, False)


def test_the_docs_page_reads_a_30_document_of_the_same_api(client):
    docs = client.get("/docs").text
    assert re.search(r"url: '/openapi-3\.0\.json'", docs)
    full = client.get("/openapi.json").json()
    assert full["openapi"].startswith("3.1.")
    response = client.get("/openapi-3.0.json")
    assert response.status_code == 200
    doc = response.json()
    assert re.fullmatch(r"3\.0\.\d+", doc["openapi"])
    assert "summary" not in doc["info"] and full["info"]["summary"] in doc["info"]["description"]
    assert set(doc["paths"]) == set(full["paths"]) and "/api/bars" in doc["paths"]
    for path, item in full["paths"].items():
        for method, operation in item.items():
            rewritten = doc["paths"][path][method]
            assert rewritten["operationId"] == operation["operationId"]
            names = [p["name"] for p in rewritten.get("parameters", [])]
            assert names == [p["name"] for p in operation.get("parameters", [])]
    schemas = list(_schemas(doc))
    assert len(schemas) > 20  # the walk reaches the parameters' and responses' schemas
    for schema in schemas:
        assert schema.get("type") != "null" and not isinstance(schema.get("type"), list), schema
        assert not ONLY_31 & set(schema), schema
        assert isinstance(schema.get("exclusiveMinimum", True), bool), schema
    start = next(p for p in doc["paths"]["/api/bars"]["get"]["parameters"] if p["name"] == "start")
    assert start["schema"]["type"] == "string" and start["schema"]["nullable"] is True
    assert start["schema"]["title"] == "Start"


def test_null_alternatives_become_nullable():
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {},
        "components": {
            "schemas": {
                "A": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "title": "A"},
                "B": {"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]},
                "C": {"type": ["string", "null"], "default": None},
                "D": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
                "E": {"type": ["string", "integer"]},
            }
        },
    }
    schemas = as_openapi_30(document)["components"]["schemas"]
    assert schemas["A"] == {"type": "integer", "minimum": 1, "title": "A", "nullable": True}
    assert schemas["B"] == {"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": True}
    assert schemas["C"] == {"type": "string", "nullable": True, "default": None}
    assert schemas["D"] == {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}
    assert schemas["E"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}


def test_31_keywords_are_rewritten_in_schemas_but_not_in_names_or_examples():
    tuple_ = {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}
    body = {
        "type": "object",
        "properties": {  # properties named like keywords
            "const": {"const": "fixed"},
            "examples": {**tuple_, "items": False},
            "file": {"type": "string", "contentMediaType": "image/png"},
        },
    }
    parameter_examples = {"first": {"value": 3}}
    parameter = {
        "name": "n",
        "in": "query",
        "schema": {"type": "number", "exclusiveMinimum": 0, "examples": [2]},
        "examples": parameter_examples,
    }
    operation = {
        "parameters": [parameter],
        "responses": {"200": {"description": "ok", "content": {"text/json": {"schema": body}}}},
    }
    license_ = {"name": "MIT", "identifier": "MIT"}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1", "summary": "S", "license": license_},
        "webhooks": {"new": {}},
        "paths": {"/x": {"get": operation}},
    }
    original = copy.deepcopy(document)
    doc = as_openapi_30(document)
    assert document == original  # the 3.1 document is left as it was
    info = {"title": "t", "version": "1", "description": "S", "license": {"name": "MIT"}}
    assert doc["info"] == info
    assert "webhooks" not in doc
    rewritten = doc["paths"]["/x"]["get"]
    schema = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "example": 2}
    assert rewritten["parameters"][0]["schema"] == schema
    assert rewritten["parameters"][0]["examples"] == parameter_examples  # 3.0 has these too
    properties = rewritten["responses"]["200"]["content"]["text/json"]["schema"]["properties"]
    assert set(properties) == {"const", "examples", "file"}
    assert properties["const"] == {"enum": ["fixed"]}
    either = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert properties["examples"] == {"type": "array", "items": either}
    assert properties["file"] == {"type": "string", "format": "binary"}
