"""Admins manage services (Angebote) and which staff offer them."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    IntegerField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from shared import policy
from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES
from shared.content_i18n import SERVICE_FIELDS, service_translations
from shared.extensions import db
from shared.i18n import text_direction
from shared.models.bookings import Service
from shared.services import bookings
from shared.services.staff import active_members
from staff import bp

# Longest text per field, in every language.
FIELD_LENGTHS = {"name": 120, "description": 2000, "location": 200}
OTHER_LOCALES = tuple(locale for locale in SUPPORTED_LOCALES if locale != DEFAULT_LOCALE)


class ServiceForm(FlaskForm):
    # German, the organisation's language: required (the fallback for every other one).
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)],
                       render_kw={"lang": DEFAULT_LOCALE})
    description = TextAreaField(_l("Description"), validators=[Length(max=2000)],
                                render_kw={"lang": DEFAULT_LOCALE})
    duration_minutes = IntegerField(_l("Duration in minutes"),
                                    validators=[DataRequired(), NumberRange(10, 480)])
    location = StringField(_l("Place"), validators=[Length(max=200)],
                           render_kw={"lang": DEFAULT_LOCALE})
    online = BooleanField(_l("Online appointment"))
    video_url = StringField(
        _l("Address of the video rooms (each appointment gets a room of its own)"),
        validators=[Optional(), Length(max=400)],
        description=_l("For online appointments: the address of your video service under "
                       "which rooms are opened, starting with https://. Each confirmed "
                       "appointment gets its own room there; only its client and its "
                       "staff member get the link."),
        render_kw={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"})
    active = BooleanField(_l("Can be booked"), default=True)
    staff = SelectMultipleField(_l("Offered by"), option_widget=CheckboxInput(),
                                widget=ListWidget(prefix_label=False))
    submit = SubmitField(_l("Save"))

    def validate_video_url(self, field) -> None:
        """Only an https address with a host: no javascript:, no plain http, no typos
        like "www.example.org" that would become a link into the portal."""
        value = (field.data or "").strip()
        parts = urlsplit(value)
        # The room's name is appended as a path: no query or fragment after the base.
        if parts.scheme.lower() != "https" or not parts.hostname or any(
                c.isspace() for c in value) or parts.query or parts.fragment \
                or value.endswith(("?", "#")):
            raise ValidationError(_l("Please enter an address starting with https://"))
        field.data = value


# The other languages, optional: name_tr, description_tr, location_tr, ... each typed in its
# language and direction.
for _locale in OTHER_LOCALES:
    _typed_in = {"lang": _locale, "dir": text_direction(_locale)}
    setattr(ServiceForm, f"name_{_locale}",
            StringField(_l("Name"), validators=[Optional(), Length(max=FIELD_LENGTHS["name"])],
                        render_kw=_typed_in))
    setattr(ServiceForm, f"description_{_locale}",
            TextAreaField(_l("Description"),
                          validators=[Optional(), Length(max=FIELD_LENGTHS["description"])],
                          render_kw=_typed_in))
    setattr(ServiceForm, f"location_{_locale}",
            StringField(_l("Place"),
                        validators=[Optional(), Length(max=FIELD_LENGTHS["location"])],
                        render_kw=_typed_in))


def _translations(form: ServiceForm) -> dict[str, dict[str, str]]:
    return {locale: {field: (form[f"{field}_{locale}"].data or "").strip()
                     for field in SERVICE_FIELDS} for locale in OTHER_LOCALES}


def _staff_choices() -> list[tuple[str, str]]:
    members = active_members(roles=policy.roles_with(policy.OFFER_SERVICES))
    return [(str(m.id), m.name or m.account.email) for m in members]


@bp.get("/services")
def services():
    rows = db.session.scalars(select(Service).order_by(Service.name)).all()
    return render_template("staff/services.html", rows=rows)


@bp.route("/services/new", methods=["GET", "POST"], defaults={"service_id": None})
@bp.route("/services/<uuid:service_id>", methods=["GET", "POST"])
def service_edit(service_id: uuid.UUID | None):
    service = db.session.get(Service, service_id) if service_id else None
    if service_id and service is None:
        abort(404)
    saved = {}
    if request.method == "GET" and service is not None:
        saved = {f"{field}_{locale}": value
                 for locale, values in service_translations(service).items()
                 if locale != DEFAULT_LOCALE for field, value in values.items()}
    form = ServiceForm(obj=service if request.method == "GET" else None, **saved)
    form.staff.choices = _staff_choices()
    if request.method == "GET" and service is not None:
        form.staff.data = [str(m.id) for m in service.staff]
    if form.validate_on_submit():
        bookings.save_service(
            service=service, name=form.name.data, description=form.description.data,
            duration_minutes=form.duration_minutes.data, location=form.location.data,
            online=form.online.data, active=form.active.data,
            video_url=form.video_url.data, translations=_translations(form),
            staff_ids={uuid.UUID(v) for v in form.staff.data or []})
        flash(_("Saved."), "success")
        return redirect(url_for("staff.services"))
    return render_template("staff/service_form.html", form=form, service=service,
                           other_locales=OTHER_LOCALES, fields=SERVICE_FIELDS)
