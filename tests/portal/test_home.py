"""After signing in a client lands on a start page that answers "what do I need to do now?":
the next appointment with the team's number and the calendar file, requests waiting for
staff, proposed times to answer, consents staff asked for, recent staff visits, and the way
to everything else. In words and local time, read in a constant number of statements."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import Client, ConsentRequest, DataKey, Guardianship
from shared.models.household import ACCESS_BOOKINGS, ACCESS_FULL
from shared.services import consents
from tests.conftest import (
    Auth,
    add_booking,
    assign_caseworker,
    get_counting_statements,
    submit,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

# Tuesday 5 March 2030, 15:40 UTC: 16:40 in Berlin.
NEXT_END = datetime(2030, 3, 5, 16, 25, tzinfo=UTC)
NEXT_SHOWN = "Dienstag, 5. März 2030, 16:40"


def visible_text(html: str) -> str:
    """What a reader sees of ``main``: without tags, attributes, scripts or hidden inputs."""
    main = html.split('<main', 1)[1].split('</main>', 1)[0]
    main = re.sub(r"</?bdi\b[^>]*>", "", main)  # names isolated for either direction
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main.split(">", 1)[1]))


def own_client(app, person) -> Client:
    return db.session.scalar(select(Client).where(Client.account_id == person.account_id))


def add_dependant(app, guardian, full_name: str, access: str = ACCESS_FULL) -> Client:
    """A child in the guardian's household, written directly (inside an app context)."""
    from shared.services.accounts import set_client_name

    data_key = DataKey.generate()
    child = Client(data_key=data_key)
    db.session.add_all([data_key, child])
    set_client_name(client=child, full_name=full_name)
    db.session.flush()
    db.session.add(Guardianship(guardian_account_id=guardian.account_id,
                                dependant_id=child.id, access=access))
    return child


def publish(key: str, de: str, en: str, *, guardian_signs: bool = True):
    saved = consents.save_template(
        key=key, texts={"de": {"title": de, "text": "…"}, "en": {"title": en, "text": "…"}},
        purpose=de, legal_basis="Art. 6 Abs. 1 lit. a DSGVO", audience="Team",
        guardian_signs=guardian_signs)
    consents.publish(saved.id)
    return saved


@pytest.fixture
def household(app, make_client, make_bookable):
    """Mia Demir, her son Emil (full access) and her daughter Lara (appointments only)."""
    mia = make_client(full_name="Mia Demir")
    counselling = make_bookable("Elternberatung")
    with app.app_context():
        me = own_client(app, mia)
        emil = add_dependant(app, mia, "Emil Demir")
        lara = add_dependant(app, mia, "Lara Demir", access=ACCESS_BOOKINGS)
        db.session.commit()
        ids = {"me": me.id, "emil": emil.id, "lara": lara.id}
    return mia, counselling, ids


def test_sign_in_lands_on_the_start_page_unless_a_page_was_asked_for(client, auth,
                                                                     make_client):
    person = make_client(full_name="Mia Demir")
    assert auth.login(person).headers["Location"] == "/home"
    assert client.get("/").headers["Location"] == "/home"
    page = client.get("/home").get_data(as_text=True)
    assert "Übersicht" in page
    auth.logout()

    asked = submit(client, "/login?next=/consents",
                   {"email": person.email, "password": person.password}, form_url="/login")
    assert asked.headers["Location"] == "/consents"  # the return address wins
    auth.logout()
    assert "Willkommen bei Einblick" in client.get("/").get_data(as_text=True)
    assert client.get("/home").headers["Location"].startswith("/login")


def test_sign_in_with_a_code_lands_on_the_start_page(client, auth, make_client):
    person = make_client(full_name="Mia Demir", totp=True)
    assert auth.login(person).headers["Location"] == "/home"


