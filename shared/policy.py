"""Who on staff may do what: the one place that names roles for pages and data.

The staff gate (``staff/__init__.py``), the services (``casefile``, ``bookings``,
``corrections``), the navigation (``staff_may`` in templates), the data catalogue's "who
can see it" and the authorization tests all read this module. It is closed by default:
a staff endpoint it does not name is refused for every role, an unknown ability or kind
of data is granted to nobody.

Pure: it knows the role names and nothing of requests, tables or services.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from flask_babel import lazy_gettext as _l

from shared.models.staff import ADMIN, CASEWORKER, RECEPTION, ROLES

# Each role as people read it (staff pages, the client's access log).
ROLE_NAMES: Mapping[str, object] = MappingProxyType({
    ADMIN: _l("administrator"),
    CASEWORKER: _l("caseworker"),
    RECEPTION: _l("reception"),
})

_EVERY_ROLE = frozenset(ROLES)
_ADMIN = frozenset({ADMIN})
_CASEWORKER = frozenset({CASEWORKER})
_CASEWORKER_AND_ADMIN = frozenset({CASEWORKER, ADMIN})

# -- pages ----------------------------------------------------------------------------------
# Reachable without signing in: the sign-in steps.
OPEN_ENDPOINTS = frozenset(
    {
        "staff.login",
        "staff.login_second_factor",
        "staff.invitation",
        "staff.logout",
        "staff.passkey_login_begin",
        "staff.passkey_login_finish",
        "staff.passkey_second_factor_begin",
        "staff.passkey_second_factor_finish",
    }
)
# Reachable after the password but before a second factor exists (and afterwards by the
# roles named for them below).
SETUP_ENDPOINTS = frozenset(
    {
        "staff.setup_second_factor",
        "staff.logout",
        "staff.passkey_add_begin",
        "staff.passkey_add_finish",
    }
)

# -- abilities: what a role may do or see within pages --------------------------------------
SEE_ALL_BOOKINGS = "bookings.all"  # every booking, not only one's own appointments
SEE_ALL_CORRECTIONS = "corrections.all"  # every open request, not only of assigned clients
ASSIGN_CASEWORKERS = "casefile.assign"
BE_ASSIGNED = "casefile.be-assigned"  # may be named a client's caseworker
ASSIGNED_FILES_ONLY = "casefile.assigned-only"  # other files only through break-glass
# The file of a client with a confirmed appointment with oneself, from the confirmation
# until ``Config.appointment_file_days`` after the appointment's end, without a reason.
APPOINTMENT_FILES = "casefile.appointment"
# Names in the booking queue, day and week views link to the files one may open; reception
# works from the booking itself (its part of a file is the contact data the row shows).
LINK_FILES_FROM_BOOKINGS = "bookings.file-links"
BREAK_GLASS = "casefile.break-glass"  # open an unassigned file with a typed reason
OPEN_RESTRICTED = "casefile.restricted"  # open a restricted file (§ 84 SGB X) with a reason
WRITE_NOTES = "casefile.notes"
REVIEW_BREAK_GLASS = "break-glass.review"
OFFER_SERVICES = "services.offer"  # be the staff member of an appointment
EDIT_ANY_HOURS = "availability.anyone"  # everyone else edits their own hours only
# Start (or cancel) an account recovery after checking the client's identity in person;
# caseworkers for the clients assigned to them only (shared/services/account_recovery.py).
RECOVER_ACCOUNTS = "account.recovery"
# Read and answer clients' messages to a service one works for (shared/services/messages.py):
# counselling in writing, like notes the full file's, so caseworkers only.
ANSWER_MESSAGES = "messages.answer"

ABILITIES: Mapping[str, frozenset[str]] = MappingProxyType({
    SEE_ALL_BOOKINGS: frozenset({ADMIN, RECEPTION}),
    SEE_ALL_CORRECTIONS: _ADMIN,
    ASSIGN_CASEWORKERS: _ADMIN,
    BE_ASSIGNED: _CASEWORKER,
    ASSIGNED_FILES_ONLY: _CASEWORKER,
    APPOINTMENT_FILES: _CASEWORKER,
    LINK_FILES_FROM_BOOKINGS: _CASEWORKER_AND_ADMIN,
    BREAK_GLASS: _CASEWORKER,  # admins never hold the full file
    OPEN_RESTRICTED: _CASEWORKER_AND_ADMIN,  # admins check erasures
    WRITE_NOTES: _CASEWORKER,
    REVIEW_BREAK_GLASS: _ADMIN,
    OFFER_SERVICES: _CASEWORKER_AND_ADMIN,
    EDIT_ANY_HOURS: _ADMIN,
    RECOVER_ACCOUNTS: _CASEWORKER_AND_ADMIN,
    ANSWER_MESSAGES: _CASEWORKER,
})

# Every staff endpoint that is not open, and the roles that may use it. Documents and
# notes are the full case file: caseworkers only (assigned, or through break-glass), never
# admins or reception.
ENDPOINT_ROLES: Mapping[str, frozenset[str]] = MappingProxyType({
    # one's own account
    "staff.setup_second_factor": _EVERY_ROLE,
    "staff.home": _EVERY_ROLE,
    "staff.security": _EVERY_ROLE,
    "staff.reauth": _EVERY_ROLE,
    "staff.passkey_step_up_begin": _EVERY_ROLE,
    "staff.passkey_step_up_finish": _EVERY_ROLE,
    "staff.passkey_add_begin": _EVERY_ROLE,
    "staff.passkey_add_finish": _EVERY_ROLE,
    "staff.passkey_rename": _EVERY_ROLE,
    "staff.passkey_remove": _EVERY_ROLE,
    # clients and their files (what each role sees in a file: FILE_LEVELS, DATA_LEVELS)
    "staff.clients": _EVERY_ROLE,
    "staff.client_file": _EVERY_ROLE,
    "staff.client_break_glass": ABILITIES[BREAK_GLASS] | ABILITIES[OPEN_RESTRICTED],
    "staff.client_assign": ABILITIES[ASSIGN_CASEWORKERS],
    "staff.assignment_remove": ABILITIES[ASSIGN_CASEWORKERS],
    # Only the full file may invite, confirm a hand-over or withdraw an invitation.
    "staff.client_invite": _CASEWORKER,
    "staff.client_handover": _CASEWORKER,
    "staff.client_withdraw_invitation": _CASEWORKER,
    "staff.document_upload": _CASEWORKER,
    "staff.document_download": _CASEWORKER,
    "staff.note_add": ABILITIES[WRITE_NOTES],
    "staff.note_edit": ABILITIES[WRITE_NOTES],
    "staff.booking_confidential": _CASEWORKER,
    "staff.account_recovery": ABILITIES[RECOVER_ACCOUNTS],
    "staff.account_recovery_cancel": ABILITIES[RECOVER_ACCOUNTS],
    # appointments and hours
    "staff.bookings_queue": _EVERY_ROLE,
    "staff.bookings_day": _EVERY_ROLE,
    "staff.bookings_week": _EVERY_ROLE,
    "staff.booking_decide": _EVERY_ROLE,
    "staff.booking_propose": _EVERY_ROLE,
    "staff.availability": _EVERY_ROLE,
    "staff.availability_delete": _EVERY_ROLE,
    "staff.services": _ADMIN,
    "staff.service_edit": _ADMIN,
    # consents
    "staff.consent_templates": _ADMIN,
    "staff.consent_template_edit": _ADMIN,
    "staff.consent_template_publish": _ADMIN,
    "staff.consent_request": _CASEWORKER_AND_ADMIN,
    "staff.consent_receipt_staff": _CASEWORKER_AND_ADMIN,
    # clients' requests (Art. 16 and 17 GDPR)
    "staff.corrections_queue": _CASEWORKER_AND_ADMIN,
    "staff.correction_answer": _CASEWORKER_AND_ADMIN,
    "staff.erasures_queue": _ADMIN,
    "staff.erasure_decide": _ADMIN,
    # messages from clients (staff/messages.py): what they write is the full file's kind
    # of data, for the caseworkers of the service (shared/services/messages.py decides
    # which conversation); one's own notification setting goes with it
    "staff.messages_inbox": ABILITIES[ANSWER_MESSAGES],
    "staff.messages_mine": ABILITIES[ANSWER_MESSAGES],
    "staff.messages_all": ABILITIES[ANSWER_MESSAGES],
    "staff.message_take": ABILITIES[ANSWER_MESSAGES],
    "staff.message_join": ABILITIES[ANSWER_MESSAGES],
    "staff.message_thread": ABILITIES[ANSWER_MESSAGES],
    "staff.message_reply": ABILITIES[ANSWER_MESSAGES],
    "staff.message_since": ABILITIES[ANSWER_MESSAGES],
    "staff.message_attachment": ABILITIES[ANSWER_MESSAGES],
    "staff.message_notifications": ABILITIES[ANSWER_MESSAGES],
    # running the organisation
    "staff.team": _ADMIN,
    "staff.team_change": _ADMIN,
    "staff.break_glass_review": ABILITIES[REVIEW_BREAK_GLASS],
    "staff.break_glass_reviewed": ABILITIES[REVIEW_BREAK_GLASS],
    "staff.security_events": _ADMIN,
    "staff.funder_reports": _ADMIN,
    "staff.funder_reports_csv": _ADMIN,
})

# -- a client's file ------------------------------------------------------------------------
# What a role sees of a file. FULL: everything; CONTACT: contact data, bookings and
# consents; MANAGE: that and the household, own account, assignments, consent receipts and
# the access log, but not notes, documents or case details.
FULL = "full"
CONTACT = "contact"
MANAGE = "manage"
FILE_LEVELS: Mapping[str, str] = MappingProxyType(
    {CASEWORKER: FULL, RECEPTION: CONTACT, ADMIN: MANAGE})

# -- kinds of data about a person ----------------------------------------------------------
# Where a kind is also a category of the data catalogue (and of the access log), it has
# the same name.
CONTACT_DATA = "contact"  # names, email, phone, date of birth, emergency contacts
BOOKINGS = "bookings"
CONSENTS = "consents"  # which consent, given or withdrawn, when, how
ACCOUNT = "account"  # how an own account came about, language, caseworkers
HOUSEHOLD = "household"  # who is guardian of whom
ACCESS_LOG = "access-log"
DOCUMENTS = "documents"
NOTES = "notes"
CASE_DETAILS = "case-details"  # allergies, medical notes, school or kindergarten group
CONSENT_RECEIPTS = "consent-receipts"  # the signed document, its evidence and receipts
# Read on a staff page outside the file.
BOOKING_NOTES = "booking-notes"  # a client's note to a request, shown to its staff member
CORRECTIONS = "corrections"
ERASURES = "erasures"
BREAK_GLASS_REASONS = "break-glass-reasons"
STAFF_ABSENCES = "staff-absences"
MESSAGES = "messages"  # conversations with a service's team (its inbox)
# Read by no one on staff: the person's own security data, or nobody at all.
THEMSELVES_ONLY = "themselves-only"
SYSTEM_ONLY = "system-only"

_EVERY_LEVEL = frozenset({FULL, CONTACT, MANAGE})
_MANAGE_AND_FULL = frozenset({FULL, MANAGE})
DATA_LEVELS: Mapping[str, frozenset[str]] = MappingProxyType({
    CONTACT_DATA: _EVERY_LEVEL,
    BOOKINGS: _EVERY_LEVEL,
    CONSENTS: _EVERY_LEVEL,
    ACCOUNT: _MANAGE_AND_FULL,
    HOUSEHOLD: _MANAGE_AND_FULL,
    ACCESS_LOG: _MANAGE_AND_FULL,
    CONSENT_RECEIPTS: _MANAGE_AND_FULL,
    CASE_DETAILS: frozenset({FULL}),
    DOCUMENTS: frozenset({FULL}),
    NOTES: frozenset({FULL}),
})
DATA_ROLES: Mapping[str, frozenset[str]] = MappingProxyType({
    BOOKING_NOTES: ABILITIES[OFFER_SERVICES],
    CORRECTIONS: ENDPOINT_ROLES["staff.corrections_queue"],
    ERASURES: ENDPOINT_ROLES["staff.erasures_queue"],
    BREAK_GLASS_REASONS: ABILITIES[REVIEW_BREAK_GLASS],
    STAFF_ABSENCES: ABILITIES[EDIT_ANY_HOURS],
    MESSAGES: ABILITIES[ANSWER_MESSAGES],
    THEMSELVES_ONLY: frozenset(),
    SYSTEM_ONLY: frozenset(),
})
DATA_KINDS = frozenset(DATA_LEVELS) | frozenset(DATA_ROLES)


def may_use(role: str | None, endpoint: str | None) -> bool:
    """Whether a signed-in staff member of this role may use this staff endpoint; an
    endpoint the policy does not name is refused."""
    if endpoint in OPEN_ENDPOINTS:
        return True
    return role in ENDPOINT_ROLES.get(endpoint or "", frozenset())


def may(role: str | None, ability: str) -> bool:
    """Whether this role has an ability (``SEE_ALL_BOOKINGS`` …); unknown ones: nobody."""
    return role in ABILITIES.get(ability, frozenset())


def roles_with(ability: str) -> tuple[str, ...]:
    """The roles that have an ability, in the order of ``ROLES`` (for a query by role)."""
    return tuple(role for role in ROLES if may(role, ability))


def level_for(role: str | None) -> str | None:
    """The part of a client's file this role sees (FULL, CONTACT or MANAGE), None: none.
    Whether the file opens at all (assignment, break-glass, restriction) is the case
    file's business (``casefile.access_for``)."""
    return FILE_LEVELS.get(role or "")


def may_read(level: str | None, kind: str) -> bool:
    """Whether a file opened at this level shows this kind of data."""
    return level in DATA_LEVELS.get(kind, frozenset())


def readers(kind: str) -> tuple[str, ...]:
    """The staff roles that read this kind of data, in the order of ``ROLES``: through
    the file by its level, or on the staff page that shows it."""
    if kind in DATA_ROLES:
        allowed = DATA_ROLES[kind]
    else:
        allowed = {role for role in ROLES if may_read(level_for(role), kind)}
    return tuple(role for role in ROLES if role in allowed)
