"""Invitations to a young person's own account cannot hand staff (or a guardian) a portal
view of the young person: staff need full access to the file and a reason, the address is
never a staff account's, guardians hear of it, and until a second staff member has met the
young person in person the account sees nothing confidential and cannot cut a guardian off.
"""

from datetime import timedelta

import pytest
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

    # It sees nothing of the young person, and the guardian cannot be cut off.
    assert taken.get("/my-data/access").headers["Location"] == "/account/handover"
    refused = submit(taken, f"/household/guardians/{young.guardianship_id}", {"access": "none"},
                     form_url="/account/security")
    assert refused.headers["Location"] == "/account/handover"
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

    # The parent and (once a colleague met her) the young person read who sent it and why.
    auth.login(young.parent)
    log = client.get("/my-data/access").get_data(as_text=True)
    assert "hat eine Einladung zu einem eigenen Konto geschickt" in log
    assert REASON in log
    auth.logout()
    lara = claim_invitation(app, outbox, "lara.demir@example.org")
    confirm_in_person(app, auth, make_staff(role="caseworker"), young.client_id)
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
    assert lara.get("/my-data/access").headers["Location"] == "/account/handover"

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


STAFF_ADDRESS = ("Das ist die Adresse eines Mitarbeitenden-Kontos. Einladungen gehen nur an die "
                 "eigene Adresse der jungen Person.")


@pytest.mark.parametrize("address", ["kw.weber+lara@example.org", "KW.Weber+@Example.org",
                                     "kw.weber+a+b@example.org"])
def test_a_caseworkers_own_mailbox_with_a_sub_address_is_a_staff_address(
        app, client, auth, make_young_person, make_staff, outbox, address):
    young = make_young_person()
    worker = make_staff(role="caseworker", email="kw.weber@example.org")
    auth.login(worker, area="staff")
    # Not assigned: one break-glass for this session is the full file.
    submit(client, f"/staff/clients/{young.client_id}/break-glass",
           {"reason": "Rückruf der Schule, dringend"})
    refused = invite(client, young.client_id, address)
    assert refused.status_code == 400
    assert STAFF_ADDRESS in refused.get_data(as_text=True)
    assert own_account(app, young.client_id) is None
    assert outbox.to(address) == []
    with app.app_context():
        assert db.session.get(Client, young.client_id).own_account_invited_at is None
    assert security_events(app, "invitation.sent") == [("refused", pseudonym_of(app, worker))]


def a_pending_account(app, client, auth, make_young_person, make_bookable, make_staff, outbox):
    """A young person with a confirmed appointment and two notes (one confidential from
    guardians); an assigned caseworker invited them to an address the caseworker controls
    and claimed it. Returns (young person, caseworker, the claiming browser)."""
    bookable = make_bookable()
    worker = bookable.staff
    young = make_young_person(note_by=staff_id_of(app, worker))
    assign_caseworker(app, young.client_id, worker)
    with app.app_context():
        from shared.models import Note

        lara = db.session.get(Client, young.client_id)
        note = Note(client_id=lara.id, data_key=lara.data_key, visible_to_client=True,
                    confidential_from_guardians=False)
        note.body = "Termin beim Jugendamt am Dienstag"
        db.session.add(note)
        add_booking(lara, bookable, end=utcnow() + timedelta(days=3))
        db.session.commit()
    auth.login(worker, area="staff")
    assert invite(client, young.client_id, "privat.fallarbeit@example.org").status_code == 302
    auth.logout("staff")
    return young, worker, claim_invitation(app, outbox, "privat.fallarbeit@example.org")


NOT_YET = "sobald unser Team bestätigt hat, dass dieses Konto wirklich Ihnen gehört"
CLOSED_UNTIL_HANDOVER = ["/account", "/my-data", "/my-data/access", "/my-data/export",
                         "/my-data/corrections", "/my-data/delete", "/bookings",
                         "/bookings/new", "/consents", "/household", "/", "/home"]


