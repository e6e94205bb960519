"""Every /staff route, every role: shared/policy.py says who may use it, the table below
says how to call it. A route the policy does not name fails a test and is refused to every
role, so no new page can be added without deciding this. Independent checks below (not
reading the policy) keep the policy from granting too much without anyone noticing."""

import io
import re
import uuid

import pytest
from flask import url_for
from sqlalchemy import select

from shared import policy
from shared.extensions import db
from shared.models import (
    AccessEvent,
    Assignment,
    BreakGlassGrant,
    Document,
    Note,
    Service,
    StaffMember,
)
from shared.models.base import utcnow
from tests.conftest import Auth, submit

ROLES = ("anonymous", "client", "reception", "caseworker", "caseworker_other", "admin")
# The staff role each signed-in person of the fixture has.
STAFF_ROLE = {"reception": "reception", "caseworker": "caseworker",
              "caseworker_other": "caseworker", "admin": "admin"}

# endpoint: (method, path). "{x}" are filled from the fixture.
ROUTES = {
    "staff.login": ("GET", "/staff/login"),
    "staff.login_second_factor": ("GET", "/staff/login/code"),
    "staff.invitation": ("GET", "/staff/invitation/not-a-token"),
    "staff.logout": ("GET", "/staff/logout"),
    "staff.passkey_login_begin": ("POST", "/staff/login/passkey/begin"),
    "staff.passkey_login_finish": ("POST", "/staff/login/passkey/finish"),
    "staff.passkey_second_factor_begin": ("POST", "/staff/login/code/passkey/begin"),
    "staff.passkey_second_factor_finish": ("POST", "/staff/login/code/passkey/finish"),
    "staff.setup_second_factor": ("GET", "/staff/setup/second-factor"),
    "staff.home": ("GET", "/staff/"),
    "staff.security": ("GET", "/staff/account/security"),
    "staff.reauth": ("GET", "/staff/account/confirm"),
    "staff.passkey_step_up_begin": ("POST", "/staff/account/confirm/passkey/begin"),
    "staff.passkey_step_up_finish": ("POST", "/staff/account/confirm/passkey/finish"),
    "staff.passkey_add_begin": ("POST", "/staff/account/passkeys/begin"),
    "staff.passkey_add_finish": ("POST", "/staff/account/passkeys/finish"),
    "staff.passkey_rename": ("POST", "/staff/account/passkeys/{random}/rename"),
    "staff.passkey_remove": ("POST", "/staff/account/passkeys/{random}/remove"),
    "staff.clients": ("POST", "/staff/clients"),
    "staff.client_file": ("GET", "/staff/clients/{client}"),
    # A restricted file: admins break the glass only there (to check an erasure).
    "staff.client_break_glass": ("GET", "/staff/clients/{restricted}/break-glass"),
    "staff.client_assign": ("POST", "/staff/clients/{client}/assign"),
    "staff.assignment_remove": ("POST", "/staff/assignments/{assignment}/remove"),
    "staff.client_invite": ("POST", "/staff/clients/{client}/invite"),
    "staff.client_handover": ("POST", "/staff/clients/{client}/handover"),
    "staff.client_withdraw_invitation": ("POST", "/staff/clients/{client}/invitation/withdraw"),
    "staff.document_upload": ("POST", "/staff/clients/{client}/documents"),
    "staff.document_download": ("GET", "/staff/documents/{document}"),
    "staff.note_add": ("POST", "/staff/clients/{client}/notes"),
    "staff.note_edit": ("POST", "/staff/notes/{note}/edit"),
    "staff.booking_confidential": ("POST", "/staff/bookings/{random}/confidential"),
    "staff.account_recovery": ("GET", "/staff/clients/{client}/recovery"),
    "staff.account_recovery_cancel": ("POST", "/staff/clients/{client}/recovery/cancel"),
    "staff.bookings_queue": ("GET", "/staff/bookings"),
    "staff.bookings_day": ("GET", "/staff/bookings/day"),
    "staff.bookings_week": ("GET", "/staff/bookings/week"),
    "staff.booking_decide": ("POST", "/staff/bookings/{random}/confirm"),
    "staff.booking_propose": ("GET", "/staff/bookings/{random}/propose"),
    "staff.availability": ("GET", "/staff/availability"),
    "staff.availability_delete": ("POST", "/staff/availability/rule/{random}/delete"),
    "staff.services": ("GET", "/staff/services"),
    "staff.service_edit": ("GET", "/staff/services/{service}"),
    "staff.team": ("GET", "/staff/team"),
    "staff.team_change": ("POST", "/staff/team/{member}/activate"),
    "staff.break_glass_review": ("GET", "/staff/break-glass"),
    "staff.break_glass_reviewed": ("POST", "/staff/break-glass/{grant}/reviewed"),
    "staff.security_events": ("GET", "/staff/security-events"),
    "staff.funder_reports": ("GET", "/staff/reports"),
    "staff.funder_reports_csv": ("GET", "/staff/reports.csv"),
    "staff.consent_templates": ("GET", "/staff/consents"),
    "staff.corrections_queue": ("GET", "/staff/corrections"),
    "staff.correction_answer": ("POST", "/staff/corrections/{random}"),
    "staff.erasures_queue": ("GET", "/staff/erasures"),
    "staff.erasure_decide": ("POST", "/staff/erasures/{random}"),
    "staff.consent_template_edit": ("GET", "/staff/consents/new"),
    "staff.consent_template_publish": ("POST", "/staff/consents/{random}/publish"),
    "staff.consent_request": ("POST", "/staff/clients/{client}/consents/request"),
    "staff.consent_receipt_staff": ("GET", "/staff/consents/receipt/{random}/consent.pdf"),
    "staff.messages_inbox": ("GET", "/staff/messages"),
    "staff.messages_mine": ("GET", "/staff/messages/mine"),
    "staff.messages_all": ("GET", "/staff/messages/all"),
    "staff.message_thread": ("GET", "/staff/messages/{random}"),
    "staff.message_reply": ("POST", "/staff/messages/{random}"),
    "staff.message_since": ("GET", "/staff/messages/{random}/since"),
    "staff.message_take": ("POST", "/staff/messages/{random}/take"),
    "staff.message_join": ("POST", "/staff/messages/{random}/join"),
    "staff.message_attachment": ("GET", "/staff/messages/attachments/{random}"),
    "staff.message_notifications": ("GET", "/staff/messages/notifications"),
}


