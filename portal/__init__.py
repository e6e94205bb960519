"""The client portal blueprint."""

from flask import Blueprint

bp = Blueprint("portal", __name__)

from portal import (  # noqa: E402,F401  (views register on bp)
    account,
    account_recovery,
    anonymous,
    auth,
    booking_changes,
    bookings,
    consents,
    home,
    household,
    messages,
    my_data,
    organisation,
    passkeys,
)
