"""/batch with long request ids: folded headers are unfolded, answers are never folded."""

from __future__ import annotations

import json
import re
import uuid

import requests
from googleapiclient.http import BatchHttpRequest

from .helpers import ORDER, USER

SKUS = {
    # request id (~30+ characters, as a client keying calls by SKU would pick) -> skuId
    "Google-Workspace-Business-Starter-1010020027": "1010020027",
    "Google-Workspace-Business-Standard-1010020028": "1010020028",
    "Google-Drive-storage-20GB-xx": "Google-Vault",
}


def test_long_request_ids_each_get_their_own_answer(world, reseller, sandbox):
    # Given a customer with an admin, created outside our reseller's batch
    sandbox.post(
        "/_sandbox/customers",
        {
            "customerDomain": "acme.example",
            "reseller": world.reseller,
            "admin_email": "boss@acme.example",
        },
    )
    directory = world.service("admin", "directory_v1")
    results: dict[str, tuple] = {}

    def collect(request_id, response, exception):
        results[request_id] = (response, exception)

    # When one batch carries calls under ids long enough for the library to fold Content-ID
    batch = BatchHttpRequest(callback=collect, batch_uri=world.origin + "/batch")
    for request_id, sku_id in SKUS.items():
        body = {
            "skuId": sku_id,
            "plan": {"planName": "FLEXIBLE"},
            "seats": {"maximumNumberOfSeats": 5},
        }
        batch.add(
            reseller.subscriptions().insert(customerId="acme.example", body=body),
            request_id=request_id,
        )
    free_id, user_id = str(uuid.uuid4()), "user-" + str(uuid.uuid4())
    batch.add(reseller.customers().get(customerId="free.example"), request_id=free_id)
    batch.add(directory.users().get(userKey="boss@acme.example"), request_id=user_id)
    batch.execute()

    # Then every callback got its own answer, under its own id
    assert set(results) == {*SKUS, free_id, user_id}
    for request_id, sku_id in SKUS.items():
        response, exception = results[request_id]
        assert exception is None, exception
        assert response["skuId"] == sku_id
    assert results[free_id][1].resp.status == 404
    assert results[user_id][0]["primaryEmail"] == "boss@acme.example"
    subscriptions = {s["skuId"] for s in sandbox.state()["subscriptions"]}
    assert subscriptions == set(SKUS.values())


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    chunks = body.split(b"--" + boundary)
    assert chunks[-1].strip() == b"--", chunks[-1]
    return [c.removeprefix(b"\r\n").removesuffix(b"\r\n") for c in chunks[1:-1]]


def test_folded_headers_are_unfolded_and_echoed_on_one_line(world, sandbox):
    # Given an access token and a batch written by hand, headers folded as RFC 5322 allows
    token = sandbox.tokens(world.client["client_id"], world.admin, [ORDER, USER])["access_token"]
    base = "a3d7b5e2-7d1c-4a9e-9a51-0f2b9c1d8e77"
    body = (
        # CRLF, Content-ID folded in its middle, Authorization folded, a JSON-less GET
        "--XyZ\r\n"
        "Content-Type: application/http\r\n"
        f"Content-ID: <{base} +\r\n Google-Drive-storage-20GB-xx>\r\n"
        "\r\n"
        "GET /apps/reseller/v1/customers/free.example HTTP/1.1\r\n"
        f"Authorization: Bearer\r\n\t{token}\r\n"
        "X-Note: first line\r\n  second line\r\n"
        "\r\n"
        "\r\n"
        # LF only, Content-ID folded straight after the colon, no blank line and no body
        "--XyZ\n"
        "Content-Type: application/http\n"
        f"Content-ID:\n <{base} + {'x' * 40}>\n"
        "\n"
        "GET /admin/directory/v1/users/admin%40reseller.example?projection=basic HTTP/1.1\n"
        f"Authorization: Bearer {token}\n"
        # a Content-ID without angle brackets, and an absolute URI
        "--XyZ\r\n"
        "Content-Type: application/http\r\n"
        "Content-ID: item3\r\n"
        "\r\n"
        f"GET {world.origin}/apps/reseller/v1/customers/none.example HTTP/1.1\r\n"
        "\r\n"
        "\r\n"
        "--XyZ--\r\n"
    ).encode()

    # When it is posted to /batch
    response = requests.post(
        world.origin + "/batch",
        data=body,
        headers={"Content-Type": 'multipart/mixed; boundary="XyZ"'},
        timeout=30,
    )

    # Then each answer carries its Content-ID unfolded, on one line, and nothing is folded
    assert response.status_code == 200, response.text
    boundary = re.search(r"boundary=(\S+)", response.headers["Content-Type"]).group(1)
    first, second, third = _parts(response.content, boundary.encode())
    for part in (first, second, third):
        head, _, rest = part.partition(b"\r\n\r\n")
        inner_head = rest.partition(b"\r\n\r\n")[0]
        lines = head.split(b"\r\n") + inner_head.split(b"\r\n")
        assert not [line for line in lines if line[:1] in (b" ", b"\t", b"")], part
        assert b"\n" not in head.replace(b"\r\n", b"")
    assert first.startswith(
        b"Content-Type: application/http\r\n"
        b"Content-ID: <response-" + base.encode() + b" + Google-Drive-storage-20GB-xx>\r\n\r\n"
        b"HTTP/1.1 404 Not Found\r\n"
    )
    assert b"Content-ID: <response-" + base.encode() + b" + " + b"x" * 40 + b">\r\n" in second
    assert b"HTTP/1.1 200 OK\r\n" in second
    user = json.loads(second.partition(b"\r\n\r\n")[2].partition(b"\r\n\r\n")[2])
    assert user["primaryEmail"] == "admin@reseller.example"
    # Google answers a bare id as response-<id>; this call had no credentials
    assert b"Content-ID: response-item3\r\n" in third
    assert b"HTTP/1.1 401 Unauthorized\r\n" in third
    # and Content-Length counts the bytes of each inner answer
    for part in (first, second, third):
        inner = part.partition(b"\r\n\r\n")[2]
        head, _, content = inner.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        assert length == len(content)


def test_a_malformed_part_refuses_the_batch_before_any_call_runs(world, sandbox):
    # Given a batch whose second part is not an HTTP request
    token = sandbox.tokens(world.client["client_id"], world.admin, [ORDER])["access_token"]
    body = (
        "--b\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\n"
        "GET /apps/reseller/v1/customers/free.example HTTP/1.1\r\n"
        f"Authorization: Bearer {token}\r\n\r\n\r\n"
        "--b\r\nContent-Type: application/http\r\nContent-ID: <2>\r\n\r\n"
        "GET /apps/reseller/v1/customers/free.example HTTP/1.1\r\n"
        "this line has no colon\r\n\r\n\r\n"
        "--b--\r\n"
    ).encode()
    response = requests.post(
        world.origin + "/batch",
        data=body,
        headers={"Content-Type": "multipart/mixed; boundary=b"},
        timeout=30,
    )
    # Then the whole batch is refused, and not even its good part reached the API
    assert response.status_code == 400
    assert "no colon" in response.json()["error"]["message"]
    assert sandbox.calls("reseller.*") == []
