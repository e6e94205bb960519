"""Services and consent templates in every language: staff write them per language (German
required), clients see their language or German with a visible note and lang="de", and a
consent records the language of the text signed (old documents still verify)."""

import hashlib
import io
import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from icalendar import Calendar
from sqlalchemy import select

from shared.extensions import db
from shared.models import Booking, Client, Consent, ConsentTemplate, Service
from shared.services import consents
from tests.conftest import submit, tomorrow_slot_token
from tests.portal.test_bookings import book

SERVICE_TRANSLATIONS = {
    "tr": {"name": "Ebeveyn danışmanlığı", "location": "Danışma merkezi, 2 numaralı oda"},
    "ar": {"name": "استشارة للوالدين", "description": "استشارة لآباء وأمهات الأطفال."},
    "uk": {"name": "Консультація для батьків"},
}
CONSENT_TEXTS = {
    "de": {"title": "Fotos in der Kita", "text": "Ich willige ein, dass Fotos gemacht werden."},
    "tr": {"title": "Kreşte fotoğraflar", "text": "Fotoğraf çekilmesine onay veriyorum.",
           "purpose": "Kreş için fotoğraflar"},
    "ar": {"title": "الصور في الحضانة", "text": "أوافق على التقاط الصور.",
           "purpose": "صور للحضانة", "legal_basis": "المادة 6 من اللائحة العامة",
           "audience": "فريق الحضانة"},
    "uk": {"title": "Фото в садочку", "text": "Я погоджуюся на фотографування.",
           "purpose": "Фото для садочка"},
}


def speak(client, locale: str) -> None:
    """The language switch's choice (remembered in a cookie)."""
    client.set_cookie("einblick_lang", locale)


@pytest.fixture
def translated_service(app, make_bookable):
    bookable = make_bookable(name="Elternberatung")
    with app.app_context():
        service = db.session.get(Service, bookable.service_id)
        service.description = "Beratung für Eltern."
        service.translations = SERVICE_TRANSLATIONS
        db.session.commit()
    return bookable


@pytest.fixture
def translated_template(app):
    with app.app_context():
        saved = consents.save_template(key="fotos", texts=CONSENT_TEXTS, purpose="Fotos",
                                       legal_basis="Art. 6 Abs. 1 lit. a DSGVO",
                                       audience="Team der Kita", guardian_signs=True)
        consents.publish(saved.id)
        return saved.id


def own_client_id(app, person) -> uuid.UUID:
    with app.app_context():
        return db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))


# -- staff write every language ------------------------------------------------------------------
def test_staff_save_a_service_in_several_languages(app, client, auth, make_staff):
    auth.login(make_staff(role="admin"), area="staff")
    page = client.get("/staff/services/new").get_data(as_text=True)
    # German open, each other language behind its own <details>, typed in its direction.
    assert '<legend class="kern-label"><span lang="de">Deutsch</span>' in page
    for locale, name in (("en", "English"), ("tr", "Türkçe"), ("ar", "العربية"),
                         ("uk", "Українська")):
        assert f'data-locale="{locale}"' in page
        assert f'<legend class="kern-label" lang="{locale}">{name}</legend>' in page
    assert re.search(r'<input[^>]*dir="rtl"[^>]*id="name_ar"|<input[^>]*id="name_ar"[^>]*'
                     r'dir="rtl"', page)
    assert re.search(r'<input[^>]*id="name_tr"[^>]*lang="tr"|<input[^>]*lang="tr"[^>]*'
                     r'id="name_tr"', page)
    too_long = submit(client, "/staff/services/new", {
        "name": "Elternberatung", "duration_minutes": "45", "active": "y",
        "name_tr": "x" * 121})
    assert too_long.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Service)) is None
    response = submit(client, "/staff/services/new", {
        "name": "Elternberatung", "description": "Beratung für Eltern.",
        "duration_minutes": "45", "location": "Raum 2", "active": "y",
        "name_tr": " Ebeveyn danışmanlığı ", "location_tr": "Oda 2",
        "name_ar": "استشارة للوالدين", "description_uk": "Консультація для батьків."})
    assert response.status_code == 302
    with app.app_context():
        service = db.session.scalar(select(Service))
        assert (service.name, service.location) == ("Elternberatung", "Raum 2")
        assert service.translations == {
            "tr": {"name": "Ebeveyn danışmanlığı", "location": "Oda 2"},
            "ar": {"name": "استشارة للوالدين"},
            "uk": {"description": "Консультація для батьків."}}
        service_id = service.id
    edit = client.get(f"/staff/services/{service_id}").get_data(as_text=True)
    assert 'value="Ebeveyn danışmanlığı"' in edit
    # The summaries tell which languages are filled in (German UI).
    summaries = dict(re.findall(r'<details[^>]*data-locale="(\w+)".*?data-filled="(\w+)"',
                                edit, re.S))
    assert summaries == {"en": "no", "tr": "yes", "ar": "yes", "uk": "yes"}


