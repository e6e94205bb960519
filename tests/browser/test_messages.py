"""Messages (issue 17), as the people do it: on a 360×740 phone a mother writes in German to
the team of Elternberatung; at a desk the caseworker of that service, who works in English
(chosen with the language switch), takes the conversation and answers: her pages say
lang="en" and show no German of the catalogue, the mother's stay German. The answer
appears on the mother's open page without a reload (shared/static/js/messages.js asks
every few seconds: the test moves the page's clock, never waits for it) and is read there;
her access log names the caseworker's read. Her next question appears the same way on the
caseworker's open page. Both conversation pages: axe finds nothing, and nothing scrolls
sideways at 320 px. When she deletes her account, no message text, topic or file is left
in the database files. (An anonymous contact in English: test_anonymous_contact.py.)"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Message, MessageAttachment, MessageThread
from tests.browser.conftest import (
    PHONE,
    Catalogue,
    assert_fits_phone,
    axe_violations,
    choose_language,
    click_in_nav,
    client_sign_in,
    new_context,
    staff_sign_in,
)
from tests.helpers.languages import assert_reads_in_english
from tests.portal.test_erasure import as_stored, raw_database_bytes

TOPIC = "Frage zur Kita-Eingewöhnung"
BODY = "Meine Tochter weint jeden Morgen vor der Kita. Was können wir tun?"
ANSWER = "Danke für Ihre Nachricht. Wir sprechen morgen in Ruhe darüber."
AGAIN = "Danke! Geht es auch am Montag?"
POLL_MS = 12_000  # shared/static/js/messages.js
# What people wrote stays as written on the caseworker's English pages (and the service
# has only its German name).
WRITTEN = (TOPIC, BODY, ANSWER, AGAIN, "Mia Demir", "T. Tester", "Elternberatung")


@pytest.fixture
def team(make_bookable):
    """The service Elternberatung and the caseworker who offers it."""
    return make_bookable("Elternberatung")


@pytest.fixture
def de(app) -> Catalogue:
    return Catalogue(app, "de")


@pytest.fixture
def en(app) -> Catalogue:
    return Catalogue(app, "en")


def new_messages_word(app, count: int, locale: str = "de") -> str:
    """The catalogue's words for "%(num)d new message(s)" (a plural) in ``locale``."""
    from flask_babel import force_locale, ngettext

    with app.test_request_context(), force_locale(locale):
        return ngettext("%(num)d new message", "%(num)d new messages", count)


def write_first_message(page, de, *, body: str = BODY, attachment=None) -> str:
    """Through the navigation to a new message, to Elternberatung; returns the
    conversation's path."""
    click_in_nav(page, "a[href='/messages']")
    page.wait_for_url("**/messages")
    page.get_by_role("link", name=de("New message")).click()
    page.wait_for_url("**/messages/new")
    page.select_option("#message-service", label="Elternberatung")
    page.fill("#message-topic", TOPIC)
    page.fill("#message-body", body)
    if attachment is not None:
        page.set_input_files("#message-attachment", str(attachment))
    page.click("#message-submit")
    page.wait_for_url("**/messages/*-*")
    expect(page.locator(".message").first).to_contain_text(body)
    return "/" + page.url.split("/", 3)[3]


def hold_clock(page) -> None:
    """The page's timers, which the test moves on: the polling's next turn comes when the
    test says (it is never waited for)."""
    page.clock.install()


def mark_page(page) -> None:
    """A mark on the loaded page: still there later, the page was never reloaded."""
    page.evaluate("window.notReloaded = true")


def page_checks(page) -> None:
    """No axe finding at all, and nothing scrolls sideways at 320 px (then back)."""
    assert axe_violations(page) == []
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": size["height"]})
    assert_fits_phone(page)
    page.set_viewport_size(size)


