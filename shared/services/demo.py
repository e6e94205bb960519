"""Demo data: the accounts listed in the README's "Try it" section, and a short history
of the demo client Mia Demir (a child, a caseworker, appointments, a consent asked for,
staff visits to her file) so that every page has something to show.

Everything is written through the services the pages use, so it is encrypted, logged and
checked as it would be in use. Times are computed from now in the organisation's time
zone: a load today shows appointments next week. Safe to run again: what is there (an
appointment still to come, a request still held) is reported as "exists"; what ran out
since (a request's 48-hour hold, an appointment that took place) is made again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pyotp
from flask_babel import force_locale
from sqlalchemy import select

from shared import audit
from shared.auth import passwords, totp
from shared.config import DEFAULT_LOCALE
from shared.extensions import db
from shared.models.accounts import CLIENT, Account
from shared.models.base import utcnow
from shared.models.bookings import CONFIRMED, PROPOSED, REQUESTED, Booking, Service
from shared.models.clients import Client
from shared.models.consents import GIVEN
from shared.models.household import ACCESS_FULL
from shared.models.keys import DataKey
from shared.models.staff import StaffMember
from shared.services import (
    accounts,
    availability,
    bookings,
    casefile,
    consents,
    household,
    messages,
    staff,
)


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    totp_secret: str | None
    role: str | None  # None: a client
    name: str


DEMO_ACCOUNTS = (
    DemoAccount("admin@example.org", "demo-admin-Lindenbaum-42", "JBSWY3DPEHPK3PXPADMINAAA",
                "admin", "Anna Admin"),
    DemoAccount("caseworker@example.org", "demo-case-Kastanie-42", "JBSWY3DPEHPK3PXPCASEAAAA",
                "caseworker", "A. Schmidt"),
    DemoAccount("reception@example.org", "demo-front-Ahornblatt-42", "JBSWY3DPEHPK3PXPFRONTAAA",
                "reception", "R. Yilmaz"),
    DemoAccount("mia@example.org", "demo-client-Sonnenblume-42", None, None, "Mia Demir"),
    DemoAccount("jonas@example.org", "demo-client-Regenbogen-42", "JBSWY3DPEHPK3PXPJONASAAA",
                None, "Jonas Weber"),
)


DEMO_SERVICES = (
    ("Elternberatung", "Beratung für Eltern von Kita-Kindern.", 45, "Beratungsstelle, Raum 2",
     False),
    ("Jugendberatung", "Vertrauliche Beratung für junge Menschen, auch abends.", 30, "", True),
)
# The demo services in the other languages, by their German name (shared.content_i18n).
DEMO_SERVICE_TRANSLATIONS = {
    "Elternberatung": {
        "en": {"name": "Advice for parents",
               "description": "Advice for parents of children in day care.",
               "location": "Counselling centre, room 2"},
        "tr": {"name": "Ebeveyn danışmanlığı",
               "description": "Kreşe giden çocukların anne ve babaları için danışmanlık.",
               "location": "Danışma merkezi, 2 numaralı oda"},
        "ar": {"name": "استشارة للوالدين",
               "description": "استشارة لآباء وأمهات الأطفال في الحضانة.",
               "location": "مركز الاستشارة، الغرفة 2"},
        "uk": {"name": "Консультація для батьків",
               "description": "Консультація для батьків дітей, які ходять у дитячий садок.",
               "location": "Консультаційний центр, кімната 2"},
    },
    "Jugendberatung": {
        "en": {"name": "Advice for young people",
               "description": "Confidential advice for young people, also in the evening."},
        "tr": {"name": "Gençlere danışmanlık",
               "description": "Gençler için gizli danışmanlık, akşamları da."},
        "ar": {"name": "استشارة للشباب",
               "description": "استشارة سرية للشباب، في المساء أيضًا."},
        "uk": {"name": "Консультація для молоді",
               "description": "Конфіденційна консультація для молоді, також увечері."},
    },
}
DEMO_CONSENT_TEXTS = {
    "de": {"title": "Einwilligung in die Datenverarbeitung in der Beratung",
           "text": "Ich willige ein, dass die Beratungsstelle meine Angaben und die "
                   "Notizen aus der Beratung speichert, um mich zu beraten. Ich kann "
                   "diese Einwilligung jederzeit widerrufen."},
    "en": {"title": "Consent to data processing in counselling",
           "text": "I consent to the counselling service storing my details and "
                   "the notes from counselling in order to advise me. I can "
                   "withdraw this consent at any time.",
           "purpose": "Counselling and keeping records",
           "legal_basis": "Art. 6(1)(a) GDPR",
           "audience": "Your caseworker"},
    "tr": {"title": "Danışmanlıkta kişisel verilerin işlenmesine onay",
           "text": "Danışma merkezinin bana danışmanlık yapabilmek için bilgilerimi ve "
                   "danışmanlık notlarını kaydetmesine onay veriyorum. Bu onayı istediğim "
                   "zaman geri alabilirim.",
           "purpose": "Danışmanlık ve kayıt tutma",
           "legal_basis": "Genel Veri Koruma Tüzüğü (GDPR) madde 6 fıkra 1 bent a",
           "audience": "Sizinle ilgilenen uzman"},
    "ar": {"title": "الموافقة على معالجة البيانات في الاستشارة",
           "text": "أوافق على أن يحفظ مركز الاستشارة بياناتي وملاحظات الاستشارة من أجل "
                   "تقديم الاستشارة لي. يمكنني سحب هذه الموافقة في أي وقت.",
           "purpose": "الاستشارة والتوثيق",
           "legal_basis": "المادة 6، الفقرة 1، البند (أ) من اللائحة العامة لحماية البيانات "
                          "(GDPR)",
           "audience": "المختص المسؤول عنك"},
    "uk": {"title": "Згода на обробку даних під час консультації",
           "text": "Я погоджуюся, щоб консультаційний центр зберігав мої дані та нотатки "
                   "з консультацій, щоб консультувати мене. Я можу будь-коли відкликати "
                   "цю згоду.",
           "purpose": "Консультація та документування",
           "legal_basis": "ст. 6 ч. 1 п. (a) Загального регламенту про захист даних (GDPR)",
           "audience": "Фахівець, який з вами працює"},
}


def load_bookable_services() -> Iterator[str]:
    """Two services offered by the demo caseworker, Monday to Friday."""
    from sqlalchemy import select

    from shared.models.bookings import AvailabilityRule, Service

    caseworker = staff.find_staff(email="caseworker@example.org")
    if caseworker is None:
        return
    if db.session.scalar(select(Service.id).limit(1)) is not None:
        yield from _translate_demo_services()
        return
    for name, description, minutes, location, online in DEMO_SERVICES:
        service = Service(name=name, description=description, duration_minutes=minutes,
                          location=location, online=online,
                          translations=DEMO_SERVICE_TRANSLATIONS.get(name, {}),
                          # A reserved example address: the base under which each
                          # confirmed appointment gets its own room; the rooms go nowhere.
                          video_url="https://video.example.org/raeume" if online
                          else None)
        service.staff = [caseworker]
        db.session.add(service)
    for weekday in range(5):
        db.session.add(AvailabilityRule(staff_member_id=caseworker.id, weekday=weekday,
                                        start_time=time(9), end_time=time(12)))
        db.session.add(AvailabilityRule(staff_member_id=caseworker.id, weekday=weekday,
                                        start_time=time(13), end_time=time(19)))
    db.session.commit()
    yield "created: demo services and hours"


def _translate_demo_services() -> Iterator[str]:
    """Demo services made before they had other languages get them (once)."""
    changed = False
    for service in db.session.scalars(select(Service).where(
            Service.name.in_(list(DEMO_SERVICE_TRANSLATIONS)))):
        if not service.translations:
            service.translations = DEMO_SERVICE_TRANSLATIONS[service.name]
            changed = True
    if changed:
        db.session.commit()
        yield "translated: demo services"


def load_consent_template() -> Iterator[str]:
    from sqlalchemy import select

    from shared.models.consents import ConsentTemplate
    from shared.services import consents

    if db.session.scalar(select(ConsentTemplate.id).limit(1)) is not None:
        return
    template = consents.save_template(
        key="beratung-daten",
        texts=DEMO_CONSENT_TEXTS,
        purpose="Beratung und Dokumentation", legal_basis="Art. 6 Abs. 1 lit. a DSGVO",
        audience="Ihre zuständige Fachkraft", guardian_signs=True)
    consents.publish(template.id)
    yield "created: demo consent template"


def load() -> Iterator[str]:
    """Create the demo accounts that do not exist yet (safe to run again)."""
    for demo in DEMO_ACCOUNTS:
        if demo.role:
            if staff.find_staff(email=demo.email) is not None:
                yield f"exists: {demo.email}"
                continue
            member, _ = staff.create_staff(
                email=demo.email, role=demo.role, name=demo.name, invite=False
            )
            account = member.account
        else:
            if accounts.find_account(email=demo.email, kind=CLIENT) is not None:
                yield f"exists: {demo.email}"
                continue
            data_key = DataKey.generate()
            account = Account(kind=CLIENT, data_key=data_key, locale="de")
            account.email = demo.email
            client = Client(data_key=data_key, account=account)
            db.session.add_all([data_key, account, client])
            accounts.update_profile(client=client, full_name=demo.name)
        account.password_hash = passwords.hash_password(demo.password)
        account.password_changed_at = utcnow()
        account.email_confirmed_at = utcnow()
        if demo.totp_secret:
            account.totp_secret = demo.totp_secret
            account.totp_enabled_at = utcnow()
        db.session.commit()
        yield f"created: {demo.email} ({demo.role or 'client'})"
    yield from load_bookable_services()
    yield from load_consent_template()
    yield from load_history()


# -- Mia's history --------------------------------------------------------------------------
DEMO_CONSENT_KEY = "beratung-daten"
DEMO_CHILD = household.DependantInput(
    full_name="Emil Demir", birth_date=date(2019, 3, 14), group_name="Kita Lindenhof, Igel",
    contacts=(household.ContactInput(name="Ayşe Demir (Oma)", phone="+49 30 5550123"),))


@dataclass(frozen=True)
class _Cast:
    admin: StaffMember
    caseworker: StaffMember
    reception: StaffMember
    mia: Account
    jonas: Account | None


def _cast() -> _Cast | None:
    members = {demo.role: staff.find_staff(email=demo.email)
               for demo in DEMO_ACCOUNTS if demo.role}
    mia = accounts.find_account(email="mia@example.org", kind=CLIENT)
    if None in members.values() or mia is None or household.own_client(mia) is None:
        return None
    return _Cast(admin=members["admin"], caseworker=members["caseworker"],
                 reception=members["reception"], mia=mia,
                 jonas=accounts.find_account(email="jonas@example.org", kind=CLIENT))


@contextmanager
def _acting_for(purpose: str):
    """What the staff member is doing, as the staff blueprint sets it for each page; the
    client reads it in the access log."""
    audit.set_purpose(purpose)
    try:
        yield
    finally:
        audit.set_purpose(None)


def load_history() -> Iterator[str]:
    """Mia's child, caseworker, appointments and consent request; Jonas's signed consent;
    a message of Mia's to the team; staff visits to Mia's file."""
    cast = _cast()
    if cast is None:
        return
    yield from _child(cast)
    yield from _assignment(cast)
    yield from _appointments(cast)
    yield from _consents(cast)
    yield from _conversation(cast)
    yield from _visits(cast)


def _child(cast: _Cast) -> Iterator[str]:
    children = household.visible_dependants(cast.mia, need=ACCESS_FULL)
    if any(child.full_name == DEMO_CHILD.full_name for child in children):
        yield "exists: a child in mia@example.org's household"
        return
    household.add_dependant(guardian=cast.mia, data=DEMO_CHILD)
    yield "created: a child in mia@example.org's household"


def _assignment(cast: _Cast) -> Iterator[str]:
    mia = household.own_client(cast.mia)
    if casefile.is_assigned(cast.caseworker, mia.id):
        yield "exists: caseworker@example.org assigned to mia@example.org"
        return
    with _acting_for(audit.CASE_WORK):
        casefile.assign(admin=cast.admin, client_id=mia.id, staff_member_id=cast.caseworker.id)
    yield "created: caseworker@example.org assigned to mia@example.org"


def _next_week(weekday: int) -> date:
    """That weekday (0 = Monday) of next week, in the organisation's time zone."""
    today = datetime.now(availability.local_zone()).date()
    return today + timedelta(days=7 - today.weekday() + weekday)


