"""Consents: read, sign with a passkey (or a code and the typed name; with only a password,
a code sent by email and the typed name, or a passkey made right here), say "I do not
agree", download the sealed receipt, withdraw with one button. And /verify for anyone
holding a receipt."""

from __future__ import annotations

import uuid

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, StringField, SubmitField

from portal import bp
from portal.guards import client_required
from shared import security_log
from shared.auth import passkeys, ratelimits, sessions
from shared.auth.forms import ConfirmForm, code_field
from shared.extensions import limiter
from shared.models.consents import DECLINED, GIVEN, ConsentTemplate
from shared.passkey_views import failure_message
from shared.services import consents, household

# An invited account acts in the young person's name only once staff met them in person
# (household.HandoverPending); portal/_handover_pending.html adds why and the team's number.
HANDOVER_PENDING = _l("You can give or withdraw consents here once our team has confirmed "
                      "that this account really is yours.")
# A passkey signature begun and not yet finished (consents.PendingSignature), kept in the
# signer's session between the two requests.
PENDING_SIGNATURE_KEY = "consent_pending"
# Which consent the last emailed code was sent for (template:subject), so that page shows
# the field for it; the code itself is bound to that consent by its hash.
EMAIL_CODE_FOR_KEY = "consent_email_code_for"


class TotpSignForm(FlaskForm):
    shown = HiddenField()  # consents.shown_token of the page the answer comes from
    code = code_field(_l("Code from your authenticator app"))
    typed_name = StringField(_l("Your full name, as your signature"),
                             render_kw={"autocomplete": "name"})
    submit = SubmitField(_l("Give consent with code and name"))


class SendEmailCodeForm(FlaskForm):
    submit = SubmitField(_l("Email me a code"))


class EmailCodeSignForm(FlaskForm):
    shown = HiddenField()
    code = code_field(_l("Code from the email"))
    typed_name = StringField(_l("Your full name, as your signature"),
                             render_kw={"autocomplete": "name"})
    submit = SubmitField(_l("Give consent with code and name"))


class DeclineForm(ConfirmForm):
    shown = HiddenField()


# The page's language changed (another tab) or its text is not the one shown: nothing is
# signed, and the page is shown again to read.
TEXT_NOT_SHOWN = _l("This page was shown in another language or has changed since. Nothing "
                    "was signed. Please read the text here and answer again.")


def _locale_shown(template: ConsentTemplate, subject, token: str | None) -> str:
    """The language the answered page showed (consents.locale_shown); a consent given
    meanwhile (in another tab) is a conflict first, as without the check."""
    try:
        return consents.locale_shown(template, token)
    except consents.TextNotShown:
        existing = consents.current_consent(subject.id, template.key)
        if existing is not None and existing.status == GIVEN:
            abort(409)
        raise


def _read_again(template_id: uuid.UUID, subject_id: uuid.UUID):
    flash(TEXT_NOT_SHOWN, "error")
    return redirect(url_for("portal.consent_detail", template_id=template_id,
                            subject_id=subject_id))


class VerifyForm(FlaskForm):
    receipt = FileField(_l("Receipt (PDF)"))
    submit = SubmitField(_l("Check receipt"))


def _locale() -> str:
    return str(get_locale() or "de")


@bp.get("/consents")
@client_required
def consents_index():
    requests = consents.open_requests(current_user)
    return render_template("portal/consents.html", people=consents.overview(current_user),
                           requests=requests,
                           asked_for={(r.subject_id, r.template_key): r for r in requests})


def _template_and_subject(template_id: uuid.UUID, subject_id: uuid.UUID):
    from shared.extensions import db

    template = db.session.get(ConsentTemplate, template_id)
    if template is None:
        abort(404)
    try:
        subject = consents.subject_for(current_user, subject_id)
    except consents.NotAllowed:
        security_log.deny()
    return template, subject


