"""Start page, the client's home after signing in, the notice for an account whose
hand-over is pending, and the language switch."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_login import current_user

from portal import bp
from portal.guards import client_required
from shared.auth.forms import ConfirmForm
from shared.auth.login_flow import safe_next
from shared.config import SUPPORTED_LOCALES
from shared.i18n import LANG_COOKIE
from shared.services import accounts, household, messages
from shared.services import home as home_service

ONE_YEAR = 365 * 24 * 3600


@bp.get("/")
def index():
    if current_user.is_authenticated and current_user.is_client:
        return redirect(url_for("portal.handover_notice" if current_user.handover_pending
                                else "portal.home"))
    return render_template("portal/index.html")


@bp.get("/home")
@client_required
def home():
    """Where a client lands after signing in: what to do now and what comes next."""
    return render_template("portal/home.html", home=home_service.home_for(current_user),
                           organisation_phone=household.organisation_phone(),
                           unread_messages=messages.unread_count(account=current_user),
                           action_form=ConfirmForm())


@bp.get("/account/handover")
@client_required
def handover_notice():
    """The start page of an account made by an invitation until staff confirm in person
    that the young person holds it: what waits for whom, and how to reach the team. It
    shows nothing of the young person (see portal.guards)."""
    if not current_user.handover_pending:
        return redirect(url_for("portal.home"))
    return render_template("portal/handover_notice.html",
                           organisation_phone=household.organisation_phone())


@bp.post("/language/<code>")
def language(code: str):
    """Switch language; remembered in a cookie and, when signed in, on the account.
    A POST with CSRF token, so no other site can change a signed-in user's setting."""
    target = safe_next(request.form.get("next")) or url_for("portal.index")
    response = redirect(target)
    if code in SUPPORTED_LOCALES:
        response.set_cookie(
            LANG_COOKIE, code, max_age=ONE_YEAR, samesite="Lax", httponly=True,
            secure=request.is_secure,
        )
        if current_user.is_authenticated:
            accounts.set_locale(account=current_user, locale=code)
    return response
