"""Flask extensions, created without an app and bound in create_app."""

from __future__ import annotations

import ipaddress
from functools import cached_property

from flask import g
from flask_babel import Babel, Domain, get_locale
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from wtforms.csrf.core import CSRFTokenField
from wtforms.widgets import HiddenInput

from shared.models.base import Base

db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()


class _HiddenInputWithoutId(HiddenInput):
    """The CSRF token field without its id: a page with several forms would otherwise
    repeat id="csrf_token" in each (every id on a page must be unique; nothing refers to
    the token by id)."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", False)
        return super().__call__(field, **kwargs)


CSRFTokenField.widget = _HiddenInputWithoutId()


class _RequestDomain(Domain):
    """Flask-Babel's message domain, remembering the request's catalogue for the request.
    Flask-Babel looks the catalogue up anew for every string it translates (about 15 µs;
    "my data" translates some 600 strings a page). Only the catalogue object is kept, on
    the request's context; a locale forced meanwhile (``force_locale``) is another locale
    object and gets its own catalogue."""

    def get_translations(self):
        context = g.get("_flask_babel") if g else None
        if context is None:
            return super().get_translations()
        locale = getattr(context, "babel_locale", None) or get_locale()
        kept = getattr(context, "einblick_catalogue", None)
        if kept is not None and kept[0] is locale:
            return kept[1]
        translations = super().get_translations()
        context.einblick_catalogue = (locale, translations)
        return translations


class _Babel(Babel):
    @cached_property
    def domain_instance(self):
        return _RequestDomain(domain=self.domain)


babel = _Babel()
# Only static CSS/JS: compressing pages that hold secrets and echoed input invites BREACH.
compress = Compress()


def client_address() -> str:
    """The sender as rate limits count it: an IPv4 address, or the IPv6 /64 network (one
    home line or phone gets a whole /64, so counting single IPv6 addresses counts
    nothing)."""
    address = get_remote_address()
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, 64), strict=False))


def limiter_storage_options(config) -> dict:
    """Options for the limiter's storage: in Redis every key starts with the organisation's
    prefix (``Config.redis_key_prefix``), so organisations sharing a Redis never share a
    count. Flask-Limiter, the code-attempt counter and the security log all use them."""
    if config.ratelimit_storage_uri.split(":", 1)[0].split("+")[-1] in (
            "redis", "rediss", "redis-sentinel", "redis-cluster", "valkey", "valkeys"):
        return {"key_prefix": config.redis_key_prefix}
    return {}


# The client address lives only in the limiter's storage (memory or Redis), never in the DB.
limiter = Limiter(key_func=client_address, default_limits=[])
