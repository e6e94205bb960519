"""The case file: search through blind indexes, role-limited views, break-glass,
documents checked by content and stored encrypted, notes locked after 24 h,
confidentiality from guardians, and the client's view of every access."""

import io
import re
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import (
    AccessEvent,
    Assignment,
    BreakGlassGrant,
    Client,
    Document,
    Note,
    StaffMember,
    UserSession,
)
from tests.conftest import search_clients, staff_member_id, submit

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200


@pytest.fixture
def case(app, make_client, make_staff):
    """A client with a phone number and birth date, and an assigned caseworker."""
    from shared.services import accounts

    person = make_client(email="mia.demir@example.org", full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    with app.app_context():
        client = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
        client.birth_date = __import__("datetime").date(1990, 4, 1)
        accounts.update_profile(client=client, full_name="Mia Demir", phone="0170 7654321",
                                keep_phone=False)
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id))
        db.session.add(Assignment(client_id=client.id, staff_member_id=member.id))
        db.session.commit()
        return person, worker, client.id


def events(app, client_id, **filters):
    """The client's access events; ``category``/``action`` match one of an event's
    categories or actions (one event holds all of a request's)."""
    with app.app_context():
        found = db.session.scalars(select(AccessEvent).where(
            AccessEvent.client_id == client_id).order_by(AccessEvent.seq)).all()
    return [e for e in found
            if all(value in (getattr(e, name).split(",") if name in ("category", "action")
                             else [getattr(e, name)]) for name, value in filters.items())]


@pytest.mark.parametrize("query", ["mia.demir@example.org", "+49 170 7654321", "demir",
                                   "Mia"])
def test_search_finds_by_exact_email_phone_or_name_token_and_logs(app, client, auth, case,
                                                                  query):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    page = search_clients(client, query)
    assert f"/staff/clients/{client_id}" in page
    assert events(app, client_id, action="search")


def test_name_search_narrowed_by_birth_date(app, client, auth, case):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    right = search_clients(client, "Demir", birth_date="1990-04-01")
    wrong = search_clients(client, "Demir", birth_date="1991-04-01")
    assert f"/staff/clients/{client_id}" in right
    assert f"/staff/clients/{client_id}" not in wrong
    partial = search_clients(client, "Dem")
    assert f"/staff/clients/{client_id}" not in partial  # exact tokens only


def test_the_search_is_posted_and_never_put_in_a_url(app, client, auth, case):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    form_page = client.get("/staff/clients").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/staff/clients"', form_page)
    assert 'name="csrf_token"' in form_page
    # An old link with the query in it shows the empty form and searches nothing.
    old = client.get("/staff/clients?q=mia.demir%40example.org").get_data(as_text=True)
    assert f"/staff/clients/{client_id}" not in old
    assert "mia.demir@example.org" not in old
    assert not events(app, client_id, action="search")
    # Without the CSRF token nothing is searched either.
    assert client.post("/staff/clients", data={"q": "Demir"}).status_code == 400
    assert not events(app, client_id, action="search")
    found = search_clients(client, "mia.demir@example.org")
    assert f"/staff/clients/{client_id}" in found
    assert "?q=" not in found


def test_assigned_caseworker_opens_the_file_and_each_part_is_logged(app, client, auth, case):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    page = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    assert "Mia Demir" in page
    assert "+491707654321" in page
    # One visit for the one request, naming every part of the file the page showed.
    (visit,) = events(app, client_id, action="view")
    assert visit.purpose == "open-file"
    assert {"contact", "bookings", "household", "documents", "notes"} <= set(
        visit.category.split(","))
    client.get(f"/staff/clients/{client_id}")
    assert len(events(app, client_id, action="view")) == 2  # a second opening, a second


