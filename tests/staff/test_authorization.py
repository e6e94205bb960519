"""Every /staff route, every role: the table below says who may use it. A route missing
from the table fails the test, so no new page can be added without deciding this."""

import re
import uuid

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import (
    Assignment,
    BreakGlassGrant,
    Document,
    Note,
    Service,
    StaffMember,
)
from tests.conftest import Auth

ROLES = ("anonymous", "client", "reception", "caseworker", "caseworker_other", "admin")
EVERYONE = set(ROLES)
STAFF = {"reception", "caseworker", "caseworker_other", "admin"}
ADMIN = {"admin"}
CASEWORKERS = {"caseworker", "caseworker_other"}

# endpoint: (method, path, roles allowed to use it). "{x}" are filled from the fixture.
TABLE = {
    "staff.login": ("GET", "/staff/login", EVERYONE),
    "staff.login_second_factor": ("GET", "/staff/login/code", EVERYONE),
    "staff.invitation": ("GET", "/staff/invitation/not-a-token", EVERYONE),
    "staff.logout": ("GET", "/staff/logout", EVERYONE),
    "staff.passkey_login_begin": ("POST", "/staff/login/passkey/begin", EVERYONE),
    "staff.passkey_login_finish": ("POST", "/staff/login/passkey/finish", EVERYONE),
    "staff.passkey_second_factor_begin": ("POST", "/staff/login/code/passkey/begin", EVERYONE),
    "staff.passkey_second_factor_finish": ("POST", "/staff/login/code/passkey/finish",
                                           EVERYONE),
    "staff.setup_second_factor": ("GET", "/staff/setup/second-factor", STAFF),
    "staff.home": ("GET", "/staff/", STAFF),
    "staff.security": ("GET", "/staff/account/security", STAFF),
    "staff.reauth": ("GET", "/staff/account/confirm", STAFF),
    "staff.passkey_step_up_begin": ("POST", "/staff/account/confirm/passkey/begin", STAFF),
    "staff.passkey_step_up_finish": ("POST", "/staff/account/confirm/passkey/finish", STAFF),
    "staff.passkey_add_begin": ("POST", "/staff/account/passkeys/begin", STAFF),
    "staff.passkey_add_finish": ("POST", "/staff/account/passkeys/finish", STAFF),
    "staff.passkey_rename": ("POST", "/staff/account/passkeys/{random}/rename", STAFF),
    "staff.passkey_remove": ("POST", "/staff/account/passkeys/{random}/remove", STAFF),
    "staff.clients": ("POST", "/staff/clients", STAFF),
    "staff.client_file": ("GET", "/staff/clients/{client}", STAFF),
    "staff.client_break_glass": ("GET", "/staff/clients/{client}/break-glass", CASEWORKERS),
    "staff.client_assign": ("POST", "/staff/clients/{client}/assign", ADMIN),
    "staff.assignment_remove": ("POST", "/staff/assignments/{assignment}/remove", ADMIN),
    # Only the full file may invite, confirm or withdraw (admins never hold it).
    "staff.client_invite": ("POST", "/staff/clients/{client}/invite", CASEWORKERS),
    "staff.client_handover": ("POST", "/staff/clients/{client}/handover", CASEWORKERS),
    "staff.client_withdraw_invitation": ("POST", "/staff/clients/{client}/invitation/withdraw",
                                         CASEWORKERS),
    "staff.document_upload": ("POST", "/staff/clients/{client}/documents",
                              {"caseworker", "caseworker_other", "admin"}),
    "staff.document_download": ("GET", "/staff/documents/{document}",
                                {"caseworker", "caseworker_other", "admin"}),
    "staff.note_add": ("POST", "/staff/clients/{client}/notes", CASEWORKERS),
    "staff.note_edit": ("POST", "/staff/notes/{note}/edit", CASEWORKERS),
    "staff.booking_confidential": ("POST", "/staff/bookings/{random}/confidential",
                                   CASEWORKERS),
    "staff.bookings_queue": ("GET", "/staff/bookings", STAFF),
    "staff.bookings_day": ("GET", "/staff/bookings/day", STAFF),
    "staff.bookings_week": ("GET", "/staff/bookings/week", STAFF),
    "staff.booking_decide": ("POST", "/staff/bookings/{random}/confirm", STAFF),
    "staff.availability": ("GET", "/staff/availability", STAFF),
    "staff.availability_delete": ("POST", "/staff/availability/rule/{random}/delete", STAFF),
    "staff.services": ("GET", "/staff/services", ADMIN),
    "staff.service_edit": ("GET", "/staff/services/{service}", ADMIN),
    "staff.team": ("GET", "/staff/team", ADMIN),
    "staff.team_change": ("POST", "/staff/team/{member}/activate", ADMIN),
    "staff.break_glass_review": ("GET", "/staff/break-glass", ADMIN),
    "staff.break_glass_reviewed": ("POST", "/staff/break-glass/{grant}/reviewed", ADMIN),
    "staff.security_events": ("GET", "/staff/security-events", ADMIN),
    "staff.funder_reports": ("GET", "/staff/reports", ADMIN),
    "staff.funder_reports_csv": ("GET", "/staff/reports.csv", ADMIN),
    "staff.consent_templates": ("GET", "/staff/consents", ADMIN),
    "staff.corrections_queue": ("GET", "/staff/corrections",
                                {"caseworker", "caseworker_other", "admin"}),
    "staff.correction_answer": ("POST", "/staff/corrections/{random}",
                                {"caseworker", "caseworker_other", "admin"}),
    "staff.erasures_queue": ("GET", "/staff/erasures", ADMIN),
    "staff.erasure_decide": ("POST", "/staff/erasures/{random}", ADMIN),
    "staff.consent_template_edit": ("GET", "/staff/consents/new", ADMIN),
    "staff.consent_template_publish": ("POST", "/staff/consents/{random}/publish", ADMIN),
    "staff.consent_request": ("POST", "/staff/clients/{client}/consents/request",
                              {"caseworker", "caseworker_other", "admin"}),
    "staff.consent_receipt_staff": ("GET", "/staff/consents/receipt/{random}/consent.pdf",
                                    {"caseworker", "caseworker_other", "admin"}),
}


