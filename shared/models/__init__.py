"""All models, imported here so the metadata is complete."""

from shared.models.accounts import Account, AccountToken, RecoveryCode, UserSession
from shared.models.audit import AccessChainAnchor, AccessChainChange, AccessEvent
from shared.models.base import Base
from shared.models.bookings import (
    AvailabilityException,
    AvailabilityRule,
    Booking,
    CalendarFeed,
    Service,
    StaffService,
)
from shared.models.casefile import (
    Assignment,
    BreakGlassGrant,
    CorrectionRequest,
    Document,
    Note,
)
from shared.models.clients import Client, ClientNameToken
from shared.models.consents import Consent, ConsentRequest, ConsentTemplate
from shared.models.drafts import FormDraft
from shared.models.household import EmergencyContact, Guardianship
from shared.models.keys import AppMeta, DataKey
from shared.models.messages import Message, MessageAttachment, MessageThread, ThreadStaff
from shared.models.passkeys import PasskeyChallenge, PasskeyCredential
from shared.models.recovery import AccountRecovery
from shared.models.reports import ReportCount
from shared.models.security import SecurityEvent
from shared.models.staff import StaffMember

__all__ = [
    "AccountRecovery",
    "Consent",
    "CorrectionRequest",
    "ConsentRequest",
    "ConsentTemplate",
    "Assignment",
    "BreakGlassGrant",
    "Document",
    "Note",
    "Message",
    "MessageAttachment",
    "MessageThread",
    "ThreadStaff",
    "AccessEvent",
    "AvailabilityException",
    "AvailabilityRule",
    "Booking",
    "CalendarFeed",
    "EmergencyContact",
    "FormDraft",
    "Guardianship",
    "Service",
    "StaffService",
    "Account",
    "AccountToken",
    "AccessChainAnchor",
    "AccessChainChange",
    "AppMeta",
    "Base",
    "Client",
    "ClientNameToken",
    "DataKey",
    "PasskeyChallenge",
    "PasskeyCredential",
    "RecoveryCode",
    "ReportCount",
    "SecurityEvent",
    "StaffMember",
    "UserSession",
]
