"""The booking queue (oldest first; confirm, decline, propose in one tap), day and week
views. Every booking shown to staff is written to the client's access log."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import StringField, TextAreaField

from shared import paging, security_log
from shared.auth.forms import ConfirmForm
from shared.i18n import format_day
from shared.models.staff import StaffMember
from shared.services import availability, bookings, casefile
from staff import bp


class DecisionForm(ConfirmForm):
    """One tap on a request: confirm; decline, with an optional message to the client; or
    propose another free time (a slot token from the request's proposal page)."""

    message = TextAreaField()
    slot = StringField()


def _member() -> StaffMember:
    return current_user.staff_member


# The calendar pages show these years. Anything else is a typo or a probe, and near the
# ends of Python's dates "the next day" or the week's Monday would not even exist.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _day_arg(name: str = "day") -> date | None:
    """The asked-for day (today when none is given), or None when it cannot be shown."""
    raw = request.args.get(name, "")
    if not raw:
        return datetime.now(availability.local_zone()).date()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return _shown_day(day)


def _shown_day(day: date) -> date | None:
    """``day`` if the calendar pages show it, so a page offers no link that would fail."""
    return day if FIRST_DAY <= day <= LAST_DAY else None


def _impossible_day():
    return render_template(
        "error.html", title=_("This date cannot be shown"),
        message=_("The address asks for a day that does not exist or lies too far away. "
                  "Appointments can be shown from %(first)s to %(last)s.",
                  first=format_day(FIRST_DAY, "long"), last=format_day(LAST_DAY, "long")),
        back_url=url_for("staff.bookings_day"), back_label=_("Show today's appointments"),
    ), 400


def _chosen_staff(member: StaffMember, choices: list[StaffMember]) -> StaffMember:
    """The staff member asked for (?staff=ID) among those whose calendar may be shown."""
    wanted = request.args.get("staff")
    for candidate in choices:
        if wanted and str(candidate.id) == wanted:
            return candidate
    return member if member in choices else choices[0]


def _openable(member: StaffMember, rows: list) -> set[uuid.UUID]:
    """The clients among the rows whose names link to their file (it opens without a
    reason: assigned, or an appointment with this member)."""
    return casefile.openable_among(member=member, client_ids={b.client_id for b in rows})


@bp.get("/bookings")
def bookings_queue():
    member = _member()
    # A page of requests at a time; other times to propose are computed only for the
    # request they are asked for (its propose page), never for every row.
    result = bookings.queue(member, page=paging.page_arg())
    return render_template("staff/bookings_queue.html", result=result, rows=result.rows,
                           form=DecisionForm(), member=member,
                           openable=_openable(member, result.rows))


@bp.get("/bookings/<uuid:booking_id>/propose")
def booking_propose(booking_id: uuid.UUID):
    """The free times of a request's staff member, to propose one instead."""
    member = _member()
    try:
        booking, slots = bookings.proposal_choice(member=member, booking_id=booking_id)
    except bookings.NotAllowed:
        security_log.deny()
    except bookings.WrongState:
        flash(_("This booking was already answered."), "warning")
        return redirect(url_for("staff.bookings_queue"))
    return render_template("staff/booking_propose.html", booking=booking, slots=slots,
                           form=DecisionForm(), member=member)


@bp.post("/bookings/<uuid:booking_id>/<action>")
def booking_decide(booking_id: uuid.UUID, action: str):
    member = _member()
    form = DecisionForm()
    if not form.validate_on_submit():
        return redirect(url_for("staff.bookings_queue"))
    try:
        if action == "confirm":
            booking = bookings.confirm(member=member, booking_id=booking_id)
            until = casefile.appointment_file_until(member=member, booking=booking)
            if until is None:
                flash(_("Confirmed. The client gets an email."), "success")
            else:
                flash(_("Confirmed. The client gets an email. You can open their file "
                        "without giving a reason until %(date)s.",
                        date=format_day(until, "long")), "success")
        elif action == "decline":
            bookings.decline(member=member, booking_id=booking_id,
                             message=form.message.data)
            flash(_("Declined. The client gets an email."), "success")
        elif action == "propose":
            bookings.propose(member=member, booking_id=booking_id,
                             slot_token=form.slot.data or "")
            flash(_("New time proposed. The client gets an email."), "success")
        else:
            abort(404)
    except bookings.NotAllowed:
        security_log.deny()
    except bookings.WrongState:
        flash(_("This booking was already answered."), "warning")
    except (bookings.SlotTaken, bookings.SlotUnavailable):
        flash(_("That time is no longer free. Please choose another."), "error")
        if action == "propose":
            return redirect(url_for("staff.booking_propose", booking_id=booking_id))
    # Back to the page of the queue the decision was taken on.
    return redirect(url_for("staff.bookings_queue", page=request.args.get("page", type=int)))


@bp.get("/bookings/day")
def bookings_day():
    member = _member()
    day = _day_arg()
    if day is None:
        return _impossible_day()
    choices = bookings.calendar_owners(member)
    shown = _chosen_staff(member, choices)
    zone = availability.local_zone()
    start = datetime.combine(day, datetime.min.time(), zone)
    rows = bookings.calendar(member, staff_member_id=shown.id, start=start,
                             end=start + timedelta(days=1))
    # A link to the case file, where the invitation needs the full file and a reason.
    invitable = casefile.invitable_among(member=member, clients=[b.client for b in rows])
    # The staff member of an online appointment gets its video room.
    rooms = {b.id: bookings.video_link(b) for b in rows if b.staff_member_id == member.id}
    return render_template("staff/bookings_day.html", rows=rows, day=day, shown=shown,
                           choices=choices, invitable=invitable, rooms=rooms,
                           openable=_openable(member, rows),
                           previous_day=_shown_day(day - timedelta(days=1)),
                           next_day=_shown_day(day + timedelta(days=1)))


@bp.get("/bookings/week")
def bookings_week():
    member = _member()
    day = _day_arg()
    if day is None:
        return _impossible_day()
    monday = day - timedelta(days=day.weekday())
    choices = bookings.calendar_owners(member)
    shown = _chosen_staff(member, choices)
    zone = availability.local_zone()
    start = datetime.combine(monday, datetime.min.time(), zone)
    rows = bookings.calendar(member, staff_member_id=shown.id, start=start,
                             end=start + timedelta(days=7))
    # Each day with whether its day page can be shown (the range's last week runs past
    # LAST_DAY) and its bookings.
    days = [(monday + timedelta(days=i), _shown_day(monday + timedelta(days=i)) is not None,
             [b for b in rows if b.start_at.astimezone(zone).date() == monday
              + timedelta(days=i)]) for i in range(7)]
    return render_template("staff/bookings_week.html", days=days, monday=monday, shown=shown,
                           choices=choices, openable=_openable(member, rows),
                           previous_week=_shown_day(monday - timedelta(days=7)),
                           next_week=_shown_day(monday + timedelta(days=7)))
