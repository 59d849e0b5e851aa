"""Every operation end to end: billing API → a real worker → the sandbox, then read back."""

from __future__ import annotations

import re

import requests
from pipeline import (
    PLUS,
    STANDARD,
    STARTER,
    accept_tos,
    calls,
    customer_params,
    customers,
    licenses,
    new_domain,
    order_params,
    state,
    subscriptions,
    users,
)
from sqlalchemy import text
from sqlmodel import select

from bss.db import get_engine, session_scope
from bss.models import CustomerMirror


def run(tenant, operation, params, **kw):
    resp = tenant.submit(operation, params, **kw)
    assert resp.status_code == 202, resp.text
    return tenant.wait(resp.json()["id"])


def ok(tenant, operation, params, **kw):
    job = run(tenant, operation, params, **kw)
    assert job["state"] == "succeeded", job
    return job


def sub_of(sandbox, domain, sku):
    [sub] = [s for s in subscriptions(sandbox, domain) if s["skuId"] == sku]
    return sub


def database_text(settings) -> str:
    """Every row of the tables that could hold a secret, as one string."""
    dump = []
    with get_engine(settings.database_url).connect() as conn:
        for table in ("job", "job_event", "job_secret", "webhook_delivery"):
            dump += [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]  # noqa: S608
    return "\n".join(dump)


