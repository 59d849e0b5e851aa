"""Fixtures of the in-process tests."""

from __future__ import annotations

import uuid

import pytest

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.instances import create_instance
from bss.models import Distributor, InstanceStatus
from bss.settings import Settings


@pytest.fixture
def tenant(settings: Settings) -> Distributor:
    """A distributor of its own with an instance `main` that holds a (fake) refresh token."""
    from bss.tenancy import create_distributor

    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        d = create_distributor(s, name=f"Dist {uuid.uuid4().hex[:8]}")
        inst = create_instance(
            s, vault=vault, distributor=d, name="main", client_id="cid", client_secret="csecret"
        )
        inst.status = InstanceStatus.AUTHENTICATED
        inst.refresh_token_enc = vault.encrypt("1//refresh")
        s.add(inst)
    return d
