"""On a 360×740 phone a parent with an appointment and a signed consent reads "my data" in
German and in English: the service, the consent's title, who signed it and the appointment
time as /bookings shows it, in words (no id, no ISO timestamp); each category sums up what
is stored, who can see it and until when, with the values one tap away, and the whole page
fits in about three screens before any of them is opened."""

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import Client, StaffMember
from shared.services import consents, demo
from tests.browser.conftest import assert_accessible, assert_fits_phone, choose_language
from tests.conftest import add_booking, assign_caseworker, submit

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T")
# Three screens of a 740 px phone, before any details are opened.
MAX_HEIGHT = 3 * 740
TITLES = {"de": "Einwilligung in die Datenverarbeitung in der Beratung",
          "en": "Consent to data processing in counselling"}


@pytest.fixture
def mia(app, client, auth, make_client, make_bookable, totp_clock):
    """Mia Demir, as in the demo: her caseworker A. Schmidt, who looked at her file, an
    Elternberatung tomorrow at 16:40 Berlin time, and the demo consent, which she signed
    with a code and her typed name (through the portal's form)."""
    bookable = make_bookable(name="Elternberatung")
    person = make_client(totp=True, full_name="Mia Demir", email="mia@example.org")
    with app.app_context():
        list(demo.load_consent_template())
        template_id = consents.published_templates()[0].id
        member = db.session.get(StaffMember, bookable.staff_member_id)
        member.name = "A. Schmidt"
        own = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
        own.phone = "+49 170 7654321"
        berlin = ZoneInfo("Europe/Berlin")
        start = datetime.combine(datetime.now(berlin).date() + timedelta(days=1), time(16, 40),
                                 tzinfo=berlin)
        add_booking(own, bookable, end=start + timedelta(minutes=45), minutes=45)
        db.session.commit()
        own_id = own.id
    assign_caseworker(app, own_id, bookable.staff)
    auth.login(bookable.staff, area="staff")
    assert client.get(f"/staff/clients/{own_id}").status_code == 200  # she looks at the file
    auth.logout("staff")
    auth.login(person)
    totp_clock.advance()
    response = submit(client, f"/consents/{template_id}/{own_id}",
                      {"code": totp_clock.code(person.totp_secret), "typed_name": "Mia Demir"})
    assert response.status_code == 302
    totp_clock.advance()
    return person


def sign_in(page, person, totp_clock) -> None:
    page.goto("/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/login/code")
    page.fill("input[name=code]", totp_clock.code(person.totp_secret))
    page.click("button#submit")
    page.wait_for_url(re.compile(r".*/(?!login)[^/]*$"))


def appointment_time(page) -> str:
    """The hour and minute of the appointment, as /bookings shows it."""
    page.goto("/bookings")
    line = page.locator("li.booking .kern-body--bold").first.inner_text()
    return re.search(r"\d{1,2}:\d{2}(\s?[AP]M)?", line).group(0)


def read_my_data(page) -> tuple[int, str]:
    """The page's height at first sight, then its text with every category opened."""
    page.goto("/my-data")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert_fits_phone(page)
    for summary in page.locator("main details > summary").all():
        summary.click()
    return height, page.inner_text("main")


def test_my_data_reads_in_words_on_a_phone(phone, app, mia, totp_clock):
    page = phone
    sign_in(page, mia, totp_clock)
    heights = {}
    for language in ("de", "en"):
        if language == "en":
            page.goto("/my-data")
            choose_language(page, "en")
            page.wait_for_url("**/my-data")
        local_time = appointment_time(page)
        # Berlin time, not UTC (15:40 in winter); Babel's English puts a narrow space.
        assert local_time.replace("\u202f", " ") == {"de": "16:40", "en": "16:40"}[language]
        heights[language], text = read_my_data(page)
        html = page.content()
        assert not UUID.search(html), UUID.search(html).group(0)
        assert not ISO_TIME.search(html), ISO_TIME.search(html).group(0)
        assert "Elternberatung" in text
        assert TITLES[language] in text
        assert "A. Schmidt" in text  # the caseworker, the appointment's staff member
        assert "Mia Demir" in text  # who signed
        assert local_time in page.locator("[data-column='bookings.start_at']").inner_text()
        for code in ("totp-name", "True", "False", "None"):
            assert code not in text
        if language == "de":
            assert "Code und eingetippter Name" in text
            assert "Wer es sehen kann:" in text
        else:
            assert "code and typed name" in text
            assert "Who can see it:" in text
        assert page.locator("a[href='/my-data/access']").count() >= 1
        assert_fits_phone(page)
        assert_accessible(page)
    print(f"/my-data at 360 px before opening details: {heights}")
    assert max(heights.values()) <= MAX_HEIGHT, heights