def staff_endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("staff.")}


def test_every_staff_route_is_in_the_table(app):
    endpoints = staff_endpoints(app)
    assert endpoints == set(ROUTES), (
        f"missing: {sorted(endpoints - set(ROUTES))}, stale: {sorted(set(ROUTES) - endpoints)}")


def test_the_policy_names_every_staff_route_and_no_other(app):
    """A new staff page fails here until shared/policy.py says who may use it."""
    named = policy.OPEN_ENDPOINTS | set(policy.ENDPOINT_ROLES)
    endpoints = staff_endpoints(app)
    assert endpoints == named, (f"name in shared/policy.py: {sorted(endpoints - named)}, "
                                f"stale there: {sorted(named - endpoints)}")
    assert policy.SETUP_ENDPOINTS - {"staff.logout"} <= set(policy.ENDPOINT_ROLES)


PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200
NOTE = "Gespräch über die Schule geführt"
FILENAME = "schulbericht.pdf"
KEPT_NOTE = "Aufbewahrte Notiz zum Hilfeplan"
KEPT_FILENAME = "hilfeplan.pdf"


@pytest.fixture
def world(app, make_client, make_staff, auth):
    """One client assigned to one caseworker, with a document, a note and a break-glass
    grant of the other caseworker; a second client whose file is restricted (erasure
    requested); people of every role."""
    people = {
        "client": make_client(full_name="Mia Demir"),
        "reception": make_staff(role="reception"),
        "caseworker": make_staff(role="caseworker"),
        "caseworker_other": make_staff(role="caseworker"),
        "admin": make_staff(role="admin"),
    }
    restricted_person = make_client(full_name="Lena Vogel")
    with app.app_context():
        from shared.models import Client

        def member(role):
            return db.session.scalar(select(StaffMember).where(
                StaffMember.account_id == people[role].account_id))

        client = db.session.scalar(select(Client).where(
            Client.account_id == people["client"].account_id))
        restricted = db.session.scalar(select(Client).where(
            Client.account_id == restricted_person.account_id))
        restricted.restricted_at = utcnow()
        worker = member("caseworker")
        assignment = Assignment(client_id=client.id, staff_member_id=worker.id)
        note = Note(client_id=client.id, data_key=client.data_key, author_id=worker.id)
        note.body = NOTE
        document = Document(client_id=client.id, data_key=client.data_key, category="other",
                            content_type="application/pdf", size=len(PDF),
                            uploaded_by_id=worker.id)
        document.filename = FILENAME
        document.content = PDF
        kept = Document(client_id=restricted.id, data_key=restricted.data_key,
                        category="other", content_type="application/pdf", size=len(PDF),
                        uploaded_by_id=worker.id)
        kept.filename = KEPT_FILENAME
        kept.content = PDF
        kept_note = Note(client_id=restricted.id, data_key=restricted.data_key,
                         author_id=worker.id)
        kept_note.body = KEPT_NOTE
        grant = BreakGlassGrant(client_id=client.id, data_key=client.data_key,
                                staff_member_id=member("caseworker_other").id)
        grant.reason = "Vertretung im Urlaub"
        service = Service(name="S", duration_minutes=30)
        db.session.add_all([assignment, note, document, grant, service, kept, kept_note])
        db.session.commit()
        ids = {"client": client.id, "assignment": assignment.id, "note": note.id,
               "document": document.id, "grant": grant.id, "service": service.id,
               "member": member("reception").id, "random": uuid.uuid4(),
               "restricted": restricted.id, "kept": kept.id}
    return people, ids


