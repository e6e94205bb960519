"""Consent templates (versioned, immutable once published) and given consents with their
evidence and sealed receipts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.keys import DataKey
from shared.models.staff import StaffMember

DRAFT = "draft"
PUBLISHED = "published"
GIVEN = "given"
WITHDRAWN = "withdrawn"
# "I do not agree": a record of the refusal (no signature, a confirmation); a later
# consent under the same key supersedes it.
DECLINED = "declined"
PASSKEY = "passkey"
TOTP_NAME = "totp-name"
# The weakest method, for accounts with only a password: a one-time code sent by email
# and the typed name. It proves control of the mailbox and the signed-in session.
EMAIL_CODE_NAME = "email-code-name"
# How a refusal is recorded: the signed-in person confirmed it with a button.
CONFIRMATION = "confirmation"


class ConsentTemplate(Base):
    """What a client consents to. Organisation data: texts per language, German binding."""

    __tablename__ = "consent_templates"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    # {"de": {"title": ..., "text": ...}, "tr": {"title", "text", "purpose", "legal_basis",
    # "audience"}, ...}: German's purpose, legal basis and audience are the columns below.
    texts: Mapped[dict] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(500))
    legal_basis: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(500), default="")  # who will see it
    guardian_signs: Mapped[bool] = mapped_column(Boolean, default=True)
    required_for_service_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def text(self, locale: str) -> dict:
        """The binding title and text a reader of ``locale`` sees and signs."""
        from shared.content_i18n import binding_language

        return self.texts[binding_language(self, locale)]


class Consent(Base):
    """A consent given (and perhaps withdrawn) by a client, or by a guardian for a child."""

    __tablename__ = "consents"
    __encryption_owner__ = "subject_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_templates.id"), index=True)
    template: Mapped[ConsentTemplate] = relationship(lazy="joined")
    subject_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    signer_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    method: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=GIVEN)
    # SHA-256 of the canonical document: lets /verify find the record, reveals nothing.
    document_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    document_ciphertext: Mapped[bytes] = mapped_column("document", LargeBinary)
    document = encrypted(bytes)
    evidence_ciphertext: Mapped[bytes] = mapped_column("evidence", LargeBinary)
    evidence = encrypted(dict)
    receipt_ciphertext: Mapped[bytes | None] = mapped_column("receipt", LargeBinary)
    receipt = encrypted(bytes)
    withdrawal_receipt_ciphertext: Mapped[bytes | None] = mapped_column(
        "withdrawal_receipt", LargeBinary
    )
    withdrawal_receipt = encrypted(bytes)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


_REMINDER_DUE_SQL = "fulfilled_at IS NULL AND reminded_at IS NULL"


class ConsentRequest(Base):
    """Staff asked a client to give a consent (a task in the portal)."""

    __tablename__ = "consent_requests"
    __table_args__ = (
        # The reminder run reads only requests still waiting for their one reminder, by
        # age: this partial index holds just those, however long the history grows.
        Index("ix_consent_requests_reminder_due", "created_at",
              sqlite_where=text(_REMINDER_DUE_SQL), postgresql_where=text(_REMINDER_DUE_SQL)),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    template_key: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_by: Mapped[StaffMember | None] = relationship(lazy="joined")


class ConsentEmailCode(Base):
    """A one-time code sent by email to sign one consent (EMAIL_CODE_NAME). Only a keyed
    hash is kept, and it binds the code to the consent and person it was sent for; short
    lived, used once, and only a few wrong guesses are allowed."""

    __tablename__ = "consent_email_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ConsentEmailCode {self.id}>"
