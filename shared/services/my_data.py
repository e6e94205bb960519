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
invited it, its sessions ...): not even whether one was made for an invitation.

People read words, not machine values: ``describe`` labels every value once (``label``:
names for the ids of services, staff, consents and people, looked up in one query per kind
however many rows there are; times in the organisation's time zone; codes in words) and
sums each category up (what, who can see it, until when). "My data" and the export's
index.html and CSVs show these words; data.json keeps the machine values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache

from babel.lists import format_list
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select

from shared import catalogue
from shared.auth.totp import STEP_SECONDS
from shared.content_i18n import consent_title, service_text
from shared.extensions import db
from shared.i18n import format_day, format_when
from shared.models.accounts import Account
from shared.models.bookings import Service
from shared.models.clients import Client
from shared.models.consents import ConsentTemplate
from shared.models.household import ACCESS_FULL
from shared.models.staff import StaffMember
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
# Counted, not read: the category has a page of its own (the access log).
COUNTED = "counted"
# Categories "my data" sums up with a count and a link to their own page instead of
# listing each row's values: the access log (/my-data/access), which grows with every visit.
SUMMARY_ONLY = frozenset({catalogue.ACCESS_LOG})
# Categories summed up in one line, with who can see them and until when one tap away
# alongside the values: conversations grow with every message, and one conversation's
# summary and terms in full took a 360 px phone 250 px (Mia's page grew past three screens).
ONE_LINE = frozenset({catalogue.MESSAGES})
# Files and signature material: listed as present, delivered as files in the export, never
# decrypted just to build this page (a document can be 20 MB).
FILE_COLUMNS = frozenset({"documents.content", "consents.document", "consents.evidence",
                          "consents.receipt", "consents.withdrawal_receipt",
                          "message_attachments.content"})
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
    # "search-key" / "hash" / "file" / "secret" / "counted": not shown as a value
    shown_as: str | None = None
    count: int = 0
    changed_at: datetime | None = None  # the latest change of any of these rows
    deleted_on: datetime | None = None  # when the first of them is due for deletion
    presence: Presence | None = None  # only for secrets
    shown: list[str] = field(default_factory=list)  # the values in words (``label``)


def _changed_at(rows: list) -> datetime | None:
    stamps = [stamp for row in rows for name in ("updated_at", "decided_at", "withdrawn_at",
                                                  "given_at", "created_at")
              if isinstance(stamp := getattr(row, name, None), datetime)]
    return max(stamps) if stamps else None


def _deleted_on(rows: list) -> datetime | None:
    from shared.services import erasure, messages

    dates = [until for row in rows
             if (until := erasure.kept_until(row, None) or messages.deleted_on(row)) is not None]
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
                  count=presence.count, date=format_day(presence.since, "long"))
    elif presence.since is not None:
        words = _("Stored since %(date)s; not shown, for your security.",
                  date=format_day(presence.since, "long"))
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


def _count(table: str, client: Client, owners: Mapping) -> tuple[int, datetime | None]:
    """How many rows of ``table`` are the client's, and when the latest was written: one
    statement, whatever the number."""
    rule = owners[table]
    owner = client.id if rule.of == CLIENTS else client.account_id
    if owner is None:
        return 0, None
    model = rule.attribute.class_
    if not hasattr(model, "created_at"):
        return db.session.scalar(select(func.count()).select_from(model)
                                 .where(rule.attribute == owner)), None
    count, last = db.session.execute(select(func.count(), func.max(model.created_at))
                                     .where(rule.attribute == owner)).one()
    if isinstance(last, datetime) and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)  # SQLite returns an aggregate's time naive
    return count, last


