"""What the portal's and the staff's message pages share: the attachment field, what a
refused attachment tells the writer, and how an attachment is handed out.

Web glue for both blueprints (like ``shared/passkey_views.py``); the rules (who may write,
read, take a conversation) are the service's, ``shared/services/messages.py``.
"""

from __future__ import annotations

import io

from flask import send_file
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
