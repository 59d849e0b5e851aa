"""What an instance's fields must look like: a System Name that is a slug (it is half of the
`DISTRIBUTOR/NAME` reference that `bss doctor` and the CLI take), and a Client ID shaped like the
ones Google issues (a Client Secret pasted there, or half an ID, fails at Google much later)."""

from __future__ import annotations

import re
import unicodedata

NAME_MAX = 63
NAME_RULE = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{NAME_MAX - 1}}}")
# <project number>-<random>.apps.googleusercontent.com, as Google Cloud console shows it.
CLIENT_ID_RULE = re.compile(r"[0-9]+-[A-Za-z0-9]+\.apps\.googleusercontent\.com")
CLIENT_ID_EXAMPLE = "123456789012-abc123….apps.googleusercontent.com"


def suggested_name(name: str) -> str:
    """A slug made from `name` ("Acme Main/!" gives "acme-main"); empty when nothing is left."""
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    return slug[:NAME_MAX].rstrip("-")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a System Name, in words for the person who typed it; None if it can."""
    if not name:
        return "required."
    if NAME_RULE.fullmatch(name):
        return None
    rule = (
        f"use lowercase letters, digits and hyphens only, 1-{NAME_MAX} characters, "
        "starting with a letter or digit"
    )
    suggestion = suggested_name(name)
    if suggestion and suggestion != name:
        return f"{name!r} is not allowed: {rule} (use {suggestion!r})."
    return f"{name!r} is not allowed: {rule}."


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
