"""Client search and the case file: master data, household, bookings, documents, notes,
access log; break-glass for unassigned files."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from shared import paging, security_log
from shared.auth import ratelimits
from shared.auth.forms import ConfirmForm, NormalisedEmail
from shared.extensions import limiter
from shared.models.staff import StaffMember
from shared.services import casefile, household
from staff import bp, current_session_id

CATEGORY_LABELS = {
    "application": _l("Application"), "certificate": _l("Certificate"),
    "correspondence": _l("Letter"), "report": _l("Report"), "other": _l("Other"),
}


class SearchForm(FlaskForm):
    """Posted, never in the URL: a name, address or phone number must not end up in
    browser histories, proxies or the web server's access log."""

    q = StringField(_l("Email, phone number or name"), validators=[DataRequired()],
                    description=_l("Exact match. A name is found by any one of its words."),
                    render_kw={"autocomplete": "off"})
    birth_date = DateField(_l("Date of birth (optional, narrows a name search)"),
                           validators=[Optional()], render_kw={"autocomplete": "off"})
    submit = SubmitField(_l("Search"))


class BreakGlassForm(FlaskForm):
    reason = TextAreaField(_l("Why do you need to open this file?"),
                           validators=[DataRequired(), Length(min=10, max=500)],
                           description=_l("The client will see this reason in their access "
                                          "log, and an administrator reviews it."))
    submit = SubmitField(_l("Open the file for this session"))


REASON_TOO_SHORT = _l("Please write a reason of at least %(min)d characters.",
                      min=casefile.MIN_REASON_LENGTH)


class InviteForm(FlaskForm):
    # Not autocomplete="email": the browser would offer the caseworker's own address.
    email = EmailField(
        _l("The young person's own email address"),
        validators=[DataRequired(_l("Please enter the young person's email address.")),
                    NormalisedEmail()],
        render_kw={"autocomplete": "off", "inputmode": "email", "spellcheck": "false",
                   "autocapitalize": "none"})
    reason = TextAreaField(
        _l("Why are you sending this invitation?"),
        validators=[DataRequired(REASON_TOO_SHORT),
                    Length(min=casefile.MIN_REASON_LENGTH, message=REASON_TOO_SHORT),
                    Length(max=500, message=_l("Please shorten the reason to at most "
                                               "%(max)d characters."))],
        description=_l("The young person and their parents or guardians will read this "
                       "reason. Please write nothing they should not read."))
    submit = SubmitField(_l("Send invitation"))


# The note and document forms share the case file page: their fields have ids of their own
# (the names posted stay the same), so a label never ticks the other form's box.
class NoteForm(FlaskForm):
    body = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=20000)],
                         id="note-body")
    visible_to_client = BooleanField(_l("The client may read this note"),
                                     id="note-visible-to-client")
    confidential = BooleanField(_l("Confidential from guardians"), id="note-confidential")
    corrects = HiddenField(id="note-corrects")  # the id of the note this one corrects, if any
    submit = SubmitField(_l("Save note"), id="note-submit")


class NoteEditForm(ConfirmForm):
    body = TextAreaField()


class BookingConfidentialForm(ConfirmForm):
    confidential = HiddenField()  # "1": keep it from guardians, "0": share it again


class AssignForm(ConfirmForm):
    staff = StringField()  # the caseworker's id


class DocumentForm(FlaskForm):
    category = SelectField(_l("Category"), choices=[
        SelectChoice(key, label) for key, label in CATEGORY_LABELS.items()], id="document-category")
    visible_to_client = BooleanField(_l("The client may see this document"),
                                     id="document-visible-to-client")
    confidential = BooleanField(_l("Confidential from guardians"), id="document-confidential")
    submit = SubmitField(_l("Upload"), id="document-submit")


def _member() -> StaffMember:
    return current_user.staff_member


@bp.route("/clients", methods=["GET", "POST"])
def clients():
    # A query in the URL (an old bookmark, ?q=…) is not run: the form starts empty.
    form = SearchForm(formdata=request.form if request.method == "POST" else None)
    result = None
    if form.validate_on_submit():
        result = casefile.search(member=_member(), query=form.q.data,
                                 birth_date=form.birth_date.data)
    return render_template("staff/clients.html", form=form, result=result,
                           limit=casefile.SEARCH_LIMIT)


@bp.get("/clients/<uuid:client_id>")
def client_file(client_id: uuid.UUID):
    return _case_file_page(client_id)


