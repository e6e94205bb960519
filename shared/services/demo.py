"""Demo data: the accounts listed in the README's "Try it" section."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time

from shared.auth import passwords
from shared.extensions import db
from shared.models.accounts import CLIENT, Account
from shared.models.base import utcnow
from shared.models.clients import Client
from shared.models.keys import DataKey
from shared.services import accounts, staff


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


def load_bookable_services() -> Iterator[str]:
    """Two services offered by the demo caseworker, Monday to Friday."""
    from sqlalchemy import select

    from shared.models.bookings import AvailabilityRule, Service

    caseworker = staff.find_staff(email="caseworker@example.org")
    if caseworker is None or db.session.scalar(select(Service.id).limit(1)) is not None:
        return
    for name, description, minutes, location, online in DEMO_SERVICES:
        service = Service(name=name, description=description, duration_minutes=minutes,
                          location=location, online=online)
        service.staff = [caseworker]
        db.session.add(service)
    for weekday in range(5):
        db.session.add(AvailabilityRule(staff_member_id=caseworker.id, weekday=weekday,
                                        start_time=time(9), end_time=time(12)))
        db.session.add(AvailabilityRule(staff_member_id=caseworker.id, weekday=weekday,
                                        start_time=time(13), end_time=time(19)))
    db.session.commit()
    yield "created: demo services and hours"


def load_consent_template() -> Iterator[str]:
    from sqlalchemy import select

    from shared.models.consents import ConsentTemplate
    from shared.services import consents

    if db.session.scalar(select(ConsentTemplate.id).limit(1)) is not None:
        return
    template = consents.save_template(
        key="beratung-daten",
        texts={
            "de": {"title": "Einwilligung in die Datenverarbeitung in der Beratung",
                   "text": "Ich willige ein, dass die Beratungsstelle meine Angaben und die "
                           "Notizen aus der Beratung speichert, um mich zu beraten. Ich kann "
                           "diese Einwilligung jederzeit widerrufen."},
            "en": {"title": "Consent to data processing in counselling",
                   "text": "I consent to the counselling service storing my details and "
                           "the notes from counselling in order to advise me. I can "
                           "withdraw this consent at any time."},
        },
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