@bp.route("/consents/<uuid:template_id>/<uuid:subject_id>", methods=["GET", "POST"])
@client_required
@limiter.limit(ratelimits.SECOND_FACTOR, methods=["POST"],
               key_func=ratelimits.signed_in_account_key)
def consent_detail(template_id: uuid.UUID, subject_id: uuid.UUID):
    template, subject = _template_and_subject(template_id, subject_id)
    form = TotpSignForm()
    status = 200
    if current_user.has_totp and form.validate_on_submit():
        try:
            consents.sign_with_totp(account=current_user, template_id=template.id,
                                    subject_id=subject.id,
                                    locale=_locale_shown(template, subject, form.shown.data),
                                    code=form.code.data, typed_name=form.typed_name.data)
        except consents.TextNotShown:
            return _read_again(template.id, subject.id)
        except consents.SignatureInvalid:
            form.code.errors.append(_("The code is not right (or was used already), or the "
                                      "name is not the name of your account."))
        except household.HandoverPending:
            status = 403  # the page says why and whom to call
        except (consents.AlreadyGiven, consents.NotAllowed):
            abort(409)
        else:
            return _signed(template.id, subject.id)
    return _detail_page(template, subject, form=form, status=status)


def _signed(template_id: uuid.UUID, subject_id: uuid.UUID):
    flash(_("Thank you. Your consent is recorded; the receipt is ready. We also sent you "
            "an email with a link to it."), "success")
    return redirect(url_for("portal.consent_detail", template_id=template_id,
                            subject_id=subject_id))


def _detail_page(template: ConsentTemplate, subject, *, form: TotpSignForm | None = None,
                 email_form: EmailCodeSignForm | None = None, status: int = 200):
    """The consent's page: its text, its state, and every way to answer it this account
    has."""
    existing = consents.current_consent(subject.id, template.key)
    if template.status != "published" and existing is None:
        abort(404)  # drafts are not for clients
    is_self = subject.id == getattr(current_user.client, "id", None)
    email_code_offered = consents.email_code_offered(current_user)
    shown = consents.shown_token(template, _locale())
    form = form or TotpSignForm(formdata=None)
    email_form = email_form or EmailCodeSignForm(formdata=None, prefix="email")
    form.shown.data = email_form.shown.data = shown  # the text this page shows
    return render_template(
        "portal/consent_detail.html", template=template, subject=subject, existing=existing,
        given=existing is not None and existing.status == GIVEN,
        declined=existing is not None and existing.status == DECLINED,
        form=form, shown_token=shown,
        locale=_locale(), is_self=is_self, withdraw_form=ConfirmForm(),
        handover_pending=is_self and household.handover_pending(current_user),
        handover_what=HANDOVER_PENDING, organisation_phone=household.organisation_phone(),
        asked=consents.request_for(subject.id, template.key),
        email_code_offered=email_code_offered,
        email_code_sent=email_code_offered and session.get(EMAIL_CODE_FOR_KEY) == _code_for(
            template.id, subject.id),
        send_code_form=SendEmailCodeForm(formdata=None, prefix="send"),
        email_form=email_form,
        passkey_fresh=sessions.is_fresh(current_user),
    ), status


def _code_for(template_id: uuid.UUID, subject_id: uuid.UUID) -> str:
    return f"{template_id}:{subject_id}"


@bp.post("/consents/<uuid:template_id>/<uuid:subject_id>/email-code/send")
@client_required
@limiter.limit(ratelimits.MAIL_SENDING, key_func=ratelimits.signed_in_account_key)
def consent_email_code_send(template_id: uuid.UUID, subject_id: uuid.UUID):
    """Email a one-time code to sign this consent (accounts with only a password)."""
    template, subject = _template_and_subject(template_id, subject_id)
    if SendEmailCodeForm(prefix="send").validate_on_submit():
        try:
            consents.send_email_code(account=current_user, template_id=template.id,
                                     subject_id=subject.id)
        except household.HandoverPending:
            return _detail_page(template, subject, status=403)
        except (consents.AlreadyGiven, consents.NotAllowed, consents.EmailCodeNotOffered):
            abort(409)
        session[EMAIL_CODE_FOR_KEY] = _code_for(template.id, subject.id)
        flash(_("We sent you a code by email. It is valid for %(minutes)d minutes.",
                minutes=consents.EMAIL_CODE_MINUTES), "success")
    return redirect(url_for("portal.consent_detail", template_id=template.id,
                            subject_id=subject.id, _anchor="sign-by-email"))


