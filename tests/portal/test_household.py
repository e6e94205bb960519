"""Parents add, edit and remove children; from 16 a child gets an account of their own and
decides what the guardian sees."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import (
    Booking,
    Client,
    DataKey,
    Document,
    EmergencyContact,
    Guardianship,
    Service,
)
from shared.models.base import utcnow
from tests.conftest import (
    Auth,
    assign_caseworker,
    claim_invitation,
    confirm_in_person,
    consent_begin_url,
    staff_member_id,
    submit,
)


def add_child(client, **fields):
    data = {"full_name": "Emil Demir", "birth_date": "2019-05-04", "allergies": "Erdnüsse",
            "group_name": "Igel", "contact_name": "Oma Ayse", "contact_phone": "0170 1234567"}
    data.update(fields)
    return submit(client, "/household/new", data)


def test_parent_adds_a_child_with_its_own_data_key(app, client, auth, make_client):
    parent = make_client(full_name="Mia Demir")
    auth.login(parent)
    response = add_child(client)
    assert response.headers["Location"] == "/household"
    page = client.get("/household").get_data(as_text=True)
    assert "Emil Demir" in page
    assert "Erdnüsse" in page
    assert "+491701234567" in page
    with app.app_context():
        child = db.session.scalar(select(Client).where(Client.account_id.is_(None)))
        assert child.full_name == "Emil Demir"
        assert child.birth_date == date(2019, 5, 4)
        own = db.session.scalar(select(Client).where(Client.account_id == parent.account_id))
        assert child.data_key_id != own.data_key_id
        contact = db.session.scalar(select(EmergencyContact))
        assert contact.phone == "+491701234567"
        assert b"Erd" not in child.allergies_ciphertext
        link = db.session.scalar(select(Guardianship))
        assert link.guardian_account_id == parent.account_id


def test_required_fields_and_phone_numbers_are_checked(app, client, auth, make_client):
    auth.login(make_client())
    missing = add_child(client, birth_date="")
    assert missing.status_code == 200
    assert 'aria-invalid="true"' in missing.get_data(as_text=True)
    bad_phone = add_child(client, contact_phone="12")
    assert bad_phone.status_code == 200
    assert "0170 1234567" in bad_phone.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Guardianship)) is None


def test_optional_fields_stay_optional(app, client, auth, make_client):
    auth.login(make_client())
    response = add_child(client, allergies="", group_name="", contact_name="", contact_phone="")
    assert response.status_code == 302


def test_edit_and_remove_crypto_shreds_a_child_without_other_guardian(app, client, auth,
                                                                     make_client):
    auth.login(make_client())
    add_child(client)
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id
    edited = submit(client, f"/household/{child_id}/edit",
                    {"full_name": "Emil M. Demir", "birth_date": "2019-05-04"})
    assert edited.status_code == 302
    assert "Emil M. Demir" in client.get("/household").get_data(as_text=True)
    removed = submit(client, f"/household/{child_id}/remove", {}, form_url="/household")
    assert removed.status_code == 302
    with app.app_context():
        assert db.session.get(Client, child_id) is None
        assert len(db.session.scalars(select(DataKey)).all()) == 1  # only the parent's


def test_another_parent_cannot_open_my_child(app, client, auth, make_client):
    auth.login(make_client())
    add_child(client)
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id
    auth.logout()
    auth.login(make_client())
    assert client.get(f"/household/{child_id}/edit").status_code == 404
    # With a valid form token (without one, the CSRF check alone would answer 400).
    assert submit(client, f"/household/{child_id}/remove", {},
                  form_url="/household").status_code == 404
    with app.app_context():
        assert db.session.get(Client, child_id) is not None


def test_from_16_a_young_person_gets_an_own_account_and_decides(app, client, auth,
                                                               make_client, make_staff,
                                                               outbox):
    parent = make_client()
    auth.login(parent)
    add_child(client, full_name="Lara Demir", birth_date="2008-01-10")
    young = add_child(client, full_name="Kemal Demir", birth_date="2020-01-10")
    assert young.status_code == 302
    with app.app_context():
        links = db.session.scalars(select(Guardianship)).all()
        lara = next(g.dependant_id for g in links if g.dependant.full_name == "Lara Demir")
        kemal = next(g.dependant_id for g in links if g.dependant.full_name == "Kemal Demir")
    too_young = submit(client, f"/household/{kemal}/invite", {"email": "kemal@example.org"},
                       form_url="/household", follow_redirects=True)
    assert "16" in too_young.get_data(as_text=True)
    submit(client, f"/household/{lara}/invite", {"email": "lara@example.org"},
           form_url="/household")
    link = outbox.link("lara@example.org", "/confirm/")

    lara_browser = app.test_client()
    submit(lara_browser, link, {"password": "lara-eigenes-passwort-16", "submit": "1"})
    assert lara_browser.get("/household").headers["Location"] == "/account/handover"
    with app.app_context():
        link_id = db.session.scalar(select(Guardianship).where(
            Guardianship.dependant_id == lara)).id
    confirm_in_person(app, auth, make_staff(role="caseworker"), lara)
    assert parent.email in lara_browser.get("/household").get_data(as_text=True)
    submit(lara_browser, f"/household/guardians/{link_id}", {"access": "none"})
    parent_view = client.get("/household").get_data(as_text=True)
    assert "Erdnüsse" in parent_view  # Kemal's data is still shown
    assert parent_view.count("Erdnüsse") == 1  # Lara's is not any more
    assert client.get(f"/household/{lara}/edit").status_code == 404


def test_removing_a_child_with_a_case_file_restricts_what_must_be_kept(
        app, client, auth, make_client, make_bookable):
    from datetime import timedelta

    from shared import erasure_journal
    from shared.models import Booking, Note, StaffMember
    from shared.models.base import utcnow
    from tests.conftest import add_booking

    bookable = make_bookable()
    auth.login(make_client())
    add_child(client)
    with app.app_context():
        child = db.session.get(Client, db.session.scalar(select(Guardianship)).dependant_id)
        child_id, old_key = child.id, child.data_key_id
        member = db.session.get(StaffMember, bookable.staff_member_id)
        note = Note(client_id=child.id, data_key=child.data_key, author_id=member.id)
        note.body = "Elterngespräch"
        end = utcnow() - timedelta(days=3)
        db.session.add(note)
        add_booking(child, bookable, end=end, status="cancelled")
        db.session.commit()
    assert submit(client, f"/household/{child_id}/remove", {},
                  form_url="/household").status_code == 302
    with app.app_context():
        kept = db.session.get(Client, child_id)
        assert kept.restricted_at is not None
        assert kept.allergies is None
        assert kept.data_key_id != old_key
        assert db.session.get(DataKey, old_key) is None
        assert db.session.scalar(select(Note)).body == "Elterngespräch"
        assert db.session.scalar(select(Booking)) is None  # it did not take place
        assert child_id in [entry[0] for entry in erasure_journal.journal_entries()]
    assert "Emil Demir" not in client.get("/household").get_data(as_text=True)


INVITED = "Die Einladung ist an diese Adresse unterwegs."


def says_call_the_team(page: str) -> bool:
    """The hand-over partial: why the team checks, and its number as a tel: link."""
    return ("damit niemand sonst in Ihrem Namen handeln kann. Bitte besuchen Sie das Team "
            "oder rufen Sie an:" in page
            and 'href="tel:+49301234567"><bdi dir="ltr">+49 30 1234567</bdi></a>' in page)


def invite_as_parent(client, child_id, email):
    return submit(client, f"/household/{child_id}/invite", {"email": email},
                  form_url="/household", follow_redirects=True)


def withdraw_as_parent(client, child_id):
    url = f"/household/{child_id}/invitation/withdraw"
    return submit(client, url, {}, form_url=url, follow_redirects=True)


def test_a_parent_cannot_take_over_their_childs_account(app, client, auth, make_young_person,
                                                       make_staff, outbox):
    worker = make_staff(role="caseworker")
    young = make_young_person(note_by=staff_member_id(app, worker))
    assign_caseworker(app, young.client_id, worker)
    with app.app_context():
        # Besides the note, an appointment and a document are kept from the parent.
        lara = db.session.get(Client, young.client_id)
        service = Service(name="Jugendberatung", duration_minutes=30)
        db.session.add(service)
        db.session.flush()
        start = utcnow().replace(microsecond=0) + timedelta(days=2)
        db.session.add(Booking(client_id=lara.id, data_key=lara.data_key,
                               service_id=service.id,
                               staff_member_id=staff_member_id(app, worker), start_at=start,
                               end_at=start + timedelta(minutes=30), status="confirmed",
                               confidential_from_guardians=True))
        document = Document(client_id=lara.id, data_key=lara.data_key, category="report",
                            content_type="application/pdf", size=4, visible_to_client=True,
                            confidential_from_guardians=True)
        document.filename = "vertraulich.pdf"
        document.content = b"%PDF"
        db.session.add(document)
        db.session.commit()

    # The parent invites the child to an address the parent controls and claims it.
    auth.login(young.parent)
    assert INVITED in invite_as_parent(client, young.client_id,
                                       "eltern.zweitadresse@example.org").get_data(as_text=True)
    assert "Unser Team bestätigt noch persönlich" in client.get("/household").get_data(
        as_text=True)
    taken = claim_invitation(app, outbox, "eltern.zweitadresse@example.org")
    with app.app_context():
        account = db.session.get(Client, young.client_id).account
        assert account.invited_by == "guardian"
        assert account.handover_confirmed_at is None

    # Nothing of Lara until staff met her in person, and no way to cut the guardian off.
    choice = f"/household/guardians/{young.guardianship_id}"
    for path in ("/my-data/access", "/my-data", "/bookings", "/household", choice):
        assert taken.get(path).headers["Location"] == "/account/handover", path
    notice = taken.get("/account/handover").get_data(as_text=True)
    assert says_call_the_team(notice)
    for secret in ("Beratung ohne Eltern", "vertraulich.pdf", "Jugendberatung", "Lara"):
        assert secret not in notice
    refused = submit(taken, choice, {"access": "none"}, form_url="/account/security")
    assert refused.headers["Location"] == "/account/handover"
    with app.app_context():
        assert db.session.get(Guardianship, young.guardianship_id).access == "full"

    # Staff see it in the file, in words.
    staff_browser = app.test_client()
    Auth(staff_browser, auth.clock).login(worker, area="staff")
    page = staff_browser.get(f"/staff/clients/{young.client_id}").get_data(as_text=True)
    assert "Eigenes Konto, eingeladen von Eltern oder Sorgeberechtigten am" in page
    assert "noch nicht persönlich bestätigt" in page

    # Once a caseworker has met Lara in person, the account is hers.
    submit(staff_browser, f"/staff/clients/{young.client_id}/handover", {},
           form_url=f"/staff/clients/{young.client_id}")
    assert "Beratung ohne Eltern" in taken.get("/my-data/access").get_data(as_text=True)
    assert "Jugendberatung" in taken.get("/bookings").get_data(as_text=True)


def test_the_invitation_answers_alike_whether_or_not_the_address_has_an_account(
        app, client, auth, make_young_person, make_client, make_staff, outbox):
    young = make_young_person()
    existing = make_client(email="schon.da@example.org")
    colleague = make_staff(role="caseworker", email="team.kollegin@example.org")
    auth.login(young.parent)
    answers = []
    for address in ("schon.da@example.org", "Team.Kollegin+privat@example.org"):
        answers.append(invite_as_parent(client, young.client_id, address).get_data(
            as_text=True))
        withdraw_as_parent(client, young.client_id)
    assert all(INVITED in answer for answer in answers)
    assert "schon ein Konto" not in answers[0]
    with app.app_context():
        assert db.session.get(Client, young.client_id).account_id is None
    for person in (existing, colleague):
        note = outbox.last_to(person.email).get_content()
        assert "schon ein Konto" in note
        assert "/confirm/" not in note
    fresh = invite_as_parent(client, young.client_id, "lara.neu@example.org")
    assert INVITED in fresh.get_data(as_text=True)
    assert "/confirm/" in outbox.last_to("lara.neu@example.org").get_content()


def test_invitations_are_rate_limited_per_account(app, client, auth, make_client):
    auth.login(make_client())
    add_child(client, full_name="Lara Demir", birth_date="2008-01-10")
    with app.app_context():
        kemal = db.session.scalar(select(Guardianship)).dependant_id
    statuses = []
    for i in range(6):
        statuses.append(invite_as_parent(client, kemal, f"lara{i}@example.org").status_code)
        if statuses[-1] == 200:
            withdraw_as_parent(client, kemal)
    assert statuses == [200] * 5 + [429]
    assert "Zu viele Versuche" in invite_as_parent(client, kemal, "k@example.org").get_data(
        as_text=True)


def test_a_pending_account_neither_signs_withdraws_nor_deletes_in_the_young_persons_name(
        app, client, auth, make_young_person, make_staff, outbox):
    from shared.models import Consent
    from shared.services import consents
    from tests.conftest import post_json, register_passkey

    with app.app_context():
        saved = consents.save_template(
            key="fotos", texts={"de": {"title": "Fotos", "text": "Ich willige ein …"}},
            purpose="Fotos", legal_basis="Art. 6 Abs. 1 lit. a DSGVO", audience="Team",
            guardian_signs=True)
        consents.publish(saved.id)
        template_id = saved.id
    young = make_young_person()
    page = f"/consents/{template_id}/{young.client_id}"

    auth.login(young.parent)
    invite_as_parent(client, young.client_id, "eltern.zweitadresse@example.org")
    taken = claim_invitation(app, outbox, "eltern.zweitadresse@example.org")
    # While the hand-over is pending the parent still signs for the child, as before ...
    assert "Einwilligung geben" in client.get(page).get_data(as_text=True)
    key = register_passkey(client)
    begin = post_json(client, consent_begin_url(client, page), page=page)
    assert begin.status_code == 200
    finish = post_json(client, "/consents/passkey/finish",
                       {"credential": key.get(begin.get_data(as_text=True))}, page=page)
    assert finish.status_code == 200, finish.get_data(as_text=True)

    # ... but the invited account neither signs nor withdraws in the young person's name.
    assert taken.get(page).headers["Location"] == "/account/handover"
    taken_begin = post_json(taken, f"{page}/passkey/begin", page="/account/security")
    assert taken_begin.headers["Location"] == "/account/handover"
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.status == "given"
    withdrawn = submit(taken, f"/consents/{consent.id}/withdraw", {},
                       form_url="/account/security")
    assert withdrawn.headers["Location"] == "/account/handover"
    with app.app_context():
        assert db.session.get(Consent, consent.id).status == "given"

    # Nor does it delete the young person's file.
    assert taken.get("/my-data/delete").headers["Location"] == "/account/handover"
    submit(taken, "/my-data/delete", {"understood": "yes"}, form_url="/account/security")
    with app.app_context():
        lara = db.session.get(Client, young.client_id)
        assert lara is not None
        assert lara.account is not None


@pytest.mark.parametrize(("locale", "promise", "old_promise"), [
    ("de", "Sobald unser Team Sie persönlich getroffen und bestätigt hat, dass dieses Konto "
           "wirklich Ihnen gehört, sehen Sie dort Ihre eigenen Daten und Termine",
     "Damit sehen Sie"),
    ("en", "Once our team has met you in person and confirmed that this account really is "
           "yours, you see your own data and appointments there", "With it you see"),
])
def test_the_invitation_says_the_team_confirms_in_person_first_and_how_to_reach_it(
        app, client, auth, make_young_person, outbox, locale, promise, old_promise):
    young = make_young_person()
    with app.app_context():
        from shared.models import Account

        db.session.get(Account, young.parent.account_id).locale = locale
        db.session.commit()
    auth.login(young.parent)
    invite_as_parent(client, young.client_id, "lara@example.org")
    invitation = " ".join(outbox.last_to("lara@example.org").get_content().split())
    assert promise in invitation
    assert old_promise not in invitation
    assert "+49 30 1234567" in invitation


def test_adding_children_is_limited_per_account_and_keeps_what_was_typed(app, client, auth,
                                                                         make_client):
    """Children cost nothing to add and each could hold booking requests: ten a day."""
    auth.login(make_client())
    assert add_child(client, full_name="Ohne Geburtstag", birth_date="").status_code == 200
    for i in range(10):  # a refused form above did not count
        assert add_child(client, full_name=f"Kind Nummer{i}").status_code == 302
    refused = add_child(client, full_name="Noch Einkind", allergies="Pollen")
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Sie haben in kurzer Zeit viele Kinder hinzugefügt" in page
    assert "Noch Einkind" in page  # nothing typed is lost
    assert "Pollen" in page
    with app.app_context():
        assert len(db.session.scalars(select(Guardianship)).all()) == 10


@pytest.mark.parametrize("config_overrides", [{"confirm_token_hours": 24}])
def test_the_invitation_says_how_long_the_link_is_valid_as_configured(
        app, client, auth, make_young_person, outbox):
    young = make_young_person()
    auth.login(young.parent)
    invite_as_parent(client, young.client_id, "lara@example.org")
    invitation = " ".join(outbox.last_to("lara@example.org").get_content().split())
    assert "Der Link gilt 24 Stunden und funktioniert nur einmal" in invitation
    assert "48 Stunden" not in invitation


def two_children_invited(app, client, auth, make_client):
    """A self-registered user types in two "children" of 17 and invites one to an address
    that has an account and the other to a free one. Returns their ids (taken, free)."""
    make_client(email="victim@example.org")
    auth.login(make_client())
    year = date.today().year - 17
    add_child(client, full_name="Fake One", birth_date=f"{year}-01-01")
    add_child(client, full_name="Fake Two", birth_date=f"{year}-01-01")
    with app.app_context():
        links = db.session.scalars(select(Guardianship)).all()
        taken = next(g.dependant_id for g in links if g.dependant.full_name == "Fake One")
        free = next(g.dependant_id for g in links if g.dependant.full_name == "Fake Two")
    for child_id, address in ((taken, "victim@example.org"), (free, "nobody-here@example.org")):
        assert INVITED in invite_as_parent(client, child_id, address).get_data(as_text=True)
    return taken, free


def card(page: str, name: str) -> str:
    """The household page's card of one child, with the name and ids taken out."""
    import re

    start = page.index(f">{name}<")
    text = page[start:page.index("</li>", start)].replace(name, "NAME")
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)