def _slot(service: Service, member: StaffMember, day: date, hour: int):
    """The caseworker's first free slot that day from ``hour`` on (local time), else the
    day's last free one; None on a day without hours."""
    zone = availability.local_zone()
    free = availability.free_slots(service=service, staff_member=member, day=day)
    later = [s for s in free if s.start.astimezone(zone).time() >= time(hour)]
    return (later or free[-1:] or [None])[0]


def _appointments(cast: _Cast) -> Iterator[str]:
    """One appointment confirmed for next Tuesday morning, one request waiting for staff
    (Wednesday afternoon), one request for which staff proposed another time (Thursday to
    Friday), each made as Mia and the caseworker would make it in the portal."""
    mia = household.own_client(cast.mia)
    service = _demo_service(cast.caseworker)
    if service is None:
        return
    held = {bookings.effective_status(b) for b in db.session.scalars(
        select(Booking).where(Booking.client_id == mia.id)
        .where(Booking.start_at > utcnow()))}
    member = cast.caseworker

    def request(day: date, hour: int, note: str | None) -> Booking | None:
        slot = _slot(service, member, day, hour)
        if slot is None:
            return None
        return bookings.request_booking(account=cast.mia, client_id=mia.id,
                                        service_id=service.id, slot_token=slot.token,
                                        note=note)

    if CONFIRMED in held:
        yield "exists: an appointment of mia@example.org"
    elif (booking := request(_next_week(1), 10, None)) is not None:
        with _acting_for(audit.BOOKING_DECISION):
            bookings.confirm(member=member, booking_id=booking.id)
        yield "created: an appointment of mia@example.org"
    if REQUESTED in held:
        yield "exists: a request of mia@example.org"
    elif request(_next_week(2), 15, "Es geht um die Eingewöhnung von Emil in der Kita.") \
            is not None:
        yield "created: a request of mia@example.org"
    if PROPOSED in held:
        yield "exists: a time proposed to mia@example.org"
    elif (booking := request(_next_week(3), 10, None)) is not None:
        other = _slot(service, member, _next_week(4), 13)
        if other is not None:
            with _acting_for(audit.BOOKING_DECISION):
                bookings.propose(member=member, booking_id=booking.id, slot_token=other.token)
            yield "created: a time proposed to mia@example.org"


