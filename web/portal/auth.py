"""Sign-in (password, or Google via OpenID Connect) and sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from bss.accounts import end_session, google_signin, sign_in_with_password, start_session
from bss.errors import BssError, Unauthorized
from bss.models import User
from web.deps import db, settings
from web.limits import failed, limiter, sign_in_limit
from web.portal.access import SESSION_KEY, browser_id, current_user, vault
from web.portal.forms import ActionForm, SignInForm

bp = Blueprint("auth", __name__)

NEXT_KEY = "after_sign_in"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would help phishing."""
    # "/\\host" is "//host" to browsers.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("instances.list_instances")


def _begin_session(user: User) -> None:
    # A fresh cookie at sign-in: a session id planted before sign-in is worthless.
    keep = {k: session[k] for k in ("bid",) if k in session}
    session.clear()
    session.update(keep)
    session.permanent = True
    session[SESSION_KEY] = start_session(db(), user, hours=settings().portal_session_hours)
    db().commit()


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(
    sign_in_limit,
    methods=["POST"],
    deduct_when=failed,
    error_message="Too many failed sign-ins from your address: wait a few minutes, then try again.",
)
def sign_in():
    form = SignInForm()
    if request.method == "GET":
        if current_user() is not None:
            return redirect(_safe_next(request.args.get("next")))
        form.next.data = request.args.get("next", "")
    error = None
    if form.validate_on_submit():
        try:
            user = sign_in_with_password(db(), email=form.email.data, password=form.password.data)
        except Unauthorized as exc:
            db().rollback()
            error = exc.message
        else:
            _begin_session(user)
            return redirect(_safe_next(form.next.data))
    elif request.method == "POST":
        error = "Enter your e-mail address and password."
    status = 401 if error else 200
    return render_template(
        "portal/sign_in.html",
        form=form,
        google_form=ActionForm(),
        google_enabled=google_signin.enabled(settings()),
        error=error,
    ), status


@bp.post("/sign-in/google")
def sign_in_google():
    form = ActionForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.sign_in"))
    session[NEXT_KEY] = _safe_next(request.args.get("next"))
    try:
        url = google_signin.start(
            db(),
            settings=settings(),
            vault=vault(),
            browser_id=browser_id(),
            request_base=request.host_url,
        )
    except BssError as exc:
        flash(exc.message, "error")
        return redirect(url_for("auth.sign_in"))
    db().commit()
    return redirect(url)


@bp.get(google_signin.CALLBACK_PATH)
def google_callback():
    s = db()
    try:
        user = google_signin.finish(
            s,
            settings=settings(),
            vault=vault(),
            browser_id=session.get("bid"),
            params=request.args.to_dict(),
        )
    except BssError as exc:
        s.rollback()
        flash(exc.message, "error")
        return redirect(url_for("auth.sign_in"))
    s.commit()
    target = session.pop(NEXT_KEY, None)
    _begin_session(user)
    return redirect(_safe_next(target))


@bp.post("/sign-out")
def sign_out():
    form = ActionForm()
    if form.validate_on_submit():
        end_session(db(), session.get(SESSION_KEY))
        db().commit()
        session.clear()
        flash("You are signed out.", "ok")
    return redirect(url_for("auth.sign_in"))
