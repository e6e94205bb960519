"""Log-ins: accounts, their server-side sessions, single-use tokens and recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.keys import DataKey

CLIENT = "client"
STAFF = "staff"


class Account(Base):
    """A log-in. A client account belongs to a Client; a staff account to a StaffMember."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("kind", "email_bidx"),)
    # An anonymous contact's account (shared/services/anonymous.py) signs in with a
    # pseudonym instead of an address: its email is empty under a random search key that
    # no address hashes to, so it is never found by an address and never sent mail.
    # The account's own values: it names no client (a client row points to its account,
    # and a staff account has none), so they are bound to the account itself.
    __encryption_owner__ = "id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    email_ciphertext: Mapped[bytes] = mapped_column("email", LargeBinary)
    email_bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    email = encrypted(blind_index=True)
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The sign-in name of an anonymous contact (None for everyone else): unique, found by
    # its blind index only.
    pseudonym_ciphertext: Mapped[bytes | None] = mapped_column("pseudonym", LargeBinary)
    pseudonym_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True,
                                                         index=True)
    pseudonym = encrypted(blind_index=True)
    # An address an anonymous contact asked to be told of answers at, until the emailed
    # link (an AccountToken of purpose "notification-email") confirms it: encrypted under
    # the account's data key, gone when confirmed, replaced by a new request, and cleared by
    # the purge once its link has expired (shared/services/anonymous.py).
    pending_email_ciphertext: Mapped[bytes | None] = mapped_column("pending_email",
                                                                   LargeBinary)
    pending_email = encrypted()
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret_ciphertext: Mapped[bytes | None] = mapped_column("totp_secret", LargeBinary)
    totp_secret = encrypted()
    # Shown during set-up until the first code proves the app has it; kept here, not in
    # the (signed, readable) session cookie.
    totp_pending_secret_ciphertext: Mapped[bytes | None] = mapped_column(
        "totp_pending_secret", LargeBinary
    )
    totp_pending_secret = encrypted()
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    locale: Mapped[str | None] = mapped_column(String(8))
    # WebAuthn user handle: random, so the authenticator learns nothing about the account.
    passkey_user_handle: Mapped[bytes | None] = mapped_column(LargeBinary(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A young person's own account created by an invitation: who sent it ("guardian" or
    # "staff") and when staff confirmed in person that the young person holds it. Until
    # then the account sees nothing that is confidential from guardians.
    invited_by: Mapped[str | None] = mapped_column(String(16))
    handover_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.kind}>"

    # Flask-Login: the session's token is the "user id", so ending the session row ends the
    # login everywhere that cookie is replayed (see shared.auth.sessions).
    session_token = None  # set per request by shared.auth.sessions
    current_session = None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str | None:
        return self.session_token

    @property
    def is_client(self) -> bool:
        return self.kind == CLIENT

    @property
    def handover_pending(self) -> bool:
        """Made by an invitation, and staff have not yet confirmed in person that the
        young person holds it (see shared.services.household.own_client)."""
        return self.invited_by is not None and self.handover_confirmed_at is None

    @property
    def is_pseudonymous(self) -> bool:
        """An anonymous contact: signs in with a pseudonym, has no email address."""
        return self.pseudonym_bidx is not None

    @property
    def is_staff(self) -> bool:
        return self.kind == STAFF

    @property
    def has_totp(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    @property
    def passkeys(self) -> list:
        from shared.models.passkeys import PasskeyCredential  # avoid an import cycle

        return list(
            object_session(self).scalars(
                select(PasskeyCredential)
                .where(PasskeyCredential.account_id == self.id)
                .order_by(PasskeyCredential.created_at)
            )
        )

    @property
    def usable_passkeys(self) -> list:
        """The passkeys that sign in: not those marked as possibly copied (flagged_at),
        which work nowhere until the owner removes them."""
        return [credential for credential in self.passkeys if credential.flagged_at is None]

    @property
    def has_passkey(self) -> bool:
        """Whether a passkey can sign in, confirm or sign (a flagged one cannot)."""
        return bool(self.usable_passkeys)

    @property
    def has_second_factor(self) -> bool:
        return self.has_totp or self.has_passkey


class UserSession(Base):
    """A server-side session: the cookie holds a random token, the row holds its hash."""

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    second_factor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship(lazy="joined")


class AccountToken(Base):
    """A single-use emailed link token (confirm email, reset password, staff invitation)."""

    __tablename__ = "account_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """A single-use second-factor recovery code, stored as a keyed hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