def test_unassigned_caseworker_needs_break_glass_for_this_session_only(app, client, auth, case,
                                                                       make_staff):
    person, _worker, client_id = case
    other = make_staff(role="caseworker")
    auth.login(other, area="staff")
    first = client.get(f"/staff/clients/{client_id}")
    assert first.headers["Location"] == f"/staff/clients/{client_id}/break-glass"
    short = submit(client, f"/staff/clients/{client_id}/break-glass", {"reason": "kurz"})
    assert short.status_code == 200
    opened = submit(client, f"/staff/clients/{client_id}/break-glass",
                    {"reason": "Vertretung für A. Schmidt, dringender Rückruf"})
    assert opened.headers["Location"] == f"/staff/clients/{client_id}"
    assert "Mia Demir" in client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    with app.app_context():
        grant = db.session.scalar(select(BreakGlassGrant))
        assert grant.reason == "Vertretung für A. Schmidt, dringender Rückruf"
        assert b"Vertretung" not in grant.reason_ciphertext
    assert events(app, client_id, action="break-glass")

    # Another session of the same caseworker has no access.
    auth.logout("staff")
    auth.login(other, area="staff")
    assert client.get(f"/staff/clients/{client_id}").status_code == 302

    # The client sees it, with the reason.
    auth.logout("staff")
    auth.login(person)
    log = client.get("/my-data/access").get_data(as_text=True)
    assert "Vertretung für A. Schmidt, dringender Rückruf" in log
    assert "T. Tester" in log


def test_opening_a_file_by_break_glass_is_a_security_event(app, client, auth, case,
                                                           make_staff):
    from shared.models import SecurityEvent

    _person, _worker, client_id = case
    auth.login(make_staff(role="caseworker"), area="staff")
    submit(client, f"/staff/clients/{client_id}/break-glass", {"reason": "kurz"})
    submit(client, f"/staff/clients/{client_id}/break-glass",
           {"reason": "Vertretung für A. Schmidt, dringender Rückruf"})
    with app.app_context():
        stored = [(e.outcome, e.account_kind) for e in db.session.scalars(
            select(SecurityEvent).where(SecurityEvent.event == "break_glass.opened"))]
    assert stored == [("ok", "staff")]


def test_admin_review_lists_break_glass(app, client, auth, case, make_staff):
    _person, _worker, client_id = case
    other = make_staff(role="caseworker")
    auth.login(other, area="staff")
    submit(client, f"/staff/clients/{client_id}/break-glass",
           {"reason": "Notfall am Wochenende, Rückruf Jugendamt"})
    auth.logout("staff")
    auth.login(make_staff(role="admin"), area="staff")
    review = client.get("/staff/break-glass").get_data(as_text=True)
    assert "Notfall am Wochenende" in review
    with app.app_context():
        grant_id = db.session.scalar(select(BreakGlassGrant)).id
    submit(client, f"/staff/break-glass/{grant_id}/reviewed", {}, form_url="/staff/break-glass")
    assert "Notfall am Wochenende" not in client.get("/staff/break-glass").get_data(as_text=True)


def test_reception_sees_contact_and_bookings_only(app, client, auth, case, make_staff):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    upload(client, client_id, PDF, "bericht.pdf")
    auth.logout("staff")
    auth.login(make_staff(role="reception"), area="staff")
    page = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    assert "+491707654321" in page
    assert "bericht.pdf" not in page
    with app.app_context():
        document_id = db.session.scalar(select(Document)).id
    assert client.get(f"/staff/documents/{document_id}").status_code == 403


def test_admin_manages_but_does_not_read_notes_or_documents(app, client, auth, case,
                                                           make_staff):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    upload(client, client_id, PDF, "bericht.pdf")
    write_note(client, client_id, "Vertrauliches Gespräch geführt")
    auth.logout("staff")
    auth.login(make_staff(role="admin"), area="staff")
    page = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    assert "Mia Demir" in page
    assert "Vertrauliches Gespräch" not in page
    assert "bericht.pdf" not in page
    with app.app_context():
        document_id = db.session.scalar(select(Document)).id
    # Refused at the gate (shared/policy.py: documents are for caseworkers only).
    assert client.get(f"/staff/documents/{document_id}").status_code == 403


@pytest.mark.parametrize("role", ["caseworker", "reception"])
def test_only_an_admin_assigns_a_caseworker(app, client, auth, case, make_staff, role):
    """The assigned caseworker (or reception) can neither assign a colleague through the
    service nor through the page; the same form posted by an admin does."""
    from shared.services import casefile

    _person, worker, client_id = case
    caller = worker if role == "caseworker" else make_staff(role=role)
    colleague_id = staff_member_id(app, make_staff(role="caseworker"))

    def colleague_assigned() -> bool:
        with app.app_context():
            return db.session.scalar(select(Assignment).where(
                Assignment.client_id == client_id,
                Assignment.staff_member_id == colleague_id)) is not None

    with app.app_context():
        member = db.session.get(StaffMember, staff_member_id(app, caller))
        with pytest.raises(casefile.NoAccess):
            casefile.assign(admin=member, client_id=client_id, staff_member_id=colleague_id)
    assert not colleague_assigned()

    auth.login(caller, area="staff")
    refused = submit(client, f"/staff/clients/{client_id}/assign",
                     {"staff": str(colleague_id)}, form_url=f"/staff/clients/{client_id}")
    assert refused.status_code == 403
    assert not colleague_assigned()

    auth.logout("staff")
    auth.login(make_staff(role="admin"), area="staff")
    assigned = submit(client, f"/staff/clients/{client_id}/assign",
                      {"staff": str(colleague_id)}, form_url=f"/staff/clients/{client_id}")
    assert assigned.status_code == 302
    assert colleague_assigned()


