"""The organisation behind the portal, as the public pages show it: contact, opening
hours, imprint, and the privacy notice generated from the data catalogue.

Everything comes from the configuration (``shared/config.py``, ``organisation_*``,
``imprint_*``, ``privacy_*``) and the catalogue, so the pages cannot drift from what the
portal really stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from babel.dates import get_day_names
from flask import current_app
from flask_babel import get_locale

from shared import catalogue
from shared.config import parse_opening_hours
from shared.i18n import format_clock
from shared.models.staff import StaffMember
from shared.services.my_data import readers


@dataclass(frozen=True)
class Organisation:
    name: str
    address_lines: list[str]
    phone: str
    phone_uri: str  # "tel:+49301234567"
    email: str
    representative: str
    register: str
    vat_id: str
    privacy_officer: str
    privacy_authority: str


def organisation() -> Organisation:
    """The organisation as configured."""
    config = current_app.extensions["einblick"].config
    return Organisation(
        name=config.organisation_name,
        address_lines=[line.strip() for line in config.organisation_address.split(",")
                       if line.strip()],
        phone=config.organisation_phone,
        phone_uri="tel:" + "".join(c for c in config.organisation_phone if c in "+0123456789"),
        email=config.organisation_email,
        representative=config.imprint_representative,
        register=config.imprint_register,
        vat_id=config.imprint_vat_id,
        privacy_officer=config.privacy_officer,
        privacy_authority=config.privacy_authority,
    )


def opening_hours() -> list[tuple[str, str]]:
    """("Montag – Donnerstag", "09:00 – 17:00") per configured span, in the reader's
    language (called within a request or with a forced locale)."""
    config = current_app.extensions["einblick"].config
    days = get_day_names("wide", locale=get_locale() or "de")

    def clock(value: str) -> str:
        hours, minutes = (int(part) for part in value.split(":"))
        return "24:00" if hours == 24 else format_clock(time(hours, minutes), "short")

    rows = []
    for span in parse_opening_hours(config.organisation_opening_hours):
        named = days[span.first_day] if span.first_day == span.last_day else \
            f"{days[span.first_day]} – {days[span.last_day]}"
        rows.append((named, f"{clock(span.opens)} – {clock(span.closes)}"))
    return rows


@dataclass(frozen=True)
class NoticeCategory:
    """One category of the privacy notice: what we store, why, on which legal basis, how
    long and who can see it, gathered from the catalogue's entries."""

    label: str
    items: list[str]
    purposes: list[str]
    legal_bases: list[str]
    retention: list[str]
    readers: str


def _unique(values) -> list[str]:
    return list(dict.fromkeys(str(value) for value in values))


def about_staff(entry: catalogue.Entry) -> bool:
    """Data about the organisation's staff (their own notice, as employees)."""
    return (entry.category == catalogue.STAFF
            or entry.column.split(".")[0] == StaffMember.__tablename__)


def privacy_notice() -> list[NoticeCategory]:
    """The catalogue's entries about clients (not staff), by category, in words."""
    categories = []
    for key, label in catalogue.CATEGORY_LABELS.items():
        entries = [entry for entry in catalogue.ENTRIES
                   if entry.category == key and not about_staff(entry)]
        if not entries:
            continue
        categories.append(NoticeCategory(
            label=str(label),
            items=_unique(entry.label for entry in entries),
            purposes=_unique(entry.purpose for entry in entries),
            legal_bases=_unique(entry.legal_basis for entry in entries),
            retention=_unique(entry.retention for entry in entries),
            readers=readers({role for entry in entries for role in entry.visible_to}),
        ))
    return categories