@bp.post("/consents/<uuid:template_id>/<uuid:subject_id>/email-code")
@client_required
@limiter.limit(ratelimits.SECOND_FACTOR, key_func=ratelimits.signed_in_account_key,
               deduct_when=ratelimits.only_failures)
def consent_email_code_sign(template_id: uuid.UUID, subject_id: uuid.UUID):
    """Sign with the emailed code and the typed name; only wrong codes count."""
    template, subject = _template_and_subject(template_id, subject_id)
    form = EmailCodeSignForm(prefix="email")
    status = 200
    if form.validate_on_submit():
        try:
            consents.sign_with_email_code(
                account=current_user, template_id=template.id, subject_id=subject.id,
                locale=_locale_shown(template, subject, form.shown.data), code=form.code.data,
                typed_name=form.typed_name.data)
        except consents.TextNotShown:
            return _read_again(template.id, subject.id)
        except consents.WrongName:
            form.typed_name.errors.append(_("Please type your full name as it is written in "
                                            "your account."))
        except consents.WrongCode:
            ratelimits.mark_failure()
            form.code.errors.append(_("The code is not right. Please check the email."))
        except consents.CodeExpired:
            session.pop(EMAIL_CODE_FOR_KEY, None)
            flash(_("This code is no longer valid (too old, already used or tried too often). "
                    "Please ask for a new code."), "error")
            return redirect(url_for("portal.consent_detail", template_id=template.id,
                                    subject_id=subject.id, _anchor="sign-by-email"))
        except household.HandoverPending:
            status = 403
        except (consents.AlreadyGiven, consents.NotAllowed, consents.EmailCodeNotOffered):
            abort(409)
        else:
            session.pop(EMAIL_CODE_FOR_KEY, None)
            return _signed(template.id, subject.id)
    session[EMAIL_CODE_FOR_KEY] = _code_for(template.id, subject.id)
    return _detail_page(template, subject, email_form=form, status=status)


@bp.route("/consents/<uuid:template_id>/<uuid:subject_id>/decline", methods=["GET", "POST"])
@client_required
def consent_decline(template_id: uuid.UUID, subject_id: uuid.UUID):
    """"I do not agree": asks once, then records it (staff see it in the case file)."""
    template, subject = _template_and_subject(template_id, subject_id)
    form = DeclineForm()
    if form.validate_on_submit():
        try:
            consents.decline(account=current_user, template_id=template.id,
                             subject_id=subject.id,
                             locale=_locale_shown(template, subject, form.shown.data))
        except consents.TextNotShown:
            return _read_again(template.id, subject.id)
        except household.HandoverPending:
            return _detail_page(template, subject, status=403)
        except consents.AlreadyDeclined:
            pass
        except (consents.AlreadyGiven, consents.NotAllowed):
            abort(409)
        flash(_("Recorded: you do not agree. You can change your mind on this page at any "
                "time."), "success")
        return redirect(url_for("portal.consent_detail", template_id=template.id,
                                subject_id=subject.id))
    form.shown.data = consents.shown_token(template, _locale())
    return render_template("portal/consent_decline.html", template=template, subject=subject,
                           form=form, locale=_locale(),
                           is_self=subject.id == getattr(current_user.client, "id", None))


