"""--state FILE: answered changes survive SIGKILL, the files stay bounded, old files load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import requests
from googleapiclient.http import BatchHttpRequest

from .conftest import free_port, start_sandbox, stop_sandbox
from .helpers import ALL_SCOPES, Sandbox, World, customer_body

API = "/apps/reseller/v1"
LICENSING = "/apps/licensing/v1/product/Google-Apps/sku/1010020027/user"


class Box:
    """A sandbox process on a state file that a test may kill and start again."""

    def __init__(self, tmp_path: Path) -> None:
        self.file = tmp_path / "google.json"
        self.journal = tmp_path / "google.json.journal"
        self.log = tmp_path / "sandbox.log"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def control(self) -> Sandbox:
        return Sandbox(f"http://127.0.0.1:{self.port}")

    def start(self) -> None:
        self.proc = start_sandbox(self.port, self.log, "--quiet", "--state", str(self.file))

    def kill(self) -> None:
        """SIGKILL: nothing runs on the way out."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc.log_file.close()  # type: ignore[attr-defined]
        self.proc = None

    def restart_after_kill(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            stop_sandbox(self.proc)
            self.proc = None


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    running = Box(tmp_path)
    yield running
    running.stop()


def http(world: World, user: str | None = None) -> requests.Session:
    """Plain HTTP with a fresh access token for the reseller's admin (every API's scope)."""
    token = world.sandbox.tokens(world.client["client_id"], user or world.admin, ALL_SCOPES)
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + token["access_token"]
    return session


def ok(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def test_answered_changes_survive_sigkill(box: Box) -> None:
    # Given a sandbox on a state file, and a customer with a subscription and a user, each
    # made by an earlier call than the changes below
    world = World.seed(box.control)
    google = http(world)
    origin = box.control.url
    cid = ok(google.post(origin + API + "/customers", json=customer_body("kept.example")))[
        "customerId"
    ]
    box.control.post(f"/_sandbox/customers/{cid}/accept-tos")
    sub = ok(
        google.post(
            f"{origin}{API}/customers/{cid}/subscriptions",
            json={
                "skuId": "1010020027",
                "plan": {"planName": "FLEXIBLE"},
                "seats": {"maximumNumberOfSeats": 5},
            },
        )
    )["subscriptionId"]
    user = {
        "primaryEmail": "it@kept.example",
        "password": "correct horse battery",
        "name": {"givenName": "It", "familyName": "Admin"},
    }
    ok(google.post(origin + "/admin/directory/v1/users", json=user))
    refresh = box.control.tokens(world.client["client_id"], world.admin, ALL_SCOPES)

    # When calls change those records in place (seats, suspension, admin role, a license),
    # the clock moves, and the process is SIGKILLed right after the last answer
    ok(
        google.post(
            f"{origin}{API}/customers/{cid}/subscriptions/{sub}/changeSeats",
            json={"maximumNumberOfSeats": 7},
        )
    )
    ok(google.post(f"{origin}{API}/customers/{cid}/subscriptions/{sub}/suspend"))
    makeadmin = f"{origin}/admin/directory/v1/users/it%40kept.example/makeAdmin"
    assert google.post(makeadmin, json={"status": True}).status_code in (200, 204)
    ok(google.post(origin + LICENSING, json={"userId": "it@kept.example"}))
    box.control.post("/_sandbox/clock", {"advance_seconds": 3600})
    box.restart_after_kill()

    # Then Google still holds every answered change
    state = box.control.state()
    customer = next(c for c in state["customers"] if c["customerDomain"] == "kept.example")
    assert customer["customerId"] == cid
    (subscription,) = [s for s in state["subscriptions"] if s["customerId"] == cid]
    assert subscription["subscriptionId"] == sub
    assert subscription["seats"]["maximumNumberOfSeats"] == 7
    assert subscription["status"] == "SUSPENDED"
    assert "RESELLER_INITIATED" in subscription["suspensionReasons"]
    (it,) = [u for u in state["users"] if u["primaryEmail"] == "it@kept.example"]
    assert it["isAdmin"] is True
    assert [lic["userId"] for lic in state["licenses"]] == ["it@kept.example"]
    assert box.control.post("/_sandbox/clock", {"advance_seconds": 0})["offset"] == 3600
    # and the refresh token minted before the kill still gets access tokens
    token = requests.post(
        origin + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh["refresh_token"],
            "client_id": world.client["client_id"],
            "client_secret": world.client["client_secret"],
        },
        timeout=30,
    )
    assert token.status_code == 200, token.text


def test_a_batch_survives_sigkill(box: Box) -> None:
    # Given a sandbox on a state file
    world = World.seed(box.control)
    reseller = world.service("reseller", "v1")
    answers: list[dict] = []
    batch = BatchHttpRequest(
        callback=lambda _id, answer, error: answers.append(answer or {"error": error}),
        batch_uri=world.origin + "/batch",
    )
    # When one batch inserts three customers and the process is SIGKILLed after its answer
    for n in range(3):
        batch.add(reseller.customers().insert(body=customer_body(f"batch{n}.example")))
    batch.execute()
    assert all("customerId" in a for a in answers), answers
    box.restart_after_kill()

    # Then all three are there
    domains = {c["customerDomain"] for c in box.control.state()["customers"]}
    assert {"batch0.example", "batch1.example", "batch2.example"} <= domains


def test_a_torn_last_journal_line_is_ignored(box: Box) -> None:
    # Given an answered change, then a kill in the middle of writing the next journal line
    box.control.post(
        "/_sandbox/resellers", {"domain": "first.example", "admin_email": "a@first.example"}
    )
    box.kill()
    with open(box.journal, "a", encoding="utf-8") as journal:
        journal.write('{"set":{"resellers":{"torn.example":{"domain":"torn.exa')

    # When the sandbox starts again
    box.start()

    # Then it starts, keeps the answered change and drops the torn one
    domains = {r["domain"] for r in box.control.state()["resellers"]}
    assert domains == {"first.example"}
    # and what it answers next is kept too
    box.control.post(
        "/_sandbox/resellers", {"domain": "next.example", "admin_email": "a@next.example"}
    )
    box.restart_after_kill()
    assert {r["domain"] for r in box.control.state()["resellers"]} == {
        "first.example",
        "next.example",
    }


def made(customers: Iterable[dict]) -> set[str]:
    """The domains of the customers the test below made."""
    return {c["customerDomain"] for c in customers if c["customerDomain"].startswith("c")}


def test_the_journal_is_compacted_and_the_files_stay_bounded(box: Box) -> None:
    # Given a sandbox on a state file
    World.seed(box.control)
    largest = 0
    # When 150 customers are made, one call each
    for n in range(150):
        box.control.post(
            "/_sandbox/customers",
            {
                "customerDomain": f"c{n}.example",
                "reseller": "reseller.example",
                "admin_email": f"admin@c{n}.example",
                "subscriptions": [
                    {
                        "skuId": "1010020027",
                        "planName": "FLEXIBLE",
                        "seats": {"maximumNumberOfSeats": 3},
                    }
                ],
            },
        )
        snapshot, journal = box.file.stat().st_size, box.journal.stat().st_size
        # Then the journal never grows far past the snapshot (or 64 KiB while that is smaller)
        assert journal <= max(64 * 1024, snapshot) + 8 * 1024
        largest = max(largest, journal)
    # and it was folded into the snapshot while the sandbox ran
    assert 0 < len(made(json.loads(box.file.read_text())["customers"].values())) < 150
    assert largest > 32 * 1024

    # When it is killed and started again, nothing is missing
    box.restart_after_kill()
    assert len(made(box.control.state()["customers"])) == 150
    # and after a clean stop everything is in the snapshot, the journal empty
    box.stop()
    assert len(made(json.loads(box.file.read_text())["customers"].values())) == 150
    assert box.journal.stat().st_size == 0


def test_a_reset_survives_sigkill(box: Box) -> None:
    # Given a sandbox holding a reseller
    World.seed(box.control)
    # When it is reset, a new reseller is made, and it is killed
    box.control.reset()
    box.control.post(
        "/_sandbox/resellers", {"domain": "after.example", "admin_email": "a@after.example"}
    )
    box.restart_after_kill()
    # Then only what came after the reset is there
    assert [r["domain"] for r in box.control.state()["resellers"]] == ["after.example"]


def test_a_state_file_from_before_the_journal_loads(box: Box) -> None:
    # Given a state file as the sandbox used to write it: indented, sorted, no journal beside
    # it, and without a collection added since
    world = World.seed(box.control)
    creds = world.credentials()
    world.service("reseller", "v1", credentials=creds).customers().insert(
        body=customer_body("old.example")
    ).execute()
    box.stop()
    data = json.loads(box.file.read_text())
    del data["mail"]
    box.file.write_text(json.dumps(data, indent=1, sort_keys=True))
    box.journal.unlink()

    # When the sandbox starts on it
    box.start()

    # Then the customer is there and the stored refresh token works with the Google library
    reseller = world.service("reseller", "v1", credentials=creds)
    assert reseller.customers().get(customerId="old.example").execute()["customerDomain"] == (
        "old.example"
    )
    # and changes to what it loaded survive a kill
    reseller.customers().patch(
        customerId="old.example", body={"phoneNumber": "+44 20 7031 3000"}
    ).execute()
    box.restart_after_kill()
    got = (
        world.service("reseller", "v1", credentials=creds).customers().get(customerId="old.example")
    )
    assert got.execute()["phoneNumber"] == "+44 20 7031 3000"
