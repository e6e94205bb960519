"""The application factory."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from flask import Flask, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from shared import bidi, crypto, policy
from shared.config import DEBUG_IN_PRODUCTION, Config, ConfigError
from shared.extensions import (
    babel,
    compress,
    csrf,
    db,
    limiter,
    limiter_storage_options,
    login_manager,
)
from shared.i18n import LANGUAGE_NAMES, install_date_filters, select_locale, text_direction
from shared.message_views import UPLOAD_ENDPOINTS

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SQLITE_BUSY_TIMEOUT_MS = 5000
# The forms that may carry a file of up to 20 MB (every other request: 1 MB).
LARGE_UPLOADS = frozenset({"staff.document_upload"}) | UPLOAD_ENDPOINTS
FINGERPRINT_KEY = "index-key-fingerprint"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

# Two years, sub-domains included: browsers never try plain HTTP for the portal's host.
HSTS = "max-age=63072000; includeSubDomains"


class AppState:
    """What the app keeps in ``app.extensions["einblick"]``."""

    def __init__(self, config: Config, keyring: crypto.Keyring) -> None:
        self.config = config
        self.keyring = keyring


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros, not left in free pages.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


def create_app(config: Config | None = None) -> Flask:
    """Build the app: config, database, keys, extensions, both blueprints, CLI."""
    config = config or Config.from_env()
    config.validate()
    Path(config.instance_path).mkdir(parents=True, exist_ok=True)
    app = Flask(
        "einblick",
        instance_path=config.instance_path,
        template_folder=str(PACKAGE_DIR / "templates"),
        static_folder=str(PACKAGE_DIR / "static"),
    )
    if config.production and app.debug:  # Flask read FLASK_DEBUG from the environment
        raise ConfigError(DEBUG_IN_PRODUCTION)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=config.sqlalchemy_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        TESTING=config.env == "test",
    )
    if config.trusted_proxies:
        # Behind nginx etc.: rate limits must see the client's address, not the proxy's.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=config.trusted_proxies, x_proto=config.trusted_proxies,
            x_host=config.trusted_proxies,
        )
    db.init_app(app)

    with app.app_context():
        has_data = _database_has_data_keys()
    loaded = crypto.load_keys(
        master_keys=config.master_keys,
        index_key=config.index_key,
        secret_key=config.secret_key,
        instance_path=config.instance_path,
        may_generate=not has_data and not config.production,
    )
    app.extensions["einblick"] = AppState(config, loaded.keyring)
    from shared import security_log

    # Before anything can record an event: a wrong path stops the start, not a sign-in.
    security_log.open_log(app)
    secure = config.cookies_secure
    app.config.update(
        SECRET_KEY=loaded.secret_key,
        SESSION_COOKIE_NAME="__Host-einblick" if secure else "einblick",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=config.session_absolute_hours * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which ends on its own
        RATELIMIT_STORAGE_URI=config.ratelimit_storage_uri,
        RATELIMIT_STORAGE_OPTIONS=limiter_storage_options(config),
        RATELIMIT_ENABLED=config.ratelimit_enabled,
        RATELIMIT_HEADERS_ENABLED=False,
        BABEL_DEFAULT_LOCALE="de",
        BABEL_DEFAULT_TIMEZONE=config.timezone,  # times as the organisation reads them
        BABEL_TRANSLATION_DIRECTORIES=str(PACKAGE_DIR.parent / "translations"),
        MAX_CONTENT_LENGTH=1024 * 1024,
        COMPRESS_MIMETYPES=["text/css", "text/javascript", "application/javascript"],
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_ALGORITHM_STREAMING=["br", "deflate"],  # static files are streamed
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    with app.app_context():
        # The primary key is the database's (adopted now and re-read while running).
        from shared import key_rotation

        key_rotation.start(app)
        check_keys_match_database()
        reapply_erasure_journal()
    from shared import seal

    seal.ensure(config)

    @app.before_request
    def allow_large_uploads() -> None:
        # Registered before CSRF protection (which reads the form): only the document
        # upload and the message forms may carry up to 20 MB; every other request stays small.
        if request.endpoint in LARGE_UPLOADS:
            request.max_content_length = 21 * 1024 * 1024

    login_manager.init_app(app)
    login_manager.session_protection = None  # our server-side sessions do this job
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
    compress.init_app(app)
    _register_user_loader()
    _register_blueprints(app)
    _register_hooks(app)
    _register_errors(app)

    from shared.cli import register_cli

    register_cli(app)
    return app


def _database_has_data_keys() -> bool:
    """Whether encrypted data already exists (then keys must never be generated anew)."""
    try:
        if not inspect(db.engine).has_table("data_keys"):
            return False
        from shared.models.keys import DataKey

        return db.session.scalar(select(DataKey.id).limit(1)) is not None
    finally:
        db.session.remove()


def reapply_erasure_journal() -> None:
    """At every start: clients in the erasure journal stay erased, even if the database
    was restored from a backup taken before. Several workers may run this at once."""
    from shared.cli import database_at_head
    from shared.services import erasure

    if not erasure.journal_path().exists():
        return
    if not database_at_head():
        return  # not migrated yet; `flask db upgrade` applies the journal afterwards
    try:
        touched = erasure.apply_journal()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("erasure journal: another worker is applying it", exc_info=True)
        return
    if touched:
        log.warning("erasure journal re-applied to %d clients restored from a backup", touched)


def check_keys_match_database() -> None:
    """Refuse to start with keys that cannot read the data already stored."""
    from shared.models.base import current_keyring
    from shared.models.keys import AppMeta, DataKey

    try:
        if not inspect(db.engine).has_table("app_meta"):
            return
        keyring = current_keyring()
        stored = db.session.get(AppMeta, FINGERPRINT_KEY)
        if stored is None:
            db.session.add(AppMeta(key=FINGERPRINT_KEY, value=keyring.fingerprint()))
            try:
                db.session.commit()
            except IntegrityError:  # another worker wrote it first
                db.session.rollback()
                stored = db.session.get(AppMeta, FINGERPRINT_KEY)
        if stored is not None and stored.value != keyring.fingerprint():
            raise crypto.KeyConfigError(
                "The index key (EINBLICK_INDEX_KEY or instance/keys.json) is not the one this "
                "database was written with. Configure the original key."
            )
        for kek_id in db.session.scalars(select(DataKey.kek_id).distinct()).all():
            sample = db.session.scalar(select(DataKey).where(DataKey.kek_id == kek_id).limit(1))
            try:
                sample.plaintext()
            except crypto.DecryptionFailed as exc:
                raise crypto.KeyConfigError(
                    f"Master key {kek_id!r} is configured but wrong: it does not open the data "
                    "keys wrapped under it. Configure the original key."
                ) from exc
    finally:
        db.session.remove()


def _register_user_loader() -> None:
    from shared.auth import sessions

    login_manager.user_loader(sessions.load)


def _register_blueprints(app: Flask) -> None:
    from portal import bp as portal_bp
    from shared.session_views import bp as session_bp
    from staff import bp as staff_bp

    app.register_blueprint(portal_bp)
    app.register_blueprint(staff_bp, url_prefix="/staff")
    app.register_blueprint(session_bp)  # the idle warning's "stay signed in"
    from shared import health

    health.install(app)  # /healthz and /readyz, without rate limits or session cookies


def _register_hooks(app: Flask) -> None:
    from shared import security_log
    from shared.auth import drafts, passkeys, sessions

    # Registered after Flask-SQLAlchemy's own teardown, so it runs before the session ends.
    app.teardown_appcontext(security_log.store_pending)

    @app.template_global("staff_may")
    def staff_may(endpoint: str) -> bool:
        """Whether the signed-in staff member may use this staff page: links and buttons
        are shown from the same policy the staff gate enforces."""
        from flask_login import current_user

        member = (current_user.staff_member
                  if current_user.is_authenticated and current_user.is_staff else None)
        return member is not None and member.active and policy.may_use(member.role, endpoint)

    # Which parts of a client's file a page shows at the file's access level.
    app.add_template_global(policy.may_read, "file_shows")

    # datetimeformat, dateformat, timeformat and appointment: one format per purpose and
    # language, no seconds, English in the European order (shared.i18n).
    install_date_filters(app)
    bidi.install(app)  # |bdi and |ltr: names, emails, numbers keep their place in RTL
    # Services and consent templates in the reader's language, German marked as such.
    from shared import content_i18n

    content_i18n.install(app)

    @app.context_processor
    def inject_layout() -> dict:
        locale = str(get_locale() or "de")
        return {
            "current_locale": locale,
            "text_direction": text_direction(locale),
            "language_names": LANGUAGE_NAMES,
            "organisation_name": app.extensions["einblick"].config.organisation_name,
            "passkeys_possible": passkeys.available_for_host(request.host),
            "passkey_origin": app.extensions["einblick"].config.origin,
        }

    # Idle timeout: a form posted after the session ended is kept for the account that was
    # signed in, and fills the same form again after signing in (no JavaScript needed).
    app.after_request(drafts.keep_posted_form)
    drafts.install_form_hook()

    @app.context_processor
    def inject_idle_warning() -> dict:
        """For signed-in pages: the seconds until the idle limit ends the session, which
        shared/static/js/idle.js counts down to warn two minutes before."""
        from flask_login import current_user

        left = sessions.seconds_left(current_user) if current_user.is_authenticated else None
        return {"idle_seconds_left": left, "idle_warn_seconds": sessions.WARN_SECONDS}

    @app.after_request
    def write_access_log(response):
        """A request that read client data and committed nothing since still leaves its
        visit in the access log (one event per client for the whole request)."""
        from shared import audit
        from shared.extensions import db

        if response.status_code < 500 and audit.has_pending():
            db.session.commit()
        return response

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        # same-origin, not no-referrer: CSRF checks over HTTPS compare the Referer with the host.
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"
        )
        if app.extensions["einblick"].config.cookies_secure:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if request.endpoint != "static":
            # Pages may show personal data: never keep them in a shared cache or history.
            headers["Cache-Control"] = "no-store"
            headers["Vary"] = "Cookie, Accept-Language"
        return response


def _register_errors(app: Flask) -> None:
    def page(status: int, title: str, message: str):
        return (
            render_template("error.html", title=title, message=message, status=status),
            status,
        )

    @app.errorhandler(CSRFError)
    def csrf_error(_error):
        return page(
            400,
            _("The form has expired"),
            _("For your security, forms stop working after a while. Please go back, reload "
              "the page and try again."),
        )

    @app.errorhandler(403)
    def forbidden(_error):
        from flask_login import current_user

        from shared import security_log

        if current_user.is_authenticated:
            security_log.record("access.denied", outcome=security_log.REFUSED,
                                account=current_user)
        return page(403, _("Not allowed"), _("You do not have access to this page."))

    @app.errorhandler(404)
    def not_found(_error):
        return page(404, _("Page not found"), _("There is no page at this address."))

    @app.errorhandler(405)
    def method_not_allowed(_error):
        return page(405, _("Not possible"), _("This page cannot be used like that."))

    @app.errorhandler(413)
    def too_large(_error):
        return page(413, _("Too large"), _("What you sent is too large."))

    @app.errorhandler(429)
    def too_many(error):
        from flask_login import current_user

        from shared import security_log

        security_log.record("ratelimit.exceeded", outcome=security_log.REFUSED,
                            account=current_user if current_user.is_authenticated else None)
        if getattr(error, "response", None) is not None:
            return error.response  # a view's own answer (its on_breach): says what to do
        return page(
            429,
            _("Too many attempts"),
            _("There were too many attempts. For your safety, please wait a few minutes and "
              "try again."),
        )

    @app.errorhandler(500)
    def server_error(_error):
        db.session.rollback()
        return page(
            500,
            _("Something went wrong"),
            _("Sorry, something went wrong on our side. Nothing you entered was shared. "
              "Please try again in a moment."),
        )