def items_for(client: Client, *, as_guardian: bool,
              counted: frozenset[str] = frozenset()) -> dict[str, list[Item]]:
    """Catalogue entries with this client's values, grouped by category. A guardian does
    not see what is confidential from guardians. The rows of the categories in ``counted``
    are counted, not read (``COUNTED``): their values are shown on a page of their own."""
    grouped: dict[str, list[Item]] = {}
    loaded: dict[str, list] = {}  # each table read once, however many columns it has
    tallies: dict[str, tuple[int, datetime | None]] = {}
    owners = client_tables.owners()  # UndeclaredClientData while a table is undeclared
    account_tables = _account_tables(owners)
    for entry in catalogue.ENTRIES:
        table, column = entry.column.split(".")
        if owners.get(table) is None:
            continue
        if as_guardian and (entry.category in catalogue.OWN_EYES_ONLY
                            or table in account_tables):
            continue  # a child's own account, its security and access log are theirs alone
        if entry.category in counted and isinstance(owners[table], Reference):
            if table not in tallies:
                tallies[table] = _count(table, client, owners)
            count, last = tallies[table]
            if count:
                grouped.setdefault(entry.category, []).append(
                    Item(entry, [], COUNTED, count, last))
            continue
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


# -- in words --------------------------------------------------------------------------------
class Names:
    """What the ids in the items stand for, in words: the names of services, staff members,
    consents (their title in the reader's language) and people (an account's holder),
    looked up for all items at once, one query per kind however many rows hold them."""

    def __init__(self, items: Iterable[Item], *, viewer: Account | None) -> None:
        wanted: dict[str, set] = {}
        for item in items:
            if item.entry.names:
                wanted.setdefault(item.entry.names, set()).update(
                    value for value in item.values if value is not None)
        self._viewer = viewer.id if viewer is not None else None
        self._names: dict[str, dict] = {kind: {} for kind in wanted}
        for kind, ids in wanted.items():
            self._names[kind] = self._LOOKUPS[kind](self, sorted(ids, key=str))

    def _services(self, ids: list[uuid.UUID]) -> dict:
        # In the reader's language, "(in German)" where the service has none.
        return {service.id: service_text(service, "name").plain for service in
                db.session.scalars(select(Service).where(Service.id.in_(ids)))}

    def _staff(self, ids: list[uuid.UUID]) -> dict:
        return {member.id: member.name or _("a staff member") for member in
                db.session.scalars(select(StaffMember).where(StaffMember.id.in_(ids)))}

    def _consents(self, ids: list[uuid.UUID]) -> dict:
        return {template.id: consent_title(template)
                for template in db.session.scalars(
                    select(ConsentTemplate).where(ConsentTemplate.id.in_(ids)))}

    def _consent_keys(self, keys: list[str]) -> dict:
        titles = {}
        for template in db.session.scalars(select(ConsentTemplate)
                                           .where(ConsentTemplate.key.in_(keys))
                                           .order_by(ConsentTemplate.version)):
            titles[template.key] = consent_title(template)
        return titles  # the newest version's title, read last

    def _people(self, ids: list[uuid.UUID]) -> dict:
        names = {}
        for person in db.session.scalars(select(Client).where(Client.account_id.in_(ids))):
            name = person.full_name or _("a parent or guardian")
            names[person.account_id] = (_("%(name)s (you)", name=name)
                                        if person.account_id == self._viewer else name)
        if self._viewer in ids and self._viewer not in names:
            names[self._viewer] = _("you")
        return names

    _LOOKUPS = {
        catalogue.NAMES_SERVICE: _services,
        catalogue.NAMES_STAFF_MEMBER: _staff,
        catalogue.NAMES_CONSENT: _consents,
        catalogue.NAMES_CONSENT_KEY: _consent_keys,
        catalogue.NAMES_ACCOUNT_HOLDER: _people,
    }

    def of(self, kind: str, value) -> str:
        """The name ``value`` stands for; never the id itself (a deleted service, a
        removed staff member: "no longer known")."""
        return self._names.get(kind, {}).get(value) or _("no longer known")


def moment(value: datetime) -> str:
    """A time as people read it: the date and the hour and minute, in the organisation's
    time zone and the reader's language ("30.11.2026, 16:40"; "Nov 30, 2026, 4:40 PM")."""
    return format_when(value)