def test_a_pending_account_sees_nothing_of_the_young_person_and_acts_in_nothing(
        app, client, auth, make_young_person, make_bookable, make_staff, outbox):
    young, worker, taken = a_pending_account(app, client, auth, make_young_person,
                                             make_bookable, make_staff, outbox)
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        booking_id, service_id = booking.id, booking.service_id

    # Every page about the young person leads to one notice: what waits for whom, and the
    # team's number. Nothing of the young person is on it.
    for path in CLOSED_UNTIL_HANDOVER:
        response = taken.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == "/account/handover", path
    notice = taken.get("/account/handover").get_data(as_text=True)
    assert NOT_YET in notice
    assert 'href="tel:+49301234567"><bdi dir="ltr">+49 30 1234567</bdi></a>' in notice
    for secret in ("Lara", "Jugendamt", "Beratung ohne Eltern", "Elternberatung"):
        assert secret not in notice
    # Only how it signs in is its own.
    assert taken.get("/account/security").status_code == 200
    # It cannot act in the young person's name either.
    submit(taken, f"/bookings/{booking_id}/cancel", {}, form_url="/account/security")
    taken.post("/my-data/export", data={})
    with app.app_context():
        from shared.services import bookings, consents, corrections, export, transparency

        assert db.session.get(Booking, booking_id).status == "confirmed"
        account = db.session.get(Client, young.client_id).account
        assert transparency.subjects(account) == []
        assert consents.overview(account) == []
        assert bookings.bookings_for(account) == []
        assert export.build_data(account)["subjects"] == []
        with pytest.raises(bookings.NotAllowed):
            bookings.request_booking(account=account, client_id=young.client_id,
                                     service_id=service_id, slot_token="x", note=None)
        with pytest.raises(corrections.NotAllowed):
            corrections.request_correction(account=account, client_id=young.client_id,
                                           about="other", message="Bitte korrigieren")
        assert bookings.recipients(db.session.get(Booking, booking_id)) == []

    # The parent keeps seeing what they saw.
    auth.login(young.parent)
    assert "Termin beim Jugendamt am Dienstag" in client.get("/my-data/access").get_data(
        as_text=True)
    assert client.get("/bookings").status_code == 200
    auth.logout()

    # Positive control: once a colleague met Lara in person, the account is hers.
    confirm_in_person(app, auth, make_staff(role="caseworker"), young.client_id)
    view = taken.get("/my-data/access").get_data(as_text=True)
    assert "Termin beim Jugendamt am Dienstag" in view
    assert "Beratung ohne Eltern" in view
    assert taken.get("/account/handover").headers["Location"] == "/home"


def test_staff_with_the_full_file_withdraw_a_pending_invitation(
        app, client, auth, make_young_person, make_bookable, make_staff, outbox):
    from shared.models import (
        AccessEvent,
        AccountToken,
        DataKey,
        RecoveryCode,
        UserSession,
    )

    young, worker, taken = a_pending_account(app, client, auth, make_young_person,
                                             make_bookable, make_staff, outbox)
    with app.app_context():
        lara = db.session.get(Client, young.client_id)
        account_id, key_id = lara.account_id, lara.data_key_id
        db.session.add(RecoveryCode(account_id=account_id, code_hash=bytes(32)))
        db.session.commit()
    file_url = f"/staff/clients/{young.client_id}"

    # Reception and admins do not hold the full file.
    for role in ("reception", "admin"):
        auth.login(make_staff(role=role), area="staff")
        assert submit(client, f"{file_url}/invitation/withdraw", {},
                      form_url="/staff/clients").status_code == 403
        auth.logout("staff")
    assert own_account(app, young.client_id) is not None

    auth.login(worker, area="staff")
    page = client.get(file_url).get_data(as_text=True)
    assert "Einladung zurückziehen" in page
    done = submit(client, f"{file_url}/invitation/withdraw", {}, form_url=file_url)
    assert done.headers["Location"] == f"{file_url}#own-account"
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Die Einladung ist zurückgezogen. Eine neue kann geschickt werden." in page
    assert "Warum schicken Sie diese Einladung?" in page  # invitable again

    with app.app_context():
        lara = db.session.get(Client, young.client_id)
        assert lara.full_name == "Lara Demir"
        assert lara.account_id is None
        assert lara.own_account_invited_at is None
        assert db.session.get(DataKey, key_id) is not None
        assert db.session.get(Account, account_id) is None
        for model in (UserSession, AccountToken, RecoveryCode):
            assert db.session.scalar(select(model).where(model.account_id == account_id)) \
                is None, model
        assert db.session.scalar(select(AccessEvent).where(
            AccessEvent.action == "invitation-withdrawn")).client_id == young.client_id
    assert security_events(app, "invitation.withdrawn") == [("ok", pseudonym_of(app, worker))]
    told = outbox.last_to(young.parent.email)
    assert told["Subject"].strip() == "Eine Einladung zu einem eigenen Konto wurde zurückgezogen"
    assert "Lara" not in told.get_content()
    # The browser that held the account is signed out.
    assert taken.get("/account/security").headers["Location"].startswith("/login")

    # Nothing left to withdraw.
    again = submit(client, f"{file_url}/invitation/withdraw", {}, form_url=file_url)
    assert "Es gibt keine offene Einladung, die zurückgezogen werden kann." in client.get(
        again.headers["Location"]).get_data(as_text=True)


