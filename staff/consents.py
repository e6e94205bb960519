"""Consent templates (admins) and consents in the case file."""

from __future__ import annotations

import re
import uuid

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from shared import security_log
from shared.auth.forms import ConfirmForm
from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES
from shared.content_i18n import consent_translations, service_text
from shared.i18n import text_direction
from shared.services import bookings, consents
from staff import bp, current_session_id


class TemplateForm(FlaskForm):
    key = StringField(_l("Key (letters, digits, dashes; stays the same across versions)"),
                      validators=[DataRequired(), Length(max=64),
                                  Regexp(r"^[a-z0-9-]+$", re.I)])
    # German, the organisation's language: required (the fallback for every other one).
    title_de = StringField(_l("Title (German, binding)"),
                           validators=[DataRequired(), Length(max=200)],
                           render_kw={"lang": DEFAULT_LOCALE})
    text_de = TextAreaField(_l("Text (German, binding)"), validators=[DataRequired()],
                            render_kw={"lang": DEFAULT_LOCALE})
    purpose = StringField(_l("Purpose"), validators=[DataRequired(), Length(max=500)],
                          render_kw={"lang": DEFAULT_LOCALE})
    legal_basis = StringField(_l("Legal basis"), validators=[DataRequired(), Length(max=200)],
                              render_kw={"lang": DEFAULT_LOCALE})
    audience = StringField(_l("Who will see it"), validators=[Length(max=500)],
                           render_kw={"lang": DEFAULT_LOCALE})
    guardian_signs = BooleanField(_l("A guardian signs for a minor"), default=True)
    required_for = SelectField(_l("Required for a service"), choices=[], default="")
    submit = SubmitField(_l("Save draft"))

    def validate(self, extra_validators=None) -> bool:
        """A language is its binding title and text: whoever fills in anything of it
        writes both (its purpose, legal basis and audience may stay German)."""
        valid = super().validate(extra_validators)
        for locale in OTHER_LOCALES:
            parts = [self[f"{name}_{locale}"] for name in LANGUAGE_FIELDS]
            if any((part.data or "").strip() for part in parts):
                for name in ("title", "text"):
                    part = self[f"{name}_{locale}"]
                    if not (part.data or "").strip():
                        part.errors = [*part.errors, _(
                            "Please write the title and the text in this language too, "
                            "or leave the language empty.")]
                        valid = False
        return valid


# German is above; every other language: title_tr, text_tr, purpose_tr, legal_basis_tr,
# audience_tr, ... optional, each typed in its language and direction.
OTHER_LOCALES = tuple(locale for locale in SUPPORTED_LOCALES if locale != DEFAULT_LOCALE)
LANGUAGE_FIELDS = ("title", "text", "purpose", "legal_basis", "audience")
GERMAN_FIELDS = ("title_de", "text_de", "purpose", "legal_basis", "audience")
for _locale in OTHER_LOCALES:
    _typed_in = {"lang": _locale, "dir": text_direction(_locale)}
    for _name, _label, _max in (("title", _l("Title"), 200), ("purpose", _l("Purpose"), 500),
                                ("legal_basis", _l("Legal basis"), 200),
                                ("audience", _l("Who will see it"), 500)):
        setattr(TemplateForm, f"{_name}_{_locale}", StringField(
            _label, validators=[Optional(), Length(max=_max)], render_kw=_typed_in))
    setattr(TemplateForm, f"text_{_locale}", TextAreaField(
        _l("Text"), validators=[Optional()], render_kw=_typed_in))


def _texts(form: TemplateForm) -> dict[str, dict[str, str]]:
    texts = {DEFAULT_LOCALE: {"title": form.title_de.data, "text": form.text_de.data}}
    for locale in OTHER_LOCALES:
        texts[locale] = {name: (form[f"{name}_{locale}"].data or "").strip()
                         for name in LANGUAGE_FIELDS}
    return texts


class RequestSignatureForm(ConfirmForm):
    """'Ask to sign' in the case file: the template's key."""

    key = StringField()


@bp.get("/consents")
def consent_templates():
    return render_template("staff/consent_templates.html", rows=consents.all_templates(),
                           form=ConfirmForm())


@bp.route("/consents/new", methods=["GET", "POST"], defaults={"template_id": None})
@bp.route("/consents/<uuid:template_id>", methods=["GET", "POST"])
def consent_template_edit(template_id: uuid.UUID | None):
    try:
        template = consents.get_template(template_id) if template_id else None
    except consents.UnknownTemplate:
        abort(404)
    data = None
    if template is not None and request.method == "GET":
        data = {"key": template.key, "guardian_signs": template.guardian_signs}
        for locale, values in consent_translations(template).items():
            for name, value in values.items():
                if locale == DEFAULT_LOCALE:
                    data[f"{name}_de" if name in ("title", "text") else name] = value
                else:
                    data[f"{name}_{locale}"] = value
    if data is not None:
        data["required_for"] = str(template.required_for_service_id or "")
    form = TemplateForm(data=data)
    form.required_for.choices = [SelectChoice("", _("not required"))] + [
        SelectChoice(str(s.id), service_text(s, "name").text)
        for s in bookings.active_services()]
    if form.validate_on_submit():
        saved = consents.save_template(
            key=form.key.data.lower(), template_id=template.id if template else None,
            texts=_texts(form),
            purpose=form.purpose.data, legal_basis=form.legal_basis.data,
            audience=form.audience.data or "", guardian_signs=form.guardian_signs.data,
            required_for_service_id=uuid.UUID(form.required_for.data)
            if form.required_for.data else None)
        flash(_("Draft saved (version %(version)d). Publish it to use it.",
                version=saved.version), "success")
        return redirect(url_for("staff.consent_templates"))
    return render_template("staff/consent_template_form.html", form=form, template=template,
                           other_locales=OTHER_LOCALES, fields=LANGUAGE_FIELDS,
                           german_fields=GERMAN_FIELDS)


@bp.post("/consents/<uuid:template_id>/publish")
def consent_template_publish(template_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        consents.publish(template_id)
    except consents.NotADraft:
        flash(_("Only drafts can be published."), "error")
    else:
        flash(_("Published. This version can no longer be changed."), "success")
    return redirect(url_for("staff.consent_templates"))


@bp.post("/clients/<uuid:client_id>/consents/request")
def consent_request(client_id: uuid.UUID):
    form = RequestSignatureForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        consents.request_signature(member=current_user.staff_member, client_id=client_id,
                                   session_id=current_session_id(), key=form.key.data or "")
    except consents.NotAllowed:
        security_log.deny()
    flash(_("The client was asked and gets an email."), "success")
    return redirect(url_for("staff.client_file", client_id=client_id))


@bp.get("/consents/receipt/<uuid:consent_id>/<kind>.pdf")
def consent_receipt_staff(consent_id: uuid.UUID, kind: str):
    if kind not in ("consent", "withdrawal"):
        abort(404)
    try:
        pdf = consents.receipt_for_staff(member=current_user.staff_member,
                                         consent_id=consent_id, session_id=current_session_id(),
                                         withdrawal=kind == "withdrawal")
    except consents.NoReceipt:
        abort(404)
    except consents.NotAllowed:
        security_log.deny()
    response = current_app.response_class(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="consent-{kind}.pdf"'
    return response