def test_an_order_creates_customer_admin_subscription_and_mails_the_password_once(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    # When billing orders a customer with its first admin, a subscription and a welcome email
    job = ok(tenant, "order.create", order_params(domain, welcome_email={}))

    # Then every step is done and checkpointed, in order
    assert job["steps_done"] == [
        "customer_check",
        "customer",
        "admin_password",
        "admin_user",
        "admin_role",
        "subscriptions",
        "welcome_email",
    ]
    assert job["result"]["welcome_email"] is True and job["result"]["password_generated"]
    assert "admin_password" not in job["result"]  # the email delivered it
    # And Google holds the customer, its admin and the subscription
    [customer] = customers(sandbox, domain)
    assert customer["customerId"] == job["result"]["customer_id"]
    [admin] = users(sandbox, domain)
    assert admin["primaryEmail"] == f"ada@{domain}" and admin["isAdmin"] is True
    sub = sub_of(sandbox, domain, STARTER)
    assert sub["seats"]["maximumNumberOfSeats"] == 5
    # And the result, in snake_case, says the new subscription waits for Google's terms
    [bought] = job["result"]["subscriptions"]
    assert bought["sku_id"] == STARTER and bought["subscription_id"] == sub["subscriptionId"]
    assert (bought["status"], bought["pending"]) == ("SUSPENDED", "terms_of_service")
    assert bought["admin_console_url"].startswith("https://admin.google.com/")
    assert "Terms of Service" in bought["pending_action"]
    # And the welcome email went to the customer's contact with a password...
    [mail] = [m for m in state(sandbox)["sent_mail"] if domain in m["subject"]]
    assert "it@acme-billing.example.net" in str(mail["to"])
    password = re.search(r"Temporary password: (\S+)", mail["body"]).group(1)
    # ...that appears nowhere in our database
    assert password not in database_text(tenant.stack.settings)


def test_a_generated_password_is_in_the_result_once_then_wiped(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    ok(tenant, "customer.create", customer_params(domain))
    params = {"primary_email": f"root@{domain}", "given_name": "Root", "family_name": "User"}
    job = ok(tenant, "user.create_admin", params)
    # The wait above read the job once: that read carried the password
    first_read = job["result"].get("admin_password")
    assert first_read and len(first_read) >= 12
    assert "admin_password" not in tenant.job(job["id"])["result"]
    assert first_read not in database_text(tenant.stack.settings)
    assert [u["isAdmin"] for u in users(sandbox, domain)] == [True]


def test_a_given_password_is_used_and_never_stored(tenant):
    domain = new_domain()
    ok(tenant, "customer.create", customer_params(domain))
    secret = "Given-Passw0rd-xyz"
    params = {
        "primary_email": f"boss@{domain}",
        "given_name": "Boss",
        "family_name": "User",
        "password": secret,
    }
    resp = tenant.submit("user.create_admin", params)
    assert resp.json()["params"]["password"] == "<secret>"
    job = tenant.wait(resp.json()["id"])
    assert job["state"] == "succeeded" and job["result"]["password_generated"] is False
    assert "admin_password" not in job["result"]
    assert secret not in database_text(tenant.stack.settings)


def test_subscription_operations_follow_googles_rules(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    ok(tenant, "order.create", order_params(domain))
    # Given the customer's admin accepted Google's terms
    accept_tos(sandbox, domain)
    admin = f"ada@{domain}"

    ok(tenant, "subscription.change_seats", {"customer": domain, "sku_id": STARTER, "seats": 8})
    assert sub_of(sandbox, domain, STARTER)["seats"]["maximumNumberOfSeats"] == 8

    ok(tenant, "license.assign", {"customer": domain, "sku_id": STARTER, "users": [admin]})
    assert licenses(sandbox, STARTER) == {admin}

    annual = {"customer": domain, "sku_id": STANDARD, "plan": "ANNUAL_MONTHLY_PAY", "seats": 3}
    created = ok(tenant, "subscription.create", annual)
    assert created["result"]["created"] is True
    assert sub_of(sandbox, domain, STANDARD)["plan"]["planName"] == "ANNUAL"

    # An annual plan cannot lose seats before renewal: refused before calling Google
    before = len(calls(sandbox, "reseller.subscriptions.changeSeats"))
    refused = run(
        tenant, "subscription.change_seats", {"customer": domain, "sku_id": STANDARD, "seats": 2}
    )
    assert refused["state"] == "failed" and refused["attempts"] == 1
    assert refused["error"]["code"] == "refused_by_rule"
    assert refused["error"]["rule"] == "seatsBelowCommitment"
    # Google was not asked, so nothing claims to be its answer
    assert refused["error"]["google_reason"] is None and refused["error"]["google_status"] is None
    assert "renewal" in refused["error"]["hint"]
    assert len(calls(sandbox, "reseller.subscriptions.changeSeats")) == before

    renewal = {"customer": domain, "sku_id": STANDARD, "renewal_type": "SWITCH_TO_PAY_AS_YOU_GO"}
    ok(tenant, "subscription.change_renewal", renewal)
    got = sub_of(sandbox, domain, STANDARD)["renewalSettings"]["renewalType"]
    assert got == "SWITCH_TO_PAY_AS_YOU_GO"

    plan = {"customer": domain, "sku_id": STARTER, "plan": "ANNUAL_YEARLY_PAY", "seats": 8}
    ok(tenant, "subscription.change_plan", plan)
    starter = sub_of(sandbox, domain, STARTER)
    assert starter["plan"]["planName"] == "ANNUAL_YEARLY_PAY"
    assert starter["seats"]["numberOfSeats"] == 8

    ref = {"customer": domain, "sku_id": STARTER}
    ok(tenant, "subscription.suspend", ref)
    assert sub_of(sandbox, domain, STARTER)["status"] == "SUSPENDED"
    ok(tenant, "subscription.activate", ref)
    assert sub_of(sandbox, domain, STARTER)["status"] == "ACTIVE"

    ok(tenant, "license.revoke", {"customer": domain, "sku_id": STARTER, "users": [admin]})
    assert licenses(sandbox, STARTER) == set()

    ok(tenant, "customer.update", {"customer": domain, "phone_number": "+1 650 555 0100"})
    assert customers(sandbox, domain)[0]["phoneNumber"] == "+1 650 555 0100"

    synced = ok(tenant, "customer.sync", {"customer": domain})
    assert synced["result"]["subscriptions"] == 2 and synced["result"]["users"] == 1
    with session_scope(tenant.stack.settings.database_url) as s:
        mirror = s.exec(select(CustomerMirror).where(CustomerMirror.domain == domain)).one()
        assert {x["skuId"] for x in mirror.subscriptions} == {STARTER, STANDARD}
        assert [u["primaryEmail"] for u in mirror.users] == [admin]
        # what billing reads on GET /api/v1/customers/<domain>: confirmed by Google just now
        assert mirror.confirmed_at == mirror.synced_at and mirror.status == "active"

    cancelled = ok(tenant, "subscription.cancel", {"customer": domain, "sku_id": STANDARD})
    assert cancelled["result"]["cancelled"] is True
    assert [s["skuId"] for s in subscriptions(sandbox, domain)] == [STARTER]


def test_a_trial_moves_to_a_paid_plan_and_starts_paid_service(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    ok(tenant, "customer.create", customer_params(domain))
    accept_tos(sandbox, domain)
    trial = {"customer": domain, "sku_id": PLUS, "plan": "TRIAL", "seats": 5}
    ok(tenant, "subscription.create", trial)
    ref = {"customer": domain, "sku_id": PLUS}
    refused = run(tenant, "subscription.start_paid_service", ref)
    assert refused["error"]["rule"] == "trialPlan"
    ok(tenant, "subscription.change_plan", {**ref, "plan": "FLEXIBLE", "seats": 5})
    ok(tenant, "subscription.start_paid_service", ref)
    sub = sub_of(sandbox, domain, PLUS)
    assert sub["plan"]["planName"] == "FLEXIBLE" and not sub["trialSettings"]["isInTrial"]


def test_a_customer_is_transferred_with_its_subscription(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    # Given a customer of another reseller, whose admin gave us a transfer token
    other = f"other-{domain}"
    requests.post(
        f"{sandbox}/_sandbox/resellers",
        json={"domain": other, "admin_email": f"admin@{other}"},
        timeout=10,
    ).raise_for_status()
    requests.post(
        f"{sandbox}/_sandbox/customers",
        json={
            "customerDomain": domain,
            "reseller": other,
            "subscriptions": [
                {"skuId": STARTER, "planName": "FLEXIBLE", "seats": {"maximumNumberOfSeats": 4}}
            ],
        },
        timeout=10,
    ).raise_for_status()
    token = requests.post(
        f"{sandbox}/_sandbox/customers/{domain}/transfer-token", timeout=10
    ).json()["customerAuthToken"]
    # customer.create refuses it, naming the transfer
    refused = run(tenant, "customer.create", customer_params(domain))
    assert refused["error"]["google_reason"] == "managedByAnotherReseller"
    assert "customer.transfer" in refused["error"]["hint"]
    # When billing transfers it
    params = {
        **customer_params(domain),
        "transfer_token": token,
        "subscriptions": [{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": 4}],
    }
    job = ok(tenant, "customer.transfer", params)
    assert job["result"]["transferred"] is True
    # Then we manage the customer and its subscription
    assert customers(sandbox, domain)[0]["reseller"] == tenant.reseller
    assert [s["reseller"] for s in subscriptions(sandbox, domain)] == [tenant.reseller]


def test_an_order_failing_after_its_admin_exists_still_hands_over_the_password(tenant):
    from pipeline import fault

    sandbox, domain = tenant.stack.sandbox, new_domain()
    # Given Google will refuse the subscription after the admin was created
    fault(sandbox, "reseller.subscriptions.insert", status=400, reason="invalid")
    resp = tenant.submit("order.create", order_params(domain))
    job = tenant.wait(resp.json()["id"])
    # Then the order fails at once, saying why...
    assert job["state"] == "failed" and job["error"]["google_reason"] == "invalid"
    assert job["steps_done"][-1] == "admin_role"
    # ...and the admin's generated password is not lost: shown once, then wiped
    password = job["result"]["admin_password"]
    assert len(password) >= 12 and users(sandbox, domain)[0]["isAdmin"]
    assert not (tenant.job(job["id"])["result"] or {}).get("admin_password")
    assert password not in database_text(tenant.stack.settings)
