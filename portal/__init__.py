"""The client portal blueprint."""

from flask import Blueprint

bp = Blueprint("portal", __name__)

from portal import account, auth, home, passkeys  # noqa: E402,F401  (views register on bp)
