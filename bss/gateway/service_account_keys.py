"""Service-account keys as Google Cloud console downloads them: checked before they are stored
(every problem named at once), and the public identifiers people compare with the console."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bss.errors import ValidationFailed

KEY_FIELDS = ("type", "client_email", "client_id", "private_key", "token_uri")
MAX_KEY_BYTES = 64 * 1024


def parse_key(raw: bytes | str) -> dict[str, Any]:
    """A service-account key as Google's console downloads it, or ValidationFailed listing
    every problem."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_KEY_BYTES:
            raise ValidationFailed("This file is too large to be a service-account key.")
        raw = raw.decode("utf-8", "replace")
    try:
        key = json.loads(raw)
    except ValueError:
        raise ValidationFailed(
            "This file is not JSON: download the key again from Google Cloud console "
            "(IAM & Admin > Service accounts > Keys > Add key > JSON)."
        ) from None
    if not isinstance(key, dict):
        raise ValidationFailed("This JSON is not a service-account key (not an object).")
    problems = [
        {"field": name, "problem": "missing"}
        for name in KEY_FIELDS
        if not isinstance(key.get(name), str) or not key.get(name)
    ]
    if key.get("type") and key.get("type") != "service_account":
        problems.append(
            {"field": "type", "problem": f"is {key.get('type')!r}, not 'service_account'"}
        )
    private_key = key.get("private_key")
    if isinstance(private_key, str) and private_key and "PRIVATE KEY-----" not in private_key:
        problems.append({"field": "private_key", "problem": "not a PEM private key"})
    token_uri = key.get("token_uri")
    if (
        isinstance(token_uri, str)
        and token_uri
        and not token_uri.startswith(("https://", "http://"))
    ):
        problems.append({"field": "token_uri", "problem": "not a URL"})
    email = key.get("client_email")
    if isinstance(email, str) and email and "@" not in email:
        problems.append({"field": "client_email", "problem": "not an e-mail address"})
    if problems:
        listed = "; ".join(f"{p['field']} {p['problem']}" for p in problems)
        raise ValidationFailed(
            f"This is not a usable service-account key: {listed}. Upload the JSON key file "
            "exactly as Google Cloud console downloads it.",
            details=problems,
        )
    return key


@dataclass(frozen=True)
class KeySummary:
    """What to compare with Google's console; nothing secret."""

    client_id: str
    client_email: str
    private_key_id: str
    project_id: str


def summarize_key(key: dict[str, Any]) -> KeySummary:
    """The public identifiers of a parsed key."""
    return KeySummary(
        client_id=str(key.get("client_id", "")),
        client_email=str(key.get("client_email", "")),
        private_key_id=str(key.get("private_key_id", "")),
        project_id=str(key.get("project_id", "")),
    )