@bp.post("/consents/<uuid:template_id>/<uuid:subject_id>/passkey/begin")
@client_required
@limiter.limit("10 per minute")
def consent_passkey_begin(template_id: uuid.UUID, subject_id: uuid.UUID):
    from shared.extensions import db

    template = db.session.get(ConsentTemplate, template_id)
    if template is None:
        abort(404)
    try:
        locale = consents.locale_shown(template, request.args.get("shown"))
    except consents.TextNotShown:
        locale = None  # refused below, after whether this person may sign it at all
    try:
        options, pending = consents.begin_passkey_signature(
            account=current_user, template_id=template_id, subject_id=subject_id,
            locale=locale or _locale())
    except consents.AlreadyGiven:
        return jsonify({"error": _("This consent is already given.")}), 409
    except household.HandoverPending:
        return jsonify({"error": str(HANDOVER_PENDING)}), 403
    except consents.NotAllowed:
        security_log.deny()
    if locale is None:
        return jsonify({"error": str(TEXT_NOT_SHOWN)}), 409
    session[PENDING_SIGNATURE_KEY] = pending.as_dict()
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/consents/passkey/finish")
@client_required
@limiter.limit("10 per minute")
def consent_passkey_finish():
    import json

    data = request.get_json(silent=True) or {}
    # Used once, also when the signature fails.
    pending = consents.PendingSignature.from_dict(session.pop(PENDING_SIGNATURE_KEY, None))
    try:
        consent = consents.finish_passkey_signature(
            account=current_user, response=json.dumps(data.get("credential") or {}),
            pending=pending)
    except passkeys.PasskeyError as exc:
        return jsonify({"error": failure_message(exc)}), 400
    except (consents.SignatureInvalid, consents.AlreadyGiven):
        return jsonify({"error": _("The signature could not be recorded. Please try "
                                   "again.")}), 400
    except household.HandoverPending:
        return jsonify({"error": str(HANDOVER_PENDING)}), 403
    flash(_("Thank you. Your consent is signed with your passkey; the receipt is ready."),
          "success")
    return jsonify({"redirect": url_for("portal.consent_detail",
                                        template_id=consent.template_id,
                                        subject_id=consent.subject_id)})


@bp.get("/consents/receipt/<uuid:consent_id>/<kind>.pdf")
@client_required
def consent_receipt(consent_id: uuid.UUID, kind: str):
    try:
        consent = consents.own_consent(current_user, consent_id)
    except consents.NotAllowed:
        security_log.deny()
    pdf = consent.withdrawal_receipt if kind == "withdrawal" else consent.receipt
    if kind not in ("consent", "withdrawal") or pdf is None:
        abort(404)
    response = current_app.response_class(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="einblick-{kind}-{consent.id}.pdf"')
    return response


@bp.route("/consents/<uuid:consent_id>/withdraw", methods=["GET", "POST"])
@client_required
def consent_withdraw(consent_id: uuid.UUID):
    try:
        consent = consents.own_consent(current_user, consent_id)
    except consents.NotAllowed:
        security_log.deny()
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            consents.withdraw(account=current_user, consent_id=consent.id)
        except consents.ConsentWithdrawn:
            if consent.status == DECLINED:  # never given: nothing to withdraw
                return redirect(url_for("portal.consent_detail",
                                        template_id=consent.template_id,
                                        subject_id=consent.subject_id))
        except household.HandoverPending:
            # The consent's page says what is not possible yet, why, and whom to call.
            return redirect(url_for("portal.consent_detail", template_id=consent.template_id,
                                    subject_id=consent.subject_id))
        flash(_("Your consent is withdrawn, effective now. The receipt of the withdrawal is "
                "ready."), "success")
        return redirect(url_for("portal.consent_detail", template_id=consent.template_id,
                                subject_id=consent.subject_id))
    return render_template("portal/consent_withdraw.html", consent=consent, form=form,
                           locale=_locale())


@bp.route("/verify", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def verify():
    """Anyone can check a receipt: seal, signature, whether it was withdrawn."""
    form = VerifyForm()
    result = None
    if form.validate_on_submit() and form.receipt.data:
        data = form.receipt.data.read(5 * 1024 * 1024)
        result = consents.verify_receipt(data, locale=_locale())
    return render_template("portal/verify.html", form=form, result=result)
