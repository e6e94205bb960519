"""The data catalogue: every column that holds personal data, and why we keep it.

The "my data" page, the export and the retention purge are generated from this table.
``tests/shared/test_catalogue.py`` fails when a model gains a column that is neither
declared here as personal nor listed as technical, so transparency is complete by
construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from shared import policy
from shared.i18n import LANGUAGE_NAMES
from shared.models.staff import ADMIN, CASEWORKER, RECEPTION

# Storage forms a personal column may take. Plain storage is allowed only for values that
# reveal nothing on their own (a language code, a timestamp).
ENCRYPTED = "encrypted"
BLIND_INDEX = "blind-index"
HASHED = "hashed"
PLAIN = "plain"

# Categories (the "my data" page groups by these).
ACCOUNT = "account"
CONTACT = "contact"
HOUSEHOLD = "household"
BOOKINGS = "bookings"
ACCESS_LOG = "access-log"
STAFF = "staff"
SECURITY = "security"

# The person the data is about, beside the staff roles in "who can see it".
CLIENT = "client"
CLIENT_ROLES = (CLIENT,)
# Shown to the person themselves only, never to a guardian: how a young person's account
# is protected (sessions, passkeys, the authenticator app) and whom staff looked at.
OWN_EYES_ONLY = frozenset({SECURITY, ACCESS_LOG})


@dataclass(frozen=True)
class Entry:
    column: str  # "table.column"
    category: str
    label: object
    purpose: object
    legal_basis: object
    retention: object
    # Whole calendar years after the item's end (a booking of 11 Jan 2027 kept 3 years goes
    # on 11 Jan 2030; erasure.years_after); None: kept while the account exists.
    retention_years_after_end: int | None
    visible_to: tuple[str, ...]
    source: object
    storage: str
    # A secret (a key, a hash of a code or token, a credential) is never shown or
    # exported, not even to its owner: "my data" says only that it exists, since when (the
    # row's ``since`` column) and how to remove it (``removal``, on the page ``removal_page``).
    secret: bool = False
    since: str | None = None
    removal: object = None
    removal_page: str | None = None
    # A column holding codes ("staff", "given", "usb,internal") says what each code means
    # to the reader; "my data", index.html and the CSVs show these words, data.json the code.
    values: Mapping[str, object] | None = field(default=None, compare=False)
    # A column holding the id of something with a name (a service, a staff member, a
    # consent, a person's account) says what it names: people read the name, never the id
    # (shared/services/my_data.py looks the names up, one query per kind); data.json keeps
    # the id.
    names: str | None = None


# What an id in a column names (``Entry.names``).
NAMES_SERVICE = "service"
NAMES_STAFF_MEMBER = "staff-member"
NAMES_CONSENT = "consent-template"  # a template's id: its title in the reader's language
NAMES_CONSENT_KEY = "consent-template-key"  # a template's key: its newest version's title
NAMES_ACCOUNT_HOLDER = "account-holder"  # a client's account: the person's name

_ACCOUNT_PURPOSE = _l("To let you sign in and to reach you about your account.")
_CONTRACT = _l("Art. 6(1)(b) GDPR (providing the portal you signed up for)")
_SECURITY_PURPOSE = _l("To protect your account against misuse.")
_SECURITY_BASIS = _l("Art. 6(1)(c) and Art. 32 GDPR (security of processing)")
_WHILE_ACCOUNT = _l("Deleted when you delete your account.")
_FROM_YOU = _l("Entered by you")
_FROM_STAFF = _l("Entered by the organisation")
_FROM_SYSTEM = _l("Recorded by the system")
_SECURITY_PAGE = "portal.security"
_REMOVE_PASSKEY = _l("Remove the passkey under Security to delete it.")
_TRANSPORTS = {
    "usb": "USB", "nfc": "NFC", "ble": "Bluetooth",  # the same in every language
    "internal": _l("built into the device"), "hybrid": _l("another device, e.g. a phone"),
    "smart-card": _l("smart card"), "cable": _l("cable"),
}


def _seen_by(kind: str, *, client: bool = True) -> tuple[str, ...]:
    """Who can see a column, as "my data" and the export say: the person themselves
    (unless ``client=False``) and the staff roles that ``shared/policy.py`` lets read
    this kind of data, so that the page never promises what the policy does not keep."""
    if kind not in policy.DATA_KINDS:
        raise KeyError(f"shared/policy.py names no kind of data {kind!r}")
    return ((CLIENT,) if client else ()) + policy.readers(kind)


_SYSTEM = _seen_by(policy.SYSTEM_ONLY, client=False)
_YOU = _seen_by(policy.THEMSELVES_ONLY)
_SEE_CONTACT = _seen_by(policy.CONTACT_DATA)
_SEE_ACCOUNT = _seen_by(policy.ACCOUNT)
_SEE_HOUSEHOLD = _seen_by(policy.HOUSEHOLD)
_SEE_CASE_DETAILS = _seen_by(policy.CASE_DETAILS)
_SEE_BOOKINGS = _seen_by(policy.BOOKINGS)
_SEE_BOOKING_NOTE = _seen_by(policy.BOOKING_NOTES)
_SEE_CONSENTS = _seen_by(policy.CONSENTS)
_SEE_RECEIPTS = _seen_by(policy.CONSENT_RECEIPTS)
_SEE_ACCESS_LOG = _seen_by(policy.ACCESS_LOG)
_SEE_BREAK_GLASS = _seen_by(policy.BREAK_GLASS_REASONS)
_SEE_CORRECTIONS = _seen_by(policy.CORRECTIONS)
_SEE_ERASURES = _seen_by(policy.ERASURES, client=False)
_SEE_ABSENCES = _seen_by(policy.STAFF_ABSENCES, client=False)

ENTRIES: tuple[Entry, ...] = (
    Entry("accounts.email", CONTACT, _l("Email address"), _ACCOUNT_PURPOSE, _CONTRACT,
          _WHILE_ACCOUNT, None, _SEE_CONTACT, _FROM_YOU,
          ENCRYPTED),
    Entry("accounts.email_bidx", CONTACT, _l("Search key of your email address"),
          _l("To find your account when you sign in, without decrypting every account."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, BLIND_INDEX),
    Entry("accounts.email_confirmed_at", ACCOUNT, _l("Email address confirmed on"),
          _ACCOUNT_PURPOSE, _CONTRACT, _WHILE_ACCOUNT, None, _SEE_ACCOUNT,
          _FROM_SYSTEM, PLAIN),
    Entry("accounts.password_hash", SECURITY, _l("Password (stored only as an Argon2id hash)"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_YOU, HASHED,
          secret=True, since="password_changed_at",
          removal=_l("You can change it under Security."), removal_page=_SECURITY_PAGE),
    Entry("accounts.password_changed_at", SECURITY, _l("Password last changed"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _YOU,
          _FROM_SYSTEM, PLAIN),
    Entry("accounts.totp_secret", SECURITY, _l("Authenticator app secret"), _SECURITY_PURPOSE,
          _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, ENCRYPTED, secret=True,
          since="totp_enabled_at",
          removal=_l("Turn off two-step sign-in under Security to delete it."),
          removal_page=_SECURITY_PAGE),
    Entry("accounts.totp_pending_secret", SECURITY,
          _l("Authenticator app secret while it is being set up"), _SECURITY_PURPOSE,
          _SECURITY_BASIS,
          _l("Deleted when set-up finishes, or with your account if you stop half-way."),
          None, _SYSTEM, _FROM_SYSTEM, ENCRYPTED, secret=True,
          removal=_l("Finish setting up the authenticator app under Security to replace it."),
          removal_page=_SECURITY_PAGE),
    Entry("accounts.passkey_user_handle", SECURITY,
          _l("Random account number given to your passkeys"), _SECURITY_PURPOSE,
          _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, PLAIN, secret=True,
          removal=_l("Deleted with your account.")),
    Entry("passkey_credentials.name", SECURITY, _l("Names of your passkeys"),
          _l("So you can tell your passkeys apart."), _CONTRACT, _WHILE_ACCOUNT, None,
          _YOU, _FROM_YOU, ENCRYPTED),
    Entry("passkey_credentials.credential_id", SECURITY, _l("Passkey identifier"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, PLAIN,
          secret=True, since="created_at", removal=_REMOVE_PASSKEY,
          removal_page=_SECURITY_PAGE),
    Entry("passkey_credentials.public_key", SECURITY,
          _l("Public key of a passkey (cannot be used to sign in)"), _SECURITY_PURPOSE,
          _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, PLAIN, secret=True,
          since="created_at", removal=_REMOVE_PASSKEY, removal_page=_SECURITY_PAGE),
    Entry("passkey_credentials.created_at", SECURITY, _l("Passkey added on"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _YOU,
          _FROM_SYSTEM, PLAIN),
    Entry("passkey_credentials.last_used_at", SECURITY, _l("Passkey last used on"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _YOU,
          _FROM_SYSTEM, PLAIN),
    Entry("passkey_credentials.sign_count", SECURITY, _l("Passkey use counter"),
          _l("To notice a copied security key."), _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM,
          _FROM_SYSTEM, PLAIN),
    Entry("passkey_credentials.flagged_at", SECURITY,
          _l("Passkey marked for a check (its use counter went backwards)"),
          _l("To notice a copied security key."), _SECURITY_BASIS, _WHILE_ACCOUNT, None,
          _YOU, _FROM_SYSTEM, PLAIN),
    Entry("accounts.invited_by", ACCOUNT, _l("Who invited you to your own account"),
          _l("So that staff and your guardians can see how your own account came about."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SEE_ACCOUNT, _FROM_SYSTEM,
          PLAIN, values={"guardian": _l("a parent or guardian"), "staff": _l("our team")}),
    Entry("accounts.handover_confirmed_at", ACCOUNT,
          _l("Own account confirmed in person on"),
          _l("Confidential items are shown to your own account only after staff met you and "
             "confirmed that you hold it."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SEE_ACCOUNT, _FROM_STAFF,
          PLAIN),
    Entry("clients.own_account_invited_at", ACCOUNT,
          _l("Invited to an account of their own on"),
          _l("So that staff and your guardians can see how your own account came about."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SEE_ACCOUNT, _FROM_SYSTEM,
          PLAIN),
    Entry("passkey_credentials.transports", SECURITY,
          _l("How a passkey connects (e.g. USB, internal)"), _SECURITY_PURPOSE,
          _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, PLAIN, values=_TRANSPORTS),
    Entry("passkey_credentials.backup_eligible", SECURITY,
          _l("Whether a passkey is synced between devices"), _SECURITY_PURPOSE,
          _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, PLAIN),
    Entry("accounts.totp_enabled_at", SECURITY, _l("Authenticator app turned on"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _YOU,
          _FROM_SYSTEM, PLAIN),
    Entry("accounts.totp_last_step", SECURITY, _l("Last authenticator code used (time step)"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, PLAIN),
    Entry("accounts.locale", ACCOUNT, _l("Preferred language"),
          _l("To show the portal and send emails in your language."), _CONTRACT,
          _WHILE_ACCOUNT, None, _SEE_ACCOUNT, _FROM_YOU,
          PLAIN, values=LANGUAGE_NAMES),
    Entry("recovery_codes.code_hash", SECURITY, _l("Recovery codes (stored only as hashes)"),
          _SECURITY_PURPOSE, _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, HASHED,
          secret=True, since="created_at",
          removal=_l("Make new codes or turn off two-step sign-in under Security to delete "
                     "them."),
          removal_page=_SECURITY_PAGE),
    Entry("recovery_codes.used_at", SECURITY, _l("Recovery code used on"), _SECURITY_PURPOSE,
          _SECURITY_BASIS, _WHILE_ACCOUNT, None, _YOU, _FROM_SYSTEM, PLAIN),
    Entry("user_sessions.created_at", SECURITY, _l("Signed-in sessions"), _SECURITY_PURPOSE,
          _SECURITY_BASIS, _l("Deleted when you sign out, or after 12 hours."), None,
          _YOU, _FROM_SYSTEM, PLAIN),
    Entry("user_sessions.last_seen_at", SECURITY, _l("Last activity of a session"),
          _SECURITY_PURPOSE, _SECURITY_BASIS,
          _l("Deleted when you sign out, or after 12 hours."), None, _YOU,
          _FROM_SYSTEM, PLAIN),
    Entry("form_drafts.content", SECURITY,
          _l("Form entries kept after you were signed out"),
          _l("So that what you typed is not lost when you were signed out for your safety."),
          _CONTRACT, _l("Deleted when you sign in again and see them, or after one hour."),
          None, _YOU, _FROM_YOU, ENCRYPTED, secret=True, since="created_at",
          removal=_l("Sign in again on the same device and open the form, or sign out: "
                     "they are deleted then.")),
    Entry("clients.full_name", CONTACT, _l("Full name"),
          _l("To address you and to find your file."), _CONTRACT, _WHILE_ACCOUNT, None,
          _SEE_CONTACT, _FROM_YOU, ENCRYPTED),
    Entry("client_name_tokens.token_bidx", CONTACT, _l("Search keys of your name"),
          _l("So staff can find your file by name without decrypting every file."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, BLIND_INDEX),
    Entry("staff_members.name", CONTACT, _l("Staff member's name"),
          _l("To show clients who worked on their file."),
          _l("Art. 6(1)(b) GDPR (employment)"), _l("Deleted when the staff account is removed."),
          None, _SEE_CONTACT, _FROM_STAFF, ENCRYPTED),
)

_HOUSEHOLD_PURPOSE = _l("So the service can care for your child safely.")
_HEALTH_BASIS = _l("Art. 9(2)(a) GDPR (your consent) and Art. 6(1)(b) GDPR")
_BOOKING_PURPOSE = _l("To plan, confirm and remind you of appointments.")
_BOOKING_RETENTION = _l("Deleted 3 years after the appointment (documentation duty).")

ENTRIES = ENTRIES + (
    Entry("clients.birth_date", HOUSEHOLD, _l("Date of birth"),
          _l("To offer services suitable for the age and to know when a young person may "
             "have an account of their own."), _CONTRACT, _WHILE_ACCOUNT, None, _SEE_CONTACT,
          _FROM_YOU, ENCRYPTED),
    Entry("clients.allergies", HOUSEHOLD, _l("Allergies"), _HOUSEHOLD_PURPOSE, _HEALTH_BASIS,
          _WHILE_ACCOUNT, None, _SEE_CASE_DETAILS, _FROM_YOU, ENCRYPTED),
    Entry("clients.medical_notes", HOUSEHOLD, _l("Medical notes"), _HOUSEHOLD_PURPOSE,
          _HEALTH_BASIS, _WHILE_ACCOUNT, None, _SEE_CASE_DETAILS, _FROM_YOU, ENCRYPTED),
    Entry("clients.group_name", HOUSEHOLD, _l("School or kindergarten group"),
          _HOUSEHOLD_PURPOSE, _CONTRACT, _WHILE_ACCOUNT, None, _SEE_CASE_DETAILS, _FROM_YOU,
          ENCRYPTED),
    Entry("emergency_contacts.name", HOUSEHOLD, _l("Emergency contact: name"),
          _l("So we can reach someone in an emergency."), _CONTRACT, _WHILE_ACCOUNT, None,
          _SEE_CONTACT, _FROM_YOU, ENCRYPTED),
    Entry("emergency_contacts.phone", HOUSEHOLD, _l("Emergency contact: phone number"),
          _l("So we can reach someone in an emergency."), _CONTRACT, _WHILE_ACCOUNT, None,
          _SEE_CONTACT, _FROM_YOU, ENCRYPTED),
    Entry("guardianships.guardian_account_id", HOUSEHOLD, _l("Who is guardian of whom"),
          _l("So a parent can act for their child."), _CONTRACT, _WHILE_ACCOUNT, None,
          _SEE_HOUSEHOLD, _FROM_YOU, PLAIN, names=NAMES_ACCOUNT_HOLDER),
    Entry("guardianships.access", HOUSEHOLD, _l("What a guardian may see"),
          _l("So a young person decides what their guardian still sees."), _CONTRACT,
          _WHILE_ACCOUNT, None, _YOU, _FROM_YOU, PLAIN,
          values={"full": _l("everything"), "bookings": _l("only the appointments"),
                  "none": _l("nothing")}),
    Entry("guardianships.created_at", HOUSEHOLD, _l("Child added on"), _HOUSEHOLD_PURPOSE,
          _CONTRACT, _WHILE_ACCOUNT, None, _YOU, _FROM_SYSTEM, PLAIN),
    Entry("bookings.start_at", BOOKINGS, _l("Appointment time"), _BOOKING_PURPOSE, _CONTRACT,
          _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_YOU, PLAIN),
    Entry("bookings.end_at", BOOKINGS, _l("Appointment end"), _BOOKING_PURPOSE, _CONTRACT,
          _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_YOU, PLAIN),
    Entry("bookings.status", BOOKINGS, _l("Appointment status"), _BOOKING_PURPOSE, _CONTRACT,
          _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_SYSTEM, PLAIN,
          values={"requested": _l("request pending"), "confirmed": _l("confirmed"),
                  "proposed": _l("new time proposed"), "declined": _l("declined"),
                  "cancelled": _l("cancelled"), "expired": _l("request expired")}),
    Entry("bookings.service_id", BOOKINGS, _l("Booked service"), _BOOKING_PURPOSE, _CONTRACT,
          _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_YOU, PLAIN, names=NAMES_SERVICE),
    Entry("bookings.staff_member_id", BOOKINGS, _l("Staff member of the appointment"),
          _BOOKING_PURPOSE, _CONTRACT, _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_YOU,
          PLAIN, names=NAMES_STAFF_MEMBER),
    Entry("bookings.note", BOOKINGS, _l("Your note to the appointment"), _BOOKING_PURPOSE,
          _CONTRACT, _BOOKING_RETENTION, 3, _SEE_BOOKING_NOTE, _FROM_YOU, ENCRYPTED),
    Entry("bookings.staff_message", BOOKINGS, _l("Message from staff about the appointment"),
          _BOOKING_PURPOSE, _CONTRACT, _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_STAFF,
          ENCRYPTED),
    Entry("bookings.video_room", BOOKINGS, _l("Link to the video room of your appointment"),
          _BOOKING_PURPOSE, _CONTRACT, _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_SYSTEM,
          ENCRYPTED),
    Entry("bookings.original_start_at", BOOKINGS, _l("Time you first asked for"),
          _BOOKING_PURPOSE, _CONTRACT, _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_YOU,
          PLAIN),
    Entry("bookings.created_at", BOOKINGS, _l("Booking requested on"), _BOOKING_PURPOSE,
          _CONTRACT, _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_SYSTEM, PLAIN),
    Entry("bookings.decided_at", BOOKINGS, _l("Booking answered on"), _BOOKING_PURPOSE,
          _CONTRACT, _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_STAFF, PLAIN),
    Entry("access_events.staff_member_id", ACCESS_LOG, _l("Who on staff looked at your data"),
          _l("So you can see every access to your data."),
          _l("Art. 5(2) and Art. 32 GDPR (accountability)"),
          _l("Kept as long as the data it is about."), None, _SEE_ACCESS_LOG,
          _FROM_SYSTEM, PLAIN, names=NAMES_STAFF_MEMBER),
    Entry("access_events.category", ACCESS_LOG, _l("Which of your data was looked at"),
          _l("So you can see every access to your data."),
          _l("Art. 5(2) and Art. 32 GDPR (accountability)"),
          _l("Kept as long as the data it is about."), None, _SEE_ACCESS_LOG,
          _FROM_SYSTEM, PLAIN, values={
              "bookings": _l("appointments"), "contact": _l("contact data"),
              "household": _l("household data"), "documents": _l("documents"),
              "notes": _l("notes"), "case-file": _l("case file"),
              "access-log": _l("access log"), "export": _l("your data download"),
              "messages": _l("messages"),
              "consents": _l("consents"), "account": _l("your account")}),
    Entry("access_events.action", ACCESS_LOG, _l("What was done (viewed, changed)"),
          _l("So you can see every access to your data."),
          _l("Art. 5(2) and Art. 32 GDPR (accountability)"),
          _l("Kept as long as the data it is about."), None, _SEE_ACCESS_LOG,
          _FROM_SYSTEM, PLAIN, values={
              "view": _l("viewed"), "change": _l("changed"), "search": _l("found in a search"),
              "download": _l("downloaded"), "break-glass": _l("opened in an emergency"),
              "purge": _l("deleted because the retention period ended"),
              "restricted": _l("opened with a reason although restricted"),
              "named": _l("read as a household member named in another file"),
              "invitation": _l("sent an invitation to an account of their own"),
              "invitation-withdrawn": _l("withdrew an invitation to an account of their "
                                         "own"),
              "handover-confirmed": _l("confirmed in person that the young person holds "
                                       "their own account"),
              "recovery-started": _l("started a recovery of your account"),
              "recovery-cancelled": _l("cancelled a recovery of your account")}),
    Entry("access_events.purpose", ACCESS_LOG, _l("What staff were doing"),
          _l("So you can see every access to your data."),
          _l("Art. 5(2) and Art. 32 GDPR (accountability)"),
          _l("Kept as long as the data it is about."), None, _SEE_ACCESS_LOG,
          _FROM_SYSTEM, PLAIN, values={
              "open-file": _l("opening the file"), "search": _l("a staff search"),
              "booking-lists": _l("the appointment lists"),
              "booking-decision": _l("answering an appointment request"),
              "case-work": _l("work on the file"), "consent-work": _l("work on consents"),
              "correction-work": _l("answering a correction request"),
              "erasure-work": _l("deciding on a deletion request"),
              "review": _l("checking an emergency opening"),
              "account-recovery": _l("recovering your account"),
              "message-work": _l("answering your messages")}),
    Entry("access_events.created_at", ACCESS_LOG, _l("When your data was looked at"),
          _l("So you can see every access to your data."),
          _l("Art. 5(2) and Art. 32 GDPR (accountability)"),
          _l("Kept as long as the data it is about."), None, _SEE_ACCESS_LOG,
          _FROM_SYSTEM, PLAIN),
    Entry("availability_exceptions.day", STAFF, _l("Days a staff member is away"),
          _l("To offer only times when staff are there."), _l("Art. 6(1)(b) GDPR (employment)"),
          _l("Deleted with the staff account."), None, _SEE_ABSENCES, _FROM_STAFF, PLAIN),
    Entry("calendar_feeds.token_hash", SECURITY, _l("Calendar link (stored only as a hash)"),
          _l("So only you can read your appointment calendar."), _CONTRACT, _WHILE_ACCOUNT,
          None, _SYSTEM, _FROM_SYSTEM, HASHED, secret=True, since="created_at",
          removal=_l("Stop the calendar link under Appointments; it then no longer works."),
          removal_page="portal.bookings_index"),
)

DOCUMENTS = "documents"
NOTES = "notes"
_CASE_PURPOSE = _l("To document the help you receive (case file).")
_CASE_BASIS = _l("§ 61 ff. SGB VIII and Art. 6(1)(c) GDPR (documentation duty)")
_CASE_RETENTION = _l("Deleted 5 years after the case is closed (documentation duty).")
_SEE_DOCUMENTS = _seen_by(policy.DOCUMENTS, client=False)
_SEE_NOTE_BODY = _seen_by(policy.NOTES, client=False)
_SEE_NOTES = _seen_by(policy.NOTES)

ENTRIES = ENTRIES + (
    Entry("clients.phone", CONTACT, _l("Phone number"), _ACCOUNT_PURPOSE, _CONTRACT,
          _WHILE_ACCOUNT, None, _SEE_CONTACT, _FROM_YOU, ENCRYPTED),
    Entry("clients.phone_bidx", CONTACT, _l("Search key of your phone number"),
          _l("So staff can find your file by phone number without decrypting every file."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, BLIND_INDEX),
    Entry("client_name_tokens.token_birth_bidx", CONTACT,
          _l("Search keys of your name with your date of birth"),
          _l("So staff can tell people with the same name apart without decrypting."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, BLIND_INDEX),
    Entry("bookings.confidential_from_guardians", BOOKINGS,
          _l("Appointment kept confidential from your guardians"),
          _l("§ 8(3) SGB VIII: counselling without your parents' knowledge."), _CASE_BASIS,
          _BOOKING_RETENTION, 3, _SEE_BOOKINGS, _FROM_STAFF, PLAIN),
    Entry("assignments.staff_member_id", ACCOUNT, _l("Your caseworker"),
          _l("So you know who is responsible for you."), _CONTRACT, _WHILE_ACCOUNT, None,
          _SEE_ACCOUNT, _FROM_STAFF, PLAIN, names=NAMES_STAFF_MEMBER),
    Entry("documents.filename", DOCUMENTS, _l("Document name"), _CASE_PURPOSE, _CASE_BASIS,
          _CASE_RETENTION, 5, _SEE_DOCUMENTS, _FROM_STAFF, ENCRYPTED),
    Entry("documents.content", DOCUMENTS, _l("Document content"), _CASE_PURPOSE, _CASE_BASIS,
          _CASE_RETENTION, 5, _SEE_DOCUMENTS, _FROM_STAFF, ENCRYPTED),
    Entry("documents.category", DOCUMENTS, _l("Document category"), _CASE_PURPOSE,
          _CASE_BASIS, _CASE_RETENTION, 5, _SEE_DOCUMENTS, _FROM_STAFF, PLAIN,
          values={"application": _l("Application"), "certificate": _l("Certificate"),
                  "correspondence": _l("Letter"), "report": _l("Report"),
                  "other": _l("Other")}),
    Entry("documents.created_at", DOCUMENTS, _l("Document uploaded on"), _CASE_PURPOSE,
          _CASE_BASIS, _CASE_RETENTION, 5, _SEE_DOCUMENTS, _FROM_SYSTEM, PLAIN),
    Entry("documents.uploaded_by_id", DOCUMENTS, _l("Who uploaded a document"),
          _CASE_PURPOSE, _CASE_BASIS, _CASE_RETENTION, 5, _SEE_DOCUMENTS, _FROM_SYSTEM,
          PLAIN, names=NAMES_STAFF_MEMBER),
    Entry("notes.body", NOTES, _l("Case notes"), _CASE_PURPOSE, _CASE_BASIS,
          _CASE_RETENTION, 5, _SEE_NOTE_BODY, _FROM_STAFF, ENCRYPTED),
    Entry("notes.author_id", NOTES, _l("Who wrote a note"), _CASE_PURPOSE, _CASE_BASIS,
          _CASE_RETENTION, 5, _SEE_NOTES, _FROM_SYSTEM, PLAIN, names=NAMES_STAFF_MEMBER),
    Entry("notes.created_at", NOTES, _l("Note written on"), _CASE_PURPOSE, _CASE_BASIS,
          _CASE_RETENTION, 5, _SEE_NOTES, _FROM_SYSTEM, PLAIN),
    Entry("break_glass_grants.reason", ACCESS_LOG,
          _l("Reason given for opening your file in an emergency"),
          _l("So you can see every access to your data."),
          _l("Art. 5(2) and Art. 32 GDPR (accountability)"),
          _l("Kept as long as the data it is about."), None, _SEE_BREAK_GLASS,
          _FROM_STAFF, ENCRYPTED),
    Entry("break_glass_grants.staff_member_id", ACCESS_LOG,
          _l("Who opened your file in an emergency"),
          _l("So you can see every access to your data."),
          _l("Art. 5(2) and Art. 32 GDPR (accountability)"),
          _l("Kept as long as the data it is about."), None, _SEE_BREAK_GLASS,
          _FROM_SYSTEM, PLAIN, names=NAMES_STAFF_MEMBER),
)

MESSAGES = "messages"
_MESSAGE_PURPOSE = _l("To counsel you in writing, in the conversations you start with our team.")
_MESSAGE_BASIS = _l("Art. 6(1)(b) GDPR and § 8(3), § 61 ff. SGB VIII (counselling)")
_SEE_MESSAGES = _seen_by(policy.MESSAGES)


def message_retention_years() -> int:
    """Whole calendar years a conversation is kept after its last message: the
    organisation's ``message_retention_years`` (default 2; shared/services/messages.py
    purges by it)."""
    from flask import current_app

    config = current_app.extensions["einblick"].config
    return int(getattr(config, "message_retention_years", 2))


class _MessageRetention:
    """The retention of messages in words, with the years the organisation configured."""

    def __str__(self) -> str:
        from flask_babel import ngettext

        years = message_retention_years()
        return ngettext("Deleted %(num)s year after the conversation's last message, and "
                        "when you delete your account.",
                        "Deleted %(num)s years after the conversation's last message, and "
                        "when you delete your account.", years)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))


_MESSAGE_RETENTION = _MessageRetention()
ENTRIES = ENTRIES + tuple(
    Entry(column, MESSAGES, label, _MESSAGE_PURPOSE, _MESSAGE_BASIS, _MESSAGE_RETENTION, 2,
          _SEE_MESSAGES, source, storage, names=names)
    for column, label, source, storage, names in (
        ("message_threads.topic", _l("Topics of your conversations"), _FROM_YOU, ENCRYPTED,
         None),
        ("message_threads.service_id", _l("Service a conversation is with"), _FROM_YOU, PLAIN,
         NAMES_SERVICE),
        ("message_threads.started_by_account_id", _l("Who started a conversation"),
         _FROM_SYSTEM, PLAIN, NAMES_ACCOUNT_HOLDER),
        ("message_threads.assigned_staff_id", _l("Who on staff took a conversation"),
         _FROM_STAFF, PLAIN, NAMES_STAFF_MEMBER),
        ("message_threads.assigned_at", _l("Conversation taken on"), _FROM_SYSTEM, PLAIN,
         None),
        ("message_threads.confidential_from_guardians",
         _l("Conversation kept confidential from your guardians"), _FROM_YOU, PLAIN, None),
        ("message_threads.created_at", _l("Conversation started on"), _FROM_SYSTEM, PLAIN,
         None),
        ("message_threads.last_message_at", _l("Last message of a conversation on"),
         _FROM_SYSTEM, PLAIN, None),
        ("thread_staff.staff_member_id", _l("Staff who joined a conversation"), _FROM_STAFF,
         PLAIN, NAMES_STAFF_MEMBER),
        ("thread_staff.joined_at", _l("Joined the conversation on"), _FROM_SYSTEM, PLAIN,
         None),
        ("messages.body", _l("Messages"), _FROM_YOU, ENCRYPTED, None),
        ("messages.author_account_id", _l("Who wrote a message (you or a guardian)"),
         _FROM_SYSTEM, PLAIN, NAMES_ACCOUNT_HOLDER),
        ("messages.author_staff_id", _l("Who on staff wrote a message"), _FROM_SYSTEM, PLAIN,
         NAMES_STAFF_MEMBER),
        ("messages.created_at", _l("Message sent on"), _FROM_SYSTEM, PLAIN, None),
        ("messages.read_by_client_at", _l("Message read by you on"), _FROM_SYSTEM, PLAIN,
         None),
        ("messages.read_by_staff_at", _l("Message read by our team on"), _FROM_SYSTEM, PLAIN,
         None),
        ("messages.confidential_from_guardians",
         _l("Message kept confidential from your guardians"), _FROM_STAFF, PLAIN, None),
        ("message_attachments.filename", _l("Names of files sent with messages"), _FROM_YOU,
         ENCRYPTED, None),
        ("message_attachments.content", _l("Files sent with messages"), _FROM_YOU, ENCRYPTED,
         None),
        ("message_attachments.created_at", _l("File sent on"), _FROM_SYSTEM, PLAIN, None),
    )
)

CONSENTS = "consents"
_CONSENT_PURPOSE = _l("To prove which consent you gave or withdrew, and when.")
_CONSENT_BASIS = _l("Art. 7(1) GDPR (proof of consent)")
_CONSENT_RETENTION = _l("Kept 3 years after the consent ends (proof duty).")
_CONSENT_VALUES = {
    "method": {"passkey": _l("passkey signature"),
               "totp-name": _l("code and typed name (weaker)"),
               "email-code-name": _l("code sent by email and typed name (weakest)"),
               "confirmation": _l("confirmed with a button (not agreed)")},
    "locale": LANGUAGE_NAMES,
    "status": {"given": _l("given"), "withdrawn": _l("withdrawn"),
               "declined": _l("not agreed")},
}
_CONSENT_NAMES = {"template_id": NAMES_CONSENT, "signer_account_id": NAMES_ACCOUNT_HOLDER}
ENTRIES = ENTRIES + tuple(
    Entry(f"consents.{column}", CONSENTS, label, _CONSENT_PURPOSE, _CONSENT_BASIS,
          _CONSENT_RETENTION, 3, roles, source, storage,
          values=_CONSENT_VALUES.get(column), names=_CONSENT_NAMES.get(column))
    for column, label, roles, source, storage in (
        ("template_id", _l("Which consent"), _SEE_CONSENTS, _FROM_YOU, PLAIN),
        ("signer_account_id", _l("Who signed"), _SEE_CONSENTS, _FROM_SYSTEM, PLAIN),
        ("method", _l("How it was signed"), _SEE_CONSENTS, _FROM_SYSTEM, PLAIN),
        ("locale", _l("Language you read it in"), _SEE_CONSENTS, _FROM_YOU, PLAIN),
        ("status", _l("Given or withdrawn"), _SEE_CONSENTS, _FROM_YOU, PLAIN),
        ("document_hash", _l("Fingerprint of the signed document"), _SEE_RECEIPTS,
         _FROM_SYSTEM, HASHED),
        ("document", _l("The signed document"), _SEE_RECEIPTS, _FROM_SYSTEM, ENCRYPTED),
        ("evidence", _l("Signature evidence"), _SEE_RECEIPTS, _FROM_SYSTEM, ENCRYPTED),
        ("receipt", _l("Sealed receipt"), _SEE_RECEIPTS, _FROM_SYSTEM, ENCRYPTED),
        ("withdrawal_receipt", _l("Sealed receipt of the withdrawal"), _SEE_RECEIPTS,
         _FROM_SYSTEM, ENCRYPTED),
        ("given_at", _l("Given on"), _SEE_CONSENTS, _FROM_SYSTEM, PLAIN),
        ("withdrawn_at", _l("Withdrawn on"), _SEE_CONSENTS, _FROM_SYSTEM, PLAIN),
    )
) + (
    Entry("consent_requests.template_key", CONSENTS, _l("Consents we asked you to look at"),
          _CONSENT_PURPOSE, _CONTRACT, _WHILE_ACCOUNT, None, _SEE_CONSENTS, _FROM_STAFF, PLAIN,
          names=NAMES_CONSENT_KEY),
)

ENTRIES = ENTRIES + (
    Entry("correction_requests.message", ACCOUNT, _l("Your correction requests"),
          _l("To correct data we recorded about you (Art. 16 GDPR)."),
          _l("Art. 16 GDPR (right to rectification)"), _WHILE_ACCOUNT, None,
          _SEE_CORRECTIONS, _FROM_YOU, ENCRYPTED),
    Entry("correction_requests.reply", ACCOUNT, _l("Our answers to your correction requests"),
          _l("To correct data we recorded about you (Art. 16 GDPR)."),
          _l("Art. 16 GDPR (right to rectification)"), _WHILE_ACCOUNT, None,
          _SEE_CORRECTIONS, _FROM_STAFF, ENCRYPTED),
    Entry("correction_requests.status", ACCOUNT, _l("Status of your correction requests"),
          _l("To correct data we recorded about you (Art. 16 GDPR)."),
          _l("Art. 16 GDPR (right to rectification)"), _WHILE_ACCOUNT, None,
          _SEE_CORRECTIONS, _FROM_STAFF, PLAIN,
          values={"open": _l("open"), "done": _l("corrected"),
                  "rejected": _l("not corrected")}),
)

_ERASURE_PURPOSE = _l("To keep only what the law requires after you deleted your account, "
                      "and to delete it when that duty ends (§ 84 SGB X).")
_ERASURE_BASIS = _l("Art. 17(3)(b) GDPR and § 84 SGB X (restriction instead of erasure)")
_ERASURE_RETENTION = _l("Deleted together with the last item that is kept.")
ENTRIES = ENTRIES + (
    Entry("clients.restricted_at", ACCOUNT, _l("Account deleted on (the rest is restricted)"),
          _ERASURE_PURPOSE, _ERASURE_BASIS, _ERASURE_RETENTION, None, _SEE_ERASURES,
          _FROM_SYSTEM, PLAIN),
    Entry("clients.erasure_reviewed_at", ACCOUNT, _l("Restriction checked by staff on"),
          _ERASURE_PURPOSE, _ERASURE_BASIS, _ERASURE_RETENTION, None, _SEE_ERASURES,
          _FROM_SYSTEM, PLAIN),
)

# An anonymous contact (shared/services/anonymous.py): a pseudonym instead of an address.
_ANONYMOUS_PURPOSE = _l("So you can write to us without giving your name or email address, "
                        "and sign in again with the name you chose.")
ENTRIES = ENTRIES + (
    Entry("accounts.pseudonym", ACCOUNT, _l("The name you chose to sign in with"),
          _ANONYMOUS_PURPOSE, _CONTRACT, _WHILE_ACCOUNT, None, _SEE_ACCOUNT, _FROM_YOU,
          ENCRYPTED),
    Entry("accounts.pseudonym_bidx", ACCOUNT, _l("Search key of the name you sign in with"),
          _l("To find your account when you sign in, without decrypting every account."),
          _CONTRACT, _WHILE_ACCOUNT, None, _SYSTEM, _FROM_SYSTEM, BLIND_INDEX),
    Entry("accounts.pending_email", CONTACT,
          _l("Email address for notifications, not yet confirmed"),
          _l("To send the link that confirms the address you gave for notifications."),
          _CONTRACT, _l("Deleted when you confirm it, and at the latest when its link "
                        "expires (24 hours)."), None, _YOU, _FROM_YOU, ENCRYPTED),
    Entry("clients.anonymous_at", ACCOUNT, _l("You first wrote to us anonymously on"),
          _ANONYMOUS_PURPOSE, _CONTRACT, _WHILE_ACCOUNT, None, _SEE_ACCOUNT, _FROM_SYSTEM,
          PLAIN),
)

# A recovery staff started after checking the client's identity in person. Its rows belong to
# the account, so a guardian never sees them ("my data" leaves a child's account out).
_RECOVERY_PURPOSE = _l("To give you your account back when you have lost your second step "
                       "and your recovery codes, and so you can see who did it and why.")
ENTRIES = ENTRIES + tuple(
    Entry(f"account_recoveries.{column}", ACCOUNT, label, _RECOVERY_PURPOSE,
          _SECURITY_BASIS, _WHILE_ACCOUNT, None, _SEE_ACCOUNT, source, storage,
          names=NAMES_STAFF_MEMBER if column == "started_by_id" else None)
    for column, label, source, storage in (
        ("identity_check", _l("How staff checked your identity for a recovery"), _FROM_STAFF,
         ENCRYPTED),
        ("started_by_id", _l("Who started a recovery of your account"), _FROM_SYSTEM, PLAIN),
        ("started_at", _l("Recovery of your account started on"), _FROM_SYSTEM, PLAIN),
        ("effective_at", _l("Recovery of your account possible from"), _FROM_SYSTEM, PLAIN),
        ("completed_at", _l("Account recovered on"), _FROM_SYSTEM, PLAIN),
        ("cancelled_at", _l("Recovery of your account cancelled on"), _FROM_SYSTEM, PLAIN),
    )
)

BY_COLUMN: dict[str, Entry] = {entry.column: entry for entry in ENTRIES}

# The categories' names, as the export's index.html heads its sections.
CATEGORY_LABELS: dict[str, object] = {
    ACCOUNT: _l("Account"), CONTACT: _l("Contact"), HOUSEHOLD: _l("Household"),
    BOOKINGS: _l("Appointments"), CONSENTS: _l("Consents"), DOCUMENTS: _l("Documents"),
    NOTES: _l("Notes"), MESSAGES: _l("Messages"), ACCESS_LOG: _l("Access log"),
    SECURITY: _l("Security"),
    STAFF: _l("Staff"),
}

# Who can see an item ("my data" and the export list these words, in this order).
READERS: dict[str, object] = {
    CLIENT: _l("you"), ADMIN: _l("administrators"), CASEWORKER: _l("caseworkers"),
    RECEPTION: _l("reception"),
}

# Columns that hold no personal data: keys, references, technical state.
TECHNICAL: frozenset[str] = frozenset(
    {
        "accounts.id", "accounts.kind", "accounts.data_key_id", "accounts.created_at",
        "account_tokens.id", "account_tokens.account_id", "account_tokens.purpose",
        "account_tokens.token_hash", "account_tokens.created_at", "account_tokens.expires_at",
        "account_tokens.used_at",
        "app_meta.key", "app_meta.value",
        "clients.id", "clients.data_key_id", "clients.account_id", "clients.created_at",
        "clients.updated_at",
        "client_name_tokens.id", "client_name_tokens.client_id",
        "data_keys.id", "data_keys.kek_id", "data_keys.wrapped_key", "data_keys.created_at",
        "data_keys.rewrapped_at",
        "recovery_codes.id", "recovery_codes.account_id", "recovery_codes.created_at",
        "staff_members.id", "staff_members.account_id", "staff_members.data_key_id",
        "staff_members.role", "staff_members.active", "staff_members.created_at",
        "user_sessions.id", "user_sessions.account_id", "user_sessions.token_hash",
        "user_sessions.authenticated_at", "user_sessions.second_factor_at",
        "form_drafts.id", "form_drafts.account_id", "form_drafts.created_at",
        "form_drafts.expires_at",
        "passkey_credentials.id", "passkey_credentials.account_id",
        "passkey_credentials.data_key_id",
        "passkey_challenges.id", "passkey_challenges.purpose", "passkey_challenges.challenge",
        "passkey_challenges.account_id", "passkey_challenges.created_at",
        "passkey_challenges.expires_at",
        # Security events carry only a pseudonym (an HMAC of the account id), no content.
        "security_events.id", "security_events.at", "security_events.event",
        "security_events.outcome", "security_events.account_kind",
        "security_events.account_ref",
        "emergency_contacts.id", "emergency_contacts.client_id",
        "emergency_contacts.data_key_id", "emergency_contacts.created_at",
        "guardianships.id", "guardianships.dependant_id",
        "bookings.id", "bookings.client_id", "bookings.data_key_id",
        "bookings.booked_by_account_id", "bookings.expires_at", "bookings.reminder_sent_at",
        "bookings.expiry_notice_sent_at", "bookings.replaces_booking_id", "services.video_url",
        "services.translations",
        "services.id", "services.name", "services.description", "services.duration_minutes",
        "services.location", "services.online", "services.active", "services.created_at",
        "staff_services.staff_member_id", "staff_services.service_id",
        "availability_rules.id", "availability_rules.staff_member_id",
        "availability_rules.weekday", "availability_rules.start_time",
        "availability_rules.end_time",
        "availability_exceptions.id", "availability_exceptions.staff_member_id",
        "availability_exceptions.start_time", "availability_exceptions.end_time",
        "calendar_feeds.id", "calendar_feeds.account_id", "calendar_feeds.created_at",
        "calendar_feeds.revoked_at",
        # Funder report counts (shared/models/reports.py): numbers per appointment time,
        # service and age group; no client id, no birth date. An erasure takes the client's
        # counts out (shared/services/reports.py) and has nothing in this table to find.
        "report_counts.slot_at", "report_counts.service_id", "report_counts.age_band",
        "report_counts.month", "report_counts.appointments", "report_counts.clients",
        # slot_holds: a visitor's chosen time while registering; no person is named.
        "slot_holds.id", "slot_holds.token_hash", "slot_holds.service_id",
        "slot_holds.staff_member_id", "slot_holds.start_at", "slot_holds.end_at",
        "slot_holds.expires_at", "slot_holds.created_at",
        "access_events.id", "access_events.client_id", "access_events.seq",
        "access_events.role", "access_events.prev_hash", "access_events.hash",
        "access_events.grant_id",
        # Integrity of the access log (shared/audit.py): each chain's anchored head and the
        # chains changed since the last anchor; ids, sequence numbers and MACs only.
        "access_chain_anchors.chain_id", "access_chain_anchors.seq", "access_chain_anchors.hash",
        "access_chain_changes.chain_id", "access_chain_changes.low_seq",
        "access_chain_changes.version",
        "consents.id", "consents.subject_id", "consents.data_key_id",
        "consent_requests.id", "consent_requests.subject_id",
        "consent_requests.requested_by_id", "consent_requests.created_at",
        "consent_requests.fulfilled_at", "consent_requests.reminded_at",
        # A one-time signing code: only its keyed hash, gone with the account.
        "consent_email_codes.id", "consent_email_codes.account_id",
        "consent_email_codes.code_hash", "consent_email_codes.created_at",
        "consent_email_codes.expires_at", "consent_email_codes.attempts",
        "consent_email_codes.used_at",
        "consent_templates.id", "consent_templates.key", "consent_templates.version",
        "consent_templates.texts", "consent_templates.purpose",
        "consent_templates.legal_basis", "consent_templates.audience",
        "consent_templates.guardian_signs", "consent_templates.required_for_service_id",
        "consent_templates.status", "consent_templates.created_at",
        "consent_templates.published_at",
        "correction_requests.id", "correction_requests.client_id",
        "correction_requests.data_key_id", "correction_requests.about",
        "correction_requests.created_at", "correction_requests.handled_at",
        "correction_requests.handled_by_id",
        "assignments.id", "assignments.client_id", "assignments.created_at",
        "documents.id", "documents.client_id", "documents.data_key_id",
        "documents.content_type", "documents.size", "documents.visible_to_client",
        "documents.confidential_from_guardians",
        "notes.id", "notes.client_id", "notes.data_key_id", "notes.corrects_id",
        "notes.updated_at", "notes.visible_to_client", "notes.confidential_from_guardians",
        "message_threads.id", "message_threads.client_id", "message_threads.data_key_id",
        "thread_staff.thread_id", "thread_staff.client_id",
        "messages.id", "messages.thread_id", "messages.client_id", "messages.data_key_id",
        "messages.from_staff",
        # The order of a conversation's messages (1, 2, …) and the number of its last.
        "messages.seq", "message_threads.last_seq",
        "message_attachments.id", "message_attachments.message_id",
        "message_attachments.client_id", "message_attachments.data_key_id",
        "message_attachments.content_type", "message_attachments.size",
        "message_attachments.confidential_from_guardians",
        "staff_members.message_notifications", "staff_members.message_digest_sent_at",
        "break_glass_grants.id", "break_glass_grants.client_id",
        "break_glass_grants.data_key_id", "break_glass_grants.session_id",
        "break_glass_grants.created_at", "break_glass_grants.reviewed_at",
        "break_glass_grants.reviewed_by_id",
        "account_recoveries.id", "account_recoveries.account_id",
        "account_recoveries.data_key_id",
        # The hand-over code staff give in person: only its keyed hash, and how many wrong
        # codes were typed; gone with the account.
        "account_recoveries.handover_code_hash", "account_recoveries.wrong_codes",
    }
)


def entries_for(category: str) -> list[Entry]:
    return [entry for entry in ENTRIES if entry.category == category]


# -- whose data a table holds, and what erasure does with it --------------------------------
# Every column that names a client or a client's account (a foreign key to clients or
# accounts, or a column called client_id / ..._account_id) says what becomes of its rows
# when that client or account is erased. Erasure, "my data" and the export are generated
# from this (shared/services/client_tables.py) and refuse to run while a table that holds
# client data is missing here, so a new table cannot be forgotten.
ERASE = "erase"  # the row goes as soon as its client (or account) is erased
KEEP = "keep"  # may be kept, restricted (§ 84 SGB X), while its retention above runs
KEEP_WITH_FILE = "keep-with-file"  # the record of access: kept while anything is kept
DETACH = "detach"  # the row is someone else's: only the reference to the account goes
STAFF_ACCOUNT = "staff-account"  # the account of a staff member, never a client's

# Kept rows in the order the erasure page lists them.
CLIENT_REFERENCES: dict[str, str] = {
    "bookings.client_id": KEEP,
    "documents.client_id": KEEP,
    "notes.client_id": KEEP,
    "consents.subject_id": KEEP,
    "break_glass_grants.client_id": KEEP_WITH_FILE,
    "access_events.client_id": KEEP_WITH_FILE,
    "client_name_tokens.client_id": ERASE,
    "emergency_contacts.client_id": ERASE,
    "guardianships.dependant_id": ERASE,
    "consent_requests.subject_id": ERASE,
    "correction_requests.client_id": ERASE,
    "assignments.client_id": ERASE,
    "guardianships.guardian_account_id": ERASE,
    "user_sessions.account_id": ERASE,
    "form_drafts.account_id": ERASE,
    "account_tokens.account_id": ERASE,
    "recovery_codes.account_id": ERASE,
    "consent_email_codes.account_id": ERASE,
    "passkey_credentials.account_id": ERASE,
    "passkey_challenges.account_id": ERASE,
    "calendar_feeds.account_id": ERASE,
    "account_recoveries.account_id": ERASE,
    # Messages are no documentation duty: they go at erasure, restricted client or not.
    "message_threads.client_id": ERASE,
    "thread_staff.client_id": ERASE,
    "messages.client_id": ERASE,
    "message_attachments.client_id": ERASE,
    "clients.account_id": DETACH,
    "bookings.booked_by_account_id": DETACH,
    "consents.signer_account_id": DETACH,
    "message_threads.started_by_account_id": DETACH,
    "messages.author_account_id": DETACH,
    "staff_members.account_id": STAFF_ACCOUNT,
}

# Tables with personal columns about staff, not clients: erasure of a client leaves them,
# and no one's "my data" shows them.
STAFF_TABLES: frozenset[str] = frozenset({"staff_members", "availability_exceptions"})
