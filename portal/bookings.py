"""Appointments: pick a service, then a slot, then confirm; see, cancel, answer proposals;
calendar downloads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from typing import TypeVar

from babel import dates
from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import RadioField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from portal import bp
from portal.guards import client_required
from shared import security_log
from shared.auth import ratelimits
from shared.auth.forms import ConfirmForm
from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES
from shared.extensions import limiter
from shared.i18n import format_appointment, format_clock, formatting_locale
from shared.models.base import utcnow
from shared.models.bookings import ACTIVE
from shared.services import availability, bookings, household, slot_holds

T = TypeVar("T")


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


def visitors_or_clients(view):
    """Open to visitors without an account (seeing free times comes before registering);
    a signed-in account passes the same checks as with client_required."""
    checked = client_required(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return view(*args, **kwargs)
        return checked(*args, **kwargs)

    return wrapper


# -- holding a slot for a visitor across registration ------------------------------------
# The session keeps the hold's token and what it holds, so the way back after registering
# works even when the hold has run out and its row is gone.
HOLD_KEY = "slot_hold"


def _session_hold() -> dict | None:
    value = session.get(HOLD_KEY)
    return value if isinstance(value, dict) and value.get("token") else None


def _own_hold_hash() -> bytes | None:
    held = _session_hold()
    return slot_holds.token_hash(held["token"]) if held else None


def carry_hold(sign_in: Callable[[], T]) -> T:
    """Run a sign-in step (which starts a fresh session) keeping the visitor's hold."""
    held = _session_hold()
    result = sign_in()
    if held:
        session[HOLD_KEY] = held
    return result


def held_slot_address() -> str | None:
    """Where someone who held a slot before signing in continues: the request page of
    that slot, everything chosen; or, when the hold ran out and someone took the time,
    the picker with a message saying so. None without a hold."""
    held = _session_hold()
    if held is None:
        return None
    service = bookings.get_service(uuid.UUID(held["service"]))
    if service is None:
        session.pop(HOLD_KEY, None)
        return None
    confirm = url_for("portal.booking_confirm", service_id=service.id, slot=held["slot"])
    if slot_holds.live_hold(held["token"]) is not None:
        return confirm
    _staff, start = availability.parse_slot_token(held["slot"])
    if start <= utcnow():  # a hold long forgotten: nothing to say about it any more
        session.pop(HOLD_KEY, None)
        return None
    if availability.is_free(service=service, slot_token=held["slot"]):
        flash(_("We could hold your time only for 30 minutes, but it is still free. "
                "Please send the request now."), "info")
        return confirm
    session.pop(HOLD_KEY, None)
    flash(_("Sorry, the time you chose (%(time)s) was held for 30 minutes and has been "
            "taken since. Please pick another time.", time=format_appointment(start)),
          "warning")
    return _picker_address(service, start)


def _picker_address(service, start=None, **args) -> str:
    if start is not None:
        args["week"] = start.astimezone(availability.local_zone()).date().isoformat()
    return url_for("portal.booking_slots", service_id=service.id, **args)


def _day_label(day, short: bool = False) -> str:
    """A day in words without the year ("Dienstag, 8. Dezember"), or short ("Di., 8.");
    a datetime counts by its local day."""
    locale = formatting_locale()
    if isinstance(day, datetime):
        day = day.astimezone(availability.local_zone()).date()
    if short:
        return dates.format_skeleton("Ed", day, locale=locale)
    # The language's own order of weekday, day and month, with the weekday written out.
    skeleton = dates.match_skeleton("MMMMEd", locale.datetime_skeletons) or "MMMMEd"
    pattern = re.sub(r"E+", "EEEE", locale.datetime_skeletons[skeleton].pattern)
    pattern = re.sub(r"(?<!M)MMM(?!M)", "MMMM", pattern)
    return dates.format_date(day, pattern, locale=locale)


def _week_label(first) -> str:
    """The week starting on Monday ``first`` as a range of days ("7.–13. Dezember")."""
    return dates.format_interval(first, first + timedelta(days=6), "MMMMd",
                                 locale=formatting_locale())


def _date_arg(name: str):
    """A date from the query string; a malformed one is a broken link (404)."""
    value = request.args.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(404)


