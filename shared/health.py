"""Health endpoints for load balancers, systemd and monitoring.

``/healthz``: the process answers (touches neither the database nor Redis), for a restart
when a worker hangs. ``/readyz``: this process can serve pages now: the database answers,
its migrations are at the code's head, and the rate limiter's storage (Redis) answers; 503
otherwise, so a load balancer sends no visitors to it. Both answer small JSON that names
only what failed, never an address, a password or an error text. They are exempt from rate
limits and never read or write a session cookie, so probes neither count against visitors
nor keep a session alive.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import text

from shared.extensions import db, limiter

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
PATHS = ("/healthz", "/readyz")


class _SessionsExceptProbes(SecureCookieSessionInterface):
    """Flask's cookie sessions, except for the probes: they get a null session, which is
    never saved, so a probe with a session cookie does not refresh it."""

    def open_session(self, app, request):
        if request.path in PATHS:
            return None  # Flask makes a null session of it
        return super().open_session(app, request)


def install(app: Flask) -> None:
    app.register_blueprint(bp)
    limiter.exempt(bp)
    app.session_interface = _SessionsExceptProbes()


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {"database": _database(), "redis": _redis()}
    if checks["database"] == "ok":
        checks["migrations"] = _migrations()
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not ready", **checks), 200 if ready else 503


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"; the log says which
        log.warning("readiness: the database does not answer", exc_info=True)
        db.session.rollback()
        return "unreachable"
    return "ok"


def _migrations() -> str:
    from alembic.runtime.migration import MigrationContext

    try:
        current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
    except Exception:
        log.warning("readiness: cannot read the migration state", exc_info=True)
        db.session.rollback()
        return "unknown"
    finally:
        db.session.rollback()  # end the read transaction; nothing was written
    return "ok" if current == _code_heads() else "behind"


def _code_heads() -> set[str]:
    """The migration heads of this code (read once per process: the code does not change
    while it runs)."""
    heads = current_app.extensions.get("einblick.migration_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        from shared.cli import alembic_config

        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        current_app.extensions["einblick.migration_heads"] = heads
    return heads


def _redis() -> str:
    try:
        answered = limiter.storage.check()
    except Exception:
        answered = False
    if not answered:
        log.warning("readiness: the rate limiter's storage does not answer")
        return "unreachable"
    return "ok"
