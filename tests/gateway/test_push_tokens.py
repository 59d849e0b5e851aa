"""verify_push_token: only a token Google signed, for our push URL, naming the platform's service
account, unexpired, lets a push in. Google's certs endpoint is faked at the edge (a local HTTP
server publishing a JWKS), so that expired and foreign tokens can be made."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

import bss.gateway.push_tokens as push_tokens
from bss.gateway import PushTokenRefused, verify_push_token
from bss.settings import Settings

AUDIENCE = "https://bss.example/google/events"
PLATFORM = "platform@bss-project.iam.gserviceaccount.com"


def _key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


GOOGLE_KEY, FORGER_KEY = _key(), _key()


@pytest.fixture(scope="module")
def certs_url() -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(GOOGLE_KEY.public_key()))
    body = json.dumps({"keys": [dict(jwk, kid="google-1", alg="RS256", use="sig")]}).encode()

    class Certs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Certs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/oauth2/v3/certs"
    server.shutdown()
    server.server_close()


@pytest.fixture
def push_settings(settings: Settings, certs_url: str) -> Settings:
    return settings.model_copy(update={"google_certs_url": certs_url})


def token(key: Any = GOOGLE_KEY, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": PLATFORM,
        "email_verified": True,
        "sub": "1234567890",
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "google-1"})


def verify(settings: Settings, authorization: str | None) -> dict[str, Any]:
    return verify_push_token(
        settings, authorization, audience=AUDIENCE, service_account_email=PLATFORM
    )


def test_google_signed_token_for_us_is_accepted(push_settings: Settings) -> None:
    claims = verify(push_settings, f"Bearer {token()}")
    assert claims["email"] == PLATFORM


@pytest.mark.parametrize(
    ("authorization", "status", "words"),
    [
        (None, 401, "no Bearer token"),
        ("Basic dXNlcjpwYXNz", 401, "no Bearer token"),
        ("Bearer not-a-jwt", 401, "not a valid token"),
        (f"Bearer {token(FORGER_KEY)}", 401, "signature is not Google's"),
        (f"Bearer {token(exp=int(time.time()) - 60)}", 401, "expired"),
        (f"Bearer {token(aud='https://elsewhere.example/')}", 403, "another audience"),
        (f"Bearer {token(iss='https://evil.example')}", 401, "not issued by Google"),
        (f"Bearer {token(email='else@x.iam.gserviceaccount.com')}", 403, "another service"),
        (f"Bearer {token(email_verified=False)}", 403, "another service"),
    ],
)
def test_anything_else_is_refused_in_words(
    push_settings: Settings, authorization: str | None, status: int, words: str
) -> None:
    with pytest.raises(PushTokenRefused) as refused:
        verify(push_settings, authorization)
    assert refused.value.status == status
    assert words in refused.value.message
    assert "eyJ" not in refused.value.message  # the token itself is never repeated


def test_without_a_platform_service_account_every_push_is_refused(
    push_settings: Settings,
) -> None:
    with pytest.raises(PushTokenRefused, match="notifications are off"):
        verify_push_token(
            push_settings, f"Bearer {token()}", audience=AUDIENCE, service_account_email=""
        )


def test_forged_key_ids_do_not_make_us_fetch_googles_keys_each_time(
    push_settings: Settings, certs_url: str
) -> None:
    # Given Google's keys fetched once for a good push
    verify(push_settings, f"Bearer {token()}")
    fetches = []
    original = push_tokens._certs.request

    def counting(timeout: float):
        send = original(timeout)

        def counted(url: str, method: str = "GET", **kwargs: Any) -> Any:
            with push_tokens._certs._lock:
                cached = push_tokens._certs._answers.get(url)
            if cached is None or cached[0] <= time.monotonic():
                fetches.append(url)
            return send(url, method=method, **kwargs)

        return counted

    push_tokens._certs.request = counting  # type: ignore[method-assign]
    try:
        # When a stream of forged tokens names key ids Google never published
        for n in range(20):
            forged = jwt.encode(
                {"iss": "https://accounts.google.com", "aud": AUDIENCE, "exp": 2**31},
                FORGER_KEY,
                algorithm="RS256",
                headers={"kid": f"made-up-{n}"},
            )
            with pytest.raises(PushTokenRefused):
                verify(push_settings, f"Bearer {forged}")
    finally:
        push_tokens._certs.request = original  # type: ignore[method-assign]
    # Then every one is refused, and Google's keys were fetched again at most once
    assert len(fetches) <= 1, fetches
