"""The step between password and second factor, and where to go afterwards."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

from flask import session

from shared.extensions import db
from shared.models.accounts import Account

PENDING_KEY = "pending_second_factor"
PENDING_SECONDS = 300


def begin(account: Account, *, next_url: str | None) -> None:
    """Remember that the password was right; the second factor must follow within 5 min."""
    session[PENDING_KEY] = {
        "account": str(account.id),
        "at": int(time.time()),
        "next": safe_next(next_url),
    }


def pending_account(kind: str) -> Account | None:
    data = session.get(PENDING_KEY)
    if not data or time.time() - data.get("at", 0) > PENDING_SECONDS:
        return None
    account = db.session.get(Account, uuid.UUID(data["account"]))
    if account is None or account.kind != kind:
        return None
    return account


def pending_key() -> str | None:
    data = session.get(PENDING_KEY)
    return data["account"] if data else None


def pending_next() -> str | None:
    data = session.get(PENDING_KEY) or {}
    return data.get("next")


def safe_next(url: str | None) -> str | None:
    """Only same-site paths, so a link cannot send a user elsewhere after log-in."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return None
    if "\\" in url:
        return None
    return url
