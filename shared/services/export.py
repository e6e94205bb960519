"""Take everything along: a ZIP with data.json (and its JSON Schema), one CSV per category,
a readable index.html, consent receipts, the documents the client may see, the access log,
and manifest.json listing the SHA-256 of every file, signed with the organisation's seal
key. The ZIP is produced as a stream of chunks, never built in memory."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from sqlalchemy import select

from shared import audit, catalogue, seal, security_log
from shared.extensions import db
from shared.i18n import moment_writer
from shared.models.accounts import Account
from shared.models.base import utcnow
from shared.models.casefile import Document
from shared.models.consents import Consent
from shared.services import casefile, client_tables, messages, my_data, transparency

SCHEMA_VERSION = 1
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Einblick data export",
    "type": "object",
    "required": ["schema_version", "generated_at", "subjects"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "generated_at": {"type": "string", "format": "date-time"},
        "subjects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["client_id", "is_self", "categories", "access_log"],
                "properties": {
                    "client_id": {"type": "string", "format": "uuid"},
                    "is_self": {"type": "boolean"},
                    "categories": {
                        "type": "object",
                        "description": "Catalogue category -> items stored about the person",
                        "additionalProperties": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["column", "label", "values", "purpose",
                                             "legal_basis", "retention"],
                                "properties": {
                                    "column": {"type": "string"},
                                    "label": {"type": "string"},
                                    "values": {"type": "array"},
                                    "shown": {
                                        "type": "array", "items": {"type": "string"},
                                        "description": "The values as index.html and the "
                                                       "CSVs show them: times in the "
                                                       "organisation's time zone, codes "
                                                       "in words, in the reader's language"},
                                    "stored_as": {"type": ["string", "null"]},
                                    "secret": {
                                        "type": "object",
                                        "description": "Only for secrets (keys, hashes of "
                                                       "codes, credentials), whose values are "
                                                       "never exported: that one exists, how "
                                                       "many, since when, how to remove it",
                                        "required": ["exists", "count", "since"],
                                        "properties": {
                                            "exists": {"const": True},
                                            "count": {"type": "integer"},
                                            "since": {"type": ["string", "null"],
                                                      "format": "date-time"},
                                            "how_to_remove": {"type": ["string", "null"]},
                                            "text": {"type": "string"},
                                        },
                                    },
                                    "purpose": {"type": "string"},
                                    "legal_basis": {"type": "string"},
                                    "retention": {"type": "string"},
                                    "source": {"type": "string"},
                                    "visible_to": {
                                        "type": "array", "items": {"type": "string"},
                                        "description": "Roles that may see it ('client': you)"},
                                    "deleted_on": {
                                        "type": ["string", "null"], "format": "date-time",
                                        "description": "When the first of these values is "
                                                       "due for deletion, if fixed already"},
                                    "changed_at": {"type": ["string", "null"],
                                                   "format": "date-time"},
                                },
                            },
                        },
                    },
                    "access_log": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _item(item: my_data.Item) -> dict:
    data = {
        "column": item.entry.column, "label": str(item.entry.label),
        # Spooled values (a long access log) stay spooled: the encoder reads them back.
        "values": (item.values if isinstance(item.values, _Spooled)
                   else [_plain(v) for v in item.values]),
        "shown": item.shown if isinstance(item.shown, _Spooled) else list(item.shown),
        "stored_as": item.shown_as,
        "purpose": str(item.entry.purpose), "legal_basis": str(item.entry.legal_basis),
        "retention": str(item.entry.retention), "source": str(item.entry.source),
        "visible_to": list(item.entry.visible_to),
        "deleted_on": _plain(item.deleted_on), "changed_at": _plain(item.changed_at),
    }
    if item.presence is not None:
        data["secret"] = {
            "exists": True, "count": item.presence.count,
            "since": _plain(item.presence.since),
            "how_to_remove": str(item.entry.removal) if item.entry.removal else None,
            "text": my_data.secret_words(item),
        }
    return data


def _gather(account: Account) -> list[tuple[my_data.Person, transparency.Subject]]:
    """Each person's catalogue items, every value read and put in words (the same words as
    "my data"), beside their access log. Refuses, before reading anything, while a table
    holding client data is undeclared (UndeclaredClientData): the export would leave it
    out."""
    client_tables.check()
    logs = {subject.client.id: subject for subject in transparency.subjects(account)}
    return [(person, logs[person.client.id])
            for person in my_data.describe(account, counted=frozenset())]


def _data(gathered: list[tuple[my_data.Person, transparency.Subject]]) -> dict:
    """data.json: the machine values (and the words beside them, ``shown``)."""
    subjects = []
    for person, subject in gathered:
        categories = {category.key: [_item(item) for item in category.items]
                      for category in person.categories}
        subjects.append({
            "client_id": str(person.client.id), "is_self": person.is_self,
            "categories": categories,
            "access_log": [{"at": line.at.isoformat(), "staff": line.staff_name,
                            "role": line.role, "category": line.category,
                            "action": line.action, "reason": line.reason}
                           for line in subject.events],
        })
    return {"schema_version": SCHEMA_VERSION, "generated_at": utcnow().isoformat(),
            "subjects": subjects}


def build_data(account: Account) -> dict:
    """data.json: each person's catalogue items and access log."""
    return _data(_gather(account))