@bp.get("/bookings/new")
@visitors_or_clients
def booking_services():
    """The services; and a time still held for this browser, to continue with (e.g. after a
    sign-up with a passkey, which ends on the recovery codes)."""
    held = _session_hold()
    hold = slot_holds.live_hold(held["token"]) if held else None
    go_on = None
    if hold is not None:
        go_on = (url_for("portal.booking_confirm", service_id=hold.service_id, slot=held["slot"])
                 if current_user.is_authenticated else url_for("portal.register"))
    return render_template("portal/booking_services.html",
                           services=bookings.active_services(), for_id=_for_id(),
                           hold=hold, go_on=go_on)


@bp.get("/bookings/new/<uuid:service_id>")
@visitors_or_clients
def booking_slots(service_id: uuid.UUID):
    """One week of free times, the next free time first, a filter by day."""
    service = bookings.get_service(service_id)
    if service is None:
        abort(404)
    asked_week, asked_day = _date_arg("week"), _date_arg("day")
    week = availability.week_of_slots(service=service, week=asked_week,
                                      days_ahead=bookings.booking_days_ahead(),
                                      except_hold=_own_hold_hash())
    shown = week.days
    day = asked_day if any(d == asked_day for d, _slots in week.days) else None
    if day is not None:
        shown = [(d, slots) for d, slots in week.days if d == day]
    return render_template(
        "portal/booking_slots.html", service=service, week=week, shown=shown, day=day,
        for_id=_for_id(), day_label=_day_label, week_label=_week_label,
    )


# Holds are open to anyone: without a cap per address, a script could hold every free time
# (each browser session holds one time; a script starts new sessions).
HOLDS_PER_ADDRESS = "10 per hour"


@bp.post("/bookings/new/<uuid:service_id>/<slot>/hold")
@limiter.limit(ratelimits.PER_ADDRESS)
@limiter.limit(HOLDS_PER_ADDRESS)
def booking_hold(service_id: uuid.UUID, slot: str):
    """A visitor keeps the chosen time while registering."""
    service = bookings.get_service(service_id)
    if service is None:
        abort(404)
    if current_user.is_authenticated:
        return redirect(url_for("portal.booking_confirm", service_id=service.id, slot=slot))
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("portal.booking_confirm", service_id=service.id, slot=slot))
    earlier = _session_hold()
    try:
        new = slot_holds.hold(service=service, slot_token=slot,
                              replacing=earlier["token"] if earlier else None)
    except slot_holds.SlotNotFree:
        if earlier:
            session.pop(HOLD_KEY, None)
        try:
            _staff, start = availability.parse_slot_token(slot)
        except availability.BadSlotToken:
            abort(404)
        flash(_("Sorry, this time was just taken. Please pick another."), "warning")
        return redirect(_picker_address(service, start))
    session[HOLD_KEY] = {"token": new.token, "service": str(service.id),
                         "slot": new.slot_token}
    flash(_("Your time %(time)s is held for you until %(until)s. Register now (or sign in) "
            "to request it.", time=format_appointment(new.start_at),
            until=format_clock(new.expires_at)), "success")
    return redirect(url_for("portal.register"))


@bp.route("/bookings/new/<uuid:service_id>/<slot>", methods=["GET", "POST"])
@visitors_or_clients
def booking_confirm(service_id: uuid.UUID, slot: str):
    service = bookings.get_service(service_id)
    if service is None:
        abort(404)
    try:
        staff_id, start = availability.parse_slot_token(slot)
    except availability.BadSlotToken:
        abort(404)
    if not current_user.is_authenticated:
        if request.method == "POST":
            abort(405)
        return render_template("portal/booking_confirm.html", service=service, slot=slot,
                               start=start, visitor=True, hold_form=ConfirmForm(),
                               for_id=None, error=None, needed_consents=[])
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
        held = _session_hold()
        if held and held["slot"] == slot:
            # The hold made the slot busy for everyone else, this person included: it
            # goes now, and the request takes the slot under the staff lock.
            slot_holds.release(held["token"])
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
            if held:
                session.pop(HOLD_KEY, None)
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
    # In the account's language (a calendar app sends no cookie): services' names too.
    with force_locale(account.locale if account.locale in SUPPORTED_LOCALES
                      else DEFAULT_LOCALE):
        body = bookings.ics_for(bookings.bookings_for(account))
    return _ics_response(body, "einblick.ics", inline=True)


def _ics_response(body: bytes, filename: str, *, inline: bool = False):
    from flask import current_app

    response = current_app.response_class(body, mimetype="text/calendar")
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response
