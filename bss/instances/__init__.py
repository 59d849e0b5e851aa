"""A distributor's connections to Google: the instance registry (credentials encrypted, status),
the rules its fields follow (a slug for a name, Google's shape for a Client ID), Authenticate
Instance (the consent pop-up and its callback), service accounts with domain-wide delegation, the
health check (`doctor`) and the token refreshes the workers record. An instance that works again
does not resume its jobs itself: that is the jobs wing's (`bss.jobs.resume_waiting_jobs`), called
by whoever changed it, and by the sweep."""

from bss.gateway import OAUTH_CALLBACK_PATH, callback_redirect_uri, redirect_uris
from bss.instances.authenticate import (
    SCOPE_PURPOSES,
    disconnect,
    finish_authentication,
    missing_scopes,
    start_authentication,
)
from bss.instances.doctor import check_instance
from bss.instances.fields import client_id_problem, name_problem, suggested_name
from bss.instances.registry import (
    create_instance,
    find_instance,
    get_instance,
    mark_needs_reauth,
    set_enabled,
    store_oauth_grant,
    update_instance,
)
from bss.instances.service_accounts import (
    configure_service_account,
    key_summary,
    verify_service_account,
)
from bss.instances.token_health import record_token_refresh, token_refresh_recorder

__all__ = [
    "OAUTH_CALLBACK_PATH",
    "SCOPE_PURPOSES",
    "callback_redirect_uri",
    "check_instance",
    "client_id_problem",
    "configure_service_account",
    "create_instance",
    "disconnect",
    "find_instance",
    "finish_authentication",
    "get_instance",
    "key_summary",
    "mark_needs_reauth",
    "missing_scopes",
    "name_problem",
    "record_token_refresh",
    "redirect_uris",
    "set_enabled",
    "start_authentication",
    "store_oauth_grant",
    "suggested_name",
    "token_refresh_recorder",
    "update_instance",
    "verify_service_account",
]