class _Sink(io.RawIOBase):
    """A write-only stream whose written bytes are collected and handed out in chunks."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data, self.chunks, self.size = b"".join(self.chunks), [], 0
        return data


# -- long histories, spooled ----------------------------------------------------------------
# A client with 50,000 access events must not be held in memory (budget 200 MB for the
# whole process): the rows of the categories "my data" only counts (the access log) and
# the access log's lines are read in batches (a server-side cursor on PostgreSQL) into
# temporary files that stay in memory while small and move to disk when large, and are
# read back a line at a time for data.json, the CSVs and index.html. The ZIP's members are
# written piece by piece; the stream hands out compressed chunks as they fill.
BATCH = 500  # rows per fetch
CHUNK = 64 * 1024  # bytes gathered before a member is written to or a chunk handed out
SPOOL_IN_MEMORY = 64 * 1024  # a spool larger than this goes to a temporary file


_DECODER = json.JSONDecoder()


class _Spooled(list):
    """A list that is not held: its items are JSON lines in a temporary file, read back
    each time it is iterated (the JSON encoder, the CSV writer and the template iterate
    it like a list). Empty lists are false, as lists are."""

    def __init__(self) -> None:
        super().__init__()
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+b")
        self.count = 0

    def append(self, value) -> None:
        self.file.write(json.dumps(value, ensure_ascii=False).encode() + b"\n")
        self.count += 1

    def __iter__(self):
        self.file.seek(0)
        decode = _DECODER.decode  # json.loads would sniff each line's encoding first
        for line in self.file:
            yield decode(line.decode())
        self.file.seek(0, io.SEEK_END)

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def close(self) -> None:
        self.file.close()


class _KnownNames:
    """``my_data.Names`` for values read in batches: the names behind ids looked up once per
    kind and batch, only for ids not seen in an earlier batch."""

    def __init__(self, viewer: Account) -> None:
        self.viewer = viewer
        self.known: dict[str, dict] = {}

    def learn(self, entry, values: list) -> None:
        if not entry.names:
            return
        known = self.known.setdefault(entry.names, {})
        new = [value for value in dict.fromkeys(values) if value not in known]
        if new:
            names = my_data.Names([my_data.Item(entry, new)], viewer=self.viewer)
            known.update((value, names.of(entry.names, value)) for value in new)

    def of(self, kind: str, value) -> str:
        return self.known.get(kind, {}).get(value) or my_data.Names([], viewer=None).of(
            kind, value)


def _spool_counted(person: my_data.Person, account: Account, spools: list,
                   when: Callable[[datetime], str]) -> None:
    """Read the rows of the categories ``describe`` only counted (the access log) in
    batches and put each item's values and their words in spools, as ``items_for`` and
    ``label`` would have put them in the item; items left without a value go, as there."""
    owners = client_tables.owners()
    counted: dict[str, list[my_data.Item]] = {}
    for item in person.items:
        if item.shown_as == my_data.COUNTED:
            counted.setdefault(item.entry.column.split(".")[0], []).append(item)
    names = _KnownNames(account)
    words: dict = {}
    for table, items in counted.items():
        rule = owners[table]
        owner = person.client.id if rule.of == client_tables.CLIENTS else \
            person.client.account_id
        model = rule.attribute.class_
        columns = {item.entry.column: item.entry.column.split(".")[1] for item in items}
        for item in items:
            item.values, item.shown = _Spooled(), _Spooled()
            spools += [item.values, item.shown]
            item.count, item.changed_at, item.deleted_on = 0, None, None
        query = (select(model).where(rule.attribute == owner)
                 # Oldest first (the list built in memory had no order of its own).
                 .order_by(*[column for column in (getattr(model, "created_at", None),)
                             if column is not None], *model.__table__.primary_key.columns)
                 .execution_options(yield_per=BATCH))
        for batch in db.session.scalars(query).partitions():
            changed, deleted = my_data._changed_at(batch), my_data._deleted_on(batch)
            for item in items:
                column = columns[item.entry.column]
                values = [value for row in batch
                          if (value := my_data._value(row, column, item.entry)) is not None
                          and value != ""]
                names.learn(item.entry, values)
                for value in values:
                    item.values.append(_plain(value))
                    item.shown.append(_shown(value, item.entry, names, words, when))
                item.count += len(batch)
                if changed is not None and (item.changed_at is None
                                            or changed > item.changed_at):
                    item.changed_at = changed
                if deleted is not None and (item.deleted_on is None
                                            or deleted < item.deleted_on):
                    item.deleted_on = deleted
            del batch  # before the next is read: one batch of rows held at a time
        for item in items:
            item.shown_as = (("file" if item.entry.column in my_data.FILE_COLUMNS
                              else my_data.SHOWN_AS.get(item.entry.storage))
                             if item.count else None)
    for category in person.categories:
        category.items = [item for item in category.items
                          if not isinstance(item.values, _Spooled)
                          or item.values or item.shown_as]
    person.categories[:] = [category for category in person.categories if category.items]


def _shown(value, entry, names: _KnownNames, words: dict,
           when: Callable[[datetime], str]) -> str:
    """``my_data.display``, once per code or id: a long log repeats the same few."""
    if isinstance(value, datetime) and not entry.names:  # as display() writes it
        return when(value)
    if isinstance(value, datetime | date):
        return my_data.display(value, entry, names)
    key = (entry.column, value)
    if key not in words:
        words[key] = my_data.display(value, entry, names)
    return words[key]


def _spool_access_log(subject: transparency.Subject, spools: list) -> _Spooled:
    lines = _Spooled()
    spools.append(lines)
    for line in transparency.access_lines(subject.client, subject.as_guardian):
        lines.append({"at": line.at.isoformat(), "staff": line.staff_name, "role": line.role,
                      "category": line.category, "action": line.action,
                      "reason": line.reason})
    return lines


def _subject_data(person: my_data.Person, access_log: list) -> dict:
    return {"client_id": str(person.client.id), "is_self": person.is_self,
            "categories": {category.key: [_item(item) for item in category.items]
                           for category in person.categories},
            "access_log": access_log}


def _csv_rows(rows: Iterable[list]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(row)
        if out.tell() >= CHUNK:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _category_rows(items: list[dict]) -> Iterator[list]:
    yield ["column", "label", "value", "purpose", "legal_basis", "retention"]
    for item in items:
        shown = [item["secret"]["text"]] if "secret" in item else None
        for value in shown or item["shown"] or [item["stored_as"]]:
            yield [item["column"], item["label"], value, item["purpose"],
                   item["legal_basis"], item["retention"]]


def _access_rows(access_log: Iterable[dict], words, when: Callable[[str], str]) -> Iterator[list]:
    yield ["at", "staff", "role", "category", "action", "reason"]
    for line in access_log:
        yield [when(line["at"]), line["staff"], line["role"], words(line, "category"),
               words(line, "action"), line["reason"] or ""]


def _remembered(words):
    """``_access_words`` once per code: a long log repeats the same few."""
    known: dict = {}

    def remembered(line: dict, column: str) -> str:
        key = (column, line[column])
        if key not in known:
            known[key] = words(line, column)
        return known[key]

    return remembered


def stream(account_id) -> Iterator[bytes]:
    """The ZIP, chunk by chunk, in memory that does not grow with the history. Records the
    export in each person's access log first (after reading it: the export is not in its
    own log). Takes the account id: the generator runs after the view returned, in its
    own unit of work."""
    spools: list[_Spooled] = []
    try:
        yield from _stream(account_id, spools)
    finally:
        for spool in spools:
            spool.close()


def _stream(account_id, spools: list[_Spooled]) -> Iterator[bytes]:
    account = db.session.get(Account, account_id)
    client_tables.check()
    logs = {subject.client.id: subject for subject in transparency.subjects(account)}
    people = my_data.describe(account)  # the access log counted, read below in batches
    moments = moment_writer()  # the reader's language and zone, looked up once
    when = _when(moments)
    subjects = []
    for person in people:
        _spool_counted(person, account, spools, moments)
        subjects.append(_subject_data(person, _spool_access_log(logs[person.client.id],
                                                                  spools)))
    data = {"schema_version": SCHEMA_VERSION, "generated_at": utcnow().isoformat(),
            "subjects": subjects}
    for subject in subjects:
        audit.record_access(client_id=uuid.UUID(subject["client_id"]), staff_member=None,
                            category=audit.EXPORT, action=audit.DOWNLOAD)
    db.session.commit()
    security_log.record("export.downloaded", account=account)
    config = current_app.extensions["einblick"].config
    organisation_seal = seal.load(config)
    manifest: dict[str, str] = {}
    words = _remembered(_access_words)
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, pieces: Iterable[str | bytes], *,
                compress: bool = True) -> Iterator[bytes]:
            """Write a member from its pieces, a CHUNK at a time; hand out what the
            compressor has written meanwhile."""
            info = zipfile.ZipInfo(name, time.localtime(time.time())[:6])
            # PDFs and images are compressed already: store them as they are.
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o600 << 16
            digest = hashlib.sha256()
            with archive.open(info, "w") as member:
                buffer: list[bytes] = []
                size = 0
                for piece in pieces:
                    piece = piece.encode() if isinstance(piece, str) else piece
                    buffer.append(piece)
                    size += len(piece)
                    if size >= CHUNK:
                        block = b"".join(buffer)
                        buffer, size = [], 0
                        digest.update(block)
                        member.write(block)
                        if sink.size >= CHUNK:
                            yield sink.take()
                block = b"".join(buffer)
                digest.update(block)
                member.write(block)
            manifest[name] = digest.hexdigest()
            yield sink.take()

        yield from add("data.json", json.JSONEncoder(ensure_ascii=False, indent=1)
                       .iterencode(data))
        yield from add("schema.json", [json.dumps(SCHEMA, indent=1)])
        for subject in subjects:
            prefix = "me" if subject["is_self"] else f"child-{subject['client_id'][:8]}"
            for category, items in subject["categories"].items():
                yield from add(f"{prefix}/data/{category}.csv",
                               _csv_rows(_category_rows(items)))
            yield from add(f"{prefix}/access-log.csv",
                           _csv_rows(_access_rows(subject["access_log"], words, when)))
        account = db.session.get(Account, account_id)
        for subject in transparency.subjects(account):
            prefix = "me" if subject.is_self else f"child-{str(subject.client.id)[:8]}"
            for consent in db.session.scalars(select(Consent).where(
                    Consent.subject_id == subject.client.id)):
                if consent.receipt:
                    yield from add(f"{prefix}/receipts/consent-{consent.id}.pdf",
                                   [consent.receipt])
                if consent.withdrawal_receipt:
                    yield from add(f"{prefix}/receipts/withdrawal-{consent.id}.pdf",
                                   [consent.withdrawal_receipt])
                db.session.expire(consent)
            for document in subject.documents:
                yield from add(f"{prefix}/documents/{document.id}-{_document_name(document)}",
                               [document.content], compress=False)
                # One document in memory at a time.
                db.session.expire(document, ["content_ciphertext"])
            for attachment in messages.attachments_for_export(
                    subject.client.id, as_guardian=subject.as_guardian):
                yield from add(f"{prefix}/messages/{attachment.id}-"
                               f"{_attachment_name(attachment)}",
                               [attachment.content], compress=False)
                db.session.expire(attachment, ["content_ciphertext"])
        yield from add("index.html", _index_html(data, people, when))
        yield from add("seal-certificate.pem", [organisation_seal.certificate_pem])
        body = json.dumps({"files": manifest, "schema_version": SCHEMA_VERSION},
                          sort_keys=True, indent=1).encode()
        archive.writestr("manifest.json", body)
        signature = organisation_seal.key.sign(body, ec.ECDSA(hashes.SHA256()))
        archive.writestr("manifest.sig", signature)
        yield sink.take()
    yield sink.take()


def _index_html(data: dict, people: list[my_data.Person],
                when: Callable[[str], str]) -> Iterator[str]:
    """index.html as the template writes it, piece by piece (the access log is read from
    its spool while it is written)."""
    context = {"data": data, "when": when, "access_words": _remembered(_access_words),
               "people": list(zip(people, data["subjects"], strict=True)),
               **my_data.TEMPLATE_HELPERS}
    current_app.update_template_context(context)
    return current_app.jinja_env.get_template("portal/export_index.html").generate(context)


def _when(moments: Callable[[datetime], str]) -> Callable[[str], str]:
    """A time from data.json as the reader reads it (organisation's time zone, Babel),
    written by the export's one ``moment_writer`` (thousands of lines)."""
    return lambda iso: moments(datetime.fromisoformat(iso))


def _access_words(line: dict, column: str) -> str:
    """An access-log line's category or action in words, as the catalogue names them."""
    return my_data.display(line[column], catalogue.BY_COLUMN[f"access_events.{column}"])


# A document's name in the ZIP, after its id: short enough for the paths of every unpacking
# tool (Windows keeps to 260 characters for the whole path).
DOCUMENT_NAME_CHARS = 80


def _attachment_name(attachment) -> str:
    """A message's file in the ZIP: its name cut as a document's is."""
    stem, extension = messages.download_name(attachment).rsplit(".", 1)
    stem = stem[:DOCUMENT_NAME_CHARS - len(extension) - 1].rstrip(" .")
    return f"{stem or 'file'}.{extension}"


def _document_name(document: Document) -> str:
    """The name the portal offers the document under (cleaned, with the extension of the
    type detected at upload, also for names stored by older versions), cut before its
    extension so the extension stays."""
    stem, extension = casefile.download_name(document).rsplit(".", 1)
    stem = stem[:DOCUMENT_NAME_CHARS - len(extension) - 1].rstrip(" .")
    return f"{stem or 'document'}.{extension}"
