"""Check API responses against the schemas of the bundled discovery documents."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .helpers import DISCOVERY

DOCUMENTS = {
    "reseller": "reseller.v1.json",
    "directory": "admin.directory_v1.json",
    "licensing": "licensing.v1.json",
    "gmail": "gmail.v1.json",
}


@cache
def document(api: str) -> dict:
    return json.loads((DISCOVERY / DOCUMENTS[api]).read_text())


def problems(api: str, schema_name: str, value: Any) -> list[str]:
    """Every field that the discovery schema does not know or types differently."""
    doc = document(api)
    found: list[str] = []
    _check(doc, doc["schemas"][schema_name], value, schema_name, found)
    return found


def _check(doc: dict, schema: dict, value: Any, path: str, found: list[str]) -> None:
    if "$ref" in schema:
        schema = doc["schemas"][schema["$ref"]]
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            found.append(f"{path}: expected an object, got {value!r}")
            return
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                _check(doc, properties[key], item, f"{path}.{key}", found)
            elif extra is not None:
                _check(doc, extra, item, f"{path}.{key}", found)
            else:
                found.append(f"{path}.{key}: not in the discovery schema")
    elif kind == "array":
        if not isinstance(value, list):
            found.append(f"{path}: expected an array, got {value!r}")
            return
        for index, item in enumerate(value):
            _check(doc, schema.get("items", {}), item, f"{path}[{index}]", found)
    elif kind == "string":
        if not isinstance(value, str):
            found.append(f"{path}: expected a string, got {value!r}")
        elif schema.get("format") in ("int64", "uint64") and not value.lstrip("-").isdigit():
            found.append(f"{path}: expected an {schema['format']} string, got {value!r}")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            found.append(f"{path}: expected an integer, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            found.append(f"{path}: expected a boolean, got {value!r}")
    elif kind == "number" and not isinstance(value, int | float):
        found.append(f"{path}: expected a number, got {value!r}")


def assert_schema(api: str, schema_name: str, value: Any) -> None:
    found = problems(api, schema_name, value)
    assert not found, found
