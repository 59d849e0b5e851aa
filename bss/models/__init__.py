"""Database models. Every table is created by the Alembic migrations, never by create_all."""

from bss.models.audit import AuditEntry
from bss.models.base import iso, new_id, saved_id, utcnow
from bss.models.events import (
    DesiredSubscription,
    Drift,
    DriftState,
    EventState,
    GoogleEvent,
)
from bss.models.instance import Instance, InstanceMode, InstanceStatus
from bss.models.instance_health import InstanceHealth
from bss.models.job import Job, JobEvent, JobState, add_event, customer_domain_of
from bss.models.job_secret import JobSecret
from bss.models.mail import (
    Alert,
    MailMessage,
    MailSender,
    MailState,
    NotificationRecipient,
    NotifyTopic,
    SenderMode,
    SenderStatus,
)
from bss.models.mirror import CustomerMirror
from bss.models.oauth_state import OAuthPurpose, OAuthState
from bss.models.tenancy import ApiKey, Distributor
from bss.models.user import User, UserRole, UserSession
from bss.models.webhook import DeliveryState, WebhookDelivery

__all__ = [
    "Alert",
    "MailMessage",
    "MailSender",
    "MailState",
    "NotificationRecipient",
    "NotifyTopic",
    "SenderMode",
    "SenderStatus",
    "ApiKey",
    "AuditEntry",
    "CustomerMirror",
    "DesiredSubscription",
    "Drift",
    "DriftState",
    "EventState",
    "GoogleEvent",
    "DeliveryState",
    "Distributor",
    "Instance",
    "InstanceHealth",
    "InstanceMode",
    "InstanceStatus",
    "Job",
    "JobEvent",
    "JobSecret",
    "JobState",
    "OAuthPurpose",
    "OAuthState",
    "User",
    "UserRole",
    "UserSession",
    "WebhookDelivery",
    "add_event",
    "customer_domain_of",
    "iso",
    "new_id",
    "saved_id",
    "utcnow",
]
