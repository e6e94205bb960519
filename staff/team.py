"""Admins: staff accounts and roles, the break-glass review, funder reports."""

from __future__ import annotations

import uuid
from datetime import date

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from shared import paging
from shared.auth.forms import ConfirmForm, email_field
from shared.models.staff import ROLES
from shared.services import casefile, reports, staff
from staff import bp
from staff.home import ROLE_NAMES


class NewStaffForm(FlaskForm):
    email = email_field()
    name = StringField(_l("Name shown to clients (e.g. A. Schmidt)"),
                       validators=[Length(max=120)], render_kw={"autocomplete": "off"})
    role = SelectField(_l("Role"), choices=[SelectChoice(r, ROLE_NAMES[r]) for r in ROLES])
    submit = SubmitField(_l("Create and send invitation"))


@bp.route("/team", methods=["GET", "POST"])
def team():
    form = NewStaffForm()
    if form.validate_on_submit():
        try:
            staff.create_staff(email=form.email.data, role=form.role.data,
                               name=form.name.data or None)
        except staff.StaffExists:
            form.email.errors.append(_("A staff member with this email address exists."))
        else:
            flash(_("Created. The invitation link was emailed (valid 72 hours)."), "success")
            return redirect(url_for("staff.team"))
    result = staff.team_page(paging.page_arg())
    return render_template("staff/team.html", form=form, result=result, members=result.rows,
                           action_form=ConfirmForm(), role_names=ROLE_NAMES,
                           me=current_user.staff_member)


@bp.post("/team/<uuid:member_id>/<action>")
def team_change(member_id: uuid.UUID, action: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    admin = current_user.staff_member
    try:
        if action in ("activate", "deactivate"):
            staff.set_active(admin=admin, member_id=member_id, active=action == "activate")
        elif action == "role":
            staff.set_role(admin=admin, member_id=member_id, role=request.form.get("role", ""))
        elif action == "invite":
            target = staff.get_member(member_id)
            if target is None:
                abort(404)
            staff.reinvite(email=target.account.email)
        else:
            abort(404)
    except staff.UnknownRole:
        abort(400)
    except staff.StaffError:
        flash(_("You cannot change your own account here."), "error")
        return redirect(url_for("staff.team"))
    flash(_("Saved."), "success")
    return redirect(url_for("staff.team"))


@bp.get("/break-glass")
def break_glass_review():
    result = casefile.unreviewed_grants(admin=current_user.staff_member,
                                        page=paging.page_arg())
    return render_template("staff/break_glass_review.html", result=result, grants=result.rows,
                           clients=result.clients, action_form=ConfirmForm())


@bp.post("/break-glass/<uuid:grant_id>/reviewed")
def break_glass_reviewed(grant_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        casefile.review_grant(admin=current_user.staff_member, grant_id=grant_id)
    except casefile.NoAccess:
        abort(404)
    return redirect(url_for("staff.break_glass_review", page=request.args.get("page", type=int)))


def _year() -> int:
    try:
        year = int(request.args.get("year", ""))
    except ValueError:
        return date.today().year
    if not 2000 <= year <= 2100:
        abort(404)
    return year


@bp.get("/reports")
def funder_reports():
    year = _year()
    return render_template("staff/reports.html", rows=reports.monthly(year=year), year=year,
                           cell=reports.cell, age_cells=reports.age_cells,
                           age_groups=[g[0] for g in reports.AGE_GROUPS])


@bp.get("/reports.csv")
def funder_reports_csv():
    year = _year()
    response = current_app.response_class(reports.as_csv(reports.monthly(year=year)),
                                           mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="einblick-{year}.csv"'
    return response