def test_a_confirmed_account_is_no_invitation_to_withdraw(
        app, client, auth, make_young_person, make_bookable, make_staff, outbox):
    young, worker, taken = a_pending_account(app, client, auth, make_young_person,
                                             make_bookable, make_staff, outbox)
    confirm_in_person(app, auth, make_staff(role="caseworker"), young.client_id)
    auth.login(worker, area="staff")
    file_url = f"/staff/clients/{young.client_id}"
    assert "Einladung zurückziehen" not in client.get(file_url).get_data(as_text=True)
    refused = submit(client, f"{file_url}/invitation/withdraw", {}, form_url=file_url)
    assert "Es gibt keine offene Einladung" in client.get(
        refused.headers["Location"]).get_data(as_text=True)
    assert own_account(app, young.client_id) is not None
    assert taken.get("/account/security").status_code == 200


def test_every_invitation_confirmation_and_withdrawal_is_logged_and_told_to_the_guardians(
        app, client, auth, make_young_person, make_client, make_staff, outbox):
    """Insiders working together (an admin makes two caseworker accounts: one invites, the
    other confirms) cannot be stopped by code; it must at least be seen."""
    from shared.models import AccessEvent, Guardianship

    young = make_young_person()
    second = make_client(full_name="Jan Demir")
    with app.app_context():
        db.session.add(Guardianship(guardian_account_id=second.account_id,
                                    dependant_id=young.client_id, access="full"))
        db.session.commit()

    def told(subject):
        return [person.email for person in (young.parent, second)
                if any(m["Subject"].strip() == subject for m in outbox.to(person.email))]

    # A guardian invites: both guardians hear of it, and it is in the access log.
    auth.login(young.parent)
    submit(client, f"/household/{young.client_id}/invite", {"email": "lara@example.org"},
           form_url="/household")
    subject = "Einladung zu einem eigenen Konto in Ihrem Haushalt"
    assert told(subject) == [young.parent.email, second.email]
    assert "l…@example.org" in outbox.last_to(second.email).get_content()
    log = client.get("/my-data/access").get_data(as_text=True)
    # who (isolated for either direction), then the day
    assert "<bdi>Ein Elternteil oder eine sorgeberechtigte Person</bdi> · " in log
    assert ": hat eine Einladung zu einem eigenen Konto geschickt (Haushaltsdaten)" in log

    # A guardian withdraws it: the same.
    submit(client, f"/household/{young.client_id}/invitation/withdraw", {},
           form_url=f"/household/{young.client_id}/invitation/withdraw")
    assert told("Eine Einladung zu einem eigenen Konto wurde zurückgezogen") == [
        young.parent.email, second.email]
    assert ": hat eine Einladung zu einem eigenen Konto zurückgezogen (Haushaltsdaten)" in \
        client.get("/my-data/access").get_data(as_text=True)
    submit(client, f"/household/{young.client_id}/invite", {"email": "lara@example.org"},
           form_url="/household")
    auth.logout()

    # Staff confirm: both hear of it.
    claim_invitation(app, outbox, "lara@example.org")
    confirm_in_person(app, auth, make_staff(role="caseworker"), young.client_id)
    assert told("Eine junge Person aus Ihrem Haushalt hat jetzt ihr eigenes Konto") == [
        young.parent.email, second.email]
    with app.app_context():
        actions = [e.action for e in db.session.scalars(
            select(AccessEvent).where(AccessEvent.client_id == young.client_id)
            .order_by(AccessEvent.seq))]
    assert actions.count("invitation") == 2
    assert "invitation-withdrawn" in actions
    assert "handover-confirmed" in actions