def test_nothing_after_an_invitation_tells_a_taken_address_from_a_free_one(
        app, client, auth, make_client, outbox):
    taken, free = two_children_invited(app, client, auth, make_client)
    with app.app_context():
        assert db.session.get(Client, taken).own_account_invited_at is not None
        assert db.session.get(Client, free).own_account_invited_at is not None

    # The household page shows both as invited, alike.
    page = client.get("/household").get_data(as_text=True)
    cards = [card(page, name) for name in ("Fake One", "Fake Two")]
    assert cards[0] == cards[1]
    assert "Eine Einladung zu einem eigenen Konto ist unterwegs" in cards[0]
    assert f"/household/{taken}/invite" not in page
    assert f"/household/{free}/invite" not in page

    # A second invitation is refused alike.
    statuses = [submit(client, f"/household/{child_id}/invite", {"email": f"x{i}@example.org"},
                       form_url="/household").status_code
                for i, child_id in enumerate((taken, free))]
    assert statuses == [404, 404]

    # "My data" and the export hold nothing of the child's own account.
    my_data = client.get("/my-data").get_data(as_text=True)
    assert "nobody-here" not in my_data
    assert "Wer Sie zu Ihrem eigenen Konto eingeladen hat" not in my_data
    with app.test_request_context():
        from shared.models import Account
        from shared.services import export

        guardian = db.session.scalar(select(Guardianship)).guardian
        data = export.build_data(db.session.get(Account, guardian.id))
        columns = [item["column"] for subject in data["subjects"] if not subject["is_self"]
                   for items in subject["categories"].values() for item in items]
    assert "clients.own_account_invited_at" in columns
    assert not [column for column in columns if column.startswith(("accounts.",
                                                                   "user_sessions."))]