def upload(client, client_id, data, name, **fields):
    page = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "category": "report", "file": (io.BytesIO(data), name)}
    form.update(fields)
    return client.post(f"/staff/clients/{client_id}/documents", data=form,
                       content_type="multipart/form-data")


def write_note(client, client_id, body, **fields):
    return submit(client, f"/staff/clients/{client_id}/notes", {"body": body, **fields},
                  form_url=f"/staff/clients/{client_id}")


def test_documents_are_checked_by_content_and_stored_encrypted(app, client, auth, case):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    assert upload(client, client_id, PDF, "Hilfeplan.pdf").status_code == 302
    fake = upload(client, client_id, b"MZ\x90\x00" + b"\x00" * 100, "harmlos.pdf")
    assert fake.status_code == 302
    too_big = upload(client, client_id, PDF + b"0" * (20 * 1024 * 1024), "gross.pdf")
    assert too_big.status_code == 302
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    assert upload(client, client_id, buffer.getvalue(), "brief.docx").status_code == 302
    with app.app_context():
        documents = db.session.scalars(select(Document)).all()
        assert sorted(d.filename for d in documents) == ["Hilfeplan.pdf", "brief.docx"]
        pdf = next(d for d in documents if d.filename == "Hilfeplan.pdf")
        assert pdf.content == PDF
        assert PDF[:40] not in pdf.content_ciphertext
        assert pdf.content_type == "application/pdf"
        pdf_id = pdf.id
    download = client.get(f"/staff/documents/{pdf_id}")
    assert download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert events(app, client_id, action="download")


def test_notes_lock_after_24_hours_and_corrections_reference_the_original(app, client, auth,
                                                                          case, make_staff):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    write_note(client, client_id, "Erstgespräch geführt.")
    with app.app_context():
        note_id = db.session.scalar(select(Note)).id
    ok = submit(client, f"/staff/notes/{note_id}/edit", {"body": "Erstgespräch geführt (45 min)."},
                form_url=f"/staff/clients/{client_id}")
    assert ok.status_code == 302
    with app.app_context():
        note = db.session.get(Note, note_id)
        assert note.body == "Erstgespräch geführt (45 min)."
        note.created_at -= timedelta(hours=25)
        db.session.commit()
    late = submit(client, f"/staff/notes/{note_id}/edit", {"body": "geändert"},
                  form_url=f"/staff/clients/{client_id}")
    assert late.status_code == 302
    write_note(client, client_id, "Korrektur: 60 min.", corrects=str(note_id))
    with app.app_context():
        assert db.session.get(Note, note_id).body == "Erstgespräch geführt (45 min)."
        correction = db.session.scalar(select(Note).where(Note.corrects_id == note_id))
        assert correction.body == "Korrektur: 60 min."


def test_confidential_items_never_reach_the_guardian(app, client, auth, make_client,
                                                     make_staff, make_bookable, outbox):
    from shared.models import Booking, Guardianship
    from tests.conftest import tomorrow_slot_token
    from tests.portal.test_bookings import book
    from tests.portal.test_household import add_child

    bookable = make_bookable()
    parent = make_client()
    auth.login(parent)
    add_child(client, full_name="Lara Demir", birth_date="2009-02-02")
    with app.app_context():
        lara = db.session.scalar(select(Guardianship)).dependant_id
    book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(lara))
    auth.logout()
    with app.app_context():
        member = db.session.get(StaffMember, bookable.staff_member_id)
        db.session.add(Assignment(client_id=lara, staff_member_id=member.id))
        db.session.commit()
        booking_id = db.session.scalar(select(Booking)).id

    auth.login(bookable.staff, area="staff")
    write_note(client, lara, "Offen sichtbare Notiz", visible_to_client="y")
    write_note(client, lara, "Beratung ohne Eltern", visible_to_client="y", confidential="y")
    upload(client, lara, PDF, "geheim.pdf", visible_to_client="y", confidential="y")
    submit(client, f"/staff/bookings/{booking_id}/confidential", {"confidential": "1"},
           form_url=f"/staff/clients/{lara}")
    sent_before = len(outbox.to(parent.email))
    submit(client, f"/staff/bookings/{booking_id}/confirm", {}, form_url="/staff/bookings")
    auth.logout("staff")

    assert len(outbox.to(parent.email)) == sent_before  # no email about it
    auth.login(parent)
    view = client.get("/my-data/access").get_data(as_text=True)
    assert "Offen sichtbare Notiz" in view
    assert "Beratung ohne Eltern" not in view
    assert "geheim.pdf" not in view
    assert "Elternberatung" not in client.get("/bookings").get_data(as_text=True)