def _demo_service(member: StaffMember) -> Service | None:
    """The demo's counselling for parents, or any active service the caseworker offers."""
    offered = [s for s in bookings.active_services() if member in s.staff]
    return next((s for s in offered if s.name == DEMO_SERVICES[0][0]),
                offered[0] if offered else None)


def _consents(cast: _Cast) -> Iterator[str]:
    """Staff ask Mia for the demo consent; Jonas has given it, signed with his code."""
    template = next((t for t in consents.published_templates() if t.key == DEMO_CONSENT_KEY),
                    None)
    if template is None:
        return
    mia = household.own_client(cast.mia)
    asked = any(r.subject_id == mia.id and r.template_key == template.key
                for r in consents.open_requests(cast.mia))
    if asked or consents.current_consent(mia.id, template.key) is not None:
        yield "exists: a consent asked of mia@example.org"
    else:
        with _acting_for(audit.CONSENT_WORK):
            consents.request_signature(member=cast.caseworker, client_id=mia.id,
                                       session_id=None, key=template.key)
        yield "created: a consent asked of mia@example.org"
    jonas = household.own_client(cast.jonas) if cast.jonas is not None else None
    if jonas is None:
        return
    if consents.current_consent(jonas.id, template.key) is not None:
        yield "exists: a consent of jonas@example.org"
        return
    secret = next(d.totp_secret for d in DEMO_ACCOUNTS if d.email == "jonas@example.org")
    # The previous time step's code (still accepted): the current one stays unused, so
    # whoever signs in as Jonas right after the load is not refused a replayed code.
    code = pyotp.TOTP(secret).at(totp.clock() - totp.STEP_SECONDS)
    try:
        consent = consents.sign_with_totp(account=cast.jonas, template_id=template.id,
                                          subject_id=jonas.id, locale=cast.jonas.locale or "de",
                                          code=code, typed_name=jonas.full_name or "")
    except consents.ConsentError:  # his code was used just now, or his secret changed
        yield "skipped: a consent of jonas@example.org (his code was refused)"
        return
    if consent.status == GIVEN:
        yield "created: a consent of jonas@example.org"