def test_each_part_shows_what_is_stored_in_words(app, client, auth, household, make_staff):
    mia, counselling, ids = household
    now = datetime.now(UTC)
    with app.app_context():
        me, emil, lara = (db.session.get(Client, ids[k]) for k in ("me", "emil", "lara"))
        add_booking(me, counselling, end=NEXT_END, minutes=45)  # the next appointment
        add_booking(me, counselling, end=NEXT_END + timedelta(days=7), minutes=45)
        add_booking(emil, counselling, end=NEXT_END - timedelta(days=10), status="cancelled")
        waiting = add_booking(lara, counselling, end=NEXT_END + timedelta(days=2),
                              status="requested", minutes=45)
        waiting.expires_at = now + timedelta(days=1)
        ran_out = add_booking(emil, counselling, end=NEXT_END + timedelta(days=3),
                              status="requested")
        ran_out.expires_at = now - timedelta(minutes=1)  # shown as expired, not waiting
        secret = add_booking(lara, counselling, end=NEXT_END - timedelta(days=1))
        secret.confidential_from_guardians = True  # Lara's own counselling
        proposal = add_booking(emil, counselling, end=NEXT_END + timedelta(days=1),
                               status="proposed", minutes=45)
        proposal.original_start_at = datetime(2030, 3, 6, 17, 40, tzinfo=UTC)
        proposal.expires_at = now + timedelta(days=1)
        proposal.staff_message = "Der Raum ist an dem Tag belegt."
        add_booking(lara, counselling, end=NEXT_END + timedelta(days=5), status="declined")
        photos = publish("fotos", "Fotos in der Kita", "Photos at daycare")
        publish("selbst", "Schweigepflichtentbindung", "Release from confidentiality",
                guardian_signs=False)
        outing = publish("ausflug", "Ausflug ins Museum", "Museum outing")
        member = counselling.staff_member_id
        db.session.add_all([
            ConsentRequest(template_key="fotos", subject_id=emil.id, requested_by_id=member),
            ConsentRequest(template_key="fotos", subject_id=emil.id, requested_by_id=member),
            ConsentRequest(template_key="selbst", subject_id=me.id, requested_by_id=member),
            # Not Mia's to give: a child's own consent, one for a child she only books for,
            # and one already given.
            ConsentRequest(template_key="selbst", subject_id=emil.id, requested_by_id=member),
            ConsentRequest(template_key="ausflug", subject_id=lara.id, requested_by_id=member),
            ConsentRequest(template_key="ausflug", subject_id=me.id, requested_by_id=member,
                           fulfilled_at=now),
        ])
        db.session.commit()
        photos_id, outing_id, proposal_id = photos.id, outing.id, proposal.id
    auth.login(mia)
    html = client.get("/home").get_data(as_text=True)
    text = visible_text(html)

    next_part = text.split("Nächster Termin", 1)[1].split("Warten auf unsere Antwort")[0]
    assert NEXT_SHOWN in next_part
    assert "Elternberatung" in next_part
    assert "Ort: Raum 2" in next_part
    assert "Anrufen: +49 30 1234567" in next_part
    assert 'href="tel:+49301234567"' in html
    ics = re.search(r'href="(/bookings/[^"]+/appointment\.ics)"', html).group(1)
    assert client.get(ics).mimetype == "text/calendar"
    assert "1 weiterer Termin danach" in next_part

    waiting_part = text.split("Warten auf unsere Antwort", 1)[1].split("Wer von uns")[0]
    assert "Donnerstag, 7. März 2030, 16:40" in waiting_part
    assert "für Lara Demir" in waiting_part
    assert "Freitag, 8. März 2030" not in text  # Emil's request ran out
    assert "Montag, 4. März 2030" not in text  # Lara's confidential appointment
    assert "Sonntag, 10. März 2030" not in text  # declined

    answer_part = text.split("Bitte antworten", 1)[1].split("Einwilligungen")[0]
    assert "Neue Zeit vorgeschlagen: Mittwoch, 6. März 2030, 16:40" in answer_part
    assert "Statt Mittwoch, 6. März 2030, 18:40." in answer_part
    assert "für Emil Demir" in answer_part
    assert "Der Raum ist an dem Tag belegt." in answer_part
    assert f'action="/bookings/{proposal_id}/proposal/accept"' in html

    asked_part = text.split("Einwilligungen, um die wir Sie bitten", 1)[1].split("Nächster")[0]
    assert "Fotos in der Kita · für Emil Demir" in asked_part
    assert asked_part.count("Fotos in der Kita") == 1  # asked twice, one task
    assert "Schweigepflichtentbindung" in asked_part
    assert "für Mia" not in asked_part
    assert asked_part.count("Schweigepflichtentbindung") == 1  # not Emil's own
    assert "Ausflug ins Museum" not in asked_part
    assert f'href="/consents/{photos_id}/{ids["emil"]}"' in html
    assert str(outing_id) not in html

    for link in ("/bookings", "/consents", "/my-data", "/household", "/account"):
        assert f'href="{link}"' in html.split('id="more-heading"', 1)[1]
    assert not UUID.search(text)
    assert not ISO_TIME.search(text)
    assert "UTC" not in text

    # Accepting from the start page confirms the proposed time.
    accepted = submit(client, f"/bookings/{proposal_id}/proposal/accept", {}, form_url="/home")
    assert accepted.status_code == 302
    with app.app_context():
        from shared.models import Booking

        assert db.session.get(Booking, proposal_id).status == "confirmed"


