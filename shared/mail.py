"""Outgoing email: one .eml file per message in instance/outbox/, or SMTP when configured.

Emails carry no sensitive details; they say what happened and link to the portal.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlparse

from flask import current_app, has_request_context, render_template
from flask_babel import force_locale

from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES

log = logging.getLogger("einblick.mail")


def outbox_dir() -> Path:
    return Path(current_app.instance_path) / "outbox"


def send(*, to: str | None, subject, template: str, locale: str | None = None,
         attachments: Sequence[tuple[str, str, bytes]] = (), **context) -> None:
    """Render ``templates/mail/<template>.txt`` in the recipient's language and send it,
    with ``attachments`` as (file name, MIME type, content), e.g. an appointment's .ics.
    Nothing is sent without an address (an anonymous contact has none)."""
    if not to:
        return
    config = current_app.extensions["einblick"].config
    locale = locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE
    # Outside a request (CLI, jobs) url_for needs a request context to build paths.
    request_context = (
        nullcontext() if has_request_context() else current_app.test_request_context("/")
    )
    with request_context, force_locale(locale):
        body = render_template(f"mail/{template}.txt", base_url=config.base_url, **context)
        subject_text = str(subject)
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = to
    message["Subject"] = subject_text
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="einblick.local")
    message.set_content(body)
    for filename, mimetype, content in attachments:
        maintype, subtype = mimetype.split("/", 1)
        # Text attachments (the .ics) are UTF-8: say so, for names in Turkish or Arabic.
        params = {"charset": "utf-8"} if maintype == "text" else {}
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename,
                               params=params)
    # After the attachments: turning the message into multipart moves content headers down.
    message["Content-Language"] = locale
    if config.smtp_url:
        _send_smtp(config.smtp_url, message)
    else:
        _write_outbox(message)


def _write_outbox(message: EmailMessage) -> None:
    folder = outbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    from shared.models.base import utcnow

    name = f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.eml"
    tmp = folder / (name + ".part")
    tmp.write_bytes(bytes(message))
    tmp.rename(folder / name)  # readers never see half a message


# SMTP runs beside the request, so a slow mail server neither delays the page nor shows,
# by timing, whether an address has an account. A message still sending when its worker
# stops is lost; the user can ask again (links are re-issued on request).
_smtp_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="smtp")


def _send_smtp(url: str, message: EmailMessage) -> None:
    _smtp_pool.submit(_deliver, url, message)


def _deliver(url: str, message: EmailMessage) -> None:
    try:
        deliver_smtp(url, message)
    except (OSError, smtplib.SMTPException) as exc:
        # Never log the message or the recipient: only that delivery failed.
        log.error("email delivery failed: %s", type(exc).__name__)


def deliver_smtp(url: str, message: EmailMessage) -> None:
    """Send over SMTP with a verified TLS connection (smtps:// or STARTTLS)."""
    parsed = urlparse(url)
    context = ssl.create_default_context()
    host = parsed.hostname or "localhost"
    if parsed.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(host, parsed.port or 465, timeout=30, context=context)
    else:
        smtp = smtplib.SMTP(host, parsed.port or 587, timeout=30)
    with smtp:
        if parsed.scheme != "smtps":
            if parsed.scheme == "smtp+insecure":
                pass  # a local relay on a trusted host, explicitly asked for
            else:
                smtp.starttls(context=context)
        if parsed.username:
            if parsed.scheme == "smtp+insecure":
                raise smtplib.SMTPException("refusing to send a password without TLS")
            smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
        smtp.send_message(message)
