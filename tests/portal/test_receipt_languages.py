"""Receipts in the signer's language: Turkish, Ukrainian and Arabic (joined letters, right
to left) written with an embedded Unicode font and text shaping, readable by a PDF text
tool, and still sealed and verifiable."""

import io
import json
import re

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _
from pypdf import PdfReader
from sqlalchemy import select

from shared import seal
from shared.extensions import db
from shared.models import Client, Consent, ConsentTemplate
from shared.services import consents
from tests.conftest import submit
from tests.portal.test_consents import _token

TITLES = {"ar": ("الموافقة على الصور في الروضة", "أوافق على التقاط صور لطفلي في الروضة."),
          "uk": ("Згода на фото в дитсадку", "Я погоджуюся на фотографування моєї дитини."),
          "tr": ("Kreşte fotoğraf onayı", "Çocuğumun kreşte fotoğrafının çekilmesine izin "
                                         "veriyorum; ğüşıöç İ.")}


@pytest.fixture
def multilingual_template(app, template):
    """The photo consent with its text written in Arabic, Ukrainian and Turkish too."""
    with app.app_context():
        row = db.session.get(ConsentTemplate, template)
        texts = dict(row.texts)
        for locale, (title, text) in TITLES.items():
            texts[locale] = {**texts["de"], "title": title, "text": text}
        row.texts = texts
        db.session.commit()
    return template


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.parametrize("locale", ["ar", "uk", "tr"])
def test_a_receipt_is_written_in_the_signers_language_and_verifies(
        app, client, auth, make_client, multilingual_template, totp_clock, locale):
    person = make_client(totp=True, full_name="Mia Demir")
    auth.login(person)
    submit(client, f"/language/{locale}", {}, form_url="/account")
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    page = client.get(f"/consents/{multilingual_template}/{own}").get_data(as_text=True)
    assert TITLES[locale][0] in page  # the binding text shown is the one in her language
    totp_clock.advance()
    submit(client, f"/consents/{multilingual_template}/{own}",
           {"code": totp_clock.code(person.totp_secret), "typed_name": "Mia Demir"})
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.locale == locale
        assert json.loads(consent.document)["language"] == locale
        consent_id = consent.id
        cert = seal.load(app.extensions["einblick"].config).certificate_pem
        with force_locale(locale):
            heading = _("Receipt: consent given")
            signed_label = _("Language of the signed text")
    receipt = client.get(f"/consents/receipt/{consent_id}/consent.pdf")
    assert receipt.status_code == 200
    pdf = receipt.data

    text = text_of(pdf)
    assert heading != "Receipt: consent given"  # the catalogue has this language
    for expected in (heading, signed_label, TITLES[locale][0], TITLES[locale][1]):
        assert expected in text, f"{expected!r} not in {text!r}"
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", text)  # no ISO timestamp for people
    assert "UTC" not in text
    assert b"/FontFile2" in pdf  # the Unicode font is embedded, not a core font

    assert seal.check_seal(pdf, cert).intact
    with app.app_context():
        result = consents.verify_receipt(pdf, locale=locale)
    assert (result.seal_intact, result.seal_trusted, result.signature_ok) == (True, True, True)
    assert result.withdrawn is False
    verified = client.post("/verify", data={"receipt": (io.BytesIO(pdf), "r.pdf"),
                                            "csrf_token": _token(client)},
                           content_type="multipart/form-data")
    assert verified.status_code == 200
    with app.app_context(), force_locale(locale):
        valid = _("valid")
    assert f'data-check="seal">{valid}</dd>' in verified.get_data(as_text=True)


def test_the_text_signed_is_the_text_the_page_showed_even_if_the_language_changed_since(
        app, client, auth, make_client, multilingual_template, totp_clock):
    """Read in Ukrainian, language switched to German in another tab, then signed: the
    Ukrainian text that was read is what is signed. A page whose token names a text that
    is not the one shown signs nothing."""
    person = make_client(totp=True, full_name="Mia Demir")
    auth.login(person)
    submit(client, "/language/uk", {}, form_url="/account")
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    page = f"/consents/{multilingual_template}/{own}"
    shown = client.get(page).get_data(as_text=True)
    assert TITLES["uk"][0] in shown
    token = re.search(r'name="shown" type="hidden" value="([^"]+)"', shown).group(1)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', shown).group(1)
    submit(client, "/language/de", {}, form_url="/account")  # the other tab

    forged = client.post(page, data={"csrf_token": csrf, "shown": "de:" + "0" * 64,
                                     "code": totp_clock.code(person.totp_secret),
                                     "typed_name": "Mia Demir"})
    assert forged.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None
        with force_locale("de"):
            refused = _("This page was shown in another language or has changed since. "
                        "Nothing was signed. Please read the text here and answer again.")
    assert refused in client.get(forged.headers["Location"]).get_data(as_text=True)

    totp_clock.advance()
    signed = client.post(page, data={"csrf_token": csrf, "shown": token,
                                     "code": totp_clock.code(person.totp_secret),
                                     "typed_name": "Mia Demir"})
    assert signed.status_code == 302
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.locale == "uk"
        assert json.loads(consent.document)["language"] == "uk"
        assert json.loads(consent.document)["text_sha256"] == token.split(":")[1]
