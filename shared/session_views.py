"""The endpoints the idle warning calls (shared/static/js/idle.js), for portal and staff
alike. "Stay signed in" counts the idle limit from now; the page calls it only when its
user presses the button, so an open tab never keeps a session alive by itself. The status
only reads the time left (another tab may have used the session meanwhile) and does not
count as use (sessions.load)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from shared.auth import sessions

bp = Blueprint("session", __name__)


@bp.post("/session/keep-alive")
def keep_alive():
    """JSON: the seconds now left, or 401 when the session has already ended."""
    if not current_user.is_authenticated:
        return jsonify({"signed_in": False}), 401
    sessions.keep_alive(current_user)
    return jsonify({"signed_in": True, "seconds_left": sessions.seconds_left(current_user)})


@bp.get("/session/status")
def status():
    """JSON: the seconds left, read without prolonging the session; 401 once it ended."""
    if not current_user.is_authenticated:
        return jsonify({"signed_in": False}), 401
    return jsonify({"signed_in": True, "seconds_left": sessions.seconds_left(current_user)})
