"""Portal users: creation, password and Google sign-in, and signed-in sessions."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, delete, select

from bss.errors import ConfigurationError, NotFound, Unauthorized, ValidationFailed
from bss.models import Distributor, User, UserRole, UserSession, saved_id, utcnow
from bss.settings import Settings

# argon2id with the library's defaults (RFC 9106's second recommended option).
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12
SESSION_SECRET_FILE = "session.secret"  # noqa: S105 - a file name


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so both answers take as long."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """The stored form of a password (argon2id, salted)."""
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` was made from."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    """The e-mail address as users are looked up by: validated, lower-cased."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed(
            f"{email!r} is not an e-mail address: {exc}",
            details=[{"field": "email", "problem": str(exc)}],
        ) from None


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
            details=[{"field": "password", "problem": "too short"}],
        )


def create_user(
    session: Session,
    *,
    email: str,
    role: str,
    distributor: Distributor | None = None,
    password: str | None = None,
    name: str = "",
) -> User:
    """A new portal user. Distributor admins belong to a distributor; operators to none.

    Without a password the user can only Sign in with Google.
    """
    email = normalize_email(email)
    if role not in tuple(UserRole):
        raise ValidationFailed(
            f"Unknown role {role!r}: use one of {', '.join(UserRole)}.",
            details=[{"field": "role", "problem": "unknown"}],
        )
    if role == UserRole.DISTRIBUTOR_ADMIN and distributor is None:
        raise ValidationFailed(
            "A distributor admin needs a distributor.",
            details=[{"field": "distributor", "problem": "required"}],
        )
    if session.exec(select(User).where(User.email == email)).first():
        raise ValidationFailed(
            f"A user {email} exists already.", details=[{"field": "email", "problem": "taken"}]
        )
    if password is not None:
        check_password_strength(password)
    user = User(
        email=email,
        name=name,
        role=role,
        distributor_id=distributor.id
        if role == UserRole.DISTRIBUTOR_ADMIN and distributor
        else None,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def user_by_email(session: Session, email: str) -> User:
    """The user with this e-mail address, or NotFound."""
    found = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if found is None:
        raise NotFound(f"No user {email}.")
    return found


def set_password(session: Session, user: User, password: str) -> None:
    """Replace the user's password and end their sessions everywhere."""
    check_password_strength(password)
    user.password_hash = hash_password(password)
    session.add(user)
    session.exec(delete(UserSession).where(col(UserSession.user_id) == user.id))


def sign_in_with_password(session: Session, *, email: str, password: str) -> User:
    """The user these credentials belong to, or Unauthorized (without saying which was wrong)."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    ok = password_matches(user.password_hash if user else None, password)
    if user is None or not ok:
        raise Unauthorized("Wrong e-mail address or password.")
    if user.disabled_at is not None:
        raise Unauthorized("This account is disabled; ask your platform operator.")
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    return user


def sign_in_with_google(session: Session, *, claims: dict) -> User:
    """The existing user a verified Google identity belongs to (linked by Google's account id
    after the first time), or Unauthorized saying what to do."""
    sub, email = str(claims.get("sub") or ""), str(claims.get("email") or "").lower()
    if not sub or not email or claims.get("email_verified") not in (True, "true"):
        raise Unauthorized("Google did not confirm a verified e-mail address for this account.")
    user = session.exec(select(User).where(User.google_sub == sub)).first()
    if user is None:
        user = session.exec(select(User).where(User.email == email)).first()
        if user is None:
            raise Unauthorized(
                f"There is no portal account for {email}. Ask your platform operator to create "
                "one (`bss users create`), then sign in again."
            )
        if user.google_sub and user.google_sub != sub:
            raise Unauthorized(f"The portal account {email} is linked to another Google account.")
        user.google_sub = sub
    if user.disabled_at is not None:
        raise Unauthorized("This account is disabled; ask your platform operator.")
    return user


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(session: Session, user: User, *, hours: float) -> str:
    """A new signed-in session for `user`; returns the id the browser keeps (never stored)."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    user.last_sign_in_at = now
    session.add(user)
    session.add(
        UserSession(
            id_hash=_session_hash(session_id),
            user_id=saved_id(user),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    # Expired sessions are of no use to anyone: sweep them while we are here.
    session.exec(delete(UserSession).where(col(UserSession.expires_at) < now))
    session.flush()
    return session_id


def session_user(session: Session, session_id: str | None) -> User | None:
    """The user of a live session, or None (unknown, expired, signed out, or disabled)."""
    if not session_id:
        return None
    row = session.get(UserSession, _session_hash(session_id))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user


def end_session(session: Session, session_id: str | None) -> None:
    """Sign a session out, on every web process at once."""
    if session_id:
        session.exec(
            delete(UserSession).where(col(UserSession.id_hash) == _session_hash(session_id))
        )


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies: BSS_SESSION_SECRET, or outside production a file
    under BSS_HOME made on first use (so every web process of one host shares it)."""
    if settings.session_secret:
        return settings.session_secret
    if settings.is_production:
        raise ConfigurationError("BSS_SESSION_SECRET must be set in production.")
    path = Path(settings.home) / SESSION_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()