def _case_file_page(client_id: uuid.UUID, *, invite_form: InviteForm | None = None,
                    status: int = 200):
    """The case file; after a refused invitation with that form, its errors and what was
    typed (status 400)."""
    try:
        case = casefile.open_file(member=_member(), client_id=client_id,
                                  session_id=current_session_id(),
                                  log_page=request.args.get("page", 1, type=int),
                                  list_pages={name: paging.page_arg(name)
                                              for name in ("notes", "documents", "bookings")})
    except casefile.NeedsBreakGlass:
        return redirect(url_for("staff.client_break_glass", client_id=client_id))
    except casefile.NoAccess:
        security_log.deny()
    from shared.services import consents

    return render_template("staff/client_file.html", case=case, note_form=NoteForm(),
                           consent_status=consents.status_for_client(client_id),
                           document_form=DocumentForm(), action_form=ConfirmForm(),
                           invite_form=invite_form or InviteForm(prefix="invite"),
                           categories=CATEGORY_LABELS,
                           caseworkers=casefile.assignable_staff(_member()),
                           edit_window=casefile.NOTE_EDIT_WINDOW, member=_member()), status


@bp.route("/clients/<uuid:client_id>/break-glass", methods=["GET", "POST"])
def client_break_glass(client_id: uuid.UUID):
    try:
        client = casefile.break_glass_client(member=_member(), client_id=client_id)
    except casefile.BreakGlassNotAllowed:
        abort(403)  # admins break glass only to open a restricted file
    except casefile.NoAccess:
        abort(404)
    form = BreakGlassForm()
    if form.validate_on_submit():
        try:
            casefile.break_glass(member=_member(), client_id=client_id,
                                 session_id=current_session_id(), reason=form.reason.data)
        except casefile.NoAccess:
            security_log.deny()
        return redirect(url_for("staff.client_file", client_id=client_id))
    return render_template("staff/break_glass.html", form=form, client_id=client_id,
                           restricted=client.restricted_at is not None)


@bp.post("/clients/<uuid:client_id>/invite")
@limiter.limit(ratelimits.MAIL_SENDING, key_func=ratelimits.signed_in_account_key,
               methods=["POST"])
def client_invite(client_id: uuid.UUID):
    """A young person's own account, from the case file (see casefile.invite_own_account).
    A refused invitation shows the case file again, each error at its field, with what was
    typed; the caseworker is told plainly when the address already has an account (they
    hold the full file, and nothing was sent)."""
    form = InviteForm(prefix="invite")
    if not form.validate_on_submit():
        return _case_file_page(client_id, invite_form=form, status=400)
    try:
        casefile.invite_own_account(member=_member(), client_id=client_id,
                                    session_id=current_session_id(), email=form.email.data,
                                    reason=form.reason.data)
    except casefile.NeedsBreakGlass:
        return redirect(url_for("staff.client_break_glass", client_id=client_id))
    except (casefile.NoAccess, household.NotAllowed):
        security_log.deny()
    except casefile.ReasonTooShort:
        form.reason.errors.append(str(REASON_TOO_SHORT))
    except casefile.StaffAddress:
        form.email.errors.append(_("This is the address of a staff account. Invitations go "
                                   "only to the young person's own address."))
    except casefile.AddressTaken:
        form.email.errors.append(_("This address already has an account. No invitation was "
                                   "sent. Please ask the young person for another address."))
    except household.TooYoung:
        form.form_errors.append(_("An account of their own is possible from the age of "
                                  "%(age)d.", age=household.own_account_age()))
    else:
        flash(_("The invitation is on its way to this address, and the parents or guardians "
                "are told. A colleague confirms in person that the account belongs to the "
                "young person."), "success")
        return redirect(url_for("staff.client_file", client_id=client_id,
                                _anchor="own-account"))
    return _case_file_page(client_id, invite_form=form, status=400)


@bp.post("/clients/<uuid:client_id>/handover")
def client_handover(client_id: uuid.UUID):
    """'I met them in person and checked that they hold this account.'"""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    back = url_for("staff.client_file", client_id=client_id, _anchor="own-account")
    try:
        casefile.confirm_handover(member=_member(), client_id=client_id,
                                  session_id=current_session_id())
    except casefile.NeedsBreakGlass:
        return redirect(url_for("staff.client_break_glass", client_id=client_id))
    except casefile.NoAccess:
        security_log.deny()
    except casefile.NothingToConfirm:
        flash(_("There is nothing to confirm."), "warning")
    except casefile.InvitationNotAccepted:
        flash(_("The invitation has not been accepted yet. Please confirm once the young "
                "person has chosen their password and can sign in."), "warning")
    except casefile.OwnInvitation:
        flash(_("You sent this invitation yourself. A colleague who meets the young person "
                "confirms it."), "error")
    else:
        flash(_("Confirmed. From now on the young person decides what their parents or "
                "guardians see."), "success")
    return redirect(back)