def test_client_sees_who_viewed_the_file(app, client, auth, case):
    person, worker, client_id = case
    auth.login(worker, area="staff")
    client.get(f"/staff/clients/{client_id}")
    write_note(client, client_id, "Interne Notiz")
    auth.logout("staff")
    auth.login(person)
    page = client.get("/my-data/access").get_data(as_text=True)
    assert "T. Tester" in page
    assert "Interne Notiz" not in page  # not visible to the client, but that it exists is
    assert "eine Notiz, die Sie nicht lesen können" in page


def test_deactivation_ends_sessions_at_once_and_roles_change(app, auth, make_staff):
    worker = make_staff(role="caseworker")
    tablet = app.test_client()
    from tests.conftest import Auth

    Auth(tablet, auth.clock).login(worker, area="staff")
    assert tablet.get("/staff/").status_code == 200
    auth.login(make_staff(role="admin"), area="staff")
    with app.app_context():
        member_id = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id)).id
    submit(auth.client, f"/staff/team/{member_id}/deactivate", {}, form_url="/staff/team")
    assert tablet.get("/staff/").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(UserSession).where(
            UserSession.account_id == worker.account_id)) is None
    submit(auth.client, f"/staff/team/{member_id}/activate", {}, form_url="/staff/team")
    submit(auth.client, f"/staff/team/{member_id}/role", {"role": "reception"},
           form_url="/staff/team")
    with app.app_context():
        member = db.session.get(StaffMember, member_id)
        assert member.active is True
        assert member.role == "reception"


def test_admin_creates_staff_with_an_invitation(app, client, auth, make_staff, outbox):
    auth.login(make_staff(role="admin"), area="staff")
    response = submit(client, "/staff/team", {"email": "neu.team@example.org",
                                              "name": "N. Team", "role": "reception"})
    assert response.status_code == 302
    assert "/staff/invitation/" in outbox.last_to("neu.team@example.org").get_content()


def test_guessing_a_client_id_gives_404(client, auth, make_staff):
    auth.login(make_staff(role="reception"), area="staff")
    assert client.get(f"/staff/clients/{uuid.uuid4()}").status_code == 404


def test_guardians_see_no_reasons_or_confidential_work_in_a_childs_log(app, client, auth,
                                                                       make_client,
                                                                       make_staff):
    from shared.models import Guardianship
    from tests.portal.test_household import add_child

    parent = make_client()
    auth.login(parent)
    add_child(client, full_name="Lara Demir", birth_date="2009-02-02")
    with app.app_context():
        lara = db.session.scalar(select(Guardianship)).dependant_id
    auth.logout()
    other = make_staff(role="caseworker")
    auth.login(other, area="staff")
    submit(client, f"/staff/clients/{lara}/break-glass",
           {"reason": "Lara meldet sich selbst, Gespräch ohne Eltern"})
    write_note(client, lara, "Vertraulich", visible_to_client="y", confidential="y")
    write_note(client, lara, "Korrektur der vertraulichen Notiz", visible_to_client="y",
               corrects=_first_note_id(app))
    auth.logout("staff")
    auth.login(parent)
    page = client.get("/my-data/access").get_data(as_text=True)
    assert "Gespräch ohne Eltern" not in page
    assert "Korrektur der vertraulichen Notiz" not in page  # inherits confidentiality
    assert "Notizen geändert" not in page
    assert "notes changed" not in page


def _first_note_id(app):
    with app.app_context():
        return str(db.session.scalar(select(Note).order_by(Note.created_at)).id)


