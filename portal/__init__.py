"""The client portal blueprint."""

from flask import Blueprint

bp = Blueprint("portal", __name__)

from portal import account, auth, bookings, home, household, my_data, passkeys  # noqa: E402,F401