DEMO_TOPIC = "Emil schläft schlecht"


def _conversation(cast: _Cast) -> Iterator[str]:
    """Mia asks the team of her service a question in writing (nobody on staff has read
    it yet, so her access log stays as it was). Her "my data" sums the conversation up in
    one line, so the page stays within the three screens the demo's phone test holds it
    to (tests/browser/test_demo_transparency.py)."""
    service = _demo_service(cast.caseworker)
    if service is None:
        return
    if messages.threads_for(account=cast.mia).total:
        yield "exists: a message of mia@example.org"
        return
    mia = household.own_client(cast.mia)
    messages.start_thread(account=cast.mia, client_id=mia.id, service_id=service.id,
                          topic=DEMO_TOPIC,
                          body="Guten Tag, Emil wacht seit zwei Wochen jede Nacht auf und "
                               "weint. Haben Sie einen Rat, bis wir uns sehen?")
    yield "created: a message of mia@example.org"


def _visits(cast: _Cast) -> Iterator[str]:
    """The caseworker opened Mia's file; reception looked at next week's appointments.
    Written as those pages write them."""
    mia = household.own_client(cast.mia)
    seen = {(event.staff_member_id, event.purpose) for event in audit.events_for(mia.id)}
    if (cast.caseworker.id, audit.OPEN_FILE) in seen:
        yield "exists: the caseworker's visit to mia@example.org's file"
    else:
        # The file comes with its access log in words, which need a language (here none
        # is asked for, as there is no request).
        with _acting_for(audit.OPEN_FILE), force_locale(DEFAULT_LOCALE):
            casefile.open_file(member=cast.caseworker, client_id=mia.id, session_id=None)
        yield "created: the caseworker's visit to mia@example.org's file"
    if (cast.reception.id, audit.BOOKING_LISTS) in seen:
        yield "exists: reception's look at the appointment lists"
        return
    zone = availability.local_zone()
    week = datetime.combine(_next_week(0), time(0), zone).astimezone(UTC)
    with _acting_for(audit.BOOKING_LISTS):
        bookings.calendar(member=cast.reception, staff_member_id=cast.caseworker.id,
                          start=week, end=week + timedelta(days=7))
    yield "created: reception's look at the appointment lists"
