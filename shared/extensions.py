"""Flask extensions, created without an app and bound in create_app."""

from __future__ import annotations

import ipaddress

from flask_babel import Babel
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
babel = Babel()
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