def test_staff_save_a_consent_template_in_several_languages(app, client, auth, make_staff):
    auth.login(make_staff(role="admin"), area="staff")
    german = {"key": "fotos", "title_de": "Fotos", "text_de": "Ich willige ein …",
              "purpose": "Fotos", "legal_basis": "Art. 6", "audience": "Team",
              "guardian_signs": "y"}
    half = submit(client, "/staff/consents/new", {**german, "purpose_ar": "صور"})
    assert half.status_code == 200  # a language is its title and text: none without them
    assert "Titel und Text in dieser Sprache" in half.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(ConsentTemplate)) is None
    response = submit(client, "/staff/consents/new", {
        **german, "title_tr": "Fotoğraflar", "text_tr": "Onay veriyorum …",
        "purpose_tr": "Fotoğraflar", "legal_basis_tr": "Madde 6",
        "title_uk": "Фото", "text_uk": "Я погоджуюся …", "audience_uk": "Команда"})
    assert response.status_code == 302
    with app.app_context():
        template = db.session.scalar(select(ConsentTemplate))
        assert template.texts == {
            "de": {"title": "Fotos", "text": "Ich willige ein …"},
            "tr": {"title": "Fotoğraflar", "text": "Onay veriyorum …",
                   "purpose": "Fotoğraflar", "legal_basis": "Madde 6"},
            "uk": {"title": "Фото", "text": "Я погоджуюся …", "audience": "Команда"}}
        assert (template.purpose, template.legal_basis, template.audience) == (
            "Fotos", "Art. 6", "Team")
        template_id = template.id
    edit = client.get(f"/staff/consents/{template_id}").get_data(as_text=True)
    assert 'value="Madde 6"' in edit
    assert re.search(r'<textarea[^>]*dir="rtl"[^>]*id="text_ar"|<textarea[^>]*id="text_ar"'
                     r'[^>]*dir="rtl"', edit)


def test_only_admins_write_services_and_templates_in_any_language(app, client, auth,
                                                                  make_staff):
    auth.login(make_staff(role="caseworker"), area="staff")
    for url, data in (("/staff/services/new", {"name": "X", "name_tr": "Y",
                                               "duration_minutes": "30"}),
                      ("/staff/consents/new", {"key": "x", "title_de": "X", "text_de": "X",
                                               "title_tr": "Y", "text_tr": "Y",
                                               "purpose": "X", "legal_basis": "X"})):
        assert client.get(url).status_code == 403
        assert client.post(url, data=data).status_code in (400, 403)
    with app.app_context():
        assert db.session.scalar(select(Service)) is None
        assert db.session.scalar(select(ConsentTemplate)) is None


# -- clients read their language -----------------------------------------------------------------
@pytest.mark.parametrize("locale", ["tr", "ar", "uk"])
def test_a_client_sees_the_service_in_their_language(app, client, auth, make_client,
                                                     translated_service, locale):
    auth.login(make_client())
    speak(client, locale)
    name = SERVICE_TRANSLATIONS[locale]["name"]
    services = client.get("/bookings/new").get_data(as_text=True)
    assert name in services
    assert "Elternberatung" not in services
    slots = client.get(f"/bookings/new/{translated_service.service_id}").get_data(
        as_text=True)
    assert f'<h1 class="kern-heading-large">{name}</h1>' in slots
    slot = tomorrow_slot_token(app, translated_service)
    confirm = client.get(f"/bookings/new/{translated_service.service_id}/{slot}")
    assert name in confirm.get_data(as_text=True)


