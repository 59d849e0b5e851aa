"""The portal's forms; Flask-WTF adds and checks the CSRF token of each."""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from bss.errors import ValidationFailed
from bss.models import InstanceMode, SenderMode
from bss.notify import MODE_LABELS

MODES = [
    SelectChoice(
        InstanceMode.OAUTH.value, "OAuth web client (a reseller admin clicks Authenticate Instance)"
    ),
    SelectChoice(
        InstanceMode.SERVICE_ACCOUNT.value,
        "Service account with domain-wide delegation (upload its JSON key)",
    ),
]


class SignInForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])
    next = HiddenField()


class ActionForm(FlaskForm):
    """A button: nothing but the CSRF token (and how the result should be shown)."""

    display = HiddenField(default="popup")


class InstanceForm(FlaskForm):
    distributor_id = SelectField("Distributor", coerce=int, validators=[Optional()])
    name = StringField("System Name", validators=[DataRequired(), Length(max=100)])
    mode = RadioField("Mode", choices=MODES, default=InstanceMode.OAUTH.value)
    client_id = StringField("Client ID", validators=[Optional(), Length(max=300)])
    # Write-only: never rendered back; empty on edit keeps the stored secret.
    client_secret = PasswordField("Client Secret", validators=[Optional(), Length(max=500)])


class ServiceAccountForm(FlaskForm):
    key_file = FileField("Service-account JSON key")
    delegated_admin = EmailField("Reseller admin to impersonate", validators=[Optional()])


class ApiKeyForm(FlaskForm):
    label = StringField("What is it for?", validators=[Optional(), Length(max=200)])


class WebhookForm(FlaskForm):
    url = StringField("Webhook URL", validators=[Optional(), Length(max=2000)])
    # Write-only; empty means "generate one for me" (shown once).
    secret = PasswordField("Signing secret", validators=[Optional(), Length(max=200)])


class RecipientForm(FlaskForm):
    address = StringField("E-mail address", validators=[Optional(), Length(max=320)])
    all_admins = BooleanField("All admins")


class SenderForm(FlaskForm):
    """A new sender; which fields matter depends on the mode (the page shows only those)."""

    name = StringField("Name", validators=[Optional(), Length(max=100)])
    mode = RadioField(
        "Sends through",
        choices=[SelectChoice(m.value, MODE_LABELS[m]) for m in SenderMode],
        default=SenderMode.SMTP_XOAUTH2.value,
        validate_choice=False,  # the core names a mode it does not know
    )
    instance_id = SelectField(
        "Instance", coerce=int, validators=[Optional()], validate_choice=False
    )
    from_address = StringField("From address", validators=[Optional(), Length(max=320)])
    key_file = FileField("Service-account JSON key")


class SenderEditForm(FlaskForm):
    """A sender's changes; its mode stays. Which fields matter depends on the mode."""

    name = StringField("Name", validators=[Optional(), Length(max=100)])
    instance_id = SelectField(
        "Instance", coerce=int, validators=[Optional()], validate_choice=False
    )
    from_address = StringField("From address", validators=[Optional(), Length(max=320)])
    # Write-only: never shown back; left empty, the stored key stays.
    key_file = FileField("Service-account JSON key")


class TestMessageForm(FlaskForm):
    to = StringField("To", validators=[Optional(), Length(max=320)])


def problems(exc: ValidationFailed, labels: dict[str, str]) -> list[str]:
    """A refused form's problems, one line per bad field in the form's words (the summary only
    when no field is named)."""
    details = exc.details if isinstance(exc.details, list) else []
    listed = [
        f"{labels.get(str(d.get('field')), d.get('field'))}: {d.get('problem')}"
        for d in details
        if isinstance(d, dict)
    ]
    return listed or [exc.message]


def uploaded_key() -> bytes | None:
    """The service-account key file the form carries, or None when none was chosen (an edit
    then keeps the stored key)."""
    upload = request.files.get("key_file")
    return upload.read() if upload and upload.filename else None
