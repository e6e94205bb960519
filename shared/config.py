"""Typed configuration: defaults, overridden from EINBLICK_* environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

SUPPORTED_LOCALES = ("de", "en", "tr", "ar", "uk")
DEFAULT_LOCALE = "de"


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot work; the message says how to fix it."""


@dataclass(frozen=True)
class Config:
    """Everything the app can be told. Tests build one directly; production reads the env."""

    env: str = "development"  # development | production | test
    instance_path: str = str(Path(__file__).resolve().parent.parent / "instance")
    database_url: str | None = None  # None: SQLite file under instance/
    secret_key: str | None = field(default=None, repr=False)  # None: from the key file
    # "id:base64key,id:base64key", the first is active
    master_keys: str | None = field(default=None, repr=False)
    index_key: str | None = field(default=None, repr=False)  # base64, for blind indexes
    ratelimit_storage_uri: str = "memory://"
    ratelimit_enabled: bool = True
    # None: write .eml files to instance/outbox/
    smtp_url: str | None = field(default=None, repr=False)
    # Reverse proxies in front of the app whose X-Forwarded-For may be trusted (0: none).
    trusted_proxies: int = 0
    mail_from: str = "Einblick <no-reply@localhost>"
    base_url: str = "http://localhost:5000"
    # The organisation's seal for consent receipts (PEM files); None: instance/seal-*.pem,
    # created on first start outside production.
    seal_cert: str | None = None
    seal_key: str | None = field(default=None, repr=False)
    # WebAuthn: the relying-party id is a host name (never an IP address); origin is exact.
    rp_id: str = "localhost"
    origin: str = "http://localhost:5000"
    organisation_name: str = "Einblick"
    # Names this organisation's keys in a Redis shared with other organisations (letters,
    # digits and "-"); empty: made from organisation_name.
    organisation_slug: str = ""
    # Shown when a booking can no longer be cancelled online.
    organisation_phone: str = "+49 30 1234567"
    # The organisation as the public pages (contact, imprint, privacy notice) name it; the
    # demo values below must be replaced before going live. Lines of the address are
    # separated by commas; opening hours as "mon-thu 09:00-17:00; fri 09:00-13:00" (days
    # mon..sun), shown in the reader's language.
    organisation_address: str = "Lindenstraße 12, 10969 Berlin"
    organisation_email: str = "kontakt@einblick.example"
    organisation_opening_hours: str = "mon-thu 09:00-17:00; fri 09:00-13:00"
    # Imprint (§ 5 DDG, § 18 MStV): who represents the organisation and is responsible for
    # the content, its register entry and VAT id (empty: not shown).
    imprint_representative: str = "Dr. Anna Beispiel (Vorstand)"
    imprint_register: str = "Vereinsregister, Amtsgericht Charlottenburg, VR 00000 B"
    imprint_vat_id: str = ""
    # Privacy notice: the data protection officer's contact and the supervisory authority.
    privacy_officer: str = "Datenschutzbeauftragte, datenschutz@einblick.example"
    privacy_authority: str = ("Berliner Beauftragte für Datenschutz und "
                              "Informationsfreiheit, Alt-Moabit 59-61, 10555 Berlin")
    timezone: str = "Europe/Berlin"
    # Household: fields a service really needs (comma list of birth_date, allergies,
    # medical_notes, group_name, emergency_contact); everything else stays optional.
    household_required_fields: str = "birth_date"
    own_account_age: int = 16
    # A consent staff asked for and nobody answered is reminded of once, after this many
    # days (`flask consents remind`).
    consent_reminder_days: int = 3
    # Bookings
    booking_request_hours: int = 48  # a request holds its slot this long
    cancel_cutoff_hours: int = 24
    booking_buffer_minutes: int = 10
    booking_days_ahead: int = 42
    # A confirmed appointment opens the client's file to its staff member without a reason
    # (no break-glass) from the confirmation until this many days after the appointment's
    # end; 0: until its end. The assignment, not the appointment, is for lasting work.
    appointment_file_days: int = 30
    # Conversations (shared/services/messages.py) are deleted this many whole calendar
    # years after their last message (and at once when the client deletes the account).
    message_retention_years: int = 2
    # Open requests (and proposals waiting for the client) each person may have at once:
    # every one holds a slot, so without a cap one account could block a calendar.
    max_open_requests: int = 3
    # The same across everyone one account books for (itself and its children): children
    # cost nothing to add, so a cap per person alone lets one account hold any number.
    max_open_requests_per_account: int = 6
    client_idle_minutes: int = 30
    staff_idle_minutes: int = 15
    session_absolute_hours: int = 12
    step_up_minutes: int = 5
    # A recovery staff start after checking a client's identity in person takes effect this
    # many hours later, so the client, emailed at once, can stop one they did not ask for.
    recovery_wait_hours: int = 24
    reset_token_hours: int = 1
    confirm_token_hours: int = 48
    invitation_token_hours: int = 72
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    secure_cookies: bool | None = None  # None: secure unless env == development
    # Flask's debugger (FLASK_DEBUG, not an EINBLICK_ variable): runs any code a visitor
    # sends once its PIN is guessed, so production refuses it.
    debug: bool = False
    # Ids of erased clients, kept outside the database so that restoring an older backup
    # cannot bring a client back (None: instance/erasure-journal.jsonl). Must be on durable
    # storage shared by all workers and must not be restored with the database.
    erasure_journal: str | None = None
    # The access log's latest chain heads, kept outside the database so that deleting the
    # newest events is noticed (None: instance/audit-anchor.json); `flask audit anchor`.
    audit_anchor: str | None = None
    # An admin answers an erasure or correction request within this many days (Art. 12(3)).
    request_deadline_days: int = 30
    # Security events as JSON lines: "stderr" (default, for a log shipper), "none", or a
    # file path. Admins see the last `security_event_days` days at /staff/security-events.
    security_log: str = "stderr"
    security_event_days: int = 90
    extra: dict = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.env != "development"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # psycopg 3 is the driver we pin; accept the common short spellings.
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix):]
            return url
        return "sqlite:///" + str(Path(self.instance_path) / "einblick.sqlite3")

    @property
    def erasure_journal_path(self) -> Path:
        return Path(self.erasure_journal or Path(self.instance_path) / "erasure-journal.jsonl")

    @property
    def audit_anchor_path(self) -> Path:
        return Path(self.audit_anchor or Path(self.instance_path) / "audit-anchor.json")

    @property
    def redis_key_prefix(self) -> str:
        """Every key the rate limiter and its counters write starts with this, so several
        organisations can share one Redis without counting each other's requests."""
        return "einblick:" + (self.organisation_slug or slugify(self.organisation_name))

    def with_(self, **changes) -> Config:
        """A copy with some values changed (tests use it)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Config:
        """Read EINBLICK_* variables (and DATABASE_URL) over the defaults, validating types."""
        environ = dict(os.environ if environ is None else environ)
        values: dict = {}
        for f in fields(cls):
            if f.name in ("extra", "debug"):
                continue
            key = "EINBLICK_" + f.name.upper()
            if key not in environ:
                continue
            raw = environ[key]
            values[f.name] = _parse(f.name, f.type, raw)
        if environ.get("DATABASE_URL"):
            values["database_url"] = environ["DATABASE_URL"]
        values["debug"] = flask_debug_flag(environ.get("FLASK_DEBUG"))
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.env not in ("development", "production", "test"):
            raise ConfigError(
                f"EINBLICK_ENV must be development, production or test, not {self.env!r}"
            )
        if self.production and not (self.master_keys and self.secret_key and self.index_key):
            raise ConfigError(
                "In production set EINBLICK_MASTER_KEYS, EINBLICK_INDEX_KEY and "
                "EINBLICK_SECRET_KEY; keys are never generated on a production start."
            )
        if _is_ip_address(self.rp_id):
            raise ConfigError(
                "EINBLICK_RP_ID must be a host name such as portal.example.org; WebAuthn does "
                "not accept an IP address."
            )
        if self.production and not (self.seal_cert and self.seal_key):
            raise ConfigError(
                "In production set EINBLICK_SEAL_CERT and EINBLICK_SEAL_KEY (PEM files of the "
                "organisation's certificate and key that seal consent receipts)."
            )
        if self.production and not self.smtp_url:
            raise ConfigError(
                "In production set EINBLICK_SMTP_URL (smtps://user:pass@host or "
                "smtp://user:pass@host:587 for STARTTLS); the outbox folder is for development."
            )
        if self.production and not self.erasure_journal:
            raise ConfigError(
                "In production set EINBLICK_ERASURE_JOURNAL to a file on durable storage that "
                "is not restored together with database backups (it lists erased clients)."
            )
        if self.production and self.debug:
            raise ConfigError(DEBUG_IN_PRODUCTION)
        if self.production and not self.cookies_secure:
            raise ConfigError(
                "In production cookies must be sent over HTTPS only: remove "
                "EINBLICK_SECURE_COOKIES=0 (or set it to 1) and serve the portal over HTTPS."
            )
        if self.production and self.ratelimit_storage_uri.startswith("memory"):
            raise ConfigError(
                "In production set EINBLICK_RATELIMIT_STORAGE_URI (e.g. redis://host:6379): "
                "memory storage does not work across several workers."
            )
        if self.security_event_days < 1:
            raise ConfigError(
                "EINBLICK_SECURITY_EVENT_DAYS must be 1 or more (days the security events are "
                f"kept for admins), not {self.security_event_days}."
            )
        if self.consent_reminder_days < 1:
            raise ConfigError(
                "EINBLICK_CONSENT_REMINDER_DAYS must be 1 or more (days before a consent "
                f"request nobody answered is reminded of), not {self.consent_reminder_days}."
            )
        if self.appointment_file_days < 0:
            raise ConfigError(
                "EINBLICK_APPOINTMENT_FILE_DAYS must be 0 or more (days after an appointment "
                "that its staff member may still open the client's file without a reason), "
                f"not {self.appointment_file_days}."
            )
        if self.message_retention_years < 1:
            raise ConfigError(
                "EINBLICK_MESSAGE_RETENTION_YEARS must be 1 or more (years after a "
                "conversation's last message that it is deleted), not "
                f"{self.message_retention_years}."
            )
        if self.recovery_wait_hours < 24:
            raise ConfigError(
                "EINBLICK_RECOVERY_WAIT_HOURS must be 24 or more (hours between staff starting "
                "an account recovery and the client completing it, so the client can notice "
                f"and cancel one they did not ask for), not {self.recovery_wait_hours}."
            )
        if self.max_open_requests < 1:
            raise ConfigError(
                "EINBLICK_MAX_OPEN_REQUESTS must be 1 or more (booking requests one person may "
                f"have waiting at once), not {self.max_open_requests}."
            )
        if self.max_open_requests_per_account < 1:
            raise ConfigError(
                "EINBLICK_MAX_OPEN_REQUESTS_PER_ACCOUNT must be 1 or more (booking requests one "
                "account may have waiting at once for itself and everyone it books for), not "
                f"{self.max_open_requests_per_account}."
            )
        try:
            parse_opening_hours(self.organisation_opening_hours)
        except ValueError as exc:
            raise ConfigError(
                f"EINBLICK_ORGANISATION_OPENING_HOURS: {exc}. Write it like "
                "\"mon-thu 09:00-17:00; fri 09:00-13:00\"."
            ) from None
        if self.organisation_slug and not re.fullmatch(r"[a-z0-9][a-z0-9-]*",
                                                       self.organisation_slug):
            raise ConfigError(
                "EINBLICK_ORGANISATION_SLUG may hold only small letters, digits and \"-\" "
                f"(it names this organisation's keys in Redis), not {self.organisation_slug!r}."
            )
        if not self.organisation_slug and not slugify(self.organisation_name):
            raise ConfigError(
                "Set EINBLICK_ORGANISATION_SLUG (small letters, digits and \"-\"): the "
                "organisation's name has no letters to name its keys in Redis with."
            )
        _check_security_log(self.security_log)


def slugify(name: str) -> str:
    """"Jugendhilfe Süd e.V." -> "jugendhilfe-sud-e-v" (ASCII letters and digits)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class OpeningSpan:
    """Days first_day..last_day (0 = Monday), open from opens to closes ("09:00")."""

    first_day: int
    last_day: int
    opens: str
    closes: str


