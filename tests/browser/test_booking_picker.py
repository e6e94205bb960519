"""On a 360×740 phone, in German, without an account: open a service, page to next week,
filter a day, take the next free time (held while registering), register, confirm the email
and send the request for exactly that time."""

import re
from datetime import time

from playwright.sync_api import expect
from sqlalchemy import delete, func, select

from shared.extensions import db
from shared.models import AvailabilityRule, Booking
from shared.models.bookings import SlotHold
from shared.services import availability
from tests.browser.conftest import PHONE, assert_accessible, assert_fits_phone, new_context

PASSWORD = "harbour-violet-lantern-92"
SCREEN = 740


def office_hours(app, bookable) -> None:
    """The demo's hours: Monday to Friday 9–12 and 13–19 (nine 45-minute times a day)."""
    with app.app_context():
        db.session.execute(delete(AvailabilityRule)
                           .where(AvailabilityRule.staff_member_id == bookable.staff_member_id))
        for weekday in range(5):
            for start, end in ((9, 12), (13, 19)):
                db.session.add(AvailabilityRule(staff_member_id=bookable.staff_member_id,
                                                weekday=weekday, start_time=time(start),
                                                end_time=time(end)))
        db.session.commit()


def page_height(page) -> int:
    return page.evaluate("document.documentElement.scrollHeight")


def test_a_visitor_picks_a_time_registers_and_requests_it(phone, app, make_bookable, outbox):
    bookable = make_bookable()
    office_hours(app, bookable)
    page = phone

    page.goto("/bookings/new")
    assert "/login" not in page.url  # no account needed to look
    page.click(f"a[href='/bookings/new/{bookable.service_id}']")
    page.wait_for_url(f"**/bookings/new/{bookable.service_id}")
    expect(page.locator("#next-free-heading")).to_have_text("Nächster freier Termin")
    assert page_height(page) <= 2 * SCREEN, page_height(page)
    assert_fits_phone(page)
    assert_accessible(page)

    page.click("text=Nächste Woche")
    page.wait_for_url("**week=*")
    heading = page.locator("#week-heading").inner_text()
    assert heading.startswith("Woche vom ")
    assert not re.search(r"\d{4}-\d\d-\d\d", page.locator("main").inner_text())
    assert page.locator("h3.day-heading").count() == 5  # Monday to Friday
    assert page_height(page) <= 2 * SCREEN, page_height(page)
    assert_fits_phone(page)
    assert_accessible(page)

    page.locator(".day-filter a").nth(2).click()  # Tuesday (after "Alle Tage", Monday)
    page.wait_for_url("**day=*")
    expect(page.locator("h3.day-heading")).to_have_count(1)
    assert page.locator("h3.day-heading").inner_text().startswith("Dienstag, ")
    assert page.locator(".day-filter [aria-current=page]").inner_text().startswith("Di")
    assert_fits_phone(page)
    assert_accessible(page)

    # The next free time is offered first on every week's page.
    next_free = page.locator("a.slot--next")
    chosen_day, chosen_clock = next_free.inner_text().rsplit(", ", 1)
    assert re.fullmatch(r"\w+, \d+\. \w+", chosen_day)  # "Dienstag, 8. Dezember"
    next_free.click()
    page.wait_for_url(f"**/bookings/new/{bookable.service_id}/*")
    slot = page.url.rsplit("/", 1)[1]
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("text=Zeit reservieren und registrieren")
    page.wait_for_url("**/register")
    notice = page.locator(".kern-alert--success").inner_text()
    assert chosen_day in notice
    assert chosen_clock in notice
    assert re.search(r"bis \d\d:\d\d Uhr für Sie reserviert", notice)
    with app.app_context():
        assert db.session.scalar(select(func.count(SlotHold.id))) == 1

    email = "neue.mutter@example.org"
    page.fill("input[name=email]", email)
    page.click("button[type=submit]#submit")
    expect(page.locator(".kern-alert--success")).to_contain_text(email)
    page.goto(outbox.link(email, "/confirm/"))
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]#submit")
    page.wait_for_url(f"**/bookings/new/{bookable.service_id}/{slot}")
    expect(page.locator("main")).to_contain_text(chosen_day)
    expect(page.locator("main")).to_contain_text(chosen_clock)
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("button#submit")
    page.wait_for_url("**/bookings")
    assert page.locator("[data-status='requested']").count() == 1
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        assert booking.status == "requested"
        assert availability.Slot(booking.staff_member_id, booking.start_at,
                                 booking.end_at).token == slot
        assert db.session.scalar(select(func.count(SlotHold.id))) == 0


def test_a_week_of_times_fits_two_screens(phone, app, make_bookable, capsys):
    """Measured for the report: height and bytes of a week of the demo's hours."""
    bookable = make_bookable()
    office_hours(app, bookable)
    page = phone
    page.goto(f"/bookings/new/{bookable.service_id}")
    page.click("text=Nächste Woche")  # a full week (this one may have begun)
    page.wait_for_url("**week=*")
    full_week = page_height(page)
    with capsys.disabled():
        print(f"\nweek view: full week "
              f"{full_week} px high, {len(page.content().encode())} bytes")
    assert full_week <= 2 * SCREEN


def test_the_picker_fits_320_px_with_text_at_200_percent_and_targets_are_44_px(
        browser, live_server, app, make_bookable):
    bookable = make_bookable()
    office_hours(app, bookable)
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    page.goto(f"/bookings/new/{bookable.service_id}")
    small = page.evaluate("""() => [...document.querySelectorAll(
        'main .slot, main .day-filter a, main .week-nav a')]
        .map(el => el.getBoundingClientRect().height).filter(h => h < 44)""")
    assert small == []
    page.set_viewport_size({"width": 320, "height": 640})
    for path in (f"/bookings/new/{bookable.service_id}",
                 page.locator("a.slot--next").get_attribute("href")):
        page.goto(path)
        page.evaluate("document.documentElement.style.fontSize = '200%'")
        assert page.evaluate("document.documentElement.scrollWidth"
                             " - document.documentElement.clientWidth") <= 0, path
    context.close()
