"""Invitations to a young person's own account cannot hand staff (or a guardian) a portal
view of the young person: staff need full access to the file and a reason, the address is
never a staff account's, guardians hear of it, and until a second staff member has met the
young person in person the account sees nothing confidential and cannot cut a guardian off.
"""

from datetime import timedelta

from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Booking, Client, Guardianship
from shared.models.base import utcnow
from tests.conftest import (
    add_booking,
    assign_caseworker,
    claim_invitation,
    confirm_in_person,
    security_events,
    submit,
)

REASON = "Lara hat im Gespräch um ein eigenes Konto gebeten"


def invite(browser, client_id, email, reason=REASON):
    return submit(browser, f"/staff/clients/{client_id}/invite",
                  {"invite-email": email, "invite-reason": reason},
                  form_url=f"/staff/clients/{client_id}")


def with_booking(app, young, bookable):
    """A booking of the young person with the caseworker (the old invitation form sat on
    the day view and needed one)."""
    with app.app_context():
        add_booking(db.session.get(Client, young.client_id), bookable,
                    end=utcnow() + timedelta(days=1))
        db.session.commit()


def test_a_caseworker_cannot_take_over_a_young_persons_account(
        app, client, auth, make_young_person, make_bookable, make_staff, outbox):
    bookable = make_bookable()
    worker = bookable.staff
    young = make_young_person(note_by=None)
    assign_caseworker(app, young.client_id, worker)
    with_booking(app, young, bookable)
    with app.app_context():
        from shared.models import Note

        lara = db.session.get(Client, young.client_id)
        note = Note(client_id=lara.id, data_key=lara.data_key, visible_to_client=True,
                    confidential_from_guardians=True)
        note.body = "Beratung ohne Eltern"
        db.session.add(note)
        db.session.commit()

    # The caseworker invites the young person to an address the caseworker controls ...
    auth.login(worker, area="staff")
    assert invite(client, young.client_id, "privat.fallarbeit@example.org").status_code == 302
    auth.logout("staff")
    # ... and claims the account.
    taken = claim_invitation(app, outbox, "privat.fallarbeit@example.org")

    # The confidential note stays hidden, and the guardian cannot be cut off.
    assert "Beratung ohne Eltern" not in taken.get("/my-data/access").get_data(as_text=True)
    refused = submit(taken, f"/household/guardians/{young.guardianship_id}", {"access": "none"})
    assert ("Das entscheiden nur Sie, sobald unser Team bestätigt hat, dass dieses Konto "
            "wirklich Ihnen gehört.") in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Guardianship, young.guardianship_id).access == "full"

    # Positive control: the same account sees the note once a colleague confirms in person
    # (which is why that colleague must have met the young person).
    confirm_in_person(app, auth, make_staff(role="caseworker"), young.client_id)
    assert "Beratung ohne Eltern" in taken.get("/my-data/access").get_data(as_text=True)


def test_an_admin_cannot_invite_at_all(app, client, auth, make_young_person, make_staff,
                                       make_bookable, outbox):
    bookable = make_bookable()
    young = make_young_person()
    with_booking(app, young, bookable)
    auth.login(make_staff(role="admin"), area="staff")
    response = invite(client, young.client_id, "admin.privat@example.org")
    assert response.status_code == 403
    assert outbox.to("admin.privat@example.org") == []
    with app.app_context():
        assert db.session.get(Client, young.client_id).account_id is None
        assert db.session.scalar(select(Booking)) is not None
        assert db.session.scalar(select(Account).where(Account.kind == "client")
                                 .where(Account.id != young.parent.account_id)) is None


def pseudonym_of(app, person):
    from shared.security_log import pseudonym

    with app.app_context():
        return pseudonym(person.account_id)


def own_account(app, client_id):
    with app.app_context():
        return db.session.get(Client, client_id).account


