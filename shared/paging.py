"""Staff lists a page at a time: the same few statements for every page however many rows
the organisation holds (a count, the page's rows, and what the page needs of them loaded
together), and links that say "Older" / "Newer" or "Page 2 of 7" in words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from flask import request
from sqlalchemy import Select, func, select

from shared.extensions import db

PER_PAGE = 25  # rows of a staff list on one page
LAST_PAGE = 10_000  # a page number past this is a typo or a probe


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows, its number (from 1) and how many there are."""

    rows: list[Any]
    page: int
    pages: int
    total: int
    clients: dict[Any, Any] = field(default_factory=dict)  # the rows' clients, by id
    # Counted no further than ``counted_to`` (see locate): more rows follow, the
    # page says "more than", and the last page counted still leads on.
    more: bool = False
    counted_to: int = 0

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages or self.more


def page_arg(name: str = "page") -> int:
    """The page asked for in the address (1 when none or nonsense is given)."""
    page = request.args.get(name, 1, type=int) or 1
    return max(1, min(page, LAST_PAGE))


def count(stmt: Select, *, up_to: int | None = None) -> int:
    """How many rows ``stmt`` selects: one statement, no row read. With ``up_to``, counted
    no further than ``up_to`` + 1 (a count reads every row it counts; more than ``up_to``
    reads as "more than", as the booking queue says): a bounded cost however many there
    are, and pages as far as counted."""
    if up_to is not None:
        stmt = stmt.limit(up_to + 1)
    return db.session.scalar(select(func.count()).select_from(
        stmt.order_by(None).subquery())) or 0


def window(total: int, page: int, per_page: int = PER_PAGE) -> tuple[int, int, int]:
    """(page, pages, offset): the page asked for, moved onto the last one when the list
    has shrunk (a request answered on the last page leaves it empty)."""
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    return page, pages, (page - 1) * per_page


def locate(stmt: Select, page: int, *, per_page: int = PER_PAGE,
           beyond: int | None = None) -> tuple[Page, int]:
    """The numbers of ``page`` (a Page without rows yet) and the offset of its first row.
    With ``beyond``, for a list that may be too long to count: counted no further than
    ``beyond`` rows past the page's start (a count reads every row it counts), so a page
    costs the same whatever the organisation holds, and every row stays reachable: past
    what was counted the page says "more than" and still leads on ("Next page")."""
    if beyond is None:
        total = count(stmt)
        page, pages, offset = window(total, page, per_page)
        return Page([], page, pages, total), offset
    counted_to = (max(page, 1) - 1) * per_page + beyond
    total = count(stmt, up_to=counted_to)
    page, pages, offset = window(min(total, counted_to), page, per_page)
    return Page([], page, pages, total, more=total > counted_to, counted_to=counted_to), offset


def paged(stmt: Select, page: int, per_page: int = PER_PAGE) -> Page:
    """The rows of ``stmt`` (ordered, ending on a unique column) on ``page``: two
    statements, the count and the page."""
    numbers, offset = locate(stmt, page, per_page=per_page)
    rows = list(db.session.scalars(stmt.offset(offset).limit(per_page))) if numbers.total \
        else []
    return replace(numbers, rows=rows)


def logged_page(stmt: Select, model: type, page: int, log: Callable[[list], None],
                per_page: int = PER_PAGE) -> Page:
    """A page of ``model`` rows (``stmt`` selects them, ordered, ending on a unique column)
    that each belong to a client, the clients shown passed to ``log`` (which notes the
    access) and committed, then the rows and their clients loaded: four statements for
    every page besides the log's. Loaded before the commit, every row would be expired by
    it and read again one by one while the page is drawn."""
    from shared.models.clients import Client

    numbers, offset = locate(stmt, page, per_page=per_page)
    if not numbers.total:
        return numbers
    shown = db.session.execute(stmt.with_only_columns(model.id, model.client_id)
                               .offset(offset).limit(per_page)).all()
    client_ids = sorted({client_id for _id, client_id in shown}, key=str)
    log(client_ids)
    db.session.commit()
    loaded = {row.id: row for row in db.session.scalars(
        select(model).where(model.id.in_([row_id for row_id, _client in shown])))}
    clients = {client.id: client for client in db.session.scalars(
        select(Client).where(Client.id.in_(client_ids)))}
    return replace(numbers, rows=[loaded[row_id] for row_id, _client in shown
                                  if row_id in loaded], clients=clients)
