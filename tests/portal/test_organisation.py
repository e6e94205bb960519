"""The organisation's public pages: contact, imprint and privacy notice, from one config."""

from __future__ import annotations

import re

import pytest

from shared import catalogue
from shared.config import ConfigError
from shared.services.organisation import about_staff
from tests.conftest import make_config

PAGES = ["/contact", "/imprint", "/privacy"]


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_public_linked_from_every_footer_and_clean(client, auth, make_client, path):
    response = client.get(path)
    assert response.status_code == 200  # no sign-in
    html = response.get_data(as_text=True)
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    for url in re.findall(r'(?:src|href|action)="([^"]*)"', html):
        assert url.startswith(("/", "#", "tel:+", "mailto:")), url  # nothing from elsewhere
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}", visible_text(html))
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    auth.login(make_client())
    for page in ("/home", "/account", "/login"):
        footer = client.get(page).get_data(as_text=True).split('<footer', 1)[1]
        assert f'href="{path}"' in footer


def test_contact_page_in_german_and_english(client):
    text = visible_text(client.get("/contact").get_data(as_text=True))
    assert "Lindenstraße 12" in text
    assert "10969 Berlin" in text
    assert "Montag – Donnerstag 09:00 – 17:00" in text
    assert "Freitag 09:00 – 13:00" in text
    html = client.get("/contact").get_data(as_text=True)
    assert 'href="tel:+49301234567"' in html
    assert 'href="mailto:kontakt@einblick.example"' in html
    english = visible_text(client.get("/contact", headers={"Accept-Language": "en"})
                           .get_data(as_text=True))
    assert "Opening hours" in english
    assert "Monday – Thursday 09:00 – 17:00" in english  # one time format per language


@pytest.mark.parametrize("config_overrides", [{
    "organisation_name": "Familienhilfe Nord e. V.",
    "organisation_address": "Hafenweg 3, 20457 Hamburg", "organisation_phone": "040 555 01",
    "organisation_opening_hours": "tue 10:00-12:00", "imprint_vat_id": "DE123456789",
    "imprint_representative": "Jan Muster (Vorstand)"}])
def test_everything_comes_from_one_configuration(client):
    contact = visible_text(client.get("/contact").get_data(as_text=True))
    assert "Familienhilfe Nord e. V." in contact
    assert "Hafenweg 3 20457 Hamburg" in contact
    assert "Dienstag 10:00 – 12:00" in contact
    assert 'href="tel:04055501"' in client.get("/contact").get_data(as_text=True)
    header = client.get("/").get_data(as_text=True).split("</header>")[0]
    assert "Familienhilfe Nord e. V." in header  # the organisation's name in the header
    imprint = visible_text(client.get("/imprint").get_data(as_text=True))
    assert "Jan Muster (Vorstand)" in imprint
    assert "Umsatzsteuer-Identifikationsnummer DE123456789" in imprint


def test_unreadable_opening_hours_stop_the_start_with_a_clear_message(tmp_path, database_url):
    with pytest.raises(ConfigError, match="mon-thu 09:00-17:00"):
        make_config(tmp_path, database_url, organisation_opening_hours="Mo-Fr 9-17").validate()


def test_privacy_notice_is_generated_from_the_catalogue(client):
    text = visible_text(client.get("/privacy").get_data(as_text=True))
    assert "Datenschutzerklärung" in text
    assert "Berliner Beauftragte für Datenschutz" in text
    for heading in ("Kontakt", "Haushalt", "Termine", "Einwilligungen", "Sicherheit"):
        assert heading in text
    assert "Wozu" in text
    assert "Rechtsgrundlage" in text
    assert "Wie lange" in text
    assert "Wer es sehen kann" in text
    # Every item the catalogue declares about clients is named (here: in English).
    english = visible_text(client.get("/privacy", headers={"Accept-Language": "en"})
                           .get_data(as_text=True))
    for entry in catalogue.ENTRIES:
        if not about_staff(entry):
            assert str(entry.label) in english, entry.column
            assert str(entry.legal_basis) in english, entry.column
    assert "Staff" not in re.findall(r"<h3[^>]*>([^<]*)</h3>", english)
    assert "Staff member's name" not in english
