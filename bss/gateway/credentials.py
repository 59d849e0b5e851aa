"""Google credentials of an instance, from its encrypted secrets."""

from __future__ import annotations

import functools
import json

from google.auth.credentials import Credentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from bss.crypto import Vault
from bss.errors import GoogleAuthorizationError
from bss.models import Instance, InstanceMode
from bss.settings import Settings

# What an instance needs to do its work, one scope per API.
REQUIRED_SCOPES = (
    "https://www.googleapis.com/auth/apps.order",
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/apps.licensing",
    "https://www.googleapis.com/auth/gmail.send",
)


def instance_credentials(instance: Instance, *, vault: Vault, settings: Settings) -> Credentials:
    """Credentials that act as the instance: its refresh token, or its delegated service account."""
    if instance.mode == InstanceMode.SERVICE_ACCOUNT:
        if not instance.service_account_key_enc or not instance.delegated_admin:
            raise GoogleAuthorizationError(
                f"Instance {instance.name!r} has no service-account key or delegated admin.",
                reason="not_configured",
                hint="Upload the service account's JSON key and name the admin to impersonate.",
            )
        sa = service_account_key(
            vault, instance.service_account_key_enc, settings.google_token_uri, REQUIRED_SCOPES
        )
        return sa.with_subject(instance.delegated_admin)
    if not instance.refresh_token_enc or not instance.client_secret_enc:
        raise GoogleAuthorizationError(
            f"Instance {instance.name!r} is not authenticated.",
            reason="not_authenticated",
            hint="Click Authenticate Instance in the portal.",
        )
    return user_credentials.Credentials(
        token=None,
        refresh_token=decrypted(vault, instance.refresh_token_enc),
        client_id=instance.client_id,
        client_secret=decrypted(vault, instance.client_secret_enc),
        token_uri=settings.google_token_uri,
        scopes=instance.granted_scopes.split() or list(REQUIRED_SCOPES),
    )


# Every job run builds its instance's credentials (and every mail, its sender's). What that
# costs (decrypting the secrets; for a service account, also parsing its JSON key and RSA
# private key) is done once per process for each encrypted value: a new token, key or vault key
# is a new value. The result is new credentials each time, for the caller alone; only the key's
# signer is shared.
@functools.lru_cache(maxsize=512)
def decrypted(vault: Vault, ciphertext: str) -> str:
    return vault.decrypt(ciphertext)


@functools.lru_cache(maxsize=128)
def service_account_key(
    vault: Vault, key_enc: str, token_uri: str, scopes: tuple[str, ...]
) -> service_account.Credentials:
    """The service account of an encrypted JSON key, its token endpoint `token_uri` (from the
    settings: the key's own may name another one, and google-auth reads it from the key), with
    no subject yet. ValueError or KeyError for a key that is not one."""
    info = json.loads(decrypted(vault, key_enc))
    info["token_uri"] = token_uri
    return service_account.Credentials.from_service_account_info(info, scopes=list(scopes))


def token_uri(credentials: object) -> str:
    """Where `credentials` refresh (user credentials and service accounts keep it apart)."""
    return str(getattr(credentials, "token_uri", None) or getattr(credentials, "_token_uri", ""))
