"""A local stand-in for Google: OAuth 2.0 and OIDC, Reseller, Directory, License Manager,
Gmail send and batch, plus a /_sandbox/ control API. It imports nothing else of this project."""

from bss.sandbox.app import create_app, serve
from bss.sandbox.smtp_tls import self_signed

__all__ = ["create_app", "self_signed", "serve"]