def test_a_guardian_withdraws_an_invitation_alike_for_a_taken_and_a_free_address(
        app, client, auth, make_client, outbox):
    from shared.models import Account
    from tests.conftest import security_events

    taken, free = two_children_invited(app, client, auth, make_client)
    claimed = claim_invitation(app, outbox, "nobody-here@example.org")
    with app.app_context():
        free_account = db.session.get(Client, free).account_id
    pages = []
    for child_id in (taken, free):
        question = client.get(f"/household/{child_id}/invitation/withdraw")
        assert question.status_code == 200
        assert "Einladung zurückziehen" in question.get_data(as_text=True)
        done = submit(client, f"/household/{child_id}/invitation/withdraw", {},
                      form_url=f"/household/{child_id}/invitation/withdraw",
                      follow_redirects=True)
        pages.append(done.get_data(as_text=True))
    for page in pages:
        assert "Die Einladung ist zurückgezogen. Sie können eine neue schicken." in page
    page = client.get("/household").get_data(as_text=True)
    assert f"/household/{taken}/invite" in page
    assert f"/household/{free}/invite" in page
    with app.app_context():
        for child_id in (taken, free):
            child = db.session.get(Client, child_id)
            assert child.own_account_invited_at is None
            assert child.account_id is None
        assert db.session.get(Account, free_account) is None
    assert [outcome for outcome, _ in security_events(app, "invitation.withdrawn")] == [
        "ok", "ok"]
    assert claimed.get("/account/handover").headers["Location"].startswith("/login")
    # Nothing left to withdraw: the same 404 as for someone else's child.
    assert submit(client, f"/household/{free}/invitation/withdraw", {},
                  form_url="/household").status_code == 404
