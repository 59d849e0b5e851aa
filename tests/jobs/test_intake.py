"""Accepting an order over the billing API in one transaction (bss.jobs.intake): written sent or
held by its distributor's share, one timeline line or two, one commit, one send; replays,
conflicts, secrets and a broker away as before. Real SQLite (or PostgreSQL), no broker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bss.accounts import create_api_key, revoke_api_key
from bss.crypto import vault_from_settings
from bss.db import get_engine, session_scope
from bss.errors import IdempotencyConflict, NotFound, ValidationFailed
from bss.jobs import Accepted, IdempotencyHeader, accept_job, set_max_in_flight, sweep
from bss.jobs.fairness import claim_turns
from bss.models import Distributor, Job, JobEvent, JobSecret, JobState
from tests.support.samples import CUSTOMER, submit
from web import create_app


def order(n: int = 0) -> dict[str, Any]:
    return {**CUSTOMER, "domain": f"c{n}-{uuid.uuid4().hex[:6]}.example"}


def accept(settings, tenant, params=None, *, send=None, **kw) -> Accepted:
    args = {"instance_name": "main", "operation": "customer.create"} | kw
    with session_scope(settings.database_url) as s:
        return accept_job(
            s,
            settings,
            distributor_id=tenant.id,
            params=params if params is not None else order(),
            send=send if send is not None else (lambda _job_id: None),
            vault=vault_from_settings(settings),
            **args,
        )


def row(settings, job_id: str) -> Job:
    with session_scope(settings.database_url) as s:
        return s.get(Job, job_id)


def timeline(settings, job_id: str) -> list[str]:
    with session_scope(settings.database_url) as s:
        return list(
            s.exec(
                select(JobEvent.message).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
            ).all()
        )


def cap(settings, tenant, most: int | None) -> None:
    with session_scope(settings.database_url) as s:
        set_max_in_flight(s, s.get(Distributor, tenant.id), most)


def test_an_order_with_room_is_written_sent_and_sent_once(settings, tenant):
    sent: list[str] = []
    accepted = accept(settings, tenant, {**CUSTOMER, "domain": "ACME-1.example"}, send=sent.append)
    job = row(settings, accepted.job.id)
    assert accepted.created and not accepted.broker_away
    assert sent == [job.id]
    assert job.state == JobState.QUEUED and job.enqueued_at is not None and job.wait_reason is None
    assert job.params["domain"] == "acme-1.example" and job.customer_domain == "acme-1.example"
    assert timeline(settings, job.id) == ["Accepted"]
    # The answer is the row as written
    assert (accepted.job.params, accepted.job.state) == (job.params, job.state)


def test_orders_beyond_the_share_are_held_saying_why_in_the_answer_and_the_timeline(
    settings, tenant
):
    # Given a distributor that may have 2 jobs in flight
    cap(settings, tenant, 2)
    sent: list[str] = []
    # When billing sends four
    answers = [accept(settings, tenant, order(n), send=sent.append) for n in range(4)]
    ids = [a.job.id for a in answers]
    # Then two are sent, and the others are held, each saying why in words, once
    assert sent == ids[:2]
    third = "Queued until one of this distributor's 2 jobs in progress ends; it runs 2 at a time."
    fourth = "Queued behind 1 earlier job of this distributor; it runs 2 at a time."
    assert [row(settings, i).wait_reason for i in ids] == [None, None, third, fourth]
    assert [a.job.wait_reason for a in answers] == [None, None, third, fourth]
    assert [row(settings, i).enqueued_at is None for i in ids] == [False, False, True, True]
    assert timeline(settings, ids[3]) == ["Accepted", fourth]
    assert not any(a.broker_away for a in answers)


def test_older_held_jobs_go_first_when_there_is_room(settings, tenant):
    # Given two jobs held whose release was lost, and room for two
    held = [submit(settings, tenant, params=order(n)) for n in range(2)]
    cap(settings, tenant, 2)
    sent: list[str] = []
    # When a new order comes
    accepted = accept(settings, tenant, send=sent.append)
    # Then the older ones take the room, and the new one waits behind them, saying why
    assert sent == held
    why = "Queued until one of this distributor's 2 jobs in progress ends; it runs 2 at a time."
    assert row(settings, accepted.job.id).wait_reason == accepted.job.wait_reason == why
    assert timeline(settings, accepted.job.id) == ["Accepted", why]


def test_a_job_accepted_while_the_broker_is_away_stays_held_for_the_sweep(settings, tenant):
    def away(_job_id: str) -> None:
        raise ConnectionError("redis is down")

    accepted = accept(settings, tenant, send=away)
    # Accepted (the row is the record), the answer says its start is delayed
    assert accepted.created and accepted.broker_away
    # And it takes no slot while nothing runs it: the sweep sends it
    assert row(settings, accepted.job.id).enqueued_at is None
    sent: list[str] = []
    sweep(settings, sent.append)
    assert accepted.job.id in sent


def test_a_repeated_key_returns_the_first_job_and_another_body_is_refused(settings, tenant):
    params = order()
    first = accept(settings, tenant, params, idempotency_key="order-1")
    again = accept(settings, tenant, params, idempotency_key="order-1")
    assert first.created and not again.created and again.job.id == first.job.id
    with pytest.raises(IdempotencyConflict, match=first.job.id):
        accept(settings, tenant, order(), idempotency_key="order-1")
    # A body that would be refused on its own is still a conflict of the key, as before
    with pytest.raises(IdempotencyConflict):
        accept(settings, tenant, {"domain": "not a domain"}, idempotency_key="order-1")
    with pytest.raises(IdempotencyConflict):
        accept(settings, tenant, params, idempotency_key="order-1", instance_name="nope")
    with session_scope(settings.database_url) as s:
        mine = s.exec(
            select(Job).where(Job.distributor_id == tenant.id, Job.idempotency_key == "order-1")
        ).all()
        assert len(mine) == 1
        assert len(timeline(settings, first.job.id)) == 1


def test_a_refused_order_writes_nothing(settings, tenant):
    with pytest.raises(ValidationFailed):
        accept(settings, tenant, {"domain": "not a domain"})
    with pytest.raises(NotFound, match="No instance named 'nope'"):
        accept(settings, tenant, instance_name="nope")
    with session_scope(settings.database_url) as s:
        assert s.exec(select(Job).where(Job.distributor_id == tenant.id)).all() == []


def test_secrets_are_kept_encrypted_never_in_the_row_and_checked_on_a_replay(settings, tenant):
    params = {
        "primary_email": f"grace@{uuid.uuid4().hex[:6]}.example",
        "given_name": "Grace",
        "family_name": "Hopper",
        "password": "Correct-horse-42",
    }
    first = accept(
        settings, tenant, params, operation="user.create_admin", idempotency_key="admin-1"
    )
    job = row(settings, first.job.id)
    assert job.params["password"] == "<secret>"
    assert "Correct-horse-42" not in str(job.params) + str(first.job.params)
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        [secret] = s.exec(select(JobSecret).where(JobSecret.job_id == job.id)).all()
        assert vault.decrypt(secret.value_enc) == "Correct-horse-42" and not secret.reveal
    again = accept(
        settings, tenant, params, operation="user.create_admin", idempotency_key="admin-1"
    )
    assert again.job.id == job.id
    with pytest.raises(IdempotencyConflict):
        accept(
            settings,
            tenant,
            {**params, "password": "Another-horse-42"},
            operation="user.create_admin",
            idempotency_key="admin-1",
        )


def test_a_weight_or_cap_changed_here_takes_effect_at_once(settings, tenant):
    sent: list[str] = []
    accept(settings, tenant, send=sent.append)  # the distributor's terms are now known here
    cap(settings, tenant, 1)
    later = accept(settings, tenant, send=sent.append)
    assert len(sent) == 1 and "it runs 1 at a time" in (later.job.wait_reason or "")


def test_a_job_ending_with_nothing_held_costs_one_statement(settings, tenant):
    accepted = accept(settings, tenant)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = get_engine(settings.database_url)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(settings.database_url) as s:
            claimed = claim_turns(s, settings, tenant.id)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert claimed.ids == [] and len(statements) == 1, statements
    assert row(settings, accepted.job.id).enqueued_at is not None


# Over HTTP


def test_the_api_answers_202_with_the_job_then_200_for_its_replay(api, settings, tenant):
    body = {"instance": "main", "operation": "customer.create", "params": order()}
    first = api(body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 202
    job = first.get_json()
    assert job["instance"] == "main" and job["state"] == "queued" and job["attempts"] == 0
    assert job["created_at"] == job["updated_at"] and job["wait_reason"] is None
    assert "notice" not in job or job["notice"] is None
    assert first.headers["Location"].endswith(f"/api/v1/jobs/{job['id']}")
    assert api.sent == [job["id"]]  # type: ignore[attr-defined]
    replay = api(body, **{"Idempotency-Key": "k-1"})
    assert replay.status_code == 200 and replay.get_json()["id"] == job["id"]
    assert api.sent == [job["id"]]  # type: ignore[attr-defined]
    other = api({**body, "params": order()}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"


def test_a_revoked_key_stops_working_at_once(api, settings, tenant):
    body = {"instance": "main", "operation": "customer.create", "params": order()}
    assert api(body).status_code == 202
    with session_scope(settings.database_url) as s:
        revoke_api_key(s, distributor=s.merge(tenant), key_id=api.key[:12])  # type: ignore[attr-defined]
    refused = api({**body, "params": order()})
    assert refused.status_code == 401


def test_the_header_models_schema_is_built_once_and_is_pydantics():
    once = IdempotencyHeader.model_json_schema()
    assert IdempotencyHeader.model_json_schema() is once
    assert once == IdempotencyHeader.model_json_schema(mode="validation")


def test_the_api_says_when_the_queue_is_unreachable(settings, tenant):
    with session_scope(settings.database_url) as s:
        key = create_api_key(s, distributor=s.merge(tenant), label="away")
    app = create_app(settings)

    def away(_job_id: str) -> None:
        raise ConnectionError("redis is down")

    app.extensions["bss.send"] = away
    resp = app.test_client().post(
        "/api/v1/jobs",
        json={"instance": "main", "operation": "customer.create", "params": order()},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 202
    assert "queue is unreachable" in resp.get_json()["notice"]
    assert row(settings, resp.get_json()["id"]).enqueued_at is None
