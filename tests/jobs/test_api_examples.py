"""The API document's example requests are ones the API accepts, one for every operation."""

from __future__ import annotations

from bss.operations import OPERATIONS, get_operation
from web import create_app


def test_every_operation_has_a_named_example_the_api_accepts(settings):
    doc = create_app(settings).test_client().get("/api/v1/openapi.json").get_json()
    body = doc["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    examples = body["examples"]
    assert set(examples) == set(OPERATIONS)
    for name, example in examples.items():
        request = example["value"]
        assert request["operation"] == name and example["summary"].startswith(name)
        get_operation(name).validate(request["params"])  # raises, listing problems, if refused
        assert "additionalProp1" not in str(request)
