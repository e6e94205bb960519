"""The staff start page."""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from staff import bp

ROLE_NAMES = {
    "admin": _l("administrator"),
    "caseworker": _l("caseworker"),
    "reception": _l("reception"),
}


@bp.get("/")
def home():
    return render_template(
        "staff/home.html", member=current_user.staff_member, role_names=ROLE_NAMES
    )
