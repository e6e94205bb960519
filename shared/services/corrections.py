"""Rectification: clients correct their own data in place (profile, household); for data
staff recorded they send a correction request, which staff answer with a status."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from shared import audit, catalogue, paging, policy
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import utcnow
from shared.models.casefile import Assignment, CorrectionRequest
from shared.models.staff import StaffMember
from shared.services import household

OPEN, DONE, REJECTED = "open", "done", "rejected"


class NotAllowed(Exception):
    pass


def request_correction(*, account: Account, client_id: uuid.UUID, about: str,
                       message: str) -> CorrectionRequest:
    try:
        client = household.client_for(account, client_id, need="full")
    except household.NotAllowed as exc:
        raise NotAllowed from exc
    message = (message or "").strip()
    if not message:
        raise ValueError("empty")
    about = about if about in catalogue.BY_COLUMN else "other"
    request = CorrectionRequest(client_id=client.id, data_key=client.data_key, about=about)
    request.message = message[:2000]
    db.session.add(request)
    db.session.commit()
    return request


def requests_for(account: Account) -> list[CorrectionRequest]:
    ids = [c.id for c in household.household_clients(account)]
    return list(db.session.scalars(select(CorrectionRequest)
                                   .where(CorrectionRequest.client_id.in_(ids))
                                   .order_by(CorrectionRequest.created_at.desc()))) if ids else []


def _open_requests(member: StaffMember, *columns):
    """Admins see all open requests, caseworkers those of their assigned clients."""
    stmt = select(*(columns or (CorrectionRequest,))).select_from(CorrectionRequest) \
        .where(CorrectionRequest.status == OPEN)
    if not policy.may(member.role, policy.SEE_ALL_CORRECTIONS):
        stmt = stmt.join(Assignment, Assignment.client_id == CorrectionRequest.client_id) \
            .where(Assignment.staff_member_id == member.id)
    return stmt


def open_for_staff(member: StaffMember, *, page: int = 1) -> paging.Page:
    """A page of open requests, the oldest first, with their clients: admins see all open
    requests, caseworkers those of their assigned clients. The clients on the page are
    logged (only those)."""
    def log(client_ids: list) -> None:
        for client_id in client_ids:
            audit.record_access(client_id=client_id, staff_member=member,
                                category=audit.CASE_FILE)

    return paging.logged_page(
        _open_requests(member).order_by(CorrectionRequest.created_at, CorrectionRequest.id),
        CorrectionRequest, page, log)


def answer_by(received_at: datetime) -> datetime:
    """A request from a client is answered within a month (Art. 12(3) GDPR); the same rule
    for corrections and for checking an erasure."""
    from flask import current_app

    days = current_app.extensions["einblick"].config.request_deadline_days
    return received_at + timedelta(days=days)


def open_summary(member: StaffMember) -> tuple[int, datetime | None, int]:
    """How many open requests the member answers, the oldest one's answer-by date and how
    many are overdue: one statement, and no client's data is read."""
    now = utcnow()
    cutoff = now - (answer_by(now) - now)  # received before it: past the answer-by date
    total, oldest, overdue = db.session.execute(_open_requests(
        member, func.count(), func.min(CorrectionRequest.created_at),
        func.coalesce(func.sum(case((CorrectionRequest.created_at < cutoff, 1), else_=0)), 0),
    )).one()
    return total, (answer_by(oldest) if oldest is not None else None), overdue


def deadline(request: CorrectionRequest) -> datetime:
    return answer_by(request.created_at)


def answer(*, member: StaffMember, request_id: uuid.UUID, status: str, reply: str) -> None:
    if status not in (DONE, REJECTED):
        raise ValueError(status)
    # Open and among those the member answers (one statement, nobody else's data read).
    if db.session.scalar(_open_requests(member, CorrectionRequest.id)
                         .where(CorrectionRequest.id == request_id)) is None:
        raise NotAllowed
    request = db.session.get(CorrectionRequest, request_id)
    request.status = status
    request.reply = (reply or "").strip()[:2000] or None
    request.handled_at = utcnow()
    request.handled_by_id = member.id
    audit.record_access(client_id=request.client_id, staff_member=member,
                        category=audit.CASE_FILE, action=audit.CHANGE)
    db.session.commit()
