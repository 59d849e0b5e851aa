"""Discovery documents: clients that build their services at run time, as GAM does."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from googleapiclient.discovery import build
from googleapiclient.errors import UnknownApiNameOrVersion

from .helpers import customer_body

BY_PATH = "/discovery/v1/apis/{api}/{apiVersion}/rest"
BY_HOST = "/$discovery/rest?version={apiVersion}"


def discovered(world, api, version, form=BY_PATH, credentials=None):
    """A service built the way GAM builds one: from discovery fetched at run time."""
    return build(
        api,
        version,
        credentials=credentials or world.credentials(),
        static_discovery=False,
        cache_discovery=False,
        discoveryServiceUrl=world.origin + form,
    )


def test_services_built_from_discovery_call_the_sandbox(world, sandbox):
    # Given services built from the sandbox's discovery documents, with no api_endpoint
    reseller = discovered(world, "reseller", "v1")
    directory = discovered(world, "admin", "directory_v1")
    licensing = discovered(world, "licensing", "v1")
    # When they make calls
    customer = reseller.customers().insert(body=customer_body("acme.example")).execute()
    got = reseller.customers().get(customerId="acme.example").execute()
    users = directory.users().list(customer=customer["customerId"]).execute()
    licenses = (
        licensing.licenseAssignments()
        .listForProduct(productId="Google-Apps", customerId="acme.example")
        .execute()
    )
    # Then the calls reached the sandbox
    assert got["customerId"] == customer["customerId"]
    assert users.get("users", []) == []
    assert licenses["kind"] == "licensing#licenseAssignmentList"
    methods = [c["method"] for c in sandbox.calls()]
    assert [m for m in methods if not m.startswith("oauth2.")] == [
        "reseller.customers.insert",
        "reseller.customers.get",
        "directory.users.list",
        "licensing.licenseAssignments.listForProduct",
    ]


def test_the_document_points_every_url_at_the_origin_asked(world):
    doc = requests.get(world.origin + "/discovery/v1/apis/reseller/v1/rest", timeout=10).json()
    assert doc["id"] == "reseller:v1"
    root = world.origin + "/"
    assert (doc["rootUrl"], doc["baseUrl"], doc["mtlsRootUrl"]) == (root, root, root)
    # A client that rewrote only the host name keeps talking to that host
    port = urlsplit(world.origin).port
    alias = f"reseller.localhost:{port}"
    aliased = requests.get(
        world.origin + "/$discovery/rest?version=v1", headers={"Host": alias}, timeout=10
    ).json()
    assert (aliased["id"], aliased["rootUrl"]) == ("reseller:v1", f"http://{alias}/")


def test_the_per_host_form_decides_the_api_by_host_or_by_version(world):
    port = urlsplit(world.origin).port
    for host, version, api_id in (
        (f"licensing.localhost:{port}", "v1", "licensing:v1"),
        (f"gmail.googleapis.com:{port}", "v1", "gmail:v1"),
        (f"127.0.0.1:{port}", "directory_v1", "admin:directory_v1"),
        (f"127.0.0.1:{port}", "v2", "oauth2:v2"),
    ):
        answer = requests.get(
            f"{world.origin}/$discovery/rest?version={version}",
            headers={"Host": host},
            timeout=10,
        )
        assert (answer.status_code, answer.json()["id"]) == (200, api_id), host


def test_a_service_builds_from_the_per_host_form(world, customer):
    directory = discovered(world, "admin", "directory_v1", form=BY_HOST)
    assert directory.users().list(customer=customer["customerId"]).execute()["kind"] == (
        "admin#directory#users"
    )


def test_an_ambiguous_version_says_how_to_name_the_api(world):
    answer = requests.get(world.origin + "/$discovery/rest?version=v1", timeout=10)
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert "/discovery/v1/apis/" in message and "reseller" in message


def test_an_api_the_sandbox_does_not_model_is_unknown(world):
    # Google's discovery service answers 404 for an unknown API or version
    for path in ("/discovery/v1/apis/calendar/v3/rest", "/discovery/v1/apis/reseller/v9/rest"):
        answer = requests.get(world.origin + path, timeout=10)
        assert answer.status_code == 404
        assert answer.json()["error"]["errors"][0]["reason"] == "notFound"
    # which the Google client reports as an unknown API
    with pytest.raises(UnknownApiNameOrVersion):
        discovered(world, "calendar", "v3")


def test_oauth2_builds_and_batches_go_to_the_sandbox(world):
    oauth2 = discovered(world, "oauth2", "v2")
    assert oauth2._baseUrl.startswith(world.origin)
    reseller = discovered(world, "reseller", "v1")
    # new_batch_http_request() takes rootUrl + batchPath from the document
    assert reseller.new_batch_http_request()._batch_uri == world.origin + "/batch"


def test_the_directory_lists_what_is_modelled(world):
    listing = requests.get(world.origin + "/discovery/v1/apis", timeout=10).json()
    assert {item["id"] for item in listing["items"]} == {
        "reseller:v1",
        "admin:directory_v1",
        "licensing:v1",
        "gmail:v1",
        "oauth2:v2",
    }
    for item in listing["items"]:
        assert item["discoveryRestUrl"].startswith(world.origin + "/discovery/v1/apis/")
