"""field owner binding: every encrypted value is bound to whom it belongs

Field format 1 bound a value to ``table.column:row_id``: a note whose ``client_id`` was
changed in the database still decrypted, now in another client's file. Format 2 binds it
to ``table.column:owner_id:row_id`` (see shared/crypto.py). This migration re-encrypts
every stored value from format 1 to 2 (the downgrade back), with the keys of the running
app. Values already in the target format are left alone, so a re-run, or a backup restored
from before this revision that already holds some new values, converts only the rest.

Revision ID: 8d77192e1721
Revises: 8a3f2c1e9d40
Create Date: 2026-12-01 09:00:00
"""

import logging
import time
import uuid
from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from flask import current_app

from shared import crypto

revision = '8d77192e1721'
down_revision = '8a3f2c1e9d40'
branch_labels = None
depends_on = None

log = logging.getLogger("einblick.migrations")

# Frozen at this revision (tables and columns added later are written in format 2 from
# the start): table -> (the owner column, the encrypted columns).
ENCRYPTED = {
    "accounts": ("id", ("email", "totp_secret", "totp_pending_secret")),
    "clients": ("id", ("full_name", "birth_date", "allergies", "medical_notes", "group_name",
                       "phone")),
    "staff_members": ("id", ("name",)),
    "passkey_credentials": ("account_id", ("name",)),
    "bookings": ("client_id", ("note", "staff_message")),
    "documents": ("client_id", ("filename", "content")),
    "notes": ("client_id", ("body",)),
    "break_glass_grants": ("client_id", ("reason",)),
    "correction_requests": ("client_id", ("message", "reply")),
    "emergency_contacts": ("client_id", ("name", "phone")),
    "consents": ("subject_id", ("document", "evidence", "receipt", "withdrawal_receipt")),
}
# Up to 20 MB each: read and written one row at a time, never a batch of them.
LARGE = {("documents", "content")}
BATCH_ROWS = 500
KEYS_CACHED = 20_000  # unwrapped data keys held at once (about 3 MB)


def upgrade() -> None:
    convert_all(to_version=crypto.FIELD_FORMAT_VERSION)


def downgrade() -> None:
    convert_all(to_version=crypto.LEGACY_FIELD_FORMAT_VERSION)


def convert_all(*, to_version: int) -> None:
    connection = op.get_bind()
    keys = _DataKeys(current_app.extensions["einblick"].keyring)
    started = time.monotonic()
    total = skipped = 0
    for table, (owner, columns) in ENCRYPTED.items():
        converted, unreadable = _convert_table(connection, keys, table, owner, columns,
                                               to_version=to_version)
        total += converted
        skipped += unreadable
    log.info("field format %d: %d values re-encrypted in %.1f s", to_version, total,
             time.monotonic() - started)
    if skipped:
        log.warning("field format %d: %d values did not decrypt and were left as they were "
                    "(they were unreadable before this migration too)", to_version, skipped)


class _DataKeys:
    """Unwrapped data keys by id, a bounded number at a time."""

    def __init__(self, keyring: crypto.Keyring) -> None:
        self.keyring = keyring
        self.cache: dict[uuid.UUID, bytes] = {}

    def get(self, key_id: uuid.UUID, *, kek_id: str, wrapped: bytes) -> bytes:
        key = self.cache.get(key_id)
        if key is None:
            if len(self.cache) >= KEYS_CACHED:
                self.cache.clear()
            key = self.keyring.unwrap_data_key(kek_id=kek_id, wrapped=wrapped,
                                               data_key_id=key_id)
            self.cache[key_id] = key
        return key


