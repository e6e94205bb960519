"""The demo as a parent meets it on a 360×740 phone, in German and in English: after
signing in, the home page shows the next appointment, what waits for her and the last
staff visits; "my data" fits in about three screens before details are opened; the
access log reads as visits. No page shows an id or an ISO timestamp."""

import re
from types import SimpleNamespace

from playwright.sync_api import expect

from shared.services import demo
from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    choose_language,
    client_sign_in,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")
MIA = SimpleNamespace(email="mia@example.org", password="demo-client-Sonnenblume-42")


def readable(page) -> str:
    """The page's text as a reader sees it (links may carry ids; the words may not)."""
    seen = page.inner_text("body")
    assert not UUID.search(seen), (page.url, UUID.search(seen).group(0))
    assert not ISO_TIME.search(seen), (page.url, ISO_TIME.search(seen).group(0))
    assert_fits_phone(page)
    return page.inner_text("main")


def test_the_demo_parent_reads_home_my_data_and_visits_on_a_phone(phone, app):
    with app.app_context():
        for _line in demo.load():
            pass
    page = phone
    client_sign_in(page, MIA)  # lands on the home page
    words = {
        "de": ("Elternberatung", "hat die Akte geöffnet", "Emil Demir", "Besuche"),
        "en": ("Advice for parents", "opened the file", "Emil Demir", "visits"),
    }
    # Who can see it: under each category, once for neighbours that share it (Emil's).
    terms = {"de": ("Wer es sehen kann:", "Wer Kontakt und Haushalt sehen kann:"),
             "en": ("Who can see it:", "Who can see Contact and Household:")}
    for language in ("de", "en"):
        if language == "en":
            choose_language(page, "en")
            page.wait_for_url("**/home")
        service, opened, child, visits = words[language]
        home = readable(page)
        assert service in home
        assert page.locator("main a[href^='tel:']").count() >= 1
        assert opened in home  # the last staff visits
        assert_accessible(page)

        page.goto("/my-data")
        height = page.evaluate("document.documentElement.scrollHeight")
        my_data = readable(page)
        assert child in my_data
        # Her conversation counts towards the three screens, summed up in one line.
        expect(page.locator("section[data-category='messages'] summary")).to_have_count(1)
        assert height <= 3 * 740, (language, height)
        each, shared = terms[language]
        assert each in my_data
        assert shared in my_data
        assert {"de": "Zugriffsprotokoll", "en": "Access log"}[language] in my_data
        # Compact, not cramped: the ways on and every summary are 44 px targets.
        for target in page.locator("main .my-data-links a, main details > summary").all():
            assert target.bounding_box()["height"] >= 44, (language, target.inner_text())
        page.click("section[data-category='bookings'] summary")  # the values, one tap away
        assert service in page.inner_text("section[data-category='bookings']")
        assert_accessible(page)

        page.goto("/my-data/access")
        log = readable(page)
        assert opened in log
        assert visits in log
        assert_accessible(page)
        page.goto("/home")
