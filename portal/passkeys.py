"""Client passkeys: the JSON ceremony endpoints and the page to create a first passkey."""

from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_login import current_user

from portal import bp
from portal.guards import client_required
from shared.models.accounts import CLIENT
from shared.passkey_views import add_passkey_routes

add_passkey_routes(
    bp,
    kind=CLIENT,
    account_prefix="/account",
    signed_in=lambda: current_user.is_authenticated and current_user.is_client,
    security_endpoint="portal.security",
    home_endpoint="portal.home",
    reauth_endpoint="portal.reauth",
)


@bp.get("/account/passkeys/new")
@client_required
def passkey_setup():
    """Create a passkey; the first stop for an account registered without a password."""
    if current_user.has_passkey and current_user.has_password:
        return redirect(url_for("portal.security"))
    return render_template("portal/passkey_setup.html")