def test_a_client_writes_a_caseworker_answers_and_the_answer_appears_without_a_reload(
        browser, live_server, app, make_client, team, de, en):
    mia = make_client(full_name="Mia Demir")
    phone = new_context(browser, live_server, **PHONE)
    page = phone.new_page()
    hold_clock(page)
    client_sign_in(page, mia)
    path = write_first_message(page, de)
    expect(page.locator("main")).to_contain_text(
        de("Your message is sent. We will tell you by email when there is an answer."))
    page_checks(page)
    mark_page(page)
    thread_id = uuid.UUID(path.rsplit("/", 1)[1])

    desk = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    staff = desk.new_page()
    hold_clock(staff)
    staff_sign_in(staff, team.staff)
    choose_language(staff, "en")  # she works in English; the mother's pages stay German
    staff.locator(".site-nav").get_by_role("link", name=en("Messages")).click()
    staff.wait_for_url("**/staff/messages")
    listed = staff.locator("main .message-row", has_text=TOPIC)
    expect(listed).to_contain_text("Mia Demir")
    assert_reads_in_english(staff, written=WRITTEN)
    listed.get_by_role("link").click()
    staff.wait_for_url(f"**/staff{path}")
    expect(staff.locator(".message").first).to_contain_text(BODY)
    assert_reads_in_english(staff, written=WRITTEN)
    staff.get_by_role("button", name=en("Take"), exact=True).click()
    expect(staff.locator("[data-testid=taken-by]")).to_contain_text(en("Taken by you"))
    staff.fill("#reply-body", ANSWER)
    staff.click("#reply-submit")
    expect(staff.locator(".message--team")).to_contain_text(ANSWER)
    assert_reads_in_english(staff, written=WRITTEN)
    page_checks(staff)
    mark_page(staff)
    with app.app_context():
        thread = db.session.get(MessageThread, thread_id)
        assert thread.assigned_staff_id == team.staff_member_id
        assert db.session.get(Account, team.staff.account_id).locale == "en"
        assert db.session.get(Account, mia.account_id).locale in (None, "de")

    # On her open page, without a reload: the next turn of the polling shows it.
    page.clock.fast_forward(POLL_MS)
    answer = page.locator(".message--team")
    expect(answer).to_contain_text(ANSWER)
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(answer).to_contain_text("T. Tester")
    expect(answer).to_have_attribute("id", "latest")  # the page's markup, moved on
    expect(page.locator("#latest")).to_have_count(1)
    status = page.locator("[data-messages-status]")
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_text(new_messages_word(app, 1))
    assert page.evaluate("window.notReloaded") is True
    with app.app_context():
        read = db.session.scalar(select(Message.read_by_client_at).where(
            Message.thread_id == thread_id).where(Message.from_staff.is_(True)))
        assert read is not None  # read where she reads it, as a reload would mark it
    page_checks(page)

    # Her question appears the same way on the caseworker's open page (a visit logged).
    page.fill("#reply-body", AGAIN)
    page.click("#reply-submit")
    expect(page.locator(".message").last).to_contain_text(AGAIN)
    staff.clock.fast_forward(POLL_MS)
    expect(staff.locator(".message").last).to_contain_text(AGAIN)
    expect(staff.locator(".message").last).to_contain_text("Mia Demir")
    expect(staff.locator("[data-messages-status]")).to_have_text(
        new_messages_word(app, 1, "en"))
    assert_reads_in_english(staff, written=WRITTEN)
    assert staff.evaluate("window.notReloaded") is True
    desk.close()

    # The badge is gone, and her access log names the caseworker who read it.
    page.goto("/home")
    expect(page.locator("[data-testid=unread-messages]")).to_have_count(0)
    click_in_nav(page, "a[href='/my-data']")
    page.wait_for_url("**/my-data")
    page.click("main a[href='/my-data/access']")
    page.wait_for_url("**/my-data/access")
    from shared.services.transparency import category_label

    with app.test_request_context():
        from flask_babel import force_locale

        with force_locale("de"):
            messages_word = str(category_label("messages"))
    caseworker = page.locator(".access-log__group", has_text="T. Tester")
    expect(caseworker.locator(".access-log__item", has_text=f"({messages_word}").first
           ).to_be_visible()
    assert_fits_phone(page)
    assert de.missing == []
    phone.close()


