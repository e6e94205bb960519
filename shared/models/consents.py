"""Consent templates (versioned, immutable once published) and given consents with their
evidence and sealed receipts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.keys import DataKey

DRAFT = "draft"
PUBLISHED = "published"
GIVEN = "given"
WITHDRAWN = "withdrawn"
PASSKEY = "passkey"
TOTP_NAME = "totp-name"


class ConsentTemplate(Base):
    """What a client consents to. Organisation data: texts per language, German binding."""

    __tablename__ = "consent_templates"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    # {"de": {"title": ..., "text": ...}, "en": {...}}
    texts: Mapped[dict] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(500))
    legal_basis: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(500), default="")  # who will see it
    guardian_signs: Mapped[bool] = mapped_column(Boolean, default=True)
    required_for_service_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def text(self, locale: str) -> dict:
        return self.texts.get(locale) or self.texts["de"]


class Consent(Base):
    """A consent given (and perhaps withdrawn) by a client, or by a guardian for a child."""

    __tablename__ = "consents"
    __encryption_owner__ = "subject_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_templates.id"))
    template: Mapped[ConsentTemplate] = relationship(lazy="joined")
    subject_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"))
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    signer_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
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
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsentRequest(Base):
    """Staff asked a client to give a consent (a task in the portal)."""

    __tablename__ = "consent_requests"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    template_key: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
