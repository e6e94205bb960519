"""Transparency: who on staff looked at my data, and which notes and documents exist."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from flask import abort, current_app, render_template
from flask_login import current_user

from portal import bp
from portal.guards import client_required, fresh_required
from shared.services import transparency


@bp.get("/my-data")
@client_required
def my_data():
    from shared.services import my_data as service
    from shared.services import transparency

    people = [(s.client, s.is_self, service.items_for(s.client, as_guardian=not s.is_self))
              for s in transparency.subjects(current_user)]
    return render_template("portal/my_data.html", people=people, display=service.display,
                           secret_words=service.secret_words)


@bp.get("/my-data/access")
@client_required
def my_data_access():
    """The access log as a timeline, filtered by person and by category if asked."""
    from flask import request

    subjects = transparency.subjects(current_user)
    people = sorted({line.staff_name for s in subjects for line in s.events})
    categories = sorted({line.category for s in subjects for line in s.events})
    person, category = request.args.get("person", ""), request.args.get("category", "")
    for subject in subjects:
        subject.events = [line for line in subject.events
                          if (not person or line.staff_name == person)
                          and (not category or line.category == category)]
    return render_template("portal/my_data_access.html", subjects=subjects, people=people,
                           categories=categories, person=person, category=category)


@bp.get("/my-data/documents/<uuid:document_id>")
@client_required
def my_document(document_id: uuid.UUID):
    document = transparency.client_document(current_user, document_id)
    if document is None:
        abort(404)
    response = current_app.response_class(document.content, mimetype=document.content_type)
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(document.filename)}")
    return response


@bp.route("/my-data/export", methods=["GET", "POST"])
@client_required
@fresh_required
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


@bp.route("/my-data/corrections", methods=["GET", "POST"])
@client_required
def my_corrections():
    """Ask staff to correct something they recorded; see the answers."""
    from flask import flash, redirect, request, url_for
    from flask_babel import gettext as _

    from shared.auth.forms import ConfirmForm
    from shared.services import corrections, transparency

    form = ConfirmForm()
    people = [(s.client, s.is_self) for s in transparency.subjects(current_user)]
    if form.validate_on_submit():
        try:
            corrections.request_correction(
                account=current_user, client_id=uuid.UUID(request.form.get("client", "")),
                about=request.form.get("about", "other"), message=request.form.get("message", ""))
        except ValueError:
            flash(_("Please describe what is wrong and what is right."), "error")
        except corrections.NotAllowed:
            abort(404)
        else:
            flash(_("Your request was sent. You see the answer here."), "success")
            return redirect(url_for("portal.my_corrections"))
    return render_template("portal/my_corrections.html", form=form, people=people,
                           about=request.args.get("about", "other"),
                           rows=corrections.requests_for(current_user))


@bp.route("/my-data/delete", methods=["GET", "POST"])
@client_required
@fresh_required
def my_data_delete():
    """After a fresh confirmation: what goes now, what a duty keeps and until when; then,
    confirmed, the account is deleted."""
    from flask import flash, redirect, request, session, url_for
    from flask_babel import gettext as _
    from flask_login import logout_user

    from shared.auth.forms import ConfirmForm
    from shared.services import erasure

    form = ConfirmForm()
    result = erasure.plan(current_user)
    if form.validate_on_submit():
        if request.form.get("understood") != "yes":
            flash(_("Please tick the box to confirm that you want to delete your account."),
                  "error")
        else:
            erasure.notify_and_delete(current_user.id)
            # Not sessions.end_current(): the session row is already gone with the account.
            logout_user()
            session.clear()
            flash(_("Your account has been deleted. We sent you a last email about what we "
                    "must keep and until when."), "success")
            return redirect(url_for("portal.login"))
    return render_template("portal/my_data_delete.html", form=form, plan=result)