def parse_opening_hours(text: str) -> list[OpeningSpan]:
    """"mon-thu 09:00-17:00; fri 09:00-13:00" as spans; ValueError says what is wrong."""

    spans = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = re.fullmatch(r"([a-z]{3})(?:-([a-z]{3}))?\s+(\d\d:\d\d)-(\d\d:\d\d)",
                             part.lower())
        if not match or not {match[1], match[2] or match[1]} <= set(WEEKDAYS):
            raise ValueError(f"cannot read {part!r}")
        first, last = WEEKDAYS.index(match[1]), WEEKDAYS.index(match[2] or match[1])
        if last < first or not ("00:00" <= match[3] < match[4] <= "24:00"):
            raise ValueError(f"{part!r} ends before it begins")
        spans.append(OpeningSpan(first, last, match[3], match[4]))
    return spans


def _check_security_log(destination: str) -> None:
    """A file destination must be writable now: the app opens it once at start-up."""
    if destination in ("stderr", "none"):
        return
    path = Path(destination)
    folder = path.parent
    if not destination.strip() or path.is_dir():
        raise ConfigError(
            f"EINBLICK_SECURITY_LOG must be stderr, none or a file path, not the folder "
            f"{destination!r}."
        )
    if not folder.is_dir():
        raise ConfigError(
            f"EINBLICK_SECURITY_LOG is {destination}, but the folder {folder} does not exist. "
            "Create the folder, or set EINBLICK_SECURITY_LOG=stderr (or none)."
        )
    if path.exists():
        writable, target = os.access(path, os.W_OK), "the file"
    else:
        writable, target = os.access(folder, os.W_OK | os.X_OK), f"in the folder {folder}"
    if not writable:
        raise ConfigError(
            f"EINBLICK_SECURITY_LOG is {destination}, but this user may not write {target}. "
            "Change the permissions, or set EINBLICK_SECURITY_LOG=stderr."
        )


DEBUG_IN_PRODUCTION = (
    "FLASK_DEBUG is on while EINBLICK_ENV=production: the debugger would let visitors run "
    "code on the server. Unset FLASK_DEBUG (or set it to 0) and do not start production "
    "with `flask run --debug`."
)


def flask_debug_flag(raw: str | None) -> bool:
    """Whether FLASK_DEBUG switches the debugger on, read as Flask reads it."""
    return bool(raw) and raw.strip().lower() not in ("0", "false", "no")


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _parse(name: str, type_: object, raw: str):
    type_name = str(type_)
    try:
        if "bool" in type_name:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "int" in type_name:
            return int(raw)
    except ValueError as exc:
        raise ConfigError(f"EINBLICK_{name.upper()} has an invalid value") from exc
    return raw
