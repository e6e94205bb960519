"""The organisation's public pages: contact, imprint, privacy notice (no sign-in)."""

from __future__ import annotations

from flask import render_template

from portal import bp
from shared.services import organisation as service


@bp.get("/contact")
def contact():
    """Address, phone and opening hours, from the configuration."""
    return render_template("portal/contact.html", org=service.organisation(),
                           opening_hours=service.opening_hours())


@bp.get("/imprint")
def imprint():
    """The legal notice (§ 5 DDG, § 18 MStV), from the configuration."""
    return render_template("portal/imprint.html", org=service.organisation())


@bp.get("/privacy")
def privacy():
    """The privacy notice: who is responsible, and per category of data what, why, on which
    legal basis, how long and who sees it, generated from the data catalogue."""
    return render_template("portal/privacy.html", org=service.organisation(),
                           categories=service.privacy_notice())
