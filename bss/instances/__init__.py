"""A distributor's connections to Google: the instance registry (credentials encrypted, status),
Authenticate Instance (the consent pop-up and its callback), service accounts with domain-wide
delegation, and the health check (`doctor`). An instance that works again does not resume its
jobs itself: that is the jobs wing's (`bss.jobs.resume_waiting_jobs`), called by whoever
changed it, and by the sweep."""

from bss.instances.authenticate import (
    SCOPE_PURPOSES,
    callback_redirect_uri,
    disconnect,
    finish_authentication,
    missing_scopes,
    start_authentication,
)
from bss.instances.doctor import check_instance
from bss.instances.registry import (
    OAUTH_CALLBACK_PATH,
    add_instance,
    create_instance,
    find_instance,
    get_instance,
    mark_needs_reauth,
    redirect_uris,
    set_enabled,
    store_oauth_grant,
    update_instance,
)
from bss.instances.service_accounts import (
    configure_service_account,
    key_summary,
    verify_service_account,
)

__all__ = [
    "OAUTH_CALLBACK_PATH",
    "SCOPE_PURPOSES",
    "add_instance",
    "callback_redirect_uri",
    "check_instance",
    "configure_service_account",
    "create_instance",
    "disconnect",
    "find_instance",
    "finish_authentication",
    "get_instance",
    "key_summary",
    "mark_needs_reauth",
    "missing_scopes",
    "redirect_uris",
    "set_enabled",
    "start_authentication",
    "store_oauth_grant",
    "update_instance",
    "verify_service_account",
]
