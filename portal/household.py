"""The household: a parent adds, edits and removes children; young people decide what
their guardians still see."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from portal import bp
from portal.guards import client_required
from shared import security_log
from shared.auth import ratelimits
from shared.auth.forms import ConfirmForm, email_field
from shared.extensions import limiter
from shared.models.household import ACCESS_BOOKINGS, ACCESS_FULL, ACCESS_NONE
from shared.services import household

FIELD_LABELS = {
    "full_name": _l("Name"),
    "birth_date": _l("Date of birth"),
    "allergies": _l("Allergies"),
    "medical_notes": _l("Medical notes"),
    "group_name": _l("School or kindergarten group"),
    "emergency_contact": _l("Emergency contact"),
}


class DependantForm(FlaskForm):
    full_name = StringField(_l("Name"), validators=[Length(max=200)],
                            render_kw={"autocomplete": "off"})
    birth_date = DateField(_l("Date of birth"), validators=[Optional()],
                           render_kw={"autocomplete": "bday"})
    allergies = TextAreaField(_l("Allergies"), validators=[Length(max=1000)],
                              description=_l("Only if the service needs to know."))
    medical_notes = TextAreaField(_l("Medical notes"), validators=[Length(max=2000)],
                                  description=_l("E.g. medication. Only if needed."))
    group_name = StringField(_l("School or kindergarten group"), validators=[Length(max=120)],
                             render_kw={"autocomplete": "off"})
    contact_name = StringField(_l("Emergency contact: name"), validators=[Length(max=200)],
                               render_kw={"autocomplete": "name"})
    contact_phone = StringField(_l("Emergency contact: phone number"),
                                validators=[Length(max=40)],
                                description=_l("E.g. 0170 1234567 or +49 170 1234567."),
                                render_kw={"autocomplete": "tel", "inputmode": "tel"})
    submit = SubmitField(_l("Save"))

    def to_input(self) -> household.DependantInput:
        contacts = ()
        if (self.contact_name.data or "").strip() or (self.contact_phone.data or "").strip():
            contacts = (household.ContactInput(self.contact_name.data or "",
                                               self.contact_phone.data or ""),)
        return household.DependantInput(
            full_name=self.full_name.data or "",
            birth_date=self.birth_date.data,
            allergies=self.allergies.data,
            medical_notes=self.medical_notes.data,
            group_name=self.group_name.data,
            contacts=contacts,
        )

    def mark_required(self) -> None:
        """Label the fields the organisation needs; the rest say "optional"."""
        needed = household.required_fields() | {"full_name"}
        for name in ("full_name", "birth_date", "allergies", "medical_notes", "group_name"):
            field = getattr(self, name)
            field.flags.required = name in needed
        self.contact_name.flags.required = "emergency_contact" in needed
        self.contact_phone.flags.required = "emergency_contact" in needed


class InviteForm(FlaskForm):
    email = email_field(_l("Their email address"))
    submit = SubmitField(_l("Send invitation"))


class GuardianAccessForm(FlaskForm):
    access = RadioField(
        _l("What may this person still see?"),
        choices=[
            SelectChoice(ACCESS_FULL, _l("Everything, as before")),
            SelectChoice(ACCESS_BOOKINGS, _l("Only my appointments")),
            SelectChoice(ACCESS_NONE, _l("Nothing")),
        ],
    )
    submit = SubmitField(_l("Save"))


def _handle_errors(form: DependantForm, exc: Exception) -> None:
    if isinstance(exc, household.MissingFields):
        for name in exc.fields:
            target = {"emergency_contact": "contact_phone"}.get(name, name)
            getattr(form, target).errors.append(_("Please fill this in."))
    elif isinstance(exc, household.InvalidPhone):
        form.contact_phone.errors.append(
            _("This is not a phone number we can call. Please check it, e.g. 0170 1234567."))


@bp.get("/household")
@client_required
def household_index():
    links = household.guardianships(current_user)
    return render_template(
        "portal/household.html",
        links=links,
        contacts={link.dependant_id: household.contacts_of(link.dependant) for link in links
                  if link.access == ACCESS_FULL},
        guardians=household.my_guardians(current_user),
        invite_form=InviteForm(),
        remove_form=ConfirmForm(),
        own_account_age=household.own_account_age(),
        invitation_open=household.invitation_open,
        invitable=household.invitable,
    )


def _too_many_children(limit):
    """The form again (status 429), with what was typed, saying when adding works again."""
    from flask import current_app

    form = DependantForm()
    form.mark_required()
    flash(_("You added many children in a short while. For your safety you can add another "
            "from %(time)s; what you typed is kept below. If you need to add one sooner, "
            "please call us: %(phone)s", time=ratelimits.retry_time(limit),
            phone=household.organisation_phone()), "warning")
    return current_app.make_response(
        (render_template("portal/dependant_form.html", form=form, editing=False), 429))


@bp.route("/household/new", methods=["GET", "POST"])
@client_required
@limiter.limit(ratelimits.DEPENDANTS_ADDED, methods=["POST"],
               key_func=ratelimits.signed_in_account_key,
               deduct_when=lambda response: response.status_code == 302,
               on_breach=_too_many_children)
def household_add():
    form = DependantForm()
    form.mark_required()
    if form.validate_on_submit():
        try:
            household.add_dependant(guardian=current_user, data=form.to_input())
        except (household.MissingFields, household.InvalidPhone) as exc:
            _handle_errors(form, exc)
        else:
            flash(_("%(name)s was added to your household.", name=form.full_name.data),
                  "success")
            return redirect(url_for("portal.household_index"))
    return render_template("portal/dependant_form.html", form=form, editing=False)


@bp.route("/household/<uuid:client_id>/edit", methods=["GET", "POST"])
@client_required
def household_edit(client_id: uuid.UUID):
    try:
        child = household.client_for(current_user, client_id, need=ACCESS_FULL)
    except household.NotAllowed:
        security_log.deny()
    if child.id == getattr(current_user.client, "id", None):
        abort(404)
    contacts = household.contacts_of(child)
    form = DependantForm(data={
        "full_name": child.full_name, "birth_date": child.birth_date,
        "allergies": child.allergies, "medical_notes": child.medical_notes,
        "group_name": child.group_name,
        "contact_name": contacts[0].name if contacts else "",
        "contact_phone": contacts[0].phone if contacts else "",
    } if request.method == "GET" else None)
    form.mark_required()
    if form.validate_on_submit():
        try:
            household.update_dependant(guardian=current_user, client_id=child.id,
                                       data=form.to_input())
        except (household.MissingFields, household.InvalidPhone) as exc:
            _handle_errors(form, exc)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("portal.household_index"))
    return render_template("portal/dependant_form.html", form=form, editing=True, child=child)


@bp.route("/household/<uuid:client_id>/remove", methods=["GET", "POST"])
@client_required
def household_remove(client_id: uuid.UUID):
    """Ask first: removing a child without another guardian deletes their data for good."""
    if request.method == "GET":
        try:
            child = household.client_for(current_user, client_id, need=ACCESS_FULL)
        except household.NotAllowed:
            security_log.deny()
        return render_template("portal/dependant_remove.html", child=child, form=ConfirmForm())
    if ConfirmForm().validate_on_submit():
        try:
            household.remove_dependant(guardian=current_user, client_id=client_id)
        except household.NotAllowed:
            security_log.deny()
        flash(_("Removed from your household."), "success")
    return redirect(url_for("portal.household_index"))


@bp.post("/household/<uuid:client_id>/invite")
@client_required
@limiter.limit(ratelimits.MAIL_SENDING, key_func=ratelimits.signed_in_account_key,
               methods=["POST"])
def household_invite(client_id: uuid.UUID):
    form = InviteForm()
    if not form.validate_on_submit():
        flash(_("Please enter a valid email address, like name@example.org."), "error")
        return redirect(url_for("portal.household_index"))
    try:
        household.invite_dependant(inviter=current_user, client_id=client_id,
                                   email=form.email.data)
    except household.TooYoung:
        flash(_("An account of their own is possible from the age of %(age)d.",
                age=household.own_account_age()), "error")
    except household.NotAllowed:
        security_log.deny()
    else:
        # The same answer whether or not the address already has an account.
        flash(_("The invitation is on its way to this address. Before your child decides "
                "what you still see, our team confirms in person that your child holds the "
                "account. Until then, nothing changes for you."), "success")
    return redirect(url_for("portal.household_index"))


@bp.route("/household/<uuid:client_id>/invitation/withdraw", methods=["GET", "POST"])
@client_required
def household_withdraw_invitation(client_id: uuid.UUID):
    """Ask first, then withdraw an open invitation: the same for an address that had an
    account as for one that did not (see household.withdraw_dependant_invitation)."""
    try:
        child = household.client_for(current_user, client_id, need=ACCESS_FULL)
    except household.NotAllowed:
        security_log.deny()
    if not household.invitation_open(child):
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            household.withdraw_dependant_invitation(guardian=current_user, client_id=child.id)
        except household.NotAllowed:
            security_log.deny()
        except household.NothingToWithdraw:  # withdrawn a moment ago, e.g. by staff
            abort(404)
        flash(_("The invitation is withdrawn. You can send a new one."), "success")
        return redirect(url_for("portal.household_index"))
    return render_template("portal/invitation_withdraw.html", child=child, form=form)


@bp.route("/household/guardians/<uuid:link_id>", methods=["GET", "POST"])
@client_required
def guardian_access(link_id: uuid.UUID):
    link = next((g for g in household.my_guardians(current_user) if g.id == link_id), None)
    if link is None:
        abort(404)
    form = GuardianAccessForm(data={"access": link.access} if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            household.set_guardian_access(account=current_user, guardianship_id=link.id,
                                          access=form.access.data)
        except household.NotAllowed:
            security_log.deny()
        flash(_("Saved."), "success")
        return redirect(url_for("portal.household_index"))
    return render_template("portal/guardian_access.html", form=form, link=link)