def test_deleting_the_account_leaves_no_message_in_the_database_files(
        phone, app, make_client, team, de, tmp_path):
    canary = "Kanarien-Nachricht-4e1b"
    mia = make_client(full_name="Mia Demir")
    pdf = tmp_path / "Kanarien-Befund.pdf"
    pdf.write_bytes(b"%PDF-1.7\n% Kanarien-Anhang-77c2\n1 0 obj\n<<>>\nendobj\ntrailer\n"
                    b"<<>>\n%%EOF\n")
    page = phone
    client_sign_in(page, mia)
    write_first_message(page, de, body=f"{canary}: {BODY}", attachment=pdf)
    expect(page.locator("main")).to_contain_text("Kanarien-Befund.pdf")
    with app.app_context():
        blobs = [*db.session.scalars(select(Message.body_ciphertext)),
                 *db.session.scalars(select(MessageThread.topic_ciphertext)),
                 *db.session.scalars(select(MessageAttachment.filename_ciphertext)),
                 *db.session.scalars(select(MessageAttachment.content_ciphertext))]
        assert len(blobs) == 4
        raw = raw_database_bytes(app)
        assert all(as_stored(blob, app) in raw for blob in blobs)  # the check sees them

    click_in_nav(page, "a[href='/account']")
    page.wait_for_url("**/account")
    page.locator("main a.kern-btn--danger").click()
    page.wait_for_url("**/my-data/delete")
    page.check("#understood")
    page.click("button#delete")
    page.wait_for_url("**/login")

    with app.app_context():
        assert db.session.scalar(select(Message)) is None
        assert db.session.scalar(select(MessageThread)) is None
        raw = raw_database_bytes(app)  # SQLite: the file and its WAL, after the checkpoint
        for text in (canary, TOPIC, "Kanarien-Befund", "Kanarien-Anhang-77c2"):
            assert text.encode() not in raw
        assert [blob for blob in blobs if as_stored(blob, app) in raw] == []


def test_an_anonymous_first_contact_sees_the_answer_appear_on_the_open_page(
        browser, live_server, app, team, de):
    """Item 4 with JavaScript (tests/browser/test_anonymous_contact.py walks it without):
    only a chosen name and a password; the answer appears on the open conversation."""
    phone = new_context(browser, live_server, **PHONE)
    page = phone.new_page()
    hold_clock(page)
    page.goto("/")
    page.get_by_role("link", name=de("Write anonymously")).click()
    page.fill("#anonymous-pseudonym", "Sonnenblume 7")
    page.get_by_label(de("Choose a password")).fill("leise Wolken über dem Hafen")
    page.select_option("#anonymous-service", label="Elternberatung")
    page.fill("#anonymous-topic", TOPIC)
    page.get_by_label(de("Your message")).fill(BODY)
    page.get_by_role("button", name=de("Send message")).click()
    expect(page.locator(".message").first).to_contain_text(BODY)
    path = "/" + page.url.split("/", 3)[3].split("#")[0]
    mark_page(page)

    desk = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    staff = desk.new_page()
    staff_sign_in(staff, team.staff)
    staff.goto(f"/staff{path}")
    expect(staff.locator("main")).to_contain_text(
        de("%(pseudonym)s (anonymous contact)", pseudonym="Sonnenblume 7"))
    staff.fill("#reply-body", ANSWER)
    staff.click("#reply-submit")
    expect(staff.locator(".message--team")).to_contain_text(ANSWER)
    desk.close()

    page.clock.fast_forward(POLL_MS)
    expect(page.locator(".message--team")).to_contain_text(ANSWER)
    expect(page.locator("[data-messages-status]")).to_have_text(new_messages_word(app, 1))
    assert page.evaluate("window.notReloaded") is True
    assert axe_violations(page) == []
    page.set_viewport_size({"width": 320, "height": 740})
    assert_fits_phone(page)
    assert de.missing == []
    phone.close()


def test_without_javascript_a_reload_shows_the_answer(browser, live_server, app, make_client,
                                                       team, de):
    from shared.models import StaffMember
    from shared.services import messages

    mia = make_client(full_name="Mia Demir")
    phone = new_context(browser, live_server, java_script_enabled=False, **PHONE)
    page = phone.new_page()
    client_sign_in(page, mia)
    path = write_first_message(page, de)
    with app.test_request_context():
        member = db.session.get(StaffMember, team.staff_member_id)
        messages.reply_as_staff(member=member, thread_id=uuid.UUID(path.rsplit("/", 1)[1]),
                                body=ANSWER)
    expect(page.locator(".message")).to_have_count(1)  # nothing asks without JavaScript
    page.reload()
    expect(page.locator(".message--team")).to_contain_text(ANSWER)
    expect(page.locator("[data-messages-status]")).to_have_text("")
    phone.close()
