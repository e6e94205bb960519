"""The client portal blueprint."""

from flask import Blueprint

bp = Blueprint("portal", __name__)

from portal import account, auth, bookings, home, household, passkeys  # noqa: E402,F401
