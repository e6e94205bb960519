"""Checks before a production start (`make prod`, the systemd unit, gunicorn's start hook).

``Config.validate`` already refuses a production start without keys, seal, SMTP, erasure
journal, shared rate-limit storage or secure cookies. This adds what only a real
deployment needs: PostgreSQL, Redis, a long secret key, and the organisation's own
details instead of the demo values the defaults carry.

    python -m shared.production   # prints what is missing; exit status 1 if anything is
"""

from __future__ import annotations

import os
import sys

from shared.config import Config, ConfigError

# Defaults that are demo values (README, "Configuration"): a live portal must name the
# organisation that runs it.
DEMO_VALUES = (
    "organisation_address",
    "organisation_email",
    "organisation_phone",
    "mail_from",
    "imprint_representative",
    "imprint_register",
    "privacy_officer",
    "base_url",
    "origin",
)


def problems(environ: dict[str, str] | None = None) -> list[str]:
    """What stops a production start, one sentence each with the variable to set."""
    environ = dict(os.environ if environ is None else environ)
    if environ.get("EINBLICK_ENV") != "production":
        return ["Set EINBLICK_ENV=production (the development defaults generate keys and "
                "write emails to files)."]
    placeholders = sorted(key for key, value in environ.items()
                          if key.startswith(("EINBLICK_", "DATABASE_URL")) and "REPLACE" in value)
    if placeholders:
        return [f"{key} still holds REPLACE from deploy/einblick.env.example."
                for key in placeholders]
    try:
        config = Config.from_env(environ)
    except ConfigError as exc:
        return [str(exc)]
    found = []
    if not config.sqlalchemy_url.startswith("postgresql"):
        found.append("Set DATABASE_URL to PostgreSQL (postgresql://user@host/database): "
                     "SQLite serves one process, not several workers.")
    if not config.ratelimit_storage_uri.startswith(("redis", "rediss", "valkey")):
        found.append("Set EINBLICK_RATELIMIT_STORAGE_URI to Redis (redis://host:6379/0).")
    if len(config.secret_key or "") < 32:
        found.append("EINBLICK_SECRET_KEY must be at least 32 random characters, e.g. from "
                     "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`.")
    defaults = Config()
    for name in DEMO_VALUES:
        if getattr(config, name) == getattr(defaults, name):
            found.append(f"EINBLICK_{name.upper()} still has its demo value "
                         f"{getattr(defaults, name)!r}: set the organisation's own.")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print("einblick: not starting:", problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
