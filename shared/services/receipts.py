"""Consent receipts: a PDF (fpdf2) with the text, hashes, method, time and evidence,
the evidence also embedded as JSON, sealed with the organisation's certificate."""

from __future__ import annotations

import hashlib
import json

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from fpdf import FPDF

from shared import seal
from shared.models.consents import EMAIL_CODE_NAME, PASSKEY, Consent

EVIDENCE_NAME = "evidence.json"


def _latin(text: str) -> str:
    # The core PDF fonts cover Latin-1 (German, English); anything else is replaced
    # rather than dropped silently. The embedded evidence keeps the exact text.
    return text.encode("latin-1", "replace").decode("latin-1")


def _method_label(method: str) -> str:
    if method == PASSKEY:
        return _("passkey signature (strong)")
    if method == EMAIL_CODE_NAME:
        return _("code sent by email and typed name (weakest: proves access to the "
                 "mailbox and the account)")
    return _("authenticator code and typed name (weaker)")


def _pdf(consent: Consent, *, withdrawal: bool) -> bytes:
    config = current_app.extensions["einblick"].config
    document = consent.document
    fields = json.loads(document)
    locale = consent.locale
    text = consent.template.text(locale)
    pdf = FPDF()
    pdf.set_title(_latin(text["title"]))
    pdf.set_author(_latin(config.organisation_name))
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    with force_locale(locale):
        heading = _("Receipt: consent withdrawn") if withdrawal else _("Receipt: consent given")
        pdf.multi_cell(0, 9, _latin(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", "", 11)
        rows = [
            (_("Organisation"), config.organisation_name),
            (_("Consent"), f"{text['title']} ({_('version')} {consent.template.version})"),
            (_("Language"), fields["language"]),
            (_("Signed at (UTC)"), fields["time"]),
            (_("Method"), _method_label(consent.method)),
            (_("Document SHA-256"), hashlib.sha256(document).hexdigest()),
            (_("Text SHA-256"), fields["text_sha256"]),
        ]
        if withdrawal and consent.withdrawn_at:
            rows.append((_("Withdrawn at (UTC)"), consent.withdrawn_at.isoformat()))
        for label, value in rows:
            pdf.set_font("helvetica", "B", 10)
            pdf.multi_cell(0, 6, _latin(label), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("helvetica", "", 10)
            pdf.multi_cell(0, 6, _latin(str(value)), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font("helvetica", "B", 12)
        pdf.multi_cell(0, 7, _latin(text["title"]), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", "", 10)
        pdf.multi_cell(0, 5, _latin(text["text"]), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font("helvetica", "", 8)
        pdf.multi_cell(0, 4, _latin(_(
            "The full evidence is attached to this PDF as evidence.json. Check this receipt "
            "at the organisation's /verify page, or offline with python -m "
            "shared.consent_verify.")), new_x="LMARGIN", new_y="NEXT")
    evidence = dict(consent.evidence)
    evidence["status"] = "withdrawn" if withdrawal else "given"
    if withdrawal and consent.withdrawn_at:
        evidence["withdrawn_at"] = consent.withdrawn_at.isoformat()
    pdf.embed_file(bytes=json.dumps(evidence, sort_keys=True, indent=1).encode(),
                   basename=EVIDENCE_NAME, desc="Einblick consent evidence")
    return seal.seal_pdf(bytes(pdf.output()), seal.load(config))


def consent_receipt(consent: Consent) -> bytes:
    return _pdf(consent, withdrawal=False)


def withdrawal_receipt(consent: Consent) -> bytes:
    return _pdf(consent, withdrawal=True)
