"""Everything stored about a client, generated from the data catalogue: for each declared
column, the values held for this client (decrypted for them), with purpose, legal basis,
retention, who can see it and where it came from. Nothing here is a hand-picked list: a
column added to the catalogue shows up, and whose rows are a client's comes from the
catalogue's declaration (``client_tables``): a table with client data not declared there
stops this page and the export (UndeclaredClientData) instead of being left out.

A column the catalogue marks as a secret is never read for its value, not even for its
owner: the item says only that it exists, how many, since when and how to remove it. A
guardian sees none of a child's categories the catalogue keeps for the person's own eyes
(security, access log), and nothing of a child's own account (its address, language, who
invited it, its sessions ...): not even whether one was made for an invitation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from flask_babel import format_date, format_datetime
from flask_babel import gettext as _
from sqlalchemy import select

from shared import catalogue
from shared.auth.totp import STEP_SECONDS
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.clients import Client
from shared.services import client_tables
from shared.services.client_tables import ACCOUNTS, CLIENTS, Reference


class _Owners(Mapping):
    """How to find a table's rows that belong to a client, as the catalogue declares it
    (``client_tables.owners``): the column naming the client or their account, the table's
    own name for the client's and the account's row, None for staff data. Read afresh, so
    a table declared later is seen; undeclared client data raises UndeclaredClientData."""

    def __getitem__(self, table: str) -> Reference | str | None:
        return client_tables.owners()[table]

    def __iter__(self) -> Iterator[str]:
        return iter(client_tables.owners())

    def __len__(self) -> int:
        return len(client_tables.owners())


OWNERS: Mapping[str, Reference | str | None] = _Owners()


def _account_tables(owners: Mapping) -> frozenset[str]:
    """The young person's own account and what hangs on it: never shown to a guardian."""
    return frozenset({ACCOUNTS} | {table for table, rule in owners.items()
                                   if isinstance(rule, Reference) and rule.of == ACCOUNTS})

SHOWN_AS = {
    catalogue.BLIND_INDEX: "search-key",
    catalogue.HASHED: "hash",
}
PRESENCE_ONLY = "secret"
# Files and signature material: listed as present, delivered as files in the export, never
# decrypted just to build this page (a document can be 20 MB).
FILE_COLUMNS = frozenset({"documents.content", "consents.document", "consents.evidence",
                          "consents.receipt", "consents.withdrawal_receipt"})
# Columns that store a time as a number, shown as the time they stand for. The
# authenticator's last time step (kept to refuse a code used twice) is when that code was
# valid. Its catalogue entry names no role in visible_to, as the passkey details do: no one
# works with it, yet "my data" shows everything stored about the person.
AS_TIME = {
    "accounts.totp_last_step": lambda step: datetime.fromtimestamp(step * STEP_SECONDS, UTC),
}


@dataclass(frozen=True)
class Presence:
    """A secret's stand-in: that it exists, in how many rows and since when."""

    count: int
    since: datetime | None  # the earliest, if the catalogue names a "since" column


@dataclass
class Item:
    entry: catalogue.Entry
    values: list = field(default_factory=list)
    # "search-key" / "hash" / "file" / "secret": not shown as a value
    shown_as: str | None = None
    count: int = 0
    changed_at: datetime | None = None  # the latest change of any of these rows
    deleted_on: datetime | None = None  # when the first of them is due for deletion
    presence: Presence | None = None  # only for secrets


def _changed_at(rows: list) -> datetime | None:
    stamps = [stamp for row in rows for name in ("updated_at", "decided_at", "withdrawn_at",
                                                  "given_at", "created_at")
              if isinstance(stamp := getattr(row, name, None), datetime)]
    return max(stamps) if stamps else None


def _deleted_on(rows: list) -> datetime | None:
    from shared.services import erasure

    dates = [until for row in rows if (until := erasure.kept_until(row, None)) is not None]
    return min(dates) if dates else None


def _rows(table: str, client: Client, owners: Mapping | None = None) -> list:
    rule = (OWNERS if owners is None else owners)[table]
    if rule is None:
        return []
    if rule == CLIENTS:
        return list(db.session.scalars(select(Client).where(Client.id == client.id)))
    if rule == ACCOUNTS:
        return list(db.session.scalars(select(Account).where(Account.id == client.account_id)))
    owner = client.id if rule.of == CLIENTS else client.account_id
    if owner is None:
        return []
    return list(db.session.scalars(select(rule.attribute.class_)
                                   .where(rule.attribute == owner)))


