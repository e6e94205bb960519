"""Form drafts: nothing typed is lost to the idle timeout, with or without JavaScript.

A form posted after its session had ended is sent to sign in like any request; its fields
are kept first (``keep_posted_form``). Once the same account has signed in again and is
back on the page that holds the form, the form is filled from the draft
(``install_form_hook``) with a notice to check and send it again: never sent on its own.

The fields are sealed with a random key that only this browser's session cookie holds,
so the stored row alone reveals nothing; the row names the account that was signed in,
and another account signing in on this browser never sees it. Passwords, codes, tokens
and files are never kept. A draft lives one hour at most and goes when it is used.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import flash, g, request, session, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from sqlalchemy import delete
from werkzeug.datastructures import MultiDict

from shared import crypto
from shared.extensions import db
from shared.models.base import utcnow
from shared.models.drafts import FormDraft

DRAFT_TTL = timedelta(hours=1)
# Where the pointer to the draft and its key live: the (signed) session cookie.
COOKIE_KEY = "form_draft"
# Fields never kept: secrets and single-use values (a form's own prefix is allowed, as in
# "note-body"). Files never reach request.form.
_NOT_KEPT = re.compile(r"(^|[-_])(csrf_token|password|current|code|recovery_code|secret|"
                       r"token|submit)$")
_LOGIN_ENDPOINTS = ("portal.login", "staff.login")


@dataclass(frozen=True)
class Draft:
    """A kept form: the page that holds it, the field names it posted, the kept values."""

    path: str
    names: frozenset[str]
    fields: list[tuple[str, str]]


def kept_fields(posted: MultiDict) -> tuple[frozenset[str], list[tuple[str, str]]]:
    """The names a form posted and the values worth keeping (no secrets, no buttons)."""
    names = frozenset(name for name in posted if not _NOT_KEPT.search(name))
    fields = [(name, value) for name, value in posted.items(multi=True) if name in names]
    return names, fields


def _aad(draft_id: uuid.UUID, account_id: uuid.UUID) -> bytes:
    return crypto.field_aad("form_drafts", "content", owner_id=account_id, row_id=draft_id)


def keep(*, account_id: uuid.UUID, draft: Draft, now: datetime) -> tuple[uuid.UUID, bytes]:
    """Store a draft for the account; returns its id and the key that alone opens it."""
    db.session.execute(delete(FormDraft).where(FormDraft.expires_at < now))
    key = crypto.generate_key()
    draft_id = uuid.uuid4()
    payload = json.dumps({"path": draft.path, "names": sorted(draft.names),
                          "fields": draft.fields}).encode()
    content = crypto.encrypt_field(data_key=key, data_key_id=draft_id, plaintext=payload,
                                   aad=_aad(draft_id, account_id))
    db.session.add(FormDraft(id=draft_id, account_id=account_id, content=content,
                             created_at=now, expires_at=now + DRAFT_TTL))
    db.session.commit()
    return draft_id, key


def open_draft(*, draft_id: uuid.UUID, key: bytes, account_id: uuid.UUID,
               now: datetime) -> Draft | None:
    """The account's live draft, or None (gone, expired, another account's, or a key that
    does not open it)."""
    row = db.session.get(FormDraft, draft_id)
    if row is None or row.account_id != account_id or row.expires_at <= now:
        return None
    try:
        payload = json.loads(crypto.decrypt_field(data_key=key, data_key_id=draft_id,
                                                  blob=row.content,
                                                  aad=_aad(draft_id, account_id)))
    except crypto.DecryptionFailed:
        return None
    return Draft(path=payload["path"], names=frozenset(payload["names"]),
                 fields=[(name, value) for name, value in payload["fields"]])


def purge_expired(now: datetime) -> int:
    """Delete drafts nobody came back for (``flask retention purge``)."""
    return db.session.execute(delete(FormDraft).where(FormDraft.expires_at < now)).rowcount


def discard(draft_id: uuid.UUID) -> None:
    db.session.execute(delete(FormDraft).where(FormDraft.id == draft_id))
    db.session.commit()


def belongs_to(draft_id: uuid.UUID, account_id: uuid.UUID) -> bool:
    row = db.session.get(FormDraft, draft_id)
    return row is not None and row.account_id == account_id


# -- web glue: the cookie pointer, the posted form, the form filled again ---------------------
def session_ended(account_id: uuid.UUID) -> None:
    """This request came with a session that has just ended by the idle (or absolute)
    limit: a form it posts may be kept for that account."""
    g.ended_session_account_id = account_id


def _pointer() -> tuple[uuid.UUID, bytes] | None:
    data = session.get(COOKIE_KEY)
    if not isinstance(data, dict):
        return None
    try:
        return uuid.UUID(data["id"]), crypto.b64decode(data["key"])
    except (KeyError, TypeError, ValueError):
        return None


def carry_over(pointer: object, account_id: uuid.UUID) -> None:
    """At sign-in (after the session was cleared): keep the cookie's pointer to a draft of
    the account signing in; a draft of another account is deleted, unseen."""
    if not isinstance(pointer, dict):
        return
    try:
        draft_id = uuid.UUID(pointer["id"])
    except (KeyError, TypeError, ValueError):
        return
    if belongs_to(draft_id, account_id):
        session[COOKIE_KEY] = pointer
    else:
        discard(draft_id)


def forget() -> None:
    """Signing out: the draft goes with the session."""
    pointer = _pointer()
    session.pop(COOKIE_KEY, None)
    if pointer is not None:
        discard(pointer[0])


def keep_posted_form(response):
    """After-request hook: a form posted with an ended session and sent to sign in is kept
    for the account that was signed in, to fill the form again after signing in."""
    from shared.auth import login_flow  # login_flow imports sessions, which imports this

    account_id = g.get("ended_session_account_id")
    if (account_id is None or request.method != "POST" or response.status_code not in
            (302, 303) or not _leads_to_sign_in(response.location)):
        return response
    back = login_flow.return_address()
    names, fields = kept_fields(request.form)
    if back is None or not any(value.strip() for _name, value in fields):
        return response
    draft = Draft(path=urlsplit(back).path, names=names, fields=fields)
    previous = _pointer()
    if previous is not None:
        discard(previous[0])
    draft_id, key = keep(account_id=account_id, draft=draft, now=utcnow())
    session[COOKIE_KEY] = {"id": str(draft_id), "key": crypto.b64encode(key)}
    flash(_("What you entered was kept. After signing in you will see it again."), "info")
    return response


def _leads_to_sign_in(location: str | None) -> bool:
    path = urlsplit(location or "").path
    return any(path == url_for(endpoint) for endpoint in _LOGIN_ENDPOINTS)


def _draft_for(form) -> MultiDict | None:
    """The kept fields for this form, when the signed-in account is back on the page that
    held it and the form is the one that was posted (the first such form of the request).
    Used once: the draft is deleted and the notice shown."""
    from flask_login import current_user

    if request.method != "GET" or g.get("form_draft_used"):
        return None
    pointer = _pointer()
    if pointer is None or not current_user.is_authenticated:
        return None
    draft_id, key = pointer
    draft = open_draft(draft_id=draft_id, key=key, account_id=current_user.id, now=utcnow())
    if draft is None:
        session.pop(COOKIE_KEY, None)
        discard(draft_id)
        return None
    if draft.path != request.path or not draft.names <= {field.name for field in form}:
        return None
    g.form_draft_used = True
    session.pop(COOKIE_KEY, None)
    discard(draft_id)
    flash(_("You were signed out for your safety; what you entered was kept. Please check "
            "it and send the form again."), "warning")
    return MultiDict(draft.fields)


def install_form_hook() -> None:
    """Let every FlaskForm built on a GET take its data from a draft kept for it.

    Flask-WTF reads the request's form data in ``Meta.wrap_formdata``; the forms of both
    blueprints derive from FlaskForm directly, so this one seam covers them all."""
    meta = FlaskForm.Meta
    if getattr(meta.wrap_formdata, "fills_form_drafts", False):
        return
    original = meta.wrap_formdata

    def wrap_formdata(self, form, formdata):
        wrapped = original(self, form, formdata)
        if wrapped is None and formdata is _Auto:
            return _draft_for(form)
        return wrapped

    wrap_formdata.fills_form_drafts = True
    meta.wrap_formdata = wrap_formdata
