"""Authorization denials are security events, also where the answer is a 404 so as not to
tell whether the thing exists: a caseworker asking for a document of a file they do not
hold, a parent asking for a child that is not theirs."""

import uuid

from sqlalchemy import select

from shared import security_log
from shared.extensions import db
from shared.models import Client
from tests.conftest import assign_caseworker, security_events, staff_member_id, submit

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200


def pseudonym(app, person) -> str:
    with app.app_context():
        return security_log.pseudonym(person.account_id)


def client_id_of(app, person) -> uuid.UUID:
    with app.app_context():
        return db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))


def test_a_caseworker_refused_another_caseworkers_document_is_logged(
        app, client, auth, make_client, make_staff):
    from shared.models import StaffMember
    from shared.services import casefile

    person = make_client(full_name="Mia Demir")
    assigned, other = make_staff(role="caseworker"), make_staff(role="caseworker")
    client_id = client_id_of(app, person)
    assign_caseworker(app, client_id, assigned)
    with app.app_context():
        member = db.session.get(StaffMember, staff_member_id(app, assigned))
        document_id = casefile.add_document(
            member=member, client_id=client_id, session_id=None, filename="Hilfeplan.pdf",
            data=PDF, category="report", visible_to_client=False, confidential=False).id

    auth.login(other, area="staff")
    assert client.get(f"/staff/documents/{document_id}").status_code == 404
    assert security_events(app, "access.denied") == [("refused", pseudonym(app, other))]

    # The caseworker who holds the file downloads it; that is no denial.
    auth.logout("staff")
    auth.login(assigned, area="staff")
    assert client.get(f"/staff/documents/{document_id}").status_code == 200
    assert len(security_events(app, "access.denied")) == 1


def test_a_parent_asking_for_a_child_that_is_not_theirs_is_logged(
        app, client, auth, make_client):
    from shared.models import Guardianship

    parent, stranger = make_client(full_name="Mia Demir"), make_client(full_name="Tom Berg")
    auth.login(parent)
    submit(client, "/household/new", {
        "full_name": "Emil Demir", "birth_date": "2019-05-04", "group_name": "Igel",
        "contact_name": "Oma Ayse", "contact_phone": "0170 1234567"})
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id

    assert client.get(f"/household/{child_id}/edit").status_code == 200
    assert security_events(app, "access.denied") == []

    auth.logout()
    auth.login(stranger)
    for page in (f"/household/{child_id}/edit", f"/household/{child_id}/remove"):
        response = client.get(page)
        assert response.status_code == 404
        assert "Seite nicht gefunden" in response.get_data(as_text=True)
    assert security_events(app, "access.denied") == [("refused", pseudonym(app, stranger))] * 2


def test_a_page_that_is_not_there_is_no_denial(app, client, auth, make_staff):
    auth.login(make_staff(role="caseworker"), area="staff")
    assert client.get(f"/staff/services/{uuid.uuid4()}").status_code == 403  # admins only
    auth.logout("staff")
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    assert client.get(f"/staff/services/{uuid.uuid4()}").status_code == 404
    assert len(security_events(app, "access.denied")) == 1  # the caseworker's 403 only
