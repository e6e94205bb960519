"""Consent receipts: a PDF (fpdf2) with the text, hashes, method, time and evidence,
the evidence also embedded as JSON, sealed with the organisation's certificate."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from shared import seal
from shared.i18n import LANGUAGE_NAMES, format_when, text_direction
from shared.models.consents import EMAIL_CODE_NAME, PASSKEY, Consent

if TYPE_CHECKING:
    from fpdf import FPDF

EVIDENCE_NAME = "evidence.json"


FONTS = Path(__file__).resolve().parent.parent / "fonts"
FONT = "DejaVu"  # DejaVu Sans, vendored by scripts/vendor_fonts.py (Latin, Cyrillic, Arabic)


def _new_pdf(locale: str) -> tuple[FPDF, str]:
    """A PDF that writes every language of the portal: the embedded Unicode font, and text
    shaping (HarfBuzz) that joins Arabic letters and lays out right-to-left lines; returns
    it with the alignment of running text in ``locale``."""
    # Imported here, not at start: fpdf2 (with fontTools) adds some 28 MB and half a second
    # to every worker and cron process, and only a receipt needs it.
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_text_shaping(True)
    pdf.set_lang(locale)
    return pdf, ("R" if text_direction(locale) == "rtl" else "L")


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
    pdf, align = _new_pdf(locale)
    pdf.set_title(text["title"])
    pdf.set_author(config.organisation_name)
    pdf.add_page()
    pdf.set_font(FONT, "B", 16)

    def write(size: int, height: int, value: str, *, style: str = "",
              line_align: str | None = None) -> None:
        pdf.set_font(FONT, style, size)
        pdf.multi_cell(0, height, value, align=line_align or align,
                       new_x="LMARGIN", new_y="NEXT")

    # The labels in the language the person signed in; the binding text in its own
    # language (the German original where no translation existed), named in words.
    with force_locale(locale):
        heading = _("Receipt: consent withdrawn") if withdrawal else _("Receipt: consent given")
        write(16, 9, heading, style="B")
        binding = fields["language"]
        rows = [
            (_("Organisation"), config.organisation_name, None),
            (_("Consent"), text["title"], None),
            (_("Version"), str(consent.template.version), None),
            (_("Language of the signed text"), LANGUAGE_NAMES.get(binding, binding), None),
            (_("Signed at"), format_when(datetime.fromisoformat(fields["time"])), None),
            (_("Method"), _method_label(consent.method), None),
            # Hashes are read left to right in every language.
            (_("Document SHA-256"), hashlib.sha256(document).hexdigest(), "L"),
            (_("Text SHA-256"), fields["text_sha256"], "L"),
        ]
        if withdrawal and consent.withdrawn_at:
            rows.append((_("Withdrawn at"), format_when(consent.withdrawn_at), None))
        for label, value, value_align in rows:
            write(10, 6, label, style="B")
            write(10, 6, value, line_align=value_align)
        pdf.ln(4)
        text_align = "R" if text_direction(binding) == "rtl" else "L"
        write(12, 7, text["title"], style="B", line_align=text_align)
        write(10, 5, text["text"], line_align=text_align)
        pdf.ln(4)
        write(8, 4, _(
            "The full evidence is attached to this PDF as evidence.json. Check this receipt "
            "at the organisation's /verify page, or offline with python -m "
            "shared.consent_verify."))
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
