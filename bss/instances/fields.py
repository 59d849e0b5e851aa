"""What an instance's fields must look like: a System Name that is a slug (it is half of the
`DISTRIBUTOR/NAME` reference that `bss doctor` and the CLI take; the rule is the accounts wing's,
shared with mail senders), and a Client ID shaped like the ones Google issues (a Client Secret
pasted there, or half an ID, fails at Google much later)."""

from __future__ import annotations

import re

from bss.accounts import name_problem, suggested_name

__all__ = ["client_id_problem", "name_problem", "suggested_name"]

# <project number>-<random>.apps.googleusercontent.com, as Google Cloud console shows it.
CLIENT_ID_RULE = re.compile(r"[0-9]+-[A-Za-z0-9]+\.apps\.googleusercontent\.com")
CLIENT_ID_EXAMPLE = "123456789012-abc123….apps.googleusercontent.com"


def client_id_problem(client_id: str) -> str | None:
    """Why `client_id` is not a Google OAuth client ID, in words; None if it looks like one."""
    if not client_id:
        return "required."
    if CLIENT_ID_RULE.fullmatch(client_id):
        return None
    if client_id.startswith("GOCSPX-"):
        return (
            "this is the Client Secret; the Client ID is the other value Google shows, "
            "ending in .apps.googleusercontent.com."
        )
    return (
        f"{client_id!r} does not look like a Google OAuth client ID ({CLIENT_ID_EXAMPLE}): "
        "copy it from Google Cloud console › APIs & Services › Credentials."
    )
