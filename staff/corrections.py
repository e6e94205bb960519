"""Correction requests from clients: answer with done or rejected and a reply."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared.auth.forms import ConfirmForm
from shared.services import casefile, corrections
from staff import ENDPOINT_ROLES, bp


@bp.get("/corrections")
def corrections_queue():
    rows = corrections.open_for_staff(current_user.staff_member)
    return render_template("staff/corrections.html", rows=rows, form=ConfirmForm(),
                           clients={r.client_id: casefile.get_client(r.client_id)
                                    for r in rows})


@bp.post("/corrections/<uuid:request_id>")
def correction_answer(request_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        corrections.answer(member=current_user.staff_member, request_id=request_id,
                           status=request.form.get("status", ""),
                           reply=request.form.get("reply", ""))
    except ValueError:
        abort(400)
    except corrections.NotAllowed:
        abort(404)
    flash(_("Answered. The client sees it in the portal."), "success")
    return redirect(url_for("staff.corrections_queue"))


ENDPOINT_ROLES.update({
    "staff.corrections_queue": frozenset({"caseworker", "admin"}),
    "staff.correction_answer": frozenset({"caseworker", "admin"}),
})
