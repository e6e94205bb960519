"""Changing appointments: cancel after one confirmation page, move to another time (the
old appointment stays until staff confirm the new one). Works without JavaScript."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import bp
from portal.guards import client_required
from shared import security_log
from shared.auth.forms import ConfirmForm
from shared.services import availability, bookings, organisation


@dataclass(frozen=True)
class CancellationRule:
    """What the templates say about cancelling: the cut-off and whom to call after it."""

    hours: int
    phone: str
    phone_uri: str

    def inside(self, start: datetime) -> bool:
        """Whether an appointment at ``start`` could no longer be cancelled online."""
        return bookings.inside_cutoff(start)


@bp.app_template_global("cancellation_rule")
def cancellation_rule() -> CancellationRule:
    """For ``portal/_cutoff_notice.html``, wherever a time is about to be booked."""
    org = organisation.organisation()
    return CancellationRule(bookings.cancel_cutoff_hours(), org.phone, org.phone_uri)


@bp.app_template_global("may_move_online")
def may_move_online(booking) -> bool:
    return bookings.may_move_online(booking)


def _own(booking_id: uuid.UUID):
    try:
        return bookings.own_booking(current_user, booking_id)
    except bookings.NotAllowed:
        security_log.deny()


@bp.route("/bookings/<uuid:booking_id>/cancel", methods=["GET", "POST"])
@client_required
def booking_cancel(booking_id: uuid.UUID):
    """GET shows what is cancelled and the cut-off; POST cancels."""
    booking = _own(booking_id)
    status = bookings.effective_status(booking)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            bookings.cancel(account=current_user, booking_id=booking_id)
        except bookings.NotAllowed:
            security_log.deny()
        except bookings.TooLateToCancel:
            flash(_("It is too late to cancel online. Please call us."), "warning")
            return redirect(url_for("portal.booking_cancel", booking_id=booking_id))
        except bookings.WrongState:
            flash(_("This appointment cannot be cancelled any more."), "warning")
        else:
            flash(_("The request is withdrawn.") if status in ("requested", "proposed")
                  else _("The appointment is cancelled."), "success")
        return redirect(url_for("portal.bookings_index"))
    return render_template(
        "portal/booking_cancel.html", booking=booking, form=form, status=status,
        may_cancel=bookings.may_cancel_online(booking),
        moving=bookings.pending_move(booking),
    )


def _day_arg() -> date | None:
    try:
        return date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        return None


@bp.get("/bookings/<uuid:booking_id>/move")
@client_required
def booking_move(booking_id: uuid.UUID):
    """One day of free times at a time, the first day with free times first."""
    booking = _own(booking_id)
    if not bookings.may_move_online(booking):
        flash(_("This appointment cannot be moved online. Please call us."), "warning")
        return redirect(url_for("portal.bookings_index"))
    if bookings.pending_move(booking) is not None:
        flash(_("You already asked to move this appointment. Please wait for our answer, "
                "or withdraw that request first."), "warning")
        return redirect(url_for("portal.bookings_index"))
    today = datetime.now(availability.local_zone()).date()
    last = today + timedelta(days=bookings.booking_days_ahead() - 1)
    day = _day_arg() or today
    if not today <= day <= last:
        day = today
    slots: list = []
    while day <= last:
        slots = bookings.move_slots(booking, day=day)
        if slots:
            break
        day += timedelta(days=1)
    return render_template(
        "portal/booking_move.html", booking=booking, day=day if slots else None,
        slots=slots, today=today, next_day=day + timedelta(days=1) if day < last else None,
        rule=cancellation_rule(),
    )


@bp.route("/bookings/<uuid:booking_id>/move/<slot>", methods=["GET", "POST"])
@client_required
def booking_move_confirm(booking_id: uuid.UUID, slot: str):
    booking = _own(booking_id)
    try:
        staff_id, start = availability.parse_slot_token(slot)
    except availability.BadSlotToken:
        abort(404)
    form = ConfirmForm()
    error, status = None, 200
    if form.validate_on_submit():
        try:
            bookings.request_move(account=current_user, booking_id=booking_id,
                                  slot_token=slot)
        except bookings.NotAllowed:
            security_log.deny()
        except bookings.TooLateToCancel:
            error, status = _("It is too late to change this appointment online. Please "
                              "call us."), 409
        except bookings.AlreadyMoving:
            flash(_("You already asked to move this appointment. Please wait for our "
                    "answer, or withdraw that request first."), "warning")
            return redirect(url_for("portal.bookings_index"))
        except bookings.WrongState:
            error, status = _("This appointment cannot be moved any more."), 409
        except bookings.SlotTaken:
            error, status = _("Sorry, this time was just taken. Please pick another."), 409
        except bookings.SlotUnavailable:
            error, status = _("This time cannot be booked (any more). Please pick "
                              "another."), 400
        except (bookings.TooManyOpenRequests, bookings.TooManyOpenRequestsOfAccount):
            error, status = _("There are already too many open requests. Please wait "
                              "until we answer one, or withdraw one you no longer need."), 409
        else:
            flash(_("Your request to move the appointment was sent. Your current "
                    "appointment stays until we confirm the new time."), "success")
            return redirect(url_for("portal.bookings_index"))
    with_whom = next((m for m in availability.offering_staff(booking.service)
                      if m.id == staff_id), None)
    return render_template(
        "portal/booking_move_confirm.html", booking=booking, start=start, slot=slot,
        form=form, error=error, with_whom=with_whom,
    ), status
