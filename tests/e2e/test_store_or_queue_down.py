"""What billing is told when the queue or the job store is down while it submits."""

from __future__ import annotations

import time

from pipeline import customer_params, customers, new_domain

from bss.broker import make_broker, send_job
from bss.jobs import sweep
from bss.tools import free_port
from web import create_app


def _post(client, tenant, params):
    return client.post(
        "/api/v1/jobs",
        json={"instance": tenant.instance, "operation": "customer.create", "params": params},
        headers={"Authorization": f"Bearer {tenant.api_key}"},
    )


def test_a_job_accepted_while_the_queue_is_down_is_202_and_runs_once_it_is_back(tenant):
    stack = tenant.stack
    # A web process whose Redis (or RabbitMQ) is not there (nothing listens on that port)
    nowhere = f"127.0.0.1:{free_port()}"
    broker = f"amqp://guest:guest@{nowhere}/%2F" if stack.settings.broker_url else ""
    down = stack.settings.model_copy(
        update={"redis_url": f"redis://{nowhere}/0", "broker_url": broker}
    )
    client = create_app(down).test_client()
    domain = new_domain()
    resp = _post(client, tenant, customer_params(domain))
    # The row is written: the job is accepted, and the answer says its start is delayed
    assert resp.status_code == 202, resp.get_json()
    job = resp.get_json()
    assert job["state"] == "queued"
    assert "queue is unreachable" in job["notice"] and "Do not submit it again" in job["notice"]
    assert tenant.job(job["id"])["state"] == "queued"
    # Once the queue answers again, the scheduler's sweep hands it to a worker
    settings = stack.settings.model_copy(update={"resend_after_seconds": 0.0})
    broker = make_broker(settings)
    deadline = time.monotonic() + 60
    while tenant.job(job["id"])["state"] != "succeeded" and time.monotonic() < deadline:
        sweep(settings, lambda j: send_job(broker, j))
        time.sleep(0.5)
    assert tenant.job(job["id"])["state"] == "succeeded"
    assert len(customers(stack.sandbox, domain)) == 1


def test_a_job_that_could_not_be_recorded_is_503_with_retry_after(tenant, tmp_path):
    stack = tenant.stack
    gone = stack.settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'no-such-dir' / 'bss.db'}"}
    )
    resp = _post(create_app(gone).test_client(), tenant, customer_params(new_domain()))
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    error = resp.get_json()["error"]
    assert error["code"] == "unavailable" and "nothing was recorded" in error["message"]