def display(value, entry: catalogue.Entry | None = None, names: Names | None = None) -> str:
    """A stored value as a person reads it, in their language: the name an id stands for
    (``Entry.names``, looked up by ``names``), a time in the organisation's time zone
    (also one stored as a number, ``AS_TIME``), a date, "yes"/"no", and a code as the
    words the catalogue gives it (``Entry.values``; several codes may be stored
    comma-separated, read as a list in words). The one place "my data", the export's
    index.html and its CSVs turn values into text; data.json keeps the machine values."""
    labels = entry.values if entry is not None else None
    if entry is not None and entry.names:
        return names.of(entry.names, value) if names is not None else _("no longer known")
    if entry is not None and entry.column in AS_TIME and isinstance(value, int):
        value = AS_TIME[entry.column](value)
    if labels and isinstance(value, str):
        codes = value.split(",")
        if all(code in labels for code in codes):
            return words([str(labels[code]) for code in codes])
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return moment(value)
    if isinstance(value, date):
        return format_day(value, "medium")
    if isinstance(value, dict):
        return words([f"{display(k, entry)}: {display(v, entry)}" for k, v in value.items()])
    if isinstance(value, list | tuple):
        return words([display(v, entry) for v in value])
    return str(value)


def words(parts: list[str]) -> str:
    """A list as a sentence says it: "a, b and c" ("a, b und c")."""
    if not parts:
        return ""
    return format_list([str(part) for part in parts], locale=get_locale() or "de")


def readers(roles: Iterable[str]) -> str:
    """Who can see something, in words: "you, administrators and caseworkers"."""
    locale = get_locale()
    return _readers(frozenset(roles), None if locale is None else str(locale))


@lru_cache(maxsize=512)
def _readers(roles: frozenset[str], _locale: str | None) -> str:
    # Put in words once per set of roles and language in this process ("my data" asks
    # some 90 times a page, each a Babel list): catalogue words, nothing of anyone's.
    named = [str(catalogue.READERS[role]) for role in catalogue.READERS if role in roles]
    return words(named) if named else _("nobody (used only by the system)")


def label(items: Iterable[Item], *, viewer: Account | None) -> None:
    """Put each item's values in words (``Item.shown``), for "my data", index.html and the
    CSVs alike; the names behind ids are looked up once for all of them."""
    items = list(items)
    names = Names(items, viewer=viewer)
    for item in items:
        item.shown = [display(value, item.entry, names) for value in item.values]


# -- the summary: per category what, who can see it, until when ------------------------------
WHAT_NAMES = 2  # kinds of data a category's summary names before "and 4 more"


@dataclass
class Category:
    key: str
    items: list[Item]

    @property
    def label(self) -> str:
        return str(catalogue.CATEGORY_LABELS.get(self.key, self.key))

    @property
    def summary_only(self) -> bool:
        """Summed up with a count; its entries are listed on a page (or, in the export,
        a list) of their own: the access log."""
        return self.key in SUMMARY_ONLY

    @property
    def one_line(self) -> bool:
        """Summed up in one line (``in_one_line``); the values, who can see them and until
        when are in the details."""
        return self.key in ONE_LINE

    @property
    def in_one_line(self) -> str:
        """The one-line summary of a conversations category: "2 conversations with 5
        messages, the latest on 02.12.2026." (what is stored is named in the details)."""
        def column(name: str) -> Item | None:
            return next((item for item in self.items if item.entry.column == name), None)

        threads, sent = column("message_threads.created_at"), column("messages.created_at")
        if threads is None or sent is None or not sent.values:
            return self.what
        return _("%(conversations)s with %(messages)s, the latest on %(date)s.",
                 conversations=ngettext("%(num)d conversation", "%(num)d conversations",
                                        threads.count),
                 messages=ngettext("%(num)d message", "%(num)d messages", sent.count),
                 date=format_day(max(sent.values)))

    @property
    def what(self) -> str:
        """What is stored, as the catalogue names it, the values people read first: "Email
        address, Full name and 4 more" (the details list them all). Search keys and
        fingerprints are named only where nothing readable is stored: they count among
        the "more"."""
        values_first = sorted(self.items, key=lambda item: item.shown_as is not None)
        readable = [item for item in values_first if item.shown_as not in SHOWN_AS.values()]
        named = (readable or values_first)[:WHAT_NAMES]
        labels = [str(item.entry.label) for item in named]
        if len(self.items) > len(named):
            more = len(self.items) - len(named)
            labels.append(ngettext("%(num)d more", "%(num)d more", more))
        return words(labels)

    @property
    def readers(self) -> str:
        """Who can see any of it (each item's details say exactly who sees what)."""
        return readers({role for item in self.items for role in item.entry.visible_to})

    @property
    def legal_bases(self) -> list[str]:
        """Why we may keep it: each legal basis the catalogue gives these items, once."""
        return list(dict.fromkeys(str(item.entry.legal_basis) for item in self.items))

    @property
    def retention(self) -> str:
        """How long it is kept: each rule the catalogue gives these items, once."""
        return " ".join(dict.fromkeys(str(item.entry.retention) for item in self.items))

    @property
    def deleted_on(self) -> datetime | None:
        """When the first of it is due for deletion, if that date is fixed already."""
        dates = [item.deleted_on for item in self.items if item.deleted_on is not None]
        return min(dates) if dates else None

    @property
    def terms(self) -> tuple[str, str, datetime | None]:
        """Who can see it and until when, as the summary says it: neighbours with the same
        terms share one line on the page (``Person.runs``)."""
        return self.readers, self.retention, self.deleted_on

    @property
    def count(self) -> int:
        return max((item.count for item in self.items), default=0)

    @property
    def latest(self) -> datetime | None:
        stamps = [item.changed_at for item in self.items if item.changed_at is not None]
        return max(stamps) if stamps else None