def _holds(row, column: str) -> bool:
    """Whether the row holds a value in ``column``, without decrypting it."""
    if hasattr(type(row), f"{column}_ciphertext"):
        return getattr(row, f"{column}_ciphertext") is not None
    return getattr(row, column, None) not in (None, b"", "")


def _presence(rows: list, column: str, entry: catalogue.Entry) -> Presence | None:
    holding = [row for row in rows if _holds(row, column)]
    if not holding:
        return None
    dates = [stamp for row in holding
             if entry.since and (stamp := getattr(row, entry.since, None)) is not None]
    return Presence(len(holding), min(dates) if dates else None)


def secret_words(item: Item, *, removal: bool = True) -> str:
    """What "my data" and the export say in place of a secret, in the user's language, with
    how to remove it unless ``removal`` is False (the page links that sentence)."""
    presence = item.presence
    if presence.since is not None and presence.count > 1:
        words = _("%(count)s stored, since %(date)s; not shown, for your security.",
                  count=presence.count, date=format_date(presence.since, "long"))
    elif presence.since is not None:
        words = _("Stored since %(date)s; not shown, for your security.",
                  date=format_date(presence.since, "long"))
    elif presence.count > 1:
        words = _("%(count)s stored; not shown, for your security.", count=presence.count)
    else:
        words = _("Stored; not shown, for your security.")
    return f"{words} {item.entry.removal}" if removal and item.entry.removal else words


def _value(row, column: str, entry: catalogue.Entry):
    if entry.secret or entry.storage in SHOWN_AS:
        return None
    value = getattr(row, column, None)
    if value is None and hasattr(row, f"{column}_ciphertext"):
        value = None
    if isinstance(value, bytes):
        return None
    return value


def items_for(client: Client, *, as_guardian: bool) -> dict[str, list[Item]]:
    """Catalogue entries with this client's values, grouped by category. A guardian does
    not see what is confidential from guardians."""
    grouped: dict[str, list[Item]] = {}
    loaded: dict[str, list] = {}  # each table read once, however many columns it has
    owners = client_tables.owners()  # UndeclaredClientData while a table is undeclared
    account_tables = _account_tables(owners)
    for entry in catalogue.ENTRIES:
        table, column = entry.column.split(".")
        if owners.get(table) is None:
            continue
        if as_guardian and (entry.category in catalogue.OWN_EYES_ONLY
                            or table in account_tables):
            continue  # a child's own account, its security and access log are theirs alone
        if table not in loaded:
            loaded[table] = _rows(table, client, owners)
        rows = loaded[table]
        if as_guardian:
            rows = [r for r in rows if not getattr(r, "confidential_from_guardians", False)]
        if table == "notes":
            rows = [r for r in rows if column != "body" or r.visible_to_client]
        if table == "documents":
            rows = [r for r in rows if r.visible_to_client]
        if entry.secret:
            presence = _presence(rows, column, entry)
            if presence is not None:
                grouped.setdefault(entry.category, []).append(
                    Item(entry, [], PRESENCE_ONLY, presence.count, _changed_at(rows),
                         _deleted_on(rows), presence))
            continue
        values = []
        if entry.column not in FILE_COLUMNS:
            for row in rows:
                value = _value(row, column, entry)
                if value is not None and value != "":
                    values.append(value)
        shown_as = "file" if entry.column in FILE_COLUMNS else SHOWN_AS.get(entry.storage)
        item = Item(entry, values, shown_as if rows else None, len(rows),
                    _changed_at(rows), _deleted_on(rows))
        if values or item.shown_as:
            grouped.setdefault(entry.category, []).append(item)
    return grouped


def display(value, entry: catalogue.Entry | None = None) -> str:
    """A stored value as a person reads it, in their language: a time in the
    organisation's time zone (also one stored as a number, ``AS_TIME``), a date,
    "yes"/"no", and a code as the words the catalogue gives it (``Entry.values``; several
    codes may be stored comma-separated). The one place "my data", the export's index.html
    and its CSVs turn values into text; data.json keeps the machine values."""
    labels = entry.values if entry is not None else None
    if entry is not None and entry.column in AS_TIME and isinstance(value, int):
        value = AS_TIME[entry.column](value)
    if labels and isinstance(value, str):
        codes = value.split(",")
        if all(code in labels for code in codes):
            return ", ".join(str(labels[code]) for code in codes)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return format_datetime(value, "medium")
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, dict):
        return ", ".join(f"{display(k, entry)}: {display(v, entry)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(display(v, entry) for v in value)
    return str(value)