def test_an_invitation_needs_the_full_file_a_reason_and_never_a_staff_address(
        app, client, auth, make_young_person, make_staff, outbox):
    young = make_young_person()
    worker = make_staff(role="caseworker")
    admin = make_staff(role="admin")
    assign_caseworker(app, young.client_id, worker)

    # Not assigned, no break-glass: the full file is needed first.
    form = {"invite-email": "lara@example.org", "invite-reason": REASON}
    auth.login(make_staff(role="caseworker"), area="staff")
    unassigned = submit(client, f"/staff/clients/{young.client_id}/invite", form,
                        form_url="/staff/clients")
    assert unassigned.headers["Location"] == f"/staff/clients/{young.client_id}/break-glass"
    auth.logout("staff")
    auth.login(make_staff(role="reception"), area="staff")
    assert submit(client, f"/staff/clients/{young.client_id}/invite", form,
                  form_url="/staff/clients").status_code == 403
    auth.logout("staff")

    auth.login(worker, area="staff")
    page = client.get(f"/staff/clients/{young.client_id}").get_data(as_text=True)
    assert "Warum schicken Sie diese Einladung?" in page
    # Each mistake is named at its own field, on the case file again, with what was typed.
    short = invite(client, young.client_id, "lara@example.org", reason="weil")
    assert short.status_code == 400
    page = short.get_data(as_text=True)
    assert "Bitte schreiben Sie einen Grund mit mindestens 10 Zeichen." in page
    assert 'value="lara@example.org"' in page
    assert "weil</textarea>" in page
    assert "Adresse eines Mitarbeitenden-Kontos" not in page
    colleague = invite(client, young.client_id, admin.email.upper())
    assert colleague.status_code == 400
    page = colleague.get_data(as_text=True)
    assert ("Das ist die Adresse eines Mitarbeitenden-Kontos. Einladungen gehen nur an die "
            "eigene Adresse der jungen Person.") in page
    assert f"{REASON}</textarea>" in page
    assert "mindestens 10 Zeichen" not in page
    assert "unterwegs" not in page
    assert own_account(app, young.client_id) is None
    assert outbox.to("lara@example.org") == []
    assert outbox.to(admin.email) == []
    assert security_events(app, "invitation.sent") == [("refused", pseudonym_of(app, worker))]


def test_a_young_person_below_the_age_cannot_be_invited_and_the_file_says_why(
        app, client, auth, make_young_person, make_staff, outbox):
    from datetime import date

    young = make_young_person()
    worker = make_staff(role="caseworker")
    assign_caseworker(app, young.client_id, worker)
    auth.login(worker, area="staff")
    page = client.get(f"/staff/clients/{young.client_id}")  # the form, then a birthday fix
    with app.app_context():
        today = date.today()
        db.session.get(Client, young.client_id).birth_date = today.replace(
            year=today.year - 12, day=1)
        db.session.commit()
    assert page.status_code == 200
    refused = invite(client, young.client_id, "lara@example.org")
    assert refused.status_code == 400
    assert "Ein eigenes Konto ist ab 16 Jahren möglich." in refused.get_data(as_text=True)
    assert own_account(app, young.client_id) is None
    assert outbox.to("lara@example.org") == []


def test_an_invitation_is_logged_with_its_reason_and_told_to_the_guardians(
        app, client, auth, make_young_person, make_staff, outbox):
    young = make_young_person()
    worker = make_staff(role="caseworker")
    assign_caseworker(app, young.client_id, worker)
    auth.login(worker, area="staff")
    sent = invite(client, young.client_id, "lara.demir@example.org")
    assert "Die Einladung ist an diese Adresse unterwegs" in client.get(
        sent.headers["Location"]).get_data(as_text=True)
    page = client.get(f"/staff/clients/{young.client_id}").get_data(as_text=True)
    assert "Eigenes Konto, eingeladen vom Team am" in page
    assert "noch nicht persönlich bestätigt" in page
    assert "Die Einladung wurde noch nicht angenommen." in page
    auth.logout("staff")

    account = own_account(app, young.client_id)
    assert account.invited_by == "staff"
    assert account.handover_confirmed_at is None
    assert security_events(app, "invitation.sent") == [("ok", pseudonym_of(app, worker))]
    with app.app_context():
        from shared.models import AccessEvent

        event = db.session.scalar(select(AccessEvent).where(
            AccessEvent.action == "invitation"))
        assert event.client_id == young.client_id
        assert event.category == "household"

    told = outbox.last_to(young.parent.email).get_content()
    assert "l…@example.org" in told
    assert "lara.demir@example.org" not in told
    assert "Lara" not in told

    # The parent and the young person read who sent it and why.
    auth.login(young.parent)
    log = client.get("/my-data/access").get_data(as_text=True)
    assert "hat eine Einladung zu einem eigenen Konto geschickt" in log
    assert REASON in log
    lara = claim_invitation(app, outbox, "lara.demir@example.org")
    assert REASON in lara.get("/my-data/access").get_data(as_text=True)


