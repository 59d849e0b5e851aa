"""Where a running sandbox's Gmail SMTP server listens, and its certificate to trust."""

from __future__ import annotations

from pathlib import Path

import requests


def smtp_of(sandbox_url: str, directory: Path) -> tuple[str, int, str]:
    """(host, port, CA file) of the SMTP server of the sandbox at `sandbox_url`: the file, written
    in `directory`, holds the self-signed certificate it presents (for GOOGLE_SMTP_CA_FILE)."""
    info = requests.get(f"{sandbox_url}/_sandbox/smtp", timeout=10)
    info.raise_for_status()
    pem = requests.get(f"{sandbox_url}/_sandbox/smtp/certificate", timeout=10)
    pem.raise_for_status()
    ca_file = directory / "sandbox-smtp.pem"
    ca_file.write_text(pem.text)
    return info.json()["host"], info.json()["port"], str(ca_file)
