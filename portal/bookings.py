"""Appointments: pick a service, then a slot, then confirm; see, cancel, answer proposals;
calendar downloads."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import RadioField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from portal import bp
from portal.guards import client_required
from shared import security_log
from shared.auth.forms import ConfirmForm
from shared.models.base import utcnow
from shared.models.bookings import ACTIVE
from shared.services import availability, bookings, household


class BookingForm(FlaskForm):
    client = RadioField(_l("For whom?"), validators=[InputRequired(_l("Please choose."))])
    note = TextAreaField(
        _l("Note (optional)"), validators=[Length(max=500)],
        description=_l("Anything we should know before the appointment. Only the staff "
                       "member you meet can read it."),
    )
    submit = SubmitField(_l("Request appointment"))


def _for_id() -> str | None:
    value = request.args.get("for")
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


@bp.get("/bookings")
@client_required
def bookings_index():
    rows = bookings.bookings_for(current_user)
    now = utcnow()
    upcoming = [b for b in rows
                if b.end_at >= now and bookings.effective_status(b) in ACTIVE]
    past = [b for b in reversed(rows) if b not in upcoming]
    names = {c.id: c.full_name for c in household.household_clients(current_user)}
    return render_template(
        "portal/bookings.html", upcoming=upcoming, past=past, names=names,
        own_client_id=getattr(current_user.client, "id", None),
        may_cancel=bookings.may_cancel_online, action_form=ConfirmForm(),
        status_of=bookings.effective_status,
        has_feed=bookings.has_calendar_feed(current_user),
        organisation_phone=household.organisation_phone(),
    )


@bp.get("/bookings/new")
@client_required
def booking_services():
    return render_template("portal/booking_services.html",
                           services=bookings.active_services(), for_id=_for_id())


@bp.get("/bookings/new/<uuid:service_id>")
@client_required
def booking_slots(service_id: uuid.UUID):
    service = bookings.get_service(service_id)
    if service is None:
        abort(404)
    days = availability.upcoming_slots(service=service, days=bookings.booking_days_ahead())
    return render_template("portal/booking_slots.html", service=service, days=days,
                           for_id=_for_id(), zone=availability.local_zone())


@bp.route("/bookings/new/<uuid:service_id>/<slot>", methods=["GET", "POST"])
@client_required
def booking_confirm(service_id: uuid.UUID, slot: str):
    service = bookings.get_service(service_id)
    if service is None:
        abort(404)
    try:
        staff_id, start = availability.parse_slot_token(slot)
    except availability.BadSlotToken:
        abort(404)
    people = household.household_clients(current_user)
    form = BookingForm()
    own_id = getattr(current_user.client, "id", None)
    form.client.choices = [
        (str(c.id), _("Me") if c.id == own_id else (c.full_name or _("Child"))) for c in people
    ]
    if request.method == "GET":
        form.client.data = _for_id() or (str(people[0].id) if people else None)
    status = 200
    too_many = False
    if form.validate_on_submit():
        try:
            bookings.request_booking(
                account=current_user, client_id=uuid.UUID(form.client.data),
                service_id=service.id, slot_token=slot, note=form.note.data,
            )
        except bookings.SlotTaken:
            status = 409
            form.errors_general = _("Sorry, this time was just taken. Please pick another.")
        except bookings.SlotUnavailable:
            status = 400
            form.errors_general = _("This time cannot be booked (any more). Please pick "
                                    "another.")
        except bookings.NotAllowed:
            security_log.record("access.denied", outcome=security_log.REFUSED,
                                account=current_user)
            status = 403
            form.errors_general = _("You cannot book for this person.")
        except bookings.TooManyOpenRequests as exc:
            status = 409
            too_many = True
            form.errors_general = _(
                "There are already %(limit)d open requests for this person, the most at one "
                "time. Please wait until we answer one, or withdraw one you no longer need "
                "under Appointments.", limit=exc.limit)
        except bookings.TooManyOpenRequestsOfAccount as exc:
            status = 409
            too_many = True
            form.errors_general = _(
                "You already have %(limit)d open requests for yourself and the people you book "
                "for, the most at one time. Please wait until we answer one, or withdraw one "
                "you no longer need under Appointments.", limit=exc.limit)
        else:
            flash(_("Your request was sent. The time is held for you until staff answer."),
                  "success")
            return redirect(url_for("portal.bookings_index"))
    from shared.services import consents

    return render_template(
        "portal/booking_confirm.html", form=form, service=service, slot=slot, start=start,
        needed_consents=consents.required_for_service(service.id),
        staff_id=staff_id, zone=availability.local_zone(), for_id=_for_id(),
        error=getattr(form, "errors_general", None), too_many=too_many,
    ), status


@bp.post("/bookings/<uuid:booking_id>/proposal/<answer>")
@client_required
def booking_proposal(booking_id: uuid.UUID, answer: str):
    if answer not in ("accept", "decline"):
        abort(404)
    if ConfirmForm().validate_on_submit():
        try:
            bookings.answer_proposal(account=current_user, booking_id=booking_id,
                                     accept=answer == "accept")
        except bookings.NotAllowed:
            security_log.deny()
        except bookings.WrongState:
            flash(_("This proposal was already answered."), "warning")
        else:
            flash(_("Thank you, the appointment is confirmed.") if answer == "accept"
                  else _("You declined the proposed time."), "success")
    return redirect(url_for("portal.bookings_index"))


@bp.get("/bookings/<uuid:booking_id>/appointment.ics")
@client_required
def booking_ics(booking_id: uuid.UUID):
    try:
        booking = bookings.own_booking(current_user, booking_id)
    except bookings.NotAllowed:
        security_log.deny()
    if booking.status != "confirmed":
        abort(404)
    return _ics_response(bookings.ics_for([booking]), "einblick-termin.ics")


@bp.post("/bookings/calendar-feed")
@client_required
def calendar_feed_new():
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("portal.bookings_index"))
    token = bookings.new_calendar_feed(current_user)
    return render_template("portal/calendar_feed.html", feed_url=bookings.feed_url(token))


@bp.post("/bookings/calendar-feed/revoke")
@client_required
def calendar_feed_revoke():
    if ConfirmForm().validate_on_submit():
        bookings.revoke_calendar_feed(current_user)
        flash(_("The calendar link no longer works."), "success")
    return redirect(url_for("portal.bookings_index"))


@bp.get("/calendar/<token>.ics")
def calendar_feed(token: str):
    """Public but secret: calendar apps cannot sign in. Revocable on the bookings page."""
    account = bookings.feed_account(token)
    if account is None:
        abort(404)
    return _ics_response(bookings.ics_for(bookings.bookings_for(account)), "einblick.ics",
                         inline=True)


def _ics_response(body: bytes, filename: str, *, inline: bool = False):
    from flask import current_app

    response = current_app.response_class(body, mimetype="text/calendar")
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response
