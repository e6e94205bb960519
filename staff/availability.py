"""Weekly hours and exceptions (holidays, sick days) from which slots are computed."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SubmitField, TimeField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional

from shared import security_log
from shared.auth.forms import ConfirmForm
from shared.models.staff import StaffMember
from shared.services import availability as hours
from staff import bp

WEEKDAYS = [(0, _l("Monday")), (1, _l("Tuesday")), (2, _l("Wednesday")), (3, _l("Thursday")),
            (4, _l("Friday")), (5, _l("Saturday")), (6, _l("Sunday"))]


class RuleForm(FlaskForm):
    weekday = SelectField(_l("Weekday"), coerce=int,
                          choices=[SelectChoice(day, label) for day, label in WEEKDAYS])
    start_time = TimeField(_l("From"), validators=[DataRequired()])
    end_time = TimeField(_l("Until"), validators=[DataRequired()])
    submit = SubmitField(_l("Add hours"))


class ExceptionForm(FlaskForm):
    day = DateField(_l("Day"), validators=[DataRequired()])
    start_time = TimeField(_l("From (empty: whole day)"), validators=[Optional()])
    end_time = TimeField(_l("Until"), validators=[Optional()])
    submit = SubmitField(_l("Add absence"))


def _target() -> StaffMember:
    """Staff edit their own hours; admins may edit anyone's (?staff=ID)."""
    member = current_user.staff_member
    wanted = request.args.get("staff")
    if not wanted or not hours.may_edit_anyones_hours(member):
        return member
    try:
        staff_member_id = uuid.UUID(wanted)
    except ValueError:
        abort(404)
    try:
        return hours.hours_owner(member=member, staff_member_id=staff_member_id)
    except hours.UnknownStaffMember:
        abort(404)


@bp.route("/availability", methods=["GET", "POST"])
def availability():
    target = _target()
    rule_form = RuleForm(prefix="rule")
    exception_form = ExceptionForm(prefix="exception")
    if rule_form.submit.data and rule_form.validate_on_submit():
        try:
            hours.add_rule(member=current_user.staff_member, staff_member_id=target.id,
                           weekday=rule_form.weekday.data, start=rule_form.start_time.data,
                           end=rule_form.end_time.data)
        except hours.NotYourHours:
            security_log.deny()
        except hours.BadHours:
            rule_form.end_time.errors.append(_("The end must be after the start."))
        else:
            flash(_("Saved."), "success")
            return redirect(request.full_path)
    if exception_form.submit.data and exception_form.validate_on_submit():
        try:
            hours.add_exception(member=current_user.staff_member, staff_member_id=target.id,
                                day=exception_form.day.data,
                                start=exception_form.start_time.data,
                                end=exception_form.end_time.data)
        except hours.NotYourHours:
            security_log.deny()
        except hours.BadHours:
            exception_form.end_time.errors.append(
                _("Give both times (the end after the start), or none for the whole day."))
        else:
            flash(_("Saved."), "success")
            return redirect(request.full_path)
    return render_template("staff/availability.html", target=target, rule_form=rule_form,
                           exception_form=exception_form, rules=hours.weekly_hours(target.id),
                           exceptions=hours.absences(target.id), weekdays=dict(WEEKDAYS),
                           delete_form=ConfirmForm(),
                           others=hours.hours_choices(current_user.staff_member))


@bp.post("/availability/<kind>/<uuid:item_id>/delete")
def availability_delete(kind: str, item_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(404)
    try:
        owner_id = hours.remove_hours(member=current_user.staff_member, kind=kind,
                                      item_id=item_id)
    except hours.HoursNotFound:
        abort(404)
    except hours.NotYourHours:
        security_log.deny()
    flash(_("Removed."), "success")
    return redirect(url_for("staff.availability", staff=str(owner_id)))