def _convert_table(connection, keys: _DataKeys, name: str, owner: str,
                   columns: tuple[str, ...], *, to_version: int) -> tuple[int, int]:
    """Re-encrypt one table's values, BATCH_ROWS rows at a time in id order."""
    owner_columns = [] if owner == "id" else [sa.column(owner, sa.Uuid)]
    table = sa.table(name, sa.column("id", sa.Uuid), sa.column("data_key_id", sa.Uuid),
                     *owner_columns, *(sa.column(c, sa.LargeBinary) for c in columns))
    small = [c for c in columns if (name, c) not in LARGE]
    large = [c for c in columns if (name, c) in LARGE]
    data_keys = sa.table("data_keys", sa.column("id", sa.Uuid), sa.column("kek_id", sa.String),
                         sa.column("wrapped_key", sa.LargeBinary))
    # Rows come in id order, so their keys in no order: each row brings its wrapped key.
    selected = [table.c.id, table.c.data_key_id, data_keys.c.kek_id, data_keys.c.wrapped_key,
                *owner_columns, *(table.c[c] for c in small)]
    converted = unreadable = 0
    last_id = None
    while True:
        query = (sa.select(*selected)
                 .join_from(table, data_keys, data_keys.c.id == table.c.data_key_id)
                 .order_by(table.c.id).limit(BATCH_ROWS))
        if last_id is not None:
            query = query.where(table.c.id > last_id)
        rows = connection.execute(query).all()
        if not rows:
            return converted, unreadable
        pending: dict[tuple[str, ...], list[dict]] = defaultdict(list)  # one UPDATE per shape
        for row in rows:
            owner_id = row.id if owner == "id" else getattr(row, owner)
            try:
                data_key = keys.get(row.data_key_id, kek_id=row.kek_id, wrapped=row.wrapped_key)
            except crypto.DecryptionFailed:  # a damaged key; KeyConfigError stops everything
                log.warning("the data key of %s row %s does not unwrap; left unchanged", name,
                            row.id)
                unreadable += len(columns)
                continue
            changes = _reencrypt(data_key, name, {c: getattr(row, c) for c in small},
                                 row_id=row.id, owner_id=owner_id,
                                 data_key_id=row.data_key_id, to_version=to_version)
            for column in large:  # fetched, converted and written back on their own
                blob = connection.scalar(sa.select(table.c[column]).where(table.c.id == row.id))
                new = _reencrypt(data_key, name, {column: blob}, row_id=row.id,
                                 owner_id=owner_id, data_key_id=row.data_key_id,
                                 to_version=to_version)
                del blob
                if column in new and new[column] is None:
                    unreadable += 1
                elif column in new:
                    connection.execute(table.update().where(table.c.id == row.id).values(new))
                    converted += 1
                del new
            unreadable += sum(1 for value in changes.values() if value is None)
            changes = {c: value for c, value in changes.items() if value is not None}
            if changes:
                pending[tuple(sorted(changes))].append(
                    {"row_id": row.id, **{f"new_{c}": value for c, value in changes.items()}})
                converted += len(changes)
        for shape, parameters in pending.items():
            connection.execute(
                table.update().where(table.c.id == sa.bindparam("row_id"))
                .values({c: sa.bindparam(f"new_{c}") for c in shape}), parameters)
        last_id = rows[-1].id


def _reencrypt(data_key: bytes, table: str, blobs: dict[str, bytes | None], *,
               row_id: uuid.UUID, owner_id: uuid.UUID, data_key_id: uuid.UUID,
               to_version: int) -> dict[str, bytes | None]:
    """The columns whose value must change, with the new blob (None: does not decrypt)."""
    from_version = (crypto.LEGACY_FIELD_FORMAT_VERSION
                    if to_version == crypto.FIELD_FORMAT_VERSION else crypto.FIELD_FORMAT_VERSION)
    aads = {
        crypto.LEGACY_FIELD_FORMAT_VERSION: lambda c: crypto.legacy_field_aad(table, c, row_id),
        crypto.FIELD_FORMAT_VERSION: lambda c: crypto.field_aad(table, c, owner_id=owner_id,
                                                                row_id=row_id),
    }
    changes: dict[str, bytes | None] = {}
    for column, blob in blobs.items():
        if blob is None or blob[:1] == bytes([to_version]):
            continue
        try:
            plaintext = crypto.decrypt_field(data_key=data_key, data_key_id=data_key_id,
                                             blob=bytes(blob), aad=aads[from_version](column),
                                             version=from_version)
        except crypto.DecryptionFailed:
            log.warning("%s.%s of row %s does not decrypt; left unchanged", table, column,
                        row_id)
            changes[column] = None
            continue
        changes[column] = crypto.encrypt_field(data_key=data_key, data_key_id=data_key_id,
                                               plaintext=plaintext, aad=aads[to_version](column),
                                               version=to_version)
    return changes
