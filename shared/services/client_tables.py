"""Which tables hold a client's data, and what erasure does with each, read from the models'
metadata and the catalogue's declaration (``catalogue.CLIENT_REFERENCES``) instead of lists
kept by hand. Erasure, "my data" and the export iterate what this returns. Each call first
holds the declaration against the metadata and raises ``UndeclaredClientData`` naming what
is missing, so a table added with a client column stops erasure and the export until the
catalogue says what it holds and what becomes of it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Column, Table
from sqlalchemy.orm import InstrumentedAttribute

from shared import catalogue
from shared.models import Base
from shared.models.base import OWNER_ATTRIBUTE

CLIENTS = "clients"
ACCOUNTS = "accounts"
# The rows whose own id is the client's (or account's): erasure handles them itself.
SUBJECTS = (CLIENTS, ACCOUNTS)
# A column without a foreign key (the access log keeps no link, on purpose) still names a
# client or an account by its name.
_NAMES_A_PERSON = re.compile(r"(^|_)(client|account)_id$")
# Actions that make a row part of the client's (or the account's) data.
OWNING = (catalogue.KEEP, catalogue.KEEP_WITH_FILE, catalogue.ERASE)
ACTIONS = (*OWNING, catalogue.DETACH, catalogue.STAFF_ACCOUNT)


class UndeclaredClientData(Exception):
    """A table holds client data the catalogue does not declare, or declares wrongly:
    erasure could leave it behind and the export could miss it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("shared/catalogue.py: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Reference:
    """A column naming a client (``of`` = "clients") or an account, with what erasure does."""

    column: Column
    action: str
    of: str

    @property
    def table(self) -> Table:
        return self.column.table

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    @property
    def attribute(self) -> InstrumentedAttribute:
        """The column as its model's attribute (``Booking.client_id``)."""
        return attribute(self.column)


def names_whom(column: Column) -> str | None:
    """"clients" or "accounts" if the column names a client or an account, else None."""
    if column.foreign_keys:
        targets = {fk.target_fullname.rsplit(".", 1)[0] for fk in column.foreign_keys}
        return next((table for table in SUBJECTS if table in targets), None)
    match = _NAMES_A_PERSON.search(column.name)
    if match is None:
        return None
    return CLIENTS if match.group(2) == "client" else ACCOUNTS


def _declared() -> tuple[list[Reference], list[str]]:
    tables = Base.metadata.tables
    references, problems = [], []
    for name, action in catalogue.CLIENT_REFERENCES.items():
        table, _, column = name.partition(".")
        found = tables[table].c.get(column) if table in tables else None
        if found is None:
            problems.append(f"{name} is declared in CLIENT_REFERENCES but does not exist")
        elif names_whom(found) is None:
            problems.append(f"{name} names neither a client nor an account")
        elif action not in ACTIONS:
            problems.append(f"{name}: unknown action {action!r}")
        else:
            references.append(Reference(found, action, names_whom(found)))
    for table in tables.values():
        for column in table.columns:
            name = f"{table.name}.{column.name}"
            if names_whom(column) and name not in catalogue.CLIENT_REFERENCES:
                problems.append(f"{name} names a client or an account: declare in "
                                f"CLIENT_REFERENCES what erasure does with its rows")
    return references, problems


def _holding(references: list[Reference]) -> set[str]:
    return set(SUBJECTS) | {ref.table.name for ref in references if ref.action in OWNING}


def _completeness(references: list[Reference]) -> list[str]:
    """Every table with personal columns is a client's or staff's; every column of a client's
    table is declared personal or technical (else the export would leave it out)."""
    holding = _holding(references)
    personal = {entry.column.split(".")[0] for entry in catalogue.ENTRIES}
    personal |= {mapper.local_table.name for mapper in Base.registry.mappers
                 if getattr(mapper.class_, OWNER_ATTRIBUTE, None) is not None}
    problems = [f"{table} holds personal data but names no client: declare its client column "
                f"in CLIENT_REFERENCES, or list it in STAFF_TABLES"
                for table in sorted(personal - holding - catalogue.STAFF_TABLES)]
    problems += [f"{table} is listed in STAFF_TABLES but holds a client's data"
                 for table in sorted(holding & catalogue.STAFF_TABLES)]
    tables = Base.metadata.tables
    problems += [f"{table}.{column.name} holds client data but is neither an entry nor "
                 f"TECHNICAL" for table in sorted(holding & set(tables))
                 for column in tables[table].columns
                 if f"{table}.{column.name}" not in catalogue.BY_COLUMN
                 and f"{table}.{column.name}" not in catalogue.TECHNICAL]
    return problems


def _inputs() -> tuple:
    """Everything the check reads: its result holds while none of this changed (the tables
    themselves, not only their names: a table may be defined anew)."""
    return (tuple((table, len(table.c)) for table in Base.metadata.tables.values()),
            tuple(catalogue.CLIENT_REFERENCES.items()), catalogue.STAFF_TABLES,
            catalogue.ENTRIES, catalogue.BY_COLUMN, len(catalogue.BY_COLUMN),
            catalogue.TECHNICAL)


# The last inputs and what they gave: erasure and "my data" ask many times per request.
_last: tuple[tuple, list[Reference], list[str]] | None = None


def references() -> list[Reference]:
    """Every declared reference, in the catalogue's order; raises ``UndeclaredClientData``
    while the declaration and the metadata disagree."""
    global _last
    inputs = _inputs()
    if _last is None or _last[0] != inputs:
        found, problems = _declared()
        problems += _completeness(found)
        _last = (inputs, found, problems)
    _, found, problems = _last
    if problems:
        raise UndeclaredClientData(problems)
    return list(found)


def check() -> None:
    """Raise ``UndeclaredClientData`` unless every table with client data is declared."""
    references()


def select_references(*actions: str, of: str | None = None) -> list[Reference]:
    """The declared references with one of these actions (to clients or to accounts)."""
    return [ref for ref in references()
            if ref.action in actions and (of is None or ref.of == of)]


class _Schema:
    """What erasure asks of the metadata many times per client (the tables in dependency
    order, the data-key columns, each table's class), worked out once per set of tables:
    sorting the tables and walking the mappers cost more than the statements they shape."""

    def __init__(self, tables: tuple) -> None:
        self.tables = tables
        ordered = Base.metadata.sorted_tables
        self.order = {table.name: index for index, table in enumerate(ordered)}
        self.key_columns = [
            column for table in ordered for column in table.columns
            if any(fk.target_fullname == "data_keys.id" for fk in column.foreign_keys)]
        self.classes = {mapper.local_table.name: mapper.class_
                        for mapper in Base.registry.mappers}


_schema: _Schema | None = None


def _current_schema() -> _Schema:
    global _schema
    tables = tuple(Base.metadata.tables.values())  # a table defined anew is a new object
    if _schema is None or _schema.tables != tables:
        _schema = _Schema(tables)
    return _schema


_memo: dict[str, object] = {}
_memo_for: tuple | None = None  # the declaration and schema the memo was built for


def memo(name: str, build):
    """What ``build`` returns, built once per declaration and schema: the statements
    erasure runs for every client, with the id as a bound parameter (building them cost
    more CPU than running them). Raises ``UndeclaredClientData`` as ``references`` does."""
    global _memo_for
    references()
    owner = (_last, _current_schema())
    if _memo_for is None or _memo_for[0] is not owner[0] or _memo_for[1] is not owner[1]:
        _memo.clear()
        _memo_for = owner
    if name not in _memo:
        _memo[name] = build()
    return _memo[name]


def dependants_first(found: list[Reference]) -> list[Reference]:
    """In an order in which their rows can be deleted: rows that others point to last."""
    order = _current_schema().order
    return sorted(found, key=lambda ref: -order[ref.table.name])


def key_columns() -> list[Column]:
    """Every column that names a data key (a key goes when none of them names it)."""
    return list(_current_schema().key_columns)


def model_for(table: str) -> type:
    """The mapped class of a table."""
    found = _current_schema().classes.get(table)
    if found is None:
        raise UndeclaredClientData([f"{table} has no mapped class"])
    return found


def attribute(column: Column) -> InstrumentedAttribute:
    """A table's column as its model's attribute (``Booking.client_id``)."""
    mapper = model_for(column.table.name).__mapper__
    return mapper.get_property_by_column(column).class_attribute


def owners() -> dict[str, Reference | str | None]:
    """For each table with personal columns, how to find a client's rows in it: the
    reference to the client (or, failing one, to their account), ``SUBJECTS`` by name, or
    None for staff data."""
    found = references()
    rules: dict[str, Reference | str | None] = {table: table for table in SUBJECTS}
    for of in (CLIENTS, ACCOUNTS):  # a link to the client wins over one to an account
        for ref in found:
            if ref.of == of and ref.action in OWNING:
                rules.setdefault(ref.table.name, ref)
    rules.update(dict.fromkeys(catalogue.STAFF_TABLES))
    return rules
