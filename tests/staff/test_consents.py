"""Consents in the case file: asking a client to sign, and the sealed receipt for staff who
see more than the file's contact part; each download is in the client's access log."""

import uuid

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import AccessEvent, Client, ConsentRequest, StaffMember
from shared.services import consents
from tests.conftest import (
    assign_caseworker,
    sign_with_code_and_name,
    staff_member_id,
    submit,
)

TEXTS = {"de": {"title": "Fotos in der Kita", "text": "Ich willige ein, dass Fotos …"}}


@pytest.fixture
def signed(app, client, auth, make_client, totp_clock) -> tuple[uuid.UUID, uuid.UUID]:
    """Jonas Weber signed the photo consent for himself (code and typed name); returns
    his client id and the consent's id."""
    with app.app_context():
        template = consents.save_template(key="fotos", texts=TEXTS, purpose="Fotos",
                                          legal_basis="Art. 6 Abs. 1 lit. a DSGVO",
                                          audience="Team", guardian_signs=True)
        consents.publish(template.id)
        template_id = template.id
    signed_by_jonas = sign_with_code_and_name(app, client, auth, make_client, template_id,
                                              totp_clock)
    auth.logout()
    return signed_by_jonas


def downloads(app, client_id: uuid.UUID) -> list[tuple[uuid.UUID | None, str]]:
    with app.app_context():
        return [(e.staff_member_id, e.role) for e in db.session.scalars(
            select(AccessEvent).where(AccessEvent.client_id == client_id)
            .where(AccessEvent.category == "case-file").where(AccessEvent.action == "download"))]


def test_the_assigned_caseworker_downloads_the_receipt_and_it_is_logged(
        app, client, auth, make_staff, signed):
    own, consent_id = signed
    worker = make_staff(role="caseworker")
    assign_caseworker(app, own, worker)
    auth.login(worker, area="staff")
    response = client.get(f"/staff/consents/receipt/{consent_id}/consent.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert response.headers["Content-Disposition"] == 'attachment; filename="consent-consent.pdf"'
    # Not withdrawn: there is no withdrawal receipt, and nothing more is logged.
    assert client.get(f"/staff/consents/receipt/{consent_id}/withdrawal.pdf").status_code == 404
    assert downloads(app, own) == [(staff_member_id(app, worker), "caseworker")]


def test_an_unassigned_caseworker_gets_no_receipt_and_nothing_is_logged(
        app, client, auth, make_staff, signed):
    own, consent_id = signed
    auth.login(make_staff(role="caseworker"), area="staff")
    assert client.get(f"/staff/consents/receipt/{consent_id}/consent.pdf").status_code == 404
    assert downloads(app, own) == []


def test_reception_gets_no_receipt_from_the_service(app, make_staff, signed):
    """Reception sees that a consent exists, not its receipt (the page is closed to them
    anyway; the service refuses also without it)."""
    own, consent_id = signed
    reception_id = staff_member_id(app, make_staff(role="reception"))
    with app.app_context():
        reception = db.session.get(StaffMember, reception_id)
        with pytest.raises(consents.NotAllowed):
            consents.receipt_for_staff(member=reception, consent_id=consent_id,
                                       session_id=None, withdrawal=False)
    assert downloads(app, own) == []


def test_only_staff_to_whom_the_file_is_open_ask_a_client_to_sign(
        app, client, auth, make_staff, make_client, outbox):
    person = make_client(full_name="Mia Demir")
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    stranger_id = staff_member_id(app, make_staff(role="caseworker"))
    with app.app_context():
        stranger = db.session.get(StaffMember, stranger_id)
        with pytest.raises(consents.NotAllowed):  # unassigned, no break-glass
            consents.request_signature(member=stranger, client_id=own, session_id=None,
                                       key="fotos")
        db.session.rollback()
        assert db.session.scalars(select(ConsentRequest)).all() == []
    assert outbox.to(person.email) == []
    worker = make_staff(role="caseworker")
    assign_caseworker(app, own, worker)
    auth.login(worker, area="staff")
    asked = submit(client, f"/staff/clients/{own}/consents/request", {"key": "fotos"},
                   form_url=f"/staff/clients/{own}")
    assert asked.headers["Location"] == f"/staff/clients/{own}"
    with app.app_context():
        assert [r.template_key for r in db.session.scalars(select(ConsentRequest))] == ["fotos"]
    assert len(outbox.to(person.email)) == 1