def test_a_role_change_takes_away_what_the_old_role_had(app, client, auth, case, make_staff):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    write_note(client, client_id, "Nur für Fachkräfte")
    auth.logout("staff")
    auth.login(make_staff(role="admin"), area="staff")
    with app.app_context():
        member_id = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id)).id
    submit(client, f"/staff/team/{member_id}/role", {"role": "reception"},
           form_url="/staff/team")
    auth.logout("staff")
    auth.login(worker, area="staff")
    page = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    assert "Nur für Fachkräfte" not in page
    with app.app_context():
        assert db.session.scalar(select(Assignment)) is None


def test_household_members_named_on_a_file_are_logged_too(app, client, auth, make_client,
                                                          make_staff):
    from shared.models import Guardianship
    from tests.portal.test_household import add_child

    parent = make_client(full_name="Ayse Demir")
    auth.login(parent)
    add_child(client, full_name="Emil Demir")
    with app.app_context():
        emil = db.session.scalar(select(Guardianship)).dependant_id
        parent_client = db.session.scalar(select(Client).where(
            Client.account_id == parent.account_id)).id
    auth.logout()
    auth.login(make_staff(role="admin"), area="staff")
    client.get(f"/staff/clients/{parent_client}")
    assert events(app, emil, category="contact")


def test_confidential_items_are_not_in_the_guardians_export(app, client, auth, make_client,
                                                            make_staff):
    import io
    import zipfile

    from shared.models import Guardianship
    from tests.portal.test_household import add_child

    parent = make_client()
    auth.login(parent)
    add_child(client, full_name="Lara Demir", birth_date="2009-02-02")
    with app.app_context():
        lara = db.session.scalar(select(Guardianship)).dependant_id
        worker = make_staff(role="caseworker")
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id))
        db.session.add(Assignment(client_id=lara, staff_member_id=member.id))
        db.session.commit()
    auth.logout()
    auth.login(worker, area="staff")
    write_note(client, lara, "Sichtbar für Eltern", visible_to_client="y")
    write_note(client, lara, "Geheime Beratung", visible_to_client="y", confidential="y")
    upload(client, lara, PDF, "geheim.pdf", visible_to_client="y", confidential="y")
    upload(client, lara, PDF, "offen.pdf", visible_to_client="y")
    auth.logout("staff")
    auth.login(parent)
    archive = zipfile.ZipFile(io.BytesIO(submit(client, "/my-data/export", {}).data))
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"Sichtbar f" in everything
    assert b"offen.pdf" in everything
    assert b"Geheime Beratung" not in everything
    assert b"geheim.pdf" not in everything


def test_the_client_filters_the_access_log_by_person_and_category(app, client, auth, case):
    person, worker, client_id = case
    auth.login(worker, area="staff")
    client.get(f"/staff/clients/{client_id}")  # a visit reading notes (among others)
    search_clients(client, "mia.demir@example.org")  # a visit that read no notes
    auth.logout("staff")
    auth.login(person)
    everything = client.get("/my-data/access").get_data(as_text=True)
    only_notes = client.get("/my-data/access?category=notes").get_data(as_text=True)
    nobody = client.get("/my-data/access?person=Niemand").get_data(as_text=True)
    assert everything.count('class="access-log__item"') > only_notes.count(
        'class="access-log__item"') >= 1
    assert nobody.count('class="access-log__item"') == 0


@pytest.mark.parametrize(("given", "mime", "stored"), [
    ("Zeugnis.pdf.exe", "application/pdf", "Zeugnis.pdf"),
    ("C:\\Users\\mia\\Bewerbung.pdf", "application/pdf", "Bewerbung.pdf"),
    ("../../etc/passwd", "application/pdf", "passwd.pdf"),
    ("Übersicht Jörg.PDF", "application/pdf", "Übersicht Jörg.PDF"),
    ("Jo\u0308rg.pdf", "application/pdf", "Jörg.pdf"),  # decomposed umlaut, composed
    ("Rechnung\u202efdp.exe", "application/pdf", "Rechnungfdp.pdf"),  # right-to-left trick
    ("Foto.png", "image/jpeg", "Foto.jpg"),
    ("Foto.JPEG", "image/jpeg", "Foto.JPEG"),
    ("Bericht v1.2", "application/pdf", "Bericht v1.2.pdf"),
    ('Brief "final"\r\n.docx', "application/vnd.openxmlformats-officedocument"
     ".wordprocessingml.document", "Brief final.docx"),
    ("  .versteckt.pdf ", "application/pdf", "versteckt.pdf"),
    ('"".pdf', "application/pdf", "document.pdf"),
    ("", "image/png", "document.png"),
])
def test_document_names_are_cleaned_and_end_in_the_detected_type(given, mime, stored):
    from shared.services import casefile

    assert casefile.document_name(given, mime) == stored


