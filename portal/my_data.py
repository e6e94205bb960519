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
    return render_template("portal/my_data.html", people=people, display=service.display)


@bp.get("/my-data/access")
@client_required
def my_data_access():
    return render_template("portal/my_data_access.html",
                           subjects=transparency.subjects(current_user))


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
