"""Transparency: who on staff looked at my data, and which notes and documents exist."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter import RequestLimit
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from portal import bp
from portal.guards import client_required, fresh_required
from shared import security_log
from shared.auth import ratelimits
from shared.extensions import limiter
from shared.services import transparency


class CorrectionForm(FlaskForm):
    client = SelectField(_l("About whom?"))
    about = HiddenField(default="other")
    message = TextAreaField(
        _l("What is wrong, and what is right?"),
        validators=[DataRequired(_l("Please describe what is wrong and what is right.")),
                    Length(max=2000)],
        render_kw={"rows": 4, "maxlength": 2000})
    submit = SubmitField(_l("Send request"))


@bp.get("/my-data")
@client_required
def my_data():
    """Everything stored about me (and the children I see), in words: per category what,
    who can see it and until when, the values one tap away."""
    from shared.services import my_data as service

    return render_template("portal/my_data.html", people=service.describe(current_user),
                           **service.TEMPLATE_HELPERS)


@bp.get("/my-data/access")
@client_required
def my_data_access():
    """The access log as visits, a page at a time, filtered by person and category."""
    person, category = request.args.get("person", ""), request.args.get("category", "")
    result = transparency.visits_page(current_user, older=request.args.get("older", ""),
                                      newer=request.args.get("newer", ""),
                                      person=person, category=category)
    return render_template("portal/my_data_access.html", result=result,
                           subjects=transparency.subjects(current_user),
                           person=person, category=category)


@bp.get("/my-data/documents/<uuid:document_id>")
@client_required
def my_document(document_id: uuid.UUID):
    import io

    from flask import send_file

    from shared.services import casefile

    document = transparency.client_document(current_user, document_id)
    if document is None:
        abort(404)
    # send_file writes Content-Disposition as RFC 6266 asks: an ASCII fallback and the
    # exact name as filename*=UTF-8''… (RFC 5987).
    return send_file(io.BytesIO(document.content), mimetype=document.content_type,
                     as_attachment=True, download_name=casefile.download_name(document))


def _too_many_exports(limit: RequestLimit):
    """The export page again (status 429), saying when a download works again."""
    from shared.auth.forms import ConfirmForm

    return current_app.make_response((render_template(
        "portal/my_data_export.html", form=ConfirmForm(),
        refused=_("You downloaded your data several times in a short while. For your "
                  "safety you can download it again from %(time)s.",
                  time=ratelimits.retry_time(limit))), 429))


@bp.route("/my-data/export", methods=["GET", "POST"])
@client_required
@fresh_required
@limiter.limit(ratelimits.EXPORT_DOWNLOADS, methods=["POST"],
               key_func=ratelimits.signed_in_account_key,
               deduct_when=lambda response: response.mimetype == "application/zip",
               on_breach=_too_many_exports)
def my_data_export():
    """After a fresh confirmation: the ZIP, streamed as it is written."""
    from flask import stream_with_context

    from shared.auth.forms import ConfirmForm
    from shared.services import export

    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("portal/my_data_export.html", form=form)
    response = current_app.response_class(
        stream_with_context(export.stream(current_user.id)),
        mimetype="application/zip")
    response.headers["Content-Disposition"] = 'attachment; filename="einblick-export.zip"'
    return response


def _correction_form() -> CorrectionForm:
    """The form, its choice of person filled from the household."""
    form = CorrectionForm()
    if request.method == "GET":
        form.about.data = request.args.get("about", "other")
    form.client.choices = [
        (str(s.client.id), _("Me") if s.is_self else (s.client.full_name or _("Child")))
        for s in transparency.subjects(current_user)]
    return form


def _corrections_page(form: CorrectionForm, *, refused: str | None = None):
    """The request form (with whatever was typed) above the earlier requests."""
    from shared.services import corrections

    return render_template("portal/my_corrections.html", form=form, refused=refused,
                           rows=corrections.requests_for(current_user))


def _too_many_corrections(limit: RequestLimit):
    """The same page (status 429), the text still in the box, and when to send it."""
    return current_app.make_response((_corrections_page(_correction_form(), refused=_(
        "You sent many correction requests in a short while. We answer each one; you can "
        "send this one from %(time)s. Your text is kept below.",
        time=ratelimits.retry_time(limit))), 429))


@bp.route("/my-data/corrections", methods=["GET", "POST"])
@client_required
@limiter.limit(ratelimits.CORRECTION_REQUESTS, methods=["POST"],
               key_func=ratelimits.signed_in_account_key,
               deduct_when=lambda response: response.status_code == 302,
               on_breach=_too_many_corrections)
def my_corrections():
    """Ask staff to correct something they recorded; see the answers."""
    from flask import redirect, url_for

    from shared.services import corrections

    form = _correction_form()
    if form.validate_on_submit():
        try:
            corrections.request_correction(
                account=current_user, client_id=uuid.UUID(form.client.data),
                about=form.about.data or "other", message=form.message.data)
        except ValueError:
            form.message.errors.append(_("Please describe what is wrong and what is right."))
        except corrections.NotAllowed:
            security_log.deny()
        else:
            flash(_("Your request was sent. You see the answer here."), "success")
            return redirect(url_for("portal.my_corrections"))
    return _corrections_page(form)


def _delete_form(plan):
    """The confirmation, with one choice per child that only this account looks after:
    delete the child's data too (pre-selected: what deleting the account did before the
    choice existed, and what an answer that is missing means), or keep their file with
    the organisation."""
    from wtforms import RadioField

    from shared.auth.forms import ConfirmForm

    class DeleteAccountForm(ConfirmForm):
        pass

    for person in plan.people:
        if person.choosable:
            setattr(DeleteAccountForm, f"child_{person.client.id.hex}", RadioField(
                _l("What happens to this child?"),
                choices=[SelectChoice("delete", _l("Delete their data too")),
                         SelectChoice("keep", _l("Keep their file with us"))],
                default="delete"))
    return DeleteAccountForm()


def _children_to_keep(form, plan) -> frozenset[uuid.UUID]:
    return frozenset(person.client.id for person in plan.people if person.choosable
                     and form[f"child_{person.client.id.hex}"].data == "keep")


@bp.route("/my-data/delete", methods=["GET", "POST"])
@client_required
@fresh_required
def my_data_delete():
    """After a fresh confirmation: what goes now, what a duty keeps and until when, per
    child a choice; then, confirmed, the account is deleted."""
    from flask import flash, redirect, request, session, url_for
    from flask_babel import gettext as _
    from flask_login import logout_user

    from shared.services import erasure, household

    if household.handover_pending(current_user):
        return render_template("portal/my_data_delete.html", pending=True,
                               organisation_phone=household.organisation_phone())
    result = erasure.plan(current_user)
    form = _delete_form(result)
    if form.validate_on_submit():
        if request.form.get("understood") != "yes":
            flash(_("Please tick the box to confirm that you want to delete your account."),
                  "error")
        else:
            erasure.notify_and_delete(current_user.id, keep=_children_to_keep(form, result))
            # Not sessions.end_current(): the session row is already gone with the account.
            logout_user()
            session.clear()
            flash(_("Your account has been deleted. We sent you a last email about what we "
                    "must keep and until when."), "success")
            return redirect(url_for("portal.login"))
    return render_template("portal/my_data_delete.html", form=form, plan=result,
                           choice_field=lambda person: form[f"child_{person.client.id.hex}"])
