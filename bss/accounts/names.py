"""Names people give things (an instance, a mail sender): slugs, because they are typed in
references like `DISTRIBUTOR/NAME` on the command line and in URLs."""

from __future__ import annotations

import re
import unicodedata

NAME_MAX = 63
NAME_RULE = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{NAME_MAX - 1}}}")


def suggested_name(name: str) -> str:
    """A slug made from `name` ("Acme Main/!" gives "acme-main"); empty when nothing is left."""
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    return slug[:NAME_MAX].rstrip("-")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a name (a System Name, a sender), in words for the person who typed
    it; None if it can."""
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