@dataclass
class Person:
    client: Client
    is_self: bool
    as_guardian: bool
    categories: list[Category]

    @property
    def items(self) -> list[Item]:
        return [item for category in self.categories for item in category.items]

    @property
    def runs(self) -> list[list[Category]]:
        """The categories in reading order, neighbours with the same terms (who can see
        them, until when) together, so the page says those once for the run and not in
        the same words twice in a row. A category summed up with a count or in one line
        stands alone."""
        runs: list[list[Category]] = []
        for category in self.categories:
            alone = (category.summary_only or category.one_line
                     or (runs and (runs[-1][0].summary_only or runs[-1][0].one_line)))
            if runs and not alone and runs[-1][0].terms == category.terms:
                runs[-1].append(category)
            else:
                runs.append([category])
        return runs


def people(account: Account) -> list[tuple[Client, bool, bool]]:
    """Whose data this account sees, as (client, is it themselves, as their guardian): its
    own client (not while an invited account's hand-over is pending) and each dependant
    it may fully see, as ``household`` decides for every page."""
    from shared.services import household

    own = household.own_client(account)
    found = [(own, True, False)] if own is not None else []
    return found + [(child, False, True)
                    for child in household.visible_dependants(account, need=ACCESS_FULL)]


# The order a person reads the categories in: who they are and what they booked and
# signed first, how the account works and who looked at it last.
READING_ORDER = (catalogue.CONTACT, catalogue.HOUSEHOLD, catalogue.BOOKINGS, catalogue.CONSENTS,
                 catalogue.DOCUMENTS, catalogue.NOTES, catalogue.ACCOUNT, catalogue.SECURITY,
                 catalogue.ACCESS_LOG)


def describe(account: Account, *, counted: frozenset[str] = SUMMARY_ONLY) -> list[Person]:
    """Everything stored about the account holder and the dependants they see, each value
    in words and each category summed up, in ``READING_ORDER``. The categories in
    ``counted`` are counted, not read (the export reads them all)."""
    order = list(READING_ORDER)
    found = []
    for client, is_self, as_guardian in people(account):
        groups = items_for(client, as_guardian=as_guardian, counted=counted)
        keys = sorted(groups, key=lambda key: order.index(key) if key in order else len(order))
        found.append(Person(client, is_self, as_guardian,
                            [Category(key, groups[key]) for key in keys]))
    label([item for person in found for item in person.items], viewer=account)
    return found


# What the category partial (portal/_my_data_category.html) calls, for the page and
# index.html alike.
TEMPLATE_HELPERS = {"secret_words": secret_words, "moment": moment, "readers": readers,
                    "words": words}