def signed_in(app, auth, people, role):
    browser = app.test_client()
    if role != "anonymous":
        Auth(browser, auth.clock).login(people[role], area="portal" if role == "client"
                                        else "staff")
    return browser


def csrf(browser, role):
    page = browser.get("/account" if role == "client" else "/staff/login",
                       follow_redirects=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    return match.group(1)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_what_the_policy_allows(app, auth, world, role):
    people, ids = world
    browser = signed_in(app, auth, people, role)
    token = csrf(browser, role)
    problems = []
    for endpoint, (method, path) in ROUTES.items():
        url = path.format(**ids)
        open_to_all = endpoint in policy.OPEN_ENDPOINTS
        allowed = role in STAFF_ROLE and policy.may_use(STAFF_ROLE[role], endpoint)
        if method == "GET":
            response = browser.get(url)
        else:
            response = browser.post(url, data={"csrf_token": token},
                                    headers={"X-CSRFToken": token})
        location = response.headers.get("Location", "")
        if response.status_code >= 500:
            problems.append(f"{endpoint} {url}: {response.status_code}")
            continue
        if open_to_all:
            # Open pages (sign-in steps) may send a visitor back to the sign-in page.
            if response.status_code == 403:
                problems.append(f"{endpoint} {url}: 403")
            continue
        denied = response.status_code == 403 or (
            response.status_code == 302 and location.startswith("/staff/login"))
        if allowed == denied:
            problems.append(f"{endpoint} {url}: {response.status_code} {location}")
    assert not problems, "\n".join(problems)


def test_a_staff_page_the_policy_does_not_name_is_refused_to_every_role(app, auth,
                                                                       make_staff):
    """Closed by default: a page added under /staff without a decision in the policy is
    refused to everyone signed in with a second factor, admins included."""
    def unlisted_page():
        return "nicht freigegeben"

    # Before the first request: once under the staff blueprint's names, once outside it
    # (the positive control: the view itself answers).
    app.add_url_rule("/staff/unlisted", endpoint="staff.unlisted", view_func=unlisted_page)
    app.add_url_rule("/unlisted-elsewhere", endpoint="unlisted_elsewhere",
                     view_func=unlisted_page)
    for role in ("admin", "caseworker", "reception"):
        browser = app.test_client()
        Auth(browser, auth.clock).login(make_staff(role=role), area="staff")
        assert browser.get("/staff/").status_code == 200
        response = browser.get("/staff/unlisted")
        assert response.status_code == 403, role
        assert "nicht freigegeben" not in response.get_data(as_text=True)
        assert browser.get("/unlisted-elsewhere").get_data(as_text=True) == "nicht freigegeben"


# -- independent of the policy: what it must never grant ------------------------------------
def post_note_and_document(browser, role, ids):
    token = csrf(browser, role)
    answers = []
    for url in (f"/staff/clients/{ids['client']}/notes", f"/staff/notes/{ids['note']}/edit",
                f"/staff/clients/{ids['client']}/documents"):
        answers.append(browser.post(url, data={
            "csrf_token": token, "body": "Neue Notiz", "category": "report",
            "file": (io.BytesIO(PDF), "neu.pdf")}, content_type="multipart/form-data"))
    return answers


@pytest.mark.parametrize("role", ["admin", "reception", "caseworker"])
def test_admins_and_reception_never_get_a_document_or_a_note(app, auth, world, role):
    """The assigned caseworker (the positive control) reads and writes them; an admin or
    reception opens the same file without them and is refused each download and write."""
    people, ids = world
    browser = signed_in(app, auth, people, role)
    page = browser.get(f"/staff/clients/{ids['client']}").get_data(as_text=True)
    assert "Mia Demir" in page
    download = browser.get(f"/staff/documents/{ids['document']}")
    answers = post_note_and_document(browser, role, ids)
    with app.app_context():
        notes = sorted(note.body for note in db.session.scalars(select(Note)))
        documents = sorted(doc.filename for doc in db.session.scalars(select(Document)))
    if role == "caseworker":
        assert NOTE in page
        assert FILENAME in page
        assert download.status_code == 200
        assert download.data == PDF
        assert "Neue Notiz" in notes
        assert "neu.pdf" in documents
        return
    assert NOTE not in page
    assert FILENAME not in page
    assert download.status_code == 403
    assert PDF not in download.data
    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert notes == sorted([NOTE, KEPT_NOTE])
    assert documents == sorted([FILENAME, KEPT_FILENAME])


def test_an_admin_who_opens_a_restricted_file_still_gets_no_document_or_note(app, auth,
                                                                              world):
    """Admins break the glass to check an erasure; that opens the file they manage, never
    the case notes and documents kept in it."""
    people, ids = world
    browser = signed_in(app, auth, people, "admin")
    url = f"/staff/clients/{ids['restricted']}"
    opened = submit(browser, f"{url}/break-glass", {"reason": "Löschantrag prüfen, Fristen"})
    assert opened.status_code == 302
    page = browser.get(url).get_data(as_text=True)
    assert "Lena Vogel" in page
    assert KEPT_NOTE not in page
    assert KEPT_FILENAME not in page
    assert browser.get(f"/staff/documents/{ids['kept']}").status_code == 403


def test_reception_never_opens_the_access_log(app, auth, world):
    people, ids = world
    url = f"/staff/clients/{ids['client']}"
    admin = signed_in(app, auth, people, "admin")
    admin.get(url)  # now the log has lines to show
    assert 'id="log-heading"' in admin.get(url).get_data(as_text=True)  # positive control
    reception = signed_in(app, auth, people, "reception")
    reception.get(url)
    page = reception.get(url).get_data(as_text=True)
    assert "Mia Demir" in page
    assert 'id="log-heading"' not in page
    assert reception.get("/staff/break-glass").status_code == 403  # the reasons given
    with app.app_context():
        read = {category for joined in db.session.scalars(select(AccessEvent.category)
                                                          .where(AccessEvent.role == "reception"))
                for category in joined.split(",")}
    assert "contact" in read
    assert "access-log" not in read


def test_only_admins_reach_the_team_services_and_security_events(app, auth, world):
    people, _ids = world
    pages = ("/staff/team", "/staff/services", "/staff/security-events", "/staff/break-glass",
             "/staff/reports", "/staff/erasures", "/staff/consents")
    for role in ("admin", "caseworker", "caseworker_other", "reception"):
        browser = signed_in(app, auth, people, role)
        expected = 200 if role == "admin" else 403
        assert {page: browser.get(page).status_code for page in pages} == dict.fromkeys(
            pages, expected), role


# The staff navigation's pages, in the order shown.
NAV = ("staff.home", "staff.clients", "staff.bookings_queue", "staff.messages_inbox",
       "staff.availability",
       "staff.corrections_queue", "staff.erasures_queue", "staff.break_glass_review",
       "staff.funder_reports", "staff.services", "staff.consent_templates", "staff.team",
       "staff.security_events", "staff.security")


@pytest.mark.parametrize("role", ["reception", "caseworker", "admin"])
def test_the_staff_navigation_shows_exactly_the_pages_the_policy_allows(app, auth, world,
                                                                         role):
    people, _ids = world
    browser = signed_in(app, auth, people, role)
    for page in ("/staff/", "/staff/account/security"):
        html = browser.get(page).get_data(as_text=True)
        nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S).group(0)
        shown = re.findall(r'<a class="kern-link" href="([^"]+)"', nav)
        with app.test_request_context():
            expected = [url_for(endpoint) for endpoint in NAV
                        if policy.may_use(role, endpoint)]
        assert shown == expected
        # Independent of the policy: the team only for admins, requests never for reception.
        assert ("/staff/team" in shown) == (role == "admin")
        assert ("/staff/corrections" in shown) == (role != "reception")