def test_a_very_long_name_is_cut_but_keeps_its_extension():
    from shared.services import casefile

    name = casefile.document_name("ä" * 500 + ".pdf", "application/pdf")
    assert len(name) <= 200
    assert name.endswith("ä.pdf")


def upload_raw(client, client_id, data: bytes, encoded_name: str, **fields):
    """Post the file as a hand-made client can: the name RFC 2231-encoded in the part's
    header (filename*=UTF-8''…), so it may carry quotes, CR/LF and anything else."""
    page = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    values = {"csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                                      page).group(1), "category": "report", **fields}
    parts = [f'--B\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in values.items()]
    parts.append(b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''"
                 + encoded_name.encode() + b"\r\nContent-Type: application/octet-stream"
                 + b"\r\n\r\n" + data + b"\r\n--B--\r\n")
    return client.post(f"/staff/clients/{client_id}/documents", data=b"".join(parts),
                       content_type="multipart/form-data; boundary=B")


def test_a_hostile_file_name_is_stored_clean_and_served_properly_encoded(app, client, auth,
                                                                        case):
    from urllib.parse import quote

    from werkzeug.http import parse_options_header

    person, worker, client_id = case
    hostile = '../../Zeugnis "Jörg"\r\nX-Injected: 1.pdf.exe'
    auth.login(worker, area="staff")
    response = upload_raw(client, client_id, PDF, quote(hostile, safe=""),
                          visible_to_client="y")
    assert response.status_code == 302
    clean = "Zeugnis Jörg X-Injected 1.pdf"
    with app.app_context():
        document = db.session.scalar(select(Document))
        assert document.filename == clean
        document_id = document.id
    assert clean in client.get(f"/staff/clients/{client_id}").get_data(as_text=True)

    staff_download = client.get(f"/staff/documents/{document_id}")
    auth.logout("staff")
    auth.login(person)
    listed = client.get("/my-data/access").get_data(as_text=True)
    assert f'/my-data/documents/{document_id}">{clean}</a>' in listed
    portal_download = client.get(f"/my-data/documents/{document_id}")
    for download in (staff_download, portal_download):
        assert download.data == PDF
        assert download.mimetype == "application/pdf"
        assert "X-Injected" not in download.headers  # no header smuggled in
        header = download.headers["Content-Disposition"]
        assert not {"\r", "\n"} & set(header)
        # RFC 6266: an ASCII fallback for old clients, then the exact name (RFC 5987).
        assert header.startswith('attachment; filename="Zeugnis Jorg X-Injected 1.pdf"; ')
        assert "filename*=UTF-8''Zeugnis%20J%C3%B6rg%20X-Injected%201.pdf" in header
        assert parse_options_header(header) == ("attachment", {"filename": clean})


def test_documents_stored_before_the_clean_up_are_served_with_a_clean_name(app, client,
                                                                          auth, case):
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    upload(client, client_id, PDF, "Hilfeplan.pdf")
    with app.app_context():
        document = db.session.scalar(select(Document))
        document.filename = 'alt "Bericht".pdf.exe'  # as an older version stored it
        db.session.commit()
        document_id = document.id
    header = client.get(f"/staff/documents/{document_id}").headers["Content-Disposition"]
    assert header == "attachment; filename=\"alt Bericht.pdf\""


def test_an_admin_gives_a_reason_only_to_open_a_restricted_file(app, client, auth, case,
                                                                make_staff):
    """An unrestricted file shows an admin its managed part without a reason, so the
    break-glass page is refused, and the service grants nothing either; an unassigned
    caseworker is asked for the reason."""
    from shared.services import casefile

    _person, _worker, client_id = case
    admin = make_staff(role="admin")
    admin_id = staff_member_id(app, admin)
    with app.app_context():
        member = db.session.get(StaffMember, admin_id)
        with pytest.raises(casefile.BreakGlassNotAllowed):
            casefile.break_glass(member=member, client_id=client_id, session_id=uuid.uuid4(),
                                 reason="Nur mal reinschauen, bitte")
        db.session.rollback()
        assert db.session.scalars(select(BreakGlassGrant)).all() == []
    auth.login(admin, area="staff")
    assert client.get(f"/staff/clients/{client_id}/break-glass").status_code == 403
    assert client.get(f"/staff/clients/{uuid.uuid4()}/break-glass").status_code == 404
    auth.logout("staff")
    auth.login(make_staff(role="caseworker"), area="staff")
    assert client.get(f"/staff/clients/{client_id}/break-glass").status_code == 200


def assign_options(page: str) -> set[str]:
    select_html = re.search(r'<select[^>]*name="staff"[^>]*>(.*?)</select>', page, re.S)
    return set(re.findall(r'<option value="([^"]+)"', select_html.group(1))) if select_html \
        else set()


def test_admins_are_offered_the_active_caseworkers_to_assign(app, client, auth, case,
                                                             make_staff):
    _person, worker, client_id = case
    admin = make_staff(role="admin")
    other = staff_member_id(app, make_staff(role="caseworker"))
    gone = staff_member_id(app, make_staff(role="caseworker"))
    make_staff(role="reception")
    with app.app_context():
        db.session.get(StaffMember, gone).active = False
        db.session.commit()
    auth.login(admin, area="staff")
    offered = assign_options(client.get(f"/staff/clients/{client_id}").get_data(as_text=True))
    assert offered == {str(staff_member_id(app, worker)), str(other)}
    auth.logout("staff")
    auth.login(worker, area="staff")
    assert assign_options(client.get(f"/staff/clients/{client_id}").get_data(
        as_text=True)) == set()


def test_an_admin_removes_an_assignment_and_it_is_logged(app, client, auth, case,
                                                         make_staff):
    _person, worker, client_id = case
    admin = make_staff(role="admin")
    with app.app_context():
        assignment_id = db.session.scalar(select(Assignment.id))
    auth.login(admin, area="staff")
    removed = submit(client, f"/staff/assignments/{assignment_id}/remove", {},
                     form_url=f"/staff/clients/{client_id}")
    assert removed.headers["Location"] == f"/staff/clients/{client_id}"
    with app.app_context():
        assert db.session.scalars(select(Assignment)).all() == []
    changes = events(app, client_id, category="case-file", action="change")
    assert [e.staff_member_id for e in changes] == [staff_member_id(app, admin)]
    again = submit(client, f"/staff/assignments/{assignment_id}/remove", {},
                   form_url=f"/staff/clients/{client_id}")
    assert again.status_code == 404


def add_log_visits(app, client_id, count: int) -> None:
    """``count`` visits by another caseworker to the client's data, one request each."""
    from shared import audit

    with app.app_context():
        other = db.session.scalar(select(StaffMember).where(StaffMember.role == "caseworker"))
        audit.set_purpose(audit.BOOKING_LISTS)
        for _ in range(count):
            audit.record_access(client_id=client_id, staff_member=other,
                                category=audit.BOOKINGS)
            db.session.commit()


def test_the_files_access_log_pages_with_newer_and_older_at_a_constant_cost(app, client,
                                                                           auth, case):
    """The caseworker reads the file's access log a page at a time: "Ältere" leads on and
    "Neuere" back; 30 or 300 visits cost the file the same statements."""
    from tests.conftest import get_counting_statements

    _person, worker, client_id = case
    add_log_visits(app, client_id, 30)
    auth.login(worker, area="staff")
    url = f"/staff/clients/{client_id}"
    client.get(url)  # caches warm
    few_page, few = get_counting_statements(app, client, url)
    add_log_visits(app, client_id, 270)
    many_page, many = get_counting_statements(app, client, url)
    assert many == few, f"30 visits: {few} statements, 300 visits: {many}"
    first = many_page.get_data(as_text=True)
    log = first[first.index('id="log-heading"'):]
    assert "Seite 1 von 13" in log
    assert f'rel="next" href="{url}?page=2#log-heading"' in log
    assert 'rel="prev"' not in log
    second = client.get(f"{url}?page=2").get_data(as_text=True)
    log = second[second.index('id="log-heading"'):]
    assert "Seite 2 von 13" in log
    assert f'rel="prev" href="{url}?page=1#log-heading"' in log
    assert "Neuere" in log
    assert "Ältere" in log
    # The notes still come first on every page of the log.
    assert second.index('id="notes-heading"') < second.index('id="master-heading"')
    assert few_page.status_code == 200
