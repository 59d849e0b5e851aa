"""An instance's credentials, built for every job run: each run gets credentials of its own,
and a new token or key is used at once, though a process decrypts and parses each one once."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bss.crypto import Vault
from bss.gateway import instance_credentials
from bss.models import Instance, InstanceMode
from bss.settings import Settings

SETTINGS = Settings(GOOGLE_TOKEN_URI="http://127.0.0.1:1/token")


def sa_key(email: str) -> str:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "proj-1",
            "private_key_id": "k1",
            "private_key": pem.decode(),
            "client_email": email,
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def test_each_run_has_its_own_service_account_credentials_and_a_new_key_counts_at_once():
    vault = Vault([Fernet.generate_key().decode()])
    inst = Instance(
        distributor_id=1,
        name="sa",
        mode=InstanceMode.SERVICE_ACCOUNT,
        service_account_key_enc=vault.encrypt(sa_key("first@proj-1.iam.example")),
        delegated_admin="admin@acme.example",
    )
    one = instance_credentials(inst, vault=vault, settings=SETTINGS)
    two = instance_credentials(inst, vault=vault, settings=SETTINGS)
    assert one is not two  # a job's credentials are its own (their token is refreshed on them)
    assert one.service_account_email == "first@proj-1.iam.example"
    assert one._subject == "admin@acme.example"
    assert one._token_uri == SETTINGS.google_token_uri  # the key's own token_uri is replaced

    inst.service_account_key_enc = vault.encrypt(sa_key("second@proj-1.iam.example"))
    inst.delegated_admin = "other@acme.example"
    three = instance_credentials(inst, vault=vault, settings=SETTINGS)
    assert three.service_account_email == "second@proj-1.iam.example"
    assert three._subject == "other@acme.example"


def test_a_new_refresh_token_is_used_by_the_next_run():
    vault = Vault([Fernet.generate_key().decode()])
    inst = Instance(
        distributor_id=1,
        name="main",
        client_id="123-abc.apps.googleusercontent.com",
        client_secret_enc=vault.encrypt("csecret"),
        refresh_token_enc=vault.encrypt("1//first"),
    )
    first = instance_credentials(inst, vault=vault, settings=SETTINGS)
    inst.refresh_token_enc = vault.encrypt("1//second")
    second = instance_credentials(inst, vault=vault, settings=SETTINGS)
    assert (first.refresh_token, second.refresh_token) == ("1//first", "1//second")
    assert first is not second and second.client_secret == "csecret"


def test_a_mail_sender_with_a_key_that_is_not_one_is_told_so_and_a_good_one_sends_as_its_address(
    settings,
):
    from bss.crypto import vault_from_settings
    from bss.errors import GoogleAuthorizationError
    from bss.gateway.mail import sender_credentials
    from bss.models import MailSender, SenderMode

    vault = vault_from_settings(settings)
    sender = MailSender(
        name="alerts",
        mode=SenderMode.SERVICE_ACCOUNT,
        from_address="alerts@acme.example",
        service_account_key_enc=vault.encrypt("this is not a JSON key"),
    )
    with pytest.raises(GoogleAuthorizationError) as refused:
        sender_credentials(settings, sender, None)
    assert refused.value.reason == "invalid_key"
    assert "service-account key of mail sender 'alerts' is unusable" in refused.value.message

    sender.service_account_key_enc = vault.encrypt(sa_key("mailer@proj-1.iam.example"))
    creds = sender_credentials(settings, sender, None)
    assert (creds.service_account_email, creds._subject) == (
        "mailer@proj-1.iam.example",
        "alerts@acme.example",
    )