def test_the_last_staff_visits_are_named_in_words(app, client, auth, household, make_staff,
                                                 totp_clock):
    mia, _counselling, ids = household
    worker = make_staff(role="caseworker")
    assign_caseworker(app, ids["me"], worker)
    assign_caseworker(app, ids["emil"], worker)
    desk = app.test_client()
    Auth(desk, totp_clock).login(worker, area="staff")
    assert desk.get(f"/staff/clients/{ids['me']}").status_code == 200
    assert desk.get(f"/staff/clients/{ids['emil']}").status_code == 200

    auth.login(mia)
    text = visible_text(client.get("/home").get_data(as_text=True))
    visits = text.split("Wer von uns zuletzt in Ihre Akte geschaut hat", 1)[1]
    visits = visits.split("Alles Weitere")[0]
    # Newest first: Emil's file (which names his mother), and before it Mia's own.
    assert visits.count("T. Tester, Fachkraft") == 3
    assert visits.count("hat die Akte geöffnet") == 2
    assert "hat den Namen in der Akte eines Haushaltsmitglieds gesehen" in visits
    assert visits.count("Daten von Emil Demir") == 1  # the son's file, named
    assert "Bisher hat niemand" not in visits
    assert not UUID.search(text)
    assert not ISO_TIME.search(text)


def test_english_and_nothing_to_do(app, client, auth, make_client):
    person = make_client(full_name="Jonas Weber")
    auth.login(person)
    submit(client, "/language/en", {"next": "/home"}, form_url="/home")
    text = visible_text(client.get("/home").get_data(as_text=True))
    assert "Overview" in text
    assert "No appointment is coming up." in text
    assert "Book an appointment" in text
    assert "Please answer" not in text
    assert "Waiting for our answer" not in text


def test_the_start_page_reads_in_constant_statements(app, client, auth, household,
                                                     make_staff, totp_clock):
    mia, counselling, ids = household
    worker = make_staff(role="caseworker")
    desk = app.test_client()
    Auth(desk, totp_clock).login(worker, area="staff")
    auth.login(mia)
    made = []

    def add(rows: int) -> None:
        """Per row a child, and for Mia, Emil and the child an appointment, a request and
        a proposal each, and a consent asked of Mia and of Emil."""
        with app.app_context():
            for _ in range(rows):
                n = len(made)
                made.append(add_dependant(app, mia, f"Kind {n}").id)
                for k, who in enumerate((ids["me"], ids["emil"], made[-1])):
                    target = db.session.get(Client, who)
                    hour = NEXT_END + timedelta(hours=n * 10 + k * 3)
                    add_booking(target, counselling, end=hour)
                    for offset, status in ((1, "requested"), (2, "proposed")):
                        held = add_booking(target, counselling, status=status,
                                           end=hour + timedelta(hours=offset))
                        held.expires_at = NEXT_END
                publish(f"vorlage{n}", f"Vorlage {n}", f"Template {n}")
                db.session.add_all([
                    ConsentRequest(template_key=f"vorlage{n}", subject_id=ids["me"]),
                    ConsentRequest(template_key=f"vorlage{n}", subject_id=ids["emil"]),
                ])
            db.session.commit()
        for child in made[-rows:]:  # a staff visit to each new child's file
            assign_caseworker(app, child, worker)
            assert desk.get(f"/staff/clients/{child}").status_code == 200

    add(1)
    small, few = get_counting_statements(app, client, "/home")
    add(5)
    large, many = get_counting_statements(app, client, "/home")
    assert small.status_code == large.status_code == 200
    text = visible_text(large.get_data(as_text=True))
    assert text.count("Vorlage") == 12
    assert text.count("für Kind 5") == 2  # the newest child's request and proposal
    assert text.count("T. Tester, Fachkraft") == 3  # the last three visits
    assert many == few, (few, many)
