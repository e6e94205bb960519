"""Staff security: passkeys, the authenticator app, and step-up confirmation."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from shared.auth import ratelimits
from shared.extensions import limiter
from shared.models.accounts import STAFF
from shared.passkey_views import add_passkey_routes, reauth_page
from staff import bp

add_passkey_routes(
    bp,
    kind=STAFF,
    account_prefix="/account",
    signed_in=lambda: current_user.is_authenticated and current_user.is_staff,
    security_endpoint="staff.security",
    home_endpoint="staff.home",
    reauth_endpoint="staff.reauth",
)


@bp.get("/account/security")
def security():
    return render_template("staff/security.html", area="staff")


@bp.route("/account/confirm", methods=["GET", "POST"])
@limiter.limit(
    ratelimits.SECOND_FACTOR, methods=["POST"], key_func=ratelimits.signed_in_account_key,
    deduct_when=ratelimits.only_failures,
)
def reauth():
    return reauth_page(area="staff")
