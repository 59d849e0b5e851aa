"""When Google cannot be reached, the error names the address that was tried."""

from __future__ import annotations

import pytest
from google.oauth2.credentials import Credentials

from bss.errors import TransientGoogleError
from bss.gateway import Gateway, oauth
from bss.tools import free_port


def test_a_refresh_that_reaches_nobody_names_the_token_endpoint():
    uri = f"http://127.0.0.1:{free_port()}/token"
    creds = Credentials(None, refresh_token="1//r", client_id="c", client_secret="s", token_uri=uri)
    with pytest.raises(TransientGoogleError) as caught:
        oauth.refresh(creds)
    assert uri in caught.value.message and "did not answer" in caught.value.message


def test_a_call_that_reaches_nobody_names_the_api_root(settings):
    root = f"http://127.0.0.1:{free_port()}/"
    settings = settings.model_copy(update={"google_reseller_root": root, "google_http_timeout": 2})
    gateway = Gateway(settings=settings, credentials=Credentials("ya29.token"), attempts=1)
    with pytest.raises(TransientGoogleError) as caught:
        gateway.call("reseller.customers.get", lambda svc: svc.customers().get(customerId="x.io"))
    assert root in caught.value.message