def test_every_staff_route_is_in_the_table(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()
                 if rule.endpoint.startswith("staff.")}
    assert endpoints == set(TABLE), (
        f"missing: {sorted(endpoints - set(TABLE))}, stale: {sorted(set(TABLE) - endpoints)}")


@pytest.fixture
def world(app, make_client, make_staff, auth):
    """One client assigned to one caseworker, with a document, a note and a break-glass
    grant of the other caseworker; people of every role."""
    from tests.staff.test_casefile import PDF

    people = {
        "client": make_client(full_name="Mia Demir"),
        "reception": make_staff(role="reception"),
        "caseworker": make_staff(role="caseworker"),
        "caseworker_other": make_staff(role="caseworker"),
        "admin": make_staff(role="admin"),
    }
    with app.app_context():
        from shared.models import Client

        def member(role):
            return db.session.scalar(select(StaffMember).where(
                StaffMember.account_id == people[role].account_id))

        client = db.session.scalar(select(Client))
        worker = member("caseworker")
        assignment = Assignment(client_id=client.id, staff_member_id=worker.id)
        note = Note(client_id=client.id, data_key=client.data_key, author_id=worker.id)
        note.body = "Notiz"
        document = Document(client_id=client.id, data_key=client.data_key, category="other",
                            content_type="application/pdf", size=len(PDF),
                            uploaded_by_id=worker.id)
        document.filename = "a.pdf"
        document.content = PDF
        grant = BreakGlassGrant(client_id=client.id, data_key=client.data_key,
                                staff_member_id=member("caseworker_other").id)
        grant.reason = "Vertretung im Urlaub"
        service = Service(name="S", duration_minutes=30)
        db.session.add_all([assignment, note, document, grant, service])
        db.session.commit()
        ids = {"client": client.id, "assignment": assignment.id, "note": note.id,
               "document": document.id, "grant": grant.id, "service": service.id,
               "member": member("reception").id, "random": uuid.uuid4()}
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
def test_each_role_reaches_exactly_what_the_table_allows(app, auth, world, role):
    people, ids = world
    browser = signed_in(app, auth, people, role)
    token = csrf(browser, role)
    problems = []
    for endpoint, (method, path, allowed) in TABLE.items():
        url = path.format(**ids)
        if method == "GET":
            response = browser.get(url)
        else:
            response = browser.post(url, data={"csrf_token": token},
                                    headers={"X-CSRFToken": token})
        location = response.headers.get("Location", "")
        if response.status_code >= 500:
            problems.append(f"{endpoint} {url}: {response.status_code}")
            continue
        if allowed is EVERYONE:
            # Open pages (sign-in steps) may send a visitor back to the sign-in page.
            if response.status_code == 403:
                problems.append(f"{endpoint} {url}: 403")
            continue
        denied = response.status_code == 403 or (
            response.status_code == 302 and location.startswith("/staff/login"))
        if (role in allowed) == denied:
            problems.append(f"{endpoint} {url}: {response.status_code} {location}")
    assert not problems, "\n".join(problems)
