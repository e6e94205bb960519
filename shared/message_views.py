"""What the portal's and the staff's message pages share: the attachment field, what a
refused attachment tells the writer, how an attachment is handed out, and the new
messages an open conversation page asks for (shared/static/js/messages.js).

Web glue for both blueprints (like ``shared/passkey_views.py``); the rules (who may write,
read, take a conversation) are the service's, ``shared/services/messages.py``.
"""

from __future__ import annotations

import io
import uuid

from flask import abort, render_template, request, send_file
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField

# Endpoints whose form may carry an attachment: up to 20 MB, like a document
# (shared/app.py lets these through its 1 MB limit).
UPLOAD_ENDPOINTS = frozenset({"portal.message_new", "portal.message_reply",
                              "staff.message_reply"})
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024  # as documents (casefile.MAX_DOCUMENT_BYTES)
ACCEPT = ".pdf,.jpg,.jpeg,.png,.heic,.docx,.xlsx,.odt,.ods,.doc"


def attachment_field(field_id: str) -> FileField:
    return FileField(_l("Attachment (optional)"), id=field_id,
                     description=_l("A PDF, a photo (JPEG, PNG) or an office document, up "
                                    "to 20 MB."),
                     render_kw={"accept": ACCEPT})


def uploads(field: FileField) -> list[tuple[str, bytes]]:
    """The file chosen in ``field`` as [(name, content)], empty when none was chosen. One
    byte more than allowed is read, so the service can tell the file is too large."""
    storage = field.data
    if storage is None or not getattr(storage, "filename", ""):
        return []
    return [(storage.filename, storage.read(MAX_ATTACHMENT_BYTES + 1))]


def attachment_problem(reason: str) -> str:
    """What a refused attachment tells the writer, and what to do instead. The text they
    wrote stays in the form; only the file has to be chosen again (no browser keeps it)."""
    problem = {
        "too-large": _("The file is larger than 20 MB. Please choose a smaller file, or send "
                       "a photo of the page."),
        "type": _("This kind of file cannot be sent. Please send a PDF, a photo (JPEG, PNG) "
                  "or an office document. The file's content was checked, not its name."),
        "empty": _("The file is empty. Please choose it again."),
    }.get(reason, _("The file could not be read. Please choose it again."))
    return _("%(problem)s Your text is kept: choose a file again or send without one.",
             problem=problem)


def send_attachment(attachment, name: str):
    """An attachment as a download under ``name``: an ASCII fallback and the exact name
    as filename*=UTF-8''… (RFC 6266), as documents are."""
    return send_file(io.BytesIO(attachment.content), mimetype=attachment.content_type,
                     as_attachment=True, download_name=name)


def after_arg() -> uuid.UUID:
    """The ``after`` of a request for new messages: the last message the page shows."""
    try:
        return uuid.UUID(request.args.get("after", ""))
    except ValueError:
        abort(404)


def new_messages(view, authors: dict, area: str, download_name):
    """The answer to an open conversation page asking what came after its last message:
    204 when nothing did, else the new messages as an HTML fragment in the page's own
    markup (the client's or staff's, by ``area``), with the message to continue after in a
    header.

    The page asks every few seconds (polling) instead of holding a connection open for
    server-sent events: production runs gunicorn with sync workers, where a held
    connection takes a whole worker for as long as a page stays open (a few open pages
    would stop the site); a short request costs a worker milliseconds and passes any
    proxy. The requests are no use of the session (shared/auth/sessions.py), so an open
    page never keeps a session alive by itself."""
    if view is None:
        return "", 204, {"Cache-Control": "no-store"}
    html = render_template("_messages_new.html", view=view, authors=authors,
                           download_name=download_name, area=area)
    return html, 200, {"Cache-Control": "no-store",
                       "X-Messages-After": str(view.messages[-1].id)}
