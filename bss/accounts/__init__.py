"""Who may do and see what: portal users (passwords, sessions, Sign in with Google), the
distributors they belong to and their API keys, the scope a reader sees (one distributor, or
ALL for platform operators), and the audit log of what people did."""

from bss.accounts import audit, google_signin
from bss.accounts.names import name_problem, suggested_name
from bss.accounts.tenancy import (
    ALL,
    create_api_key,
    create_distributor,
    distributor_by_slug,
    list_api_keys,
    revoke_api_key,
    revoke_api_keys,
)
from bss.accounts.users import (
    create_user,
    end_session,
    normalize_email,
    session_secret,
    session_user,
    set_password,
    sign_in_with_google,
    sign_in_with_password,
    start_session,
    user_by_email,
)

__all__ = [
    "ALL",
    "audit",
    "create_api_key",
    "create_distributor",
    "create_user",
    "distributor_by_slug",
    "end_session",
    "google_signin",
    "list_api_keys",
    "name_problem",
    "normalize_email",
    "revoke_api_key",
    "revoke_api_keys",
    "session_secret",
    "session_user",
    "set_password",
    "sign_in_with_google",
    "sign_in_with_password",
    "start_session",
    "suggested_name",
    "user_by_email",
]
