"""A request under an API's path that matches no method: Google's JSON 404, in the call log."""

from __future__ import annotations

import google.auth.transport.requests
import requests


def test_unknown_method_is_a_json_404_and_is_logged(sandbox, world, customer):
    # Given a valid access token of the reseller's admin
    token = world.credentials()
    token.refresh(google.auth.transport.requests.Request())
    headers = {"Authorization": f"Bearer {token.token}"}

    # When a client calls a Directory method the sandbox does not model
    answer = requests.get(
        world.origin + "/admin/directory/v1/customer/my_customer/orgunits",
        headers=headers,
        timeout=10,
    )

    # Then it gets the Directory's own 404 body, not an HTML page
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {
        "error": {
            "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
            "code": 404,
            "message": "Not Found",
        }
    }
    # And the call log shows it, with who made it
    [call] = sandbox.calls("unknown")
    assert call["path"] == "/admin/directory/v1/customer/my_customer/orgunits"
    assert call["http_method"] == "GET" and call["status"] == 404
    assert call["user"] == world.admin and call["reason"] == "notFound"


def test_a_known_path_with_a_method_it_lacks_is_404_too(sandbox):
    answer = requests.delete(
        sandbox.url + "/apps/licensing/v1/product/Google-Apps/users", timeout=10
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["errors"][0]["reason"] == "notFound"
    # Gmail answers in its newer shape
    answer = requests.get(sandbox.url + "/gmail/v1/users/me/nothing", timeout=10)
    assert (answer.status_code, answer.json()["error"]["status"]) == (404, "NOT_FOUND")
    assert [c["http_method"] for c in sandbox.calls("unknown")] == ["DELETE", "GET"]


def test_other_paths_keep_flasks_answer(sandbox):
    answer = requests.get(sandbox.url + "/no/such/page", timeout=10)
    assert answer.status_code == 404 and "json" not in answer.headers["Content-Type"]
    assert sandbox.calls("unknown") == []
