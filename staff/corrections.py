"""Requests from clients with a deadline of one month (Art. 12(3) GDPR): corrections to
answer with done or rejected and a reply, and erasures whose restricted remainder an admin
checks (keep it restricted, or delete it now when no duty applies)."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared import paging, security_log
from shared.auth.forms import ConfirmForm
from shared.models.base import utcnow
from shared.services import corrections, erasure
from staff import bp


@bp.get("/corrections")
def corrections_queue():
    result = corrections.open_for_staff(current_user.staff_member, page=paging.page_arg())
    return render_template("staff/corrections.html", result=result, rows=result.rows,
                           form=ConfirmForm(), clients=result.clients,
                           deadline=corrections.deadline, now=utcnow())


@bp.get("/erasures")
def erasures_queue():
    """Restricted files by id and date only: the list reads no personal data. A page of
    them at a time (``?page=``), the oldest request first."""
    return render_template("staff/erasures.html",
                           result=erasure.review_page(request.args.get("page", 1, type=int)),
                           form=ConfirmForm(), now=utcnow())


@bp.post("/erasures/<uuid:client_id>")
def erasure_decide(client_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    decision = request.form.get("decision")
    try:
        if decision == "keep":
            erasure.confirm_restriction(admin=current_user.staff_member, client_id=client_id)
            flash(_("Kept restricted until the retention period ends."), "success")
        elif decision == "erase" and request.form.get("confirm") != "yes":
            flash(_("Please tick the box to confirm that no duty requires keeping this."),
                  "error")
        elif decision == "erase":
            erasure.erase_now(admin=current_user.staff_member, client_id=client_id)
            flash(_("Deleted. Nothing about this client is left."), "success")
        else:
            abort(400)
    except LookupError:
        abort(404)
    return redirect(url_for("staff.erasures_queue",  # back to the page it was on
                            page=request.args.get("page", type=int)))


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
        security_log.deny()
    flash(_("Answered. The client sees it in the portal."), "success")
    return redirect(url_for("staff.corrections_queue",  # back to the page it was on
                            page=request.args.get("page", type=int)))
