"""Take everything along: a ZIP with data.json (and its JSON Schema), one CSV per category,
a readable index.html, consent receipts, the documents the client may see, the access log,
and manifest.json listing the SHA-256 of every file, signed with the organisation's seal
key. The ZIP is produced as a stream of chunks, never built in memory."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import date, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app, render_template
from sqlalchemy import select

from shared import audit, catalogue, seal, security_log
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import utcnow
from shared.models.casefile import Document
from shared.models.consents import Consent
from shared.services import casefile, client_tables, my_data, transparency

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
        "values": [_plain(v) for v in item.values],
        "shown": list(item.shown),
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

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def stream(account_id) -> Iterator[bytes]:
    """The ZIP, chunk by chunk. Records the export in each person's access log first.
    Takes the account id: the generator runs after the view returned, in its own unit of
    work."""
    account = db.session.get(Account, account_id)
    gathered = _gather(account)
    data = _data(gathered)
    for subject in data["subjects"]:
        audit.record_access(client_id=uuid.UUID(subject["client_id"]), staff_member=None,
                            category=audit.EXPORT, action=audit.DOWNLOAD)
    db.session.commit()
    security_log.record("export.downloaded", account=account)
    config = current_app.extensions["einblick"].config
    organisation_seal = seal.load(config)
    manifest: dict[str, str] = {}
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, payload: bytes, *, compress: bool = True):
            manifest[name] = hashlib.sha256(payload).hexdigest()
            # PDFs and images are compressed already: store them as they are.
            archive.writestr(name, payload, compress_type=zipfile.ZIP_DEFLATED if compress
                             else zipfile.ZIP_STORED)
            return sink.take()

        yield add("data.json", json.dumps(data, ensure_ascii=False, indent=1).encode())
        yield add("schema.json", json.dumps(SCHEMA, indent=1).encode())
        for subject in data["subjects"]:
            prefix = "me" if subject["is_self"] else f"child-{subject['client_id'][:8]}"
            for category, items in subject["categories"].items():
                out = io.StringIO()
                writer = csv.writer(out)
                writer.writerow(["column", "label", "value", "purpose", "legal_basis",
                                 "retention"])
                for item in items:
                    shown = [item["secret"]["text"]] if "secret" in item else None
                    for value in shown or item["shown"] or [item["stored_as"]]:
                        writer.writerow([item["column"], item["label"], value,
                                         item["purpose"], item["legal_basis"],
                                         item["retention"]])
                yield add(f"{prefix}/data/{category}.csv", out.getvalue().encode())
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["at", "staff", "role", "category", "action", "reason"])
            for line in subject["access_log"]:
                writer.writerow([_when(line["at"]), line["staff"], line["role"],
                                 _access_words(line, "category"),
                                 _access_words(line, "action"), line["reason"] or ""])
            yield add(f"{prefix}/access-log.csv", out.getvalue().encode())
        account = db.session.get(Account, account_id)
        for subject in transparency.subjects(account):
            prefix = "me" if subject.is_self else f"child-{str(subject.client.id)[:8]}"
            for consent in db.session.scalars(select(Consent).where(
                    Consent.subject_id == subject.client.id)):
                if consent.receipt:
                    yield add(f"{prefix}/receipts/consent-{consent.id}.pdf", consent.receipt)
                if consent.withdrawal_receipt:
                    yield add(f"{prefix}/receipts/withdrawal-{consent.id}.pdf",
                              consent.withdrawal_receipt)
            for document in subject.documents:
                yield add(f"{prefix}/documents/{document.id}-{_document_name(document)}",
                          document.content, compress=False)
                # One document in memory at a time.
                db.session.expire(document, ["content_ciphertext"])
        yield add("index.html", render_template(
            "portal/export_index.html", data=data, when=_when, access_words=_access_words,
            people=[(person, subject) for (person, _), subject
                    in zip(gathered, data["subjects"], strict=True)],
            **my_data.TEMPLATE_HELPERS).encode())
        yield add("seal-certificate.pem", organisation_seal.certificate_pem)
        body = json.dumps({"files": manifest, "schema_version": SCHEMA_VERSION},
                          sort_keys=True, indent=1).encode()
        archive.writestr("manifest.json", body)
        signature = organisation_seal.key.sign(body, ec.ECDSA(hashes.SHA256()))
        archive.writestr("manifest.sig", signature)
        yield sink.take()
    yield sink.take()


def _when(iso: str) -> str:
    """A time from data.json as the reader reads it (organisation's time zone, Babel)."""
    return my_data.display(datetime.fromisoformat(iso))


def _access_words(line: dict, column: str) -> str:
    """An access-log line's category or action in words, as the catalogue names them."""
    return my_data.display(line[column], catalogue.BY_COLUMN[f"access_events.{column}"])


# A document's name in the ZIP, after its id: short enough for the paths of every unpacking
# tool (Windows keeps to 260 characters for the whole path).
DOCUMENT_NAME_CHARS = 80


def _document_name(document: Document) -> str:
    """The name the portal offers the document under (cleaned, with the extension of the
    type detected at upload, also for names stored by older versions), cut before its
    extension so the extension stays."""
    stem, extension = casefile.download_name(document).rsplit(".", 1)
    stem = stem[:DOCUMENT_NAME_CHARS - len(extension) - 1].rstrip(" .")
    return f"{stem or 'document'}.{extension}"