def test_a_missing_translation_shows_german_with_a_note(app, client, auth, make_client,
                                                        translated_service):
    auth.login(make_client())
    speak(client, "uk")  # Ukrainian has the name only: description and place fall back
    services = client.get("/bookings/new").get_data(as_text=True)
    assert "Консультація для батьків" in services
    assert re.search(r'<p class="kern-body" lang="de">Beratung für Eltern\. '
                     r'<small class="content-fallback" lang="uk">\(німецькою\)</small>',
                     services)
    assert '<span lang="de" dir="ltr">Raum 2</span> <small class="content-fallback">' \
           "(німецькою)</small>" in services
    speak(client, "tr")  # Turkish has the place: no note for it
    services = client.get("/bookings/new").get_data(as_text=True)
    assert "Danışma merkezi, 2 numaralı oda" in services
    assert '<span lang="de" dir="ltr">Raum 2</span>' not in services


def test_a_client_reads_and_signs_the_consent_in_ukrainian(app, client, auth, make_client,
                                                           translated_template, totp_clock,
                                                           runner):
    person = make_client(totp=True, full_name="Olena Shevchenko")
    auth.login(person)
    speak(client, "uk")
    own = own_client_id(app, person)
    page = client.get(f"/consents/{translated_template}/{own}").get_data(as_text=True)
    assert '<h1 class="kern-heading-large" lang="uk" dir="ltr">Фото в садочку</h1>' in page
    assert 'data-language="uk"' in page
    assert "Я погоджуюся на фотографування." in page
    assert "Фото для садочка" in page  # purpose in Ukrainian
    # legal basis and audience were not translated: German, marked, with lang="de"
    assert '<span lang="de" dir="ltr">Team der Kita</span> <small class="content-fallback">' \
           "(німецькою)</small>" in page
    assert "data-fallback" not in page  # the binding text itself is Ukrainian
    overview = client.get("/consents").get_data(as_text=True)
    assert "Фото в садочку" in overview
    totp_clock.advance()
    signed = submit(client, f"/consents/{translated_template}/{own}",
                    {"code": totp_clock.code(person.totp_secret),
                     "typed_name": "Olena Shevchenko"})
    assert signed.status_code == 302
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        document = json.loads(consent.document)
        assert consent.locale == "uk"
        assert document["language"] == "uk"
        text = {"title": "Фото в садочку", "text": "Я погоджуюся на фотографування."}
        assert document["text_sha256"] == hashlib.sha256(json.dumps(
            text, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        assert consent.evidence["text"] == text  # exactly the text signed, as shown
        assert consents.verify_stored(consent.id)[0]
        consent_id, receipt = consent.id, consent.receipt
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code == 0
    page = client.get("/verify").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    verified = client.post("/verify", data={"receipt": (io.BytesIO(receipt), "r.pdf"),
                                            "csrf_token": token},
                           content_type="multipart/form-data").get_data(as_text=True)
    assert 'data-check="language"><span lang="uk">Українська</span>' in verified


def test_a_consent_missing_in_the_language_is_shown_and_signed_in_german(
        app, client, auth, make_client, template, totp_clock):
    """The photo consent exists in German and English only: a Turkish reader sees German,
    told so, with lang="de", and the signed document records "de"."""
    person = make_client(totp=True, full_name="Ayse Yilmaz")
    auth.login(person)
    speak(client, "tr")
    own = own_client_id(app, person)
    page = client.get(f"/consents/{template}/{own}").get_data(as_text=True)
    assert '<h1 class="kern-heading-large" lang="de" dir="ltr">Fotos in der Kita</h1>' in page
    assert "Türkçe dilinde yok – Almanca gösteriliyor." in page
    assert 'data-language="de"' in page
    totp_clock.advance()
    submit(client, f"/consents/{template}/{own}",
           {"code": totp_clock.code(person.totp_secret), "typed_name": "Ayse Yilmaz"})
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.locale == "de"
        assert json.loads(consent.document)["language"] == "de"
        assert consents.verify_stored(consent.id)[0]


def test_an_old_document_still_verifies_byte_for_byte(app, template):
    """Documents are made as before the languages came: a template saved with title and
    text only gives the same bytes, and a consent stored the old way (its evidence's text
    the whole language entry) still verifies after the template is read the new way."""
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    subject, signer = uuid.uuid4(), uuid.uuid4()
    english = {"title": "Photos at daycare", "text": "I consent to photos …"}
    previous = json.dumps({
        "template": "fotos", "version": 1, "language": "en",
        "text_sha256": hashlib.sha256(json.dumps(english, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False).encode()).hexdigest(),
        "subject": str(subject), "signer": str(signer), "time": at.isoformat()},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with app.app_context():
        row = db.session.get(ConsentTemplate, template)
        assert consents.canonical_document(template=row, locale="en", subject_id=subject,
                                           signer_id=signer, at=at) == previous


def test_a_consent_signed_before_the_languages_came_still_verifies(
        app, client, auth, make_client, template, totp_clock):
    from tests.conftest import sign_with_code_and_name

    speak(client, "en")
    _own, consent_id = sign_with_code_and_name(app, client, auth, make_client, template,
                                               totp_clock)
    with app.app_context():
        consent = db.session.get(Consent, consent_id)
        assert json.loads(consent.document)["language"] == "en"
        # The old shape: the evidence held the language's whole entry (title and text).
        assert consent.evidence["text"] == {"title": "Photos at daycare",
                                            "text": "I consent to photos …"}
        assert consents.verify_stored(consent_id)[0]


# -- emails and calendars in the recipient's language ----------------------------------------------
def test_the_confirmation_email_and_ics_name_the_service_in_the_recipients_language(
        app, client, auth, make_client, translated_service, outbox):
    """Staff confirm in German; the Turkish client's email and calendar entry are Turkish,
    an Arabic client's calendar feed Arabic; a Ukrainian email marks the German place."""
    from shared.models import Account

    person = make_client()
    with app.app_context():
        db.session.get(Account, person.account_id).locale = "tr"
        db.session.commit()
    auth.login(person)
    book(client, translated_service, tomorrow_slot_token(app, translated_service))
    auth.logout()
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id))
    auth.login(translated_service.staff, area="staff")
    day_view = client.get("/staff/bookings").get_data(as_text=True)
    assert "Elternberatung" in day_view  # staff read German
    response = submit(client, f"/staff/bookings/{booking_id}/confirm", {},
                      form_url="/staff/bookings")
    assert response.status_code == 302
    mail = outbox.last_to(person.email)
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Ebeveyn danışmanlığı" in body
    assert "Danışma merkezi, 2 numaralı oda" in body
    assert "Elternberatung" not in body
    ics = next(mail.iter_attachments()).get_payload(decode=True)  # UTF-8, as RFC 5545 says
    event = next(iter(Calendar.from_ical(ics).walk("VEVENT")))
    assert str(event.get("summary")) == "Ebeveyn danışmanlığı"
    assert event.get("summary").params["LANGUAGE"] == "tr"
    assert event.get("location").params["LANGUAGE"] == "tr"
    with app.app_context():
        db.session.get(Account, person.account_id).locale = "uk"
        db.session.commit()
        from shared.services import bookings

        bookings.send_reminders(now=db.session.get(Booking, booking_id).start_at
                                - __import__("datetime").timedelta(hours=2))
    reminder = outbox.last_to(person.email).get_body(preferencelist=("plain",)).get_content()
    assert "Консультація для батьків" in reminder
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        account.locale = "ar"
        token = bookings.new_calendar_feed(account)
        db.session.commit()
    feed = app.test_client().get(f"/calendar/{token}.ics")  # a calendar app: no cookie
    event = next(iter(Calendar.from_ical(feed.data).walk("VEVENT")))
    assert str(event.get("summary")) == "استشارة للوالدين"
    assert event.get("summary").params["LANGUAGE"] == "ar"
    assert str(event.get("location")) == "Raum 2"  # no Arabic place: German, named so
    assert event.get("location").params["LANGUAGE"] == "de"


def test_the_demo_services_and_consent_are_written_in_every_language(app, client, auth,
                                                                     runner):
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    with app.app_context():
        for service in db.session.scalars(select(Service)):
            assert set(service.translations) == {"en", "tr", "ar", "uk"}
            assert all(values["name"] for values in service.translations.values())
        template = db.session.scalar(select(ConsentTemplate))
        assert set(template.texts) == {"de", "en", "tr", "ar", "uk"}
        for locale in ("en", "tr", "ar", "uk"):
            assert all(template.texts[locale].get(field) for field in (
                "title", "text", "purpose", "legal_basis", "audience"))
    speak(client, "ar")
    assert "استشارة للشباب" in client.get("/bookings/new").get_data(as_text=True)
