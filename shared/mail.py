"""Outgoing email: one .eml file per message in instance/outbox/, or SMTP when configured.

Emails carry no sensitive details; they say what happened and link to the portal.
"""

from __future__ import annotations

import smtplib
import uuid
from contextlib import nullcontext
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlparse

from flask import current_app, has_request_context, render_template
from flask_babel import force_locale

from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES


def outbox_dir() -> Path:
    return Path(current_app.instance_path) / "outbox"


def send(*, to: str, subject, template: str, locale: str | None = None, **context) -> None:
    """Render ``templates/mail/<template>.txt`` in the recipient's language and send it."""
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
    message["Content-Language"] = locale
    message.set_content(body)
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


def _send_smtp(url: str, message: EmailMessage) -> None:
    parsed = urlparse(url)
    port = parsed.port or (465 if parsed.scheme == "smtps" else 587)
    smtp_class = smtplib.SMTP_SSL if parsed.scheme == "smtps" else smtplib.SMTP
    with smtp_class(parsed.hostname or "localhost", port, timeout=30) as smtp:
        if parsed.scheme == "smtp+starttls" or (parsed.scheme == "smtp" and port == 587):
            smtp.starttls()
        if parsed.username:
            smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
        smtp.send_message(message)