def test_the_caseworker_is_told_plainly_that_an_address_has_an_account_and_nothing_is_sent(
        app, client, auth, make_young_person, make_client, make_staff, outbox):
    young = make_young_person()
    taken = make_client(email="vergeben@example.org")
    worker = make_staff(role="caseworker")
    assign_caseworker(app, young.client_id, worker)
    auth.login(worker, area="staff")
    response = invite(client, young.client_id, "vergeben@example.org")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert ("Diese Adresse hat schon ein Konto. Es wurde keine Einladung geschickt.") in page
    assert "unterwegs" not in page
    assert f"{REASON}</textarea>" in page
    assert own_account(app, young.client_id) is None
    assert security_events(app, "invitation.sent") == [("refused", pseudonym_of(app, worker))]
    note = outbox.last_to(taken.email)
    assert "schon ein Konto" in note.get_content()
    assert "/confirm/" not in note.get_content()
    assert outbox.to(young.parent.email) == []


def test_a_colleague_confirms_the_handover_in_person_not_the_sender(
        app, client, auth, make_young_person, make_staff, outbox):
    sender = make_staff(role="caseworker")
    young = make_young_person(note_by=staff_id_of(app, sender))
    assign_caseworker(app, young.client_id, sender)
    auth.login(sender, area="staff")
    invite(client, young.client_id, "lara@example.org")

    # Before the link is used, nobody can confirm.
    colleague = make_staff(role="caseworker")
    early = app.test_client()
    from tests.conftest import Auth

    Auth(early, auth.clock).login(colleague, area="staff")
    submit(early, f"/staff/clients/{young.client_id}/break-glass",
           {"reason": "Lara ist heute persönlich hier, Übergabe"})
    refused_early = submit(early, f"/staff/clients/{young.client_id}/handover", {},
                           form_url=f"/staff/clients/{young.client_id}")
    assert "noch nicht angenommen" in early.get(refused_early.headers["Location"]).get_data(
        as_text=True)

    lara = claim_invitation(app, outbox, "lara@example.org")
    assert "Beratung ohne Eltern" not in lara.get("/my-data/access").get_data(as_text=True)

    # The sender sees why they cannot confirm, and is refused if they try.
    page = client.get(f"/staff/clients/{young.client_id}").get_data(as_text=True)
    assert "Sie haben diese Einladung selbst geschickt." in page
    assert f"/staff/clients/{young.client_id}/handover" not in page
    own = submit(client, f"/staff/clients/{young.client_id}/handover", {},
                 form_url=f"/staff/clients/{young.client_id}")
    assert "selbst geschickt" in client.get(own.headers["Location"]).get_data(as_text=True)
    assert own_account(app, young.client_id).handover_confirmed_at is None
    auth.logout("staff")

    # Admins never hold the full file, so they cannot confirm either.
    auth.login(make_staff(role="admin"), area="staff")
    assert submit(client, f"/staff/clients/{young.client_id}/handover", {},
                  form_url="/staff/clients").status_code == 403
    auth.logout("staff")

    # A colleague who met Lara confirms it (here with break-glass, in their session).
    page = early.get(f"/staff/clients/{young.client_id}").get_data(as_text=True)
    assert "Ich habe Lara Demir persönlich getroffen und geprüft" in page
    done = submit(early, f"/staff/clients/{young.client_id}/handover", {},
                  form_url=f"/staff/clients/{young.client_id}")
    assert "Bestätigt." in early.get(done.headers["Location"]).get_data(as_text=True)
    assert "persönlich bestätigt am" in early.get(
        f"/staff/clients/{young.client_id}").get_data(as_text=True)
    assert security_events(app, "invitation.confirmed") == [
        ("refused", pseudonym_of(app, sender)), ("ok", pseudonym_of(app, colleague))]

    # Now Lara reads what is hers and decides what her parent sees.
    view = lara.get("/my-data/access").get_data(as_text=True)
    assert "Beratung ohne Eltern" in view
    assert "hat persönlich bestätigt, dass das eigene Konto der jungen Person gehört" in view
    submit(lara, f"/household/guardians/{young.guardianship_id}", {"access": "none"})
    with app.app_context():
        assert db.session.get(Guardianship, young.guardianship_id).access == "none"


def staff_id_of(app, person):
    from tests.conftest import staff_member_id

    return staff_member_id(app, person)