@bp.post("/clients/<uuid:client_id>/invitation/withdraw")
def client_withdraw_invitation(client_id: uuid.UUID):
    """An open invitation (a wrong address, an account nobody confirmed) is withdrawn and
    its account deleted; the young person can be invited again."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        casefile.withdraw_invitation(member=_member(), client_id=client_id,
                                     session_id=current_session_id())
    except casefile.NeedsBreakGlass:
        return redirect(url_for("staff.client_break_glass", client_id=client_id))
    except casefile.NoAccess:
        security_log.deny()
    except household.NothingToWithdraw:
        flash(_("There is no open invitation to withdraw."), "warning")
    else:
        flash(_("The invitation is withdrawn. A new one can be sent."), "success")
    return redirect(url_for("staff.client_file", client_id=client_id, _anchor="own-account"))


@bp.post("/clients/<uuid:client_id>/documents")
def document_upload(client_id: uuid.UUID):
    form = DocumentForm()
    upload = request.files.get("file")
    if not form.validate_on_submit() or upload is None:
        flash(_("Please choose a file."), "error")
        return redirect(url_for("staff.client_file", client_id=client_id))
    try:
        casefile.add_document(
            member=_member(), client_id=client_id, session_id=current_session_id(),
            filename=upload.filename or "", data=upload.read(casefile.MAX_DOCUMENT_BYTES + 1),
            category=form.category.data, visible_to_client=form.visible_to_client.data,
            confidential=form.confidential.data,
        )
    except casefile.DocumentRejected as exc:
        flash({"too-large": _("The file is larger than 20 MB."),
               "type": _("Only PDF, images (JPEG, PNG) and office documents can be uploaded. "
                         "The file's content was checked, not its name."),
               "empty": _("The file is empty.")}[exc.reason], "error")
    except (casefile.NoAccess, casefile.NeedsBreakGlass):
        security_log.deny()
    else:
        flash(_("The document is stored, encrypted."), "success")
    return redirect(url_for("staff.client_file", client_id=client_id))


@bp.get("/documents/<uuid:document_id>")
def document_download(document_id: uuid.UUID):
    import io

    from flask import send_file

    try:
        document = casefile.read_document(member=_member(), document_id=document_id,
                                          session_id=current_session_id())
    except (casefile.NoAccess, casefile.NeedsBreakGlass):
        security_log.deny()
    # send_file writes Content-Disposition as RFC 6266 asks: an ASCII fallback and the
    # exact name as filename*=UTF-8''… (RFC 5987).
    return send_file(io.BytesIO(document.content), mimetype=document.content_type,
                     as_attachment=True, download_name=casefile.download_name(document))


@bp.post("/clients/<uuid:client_id>/notes")
def note_add(client_id: uuid.UUID):
    form = NoteForm()
    if not form.validate_on_submit():
        flash(_("Please write the note."), "error")
        return redirect(url_for("staff.client_file", client_id=client_id))
    try:
        corrects_id = uuid.UUID(form.corrects.data) if form.corrects.data else None
    except ValueError:  # a malformed "corrects" id
        abort(404)
    try:
        casefile.add_note(member=_member(), client_id=client_id, session_id=current_session_id(),
                          body=form.body.data, visible_to_client=form.visible_to_client.data,
                          confidential=form.confidential.data, corrects_id=corrects_id)
    except (casefile.NoAccess, casefile.NeedsBreakGlass):
        security_log.deny()
    flash(_("The note is saved."), "success")
    return redirect(url_for("staff.client_file", client_id=client_id))


@bp.post("/notes/<uuid:note_id>/edit")
def note_edit(note_id: uuid.UUID):
    form = NoteEditForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        note = casefile.edit_note(member=_member(), note_id=note_id,
                                  session_id=current_session_id(), body=form.body.data or "")
    except casefile.NoteLocked:
        flash(_("Notes can be changed only by their author within 24 hours. Please write a "
                "correction instead."), "warning")
        return redirect(request.referrer or url_for("staff.clients"))
    except (casefile.NoAccess, casefile.NeedsBreakGlass):
        security_log.deny()
    flash(_("Saved."), "success")
    return redirect(url_for("staff.client_file", client_id=note.client_id))


@bp.post("/bookings/<uuid:booking_id>/confidential")
def booking_confidential(booking_id: uuid.UUID):
    form = BookingConfidentialForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        booking = casefile.set_booking_confidential(
            member=_member(), booking_id=booking_id, session_id=current_session_id(),
            confidential=form.confidential.data == "1")
    except (casefile.NoAccess, casefile.NeedsBreakGlass):
        security_log.deny()
    flash(_("Saved."), "success")
    return redirect(url_for("staff.client_file", client_id=booking.client_id))


@bp.post("/clients/<uuid:client_id>/assign")
def client_assign(client_id: uuid.UUID):
    form = AssignForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        staff_member_id = uuid.UUID(form.staff.data or "")
    except ValueError:  # a malformed id
        abort(404)
    try:
        casefile.assign(admin=_member(), client_id=client_id, staff_member_id=staff_member_id)
    except casefile.NoAccess:
        abort(404)
    flash(_("Assigned."), "success")
    return redirect(url_for("staff.client_file", client_id=client_id))


@bp.post("/assignments/<uuid:assignment_id>/remove")
def assignment_remove(assignment_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(404)
    try:
        client_id = casefile.unassign(admin=_member(), assignment_id=assignment_id)
    except casefile.NoAccess:
        abort(404)
    flash(_("Removed."), "success")
    return redirect(url_for("staff.client_file", client_id=client_id))
