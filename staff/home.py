"""The staff start page."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from shared.policy import ROLE_NAMES  # staff.team takes it from here too
from staff import bp


@bp.get("/")
def home():
    return render_template(
        "staff/home.html", member=current_user.staff_member, role_names=ROLE_NAMES
    )
