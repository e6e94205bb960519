"""Anonymous first contact: write to a team with only a pseudonym and a password, sign in
again with them, and the anonymous contact's account page. The rules are the service's
(shared/services/anonymous.py); the conversation pages are the ordinary ones."""

from __future__ import annotations

import base64
import uuid

from flask import flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from portal import bp
from portal.guards import client_required
from portal.messages import MAX_TOPIC, _body_field
from shared.auth import login_flow, passkeys, ratelimits, sessions
from shared.auth.forms import (
    ConfirmForm,
    current_password_field,
    email_field,
    new_password_field,
)
from shared.content_i18n import service_text
from shared.extensions import client_address, limiter
from shared.models.base import current_keyring
from shared.passkey_views import bp_json, failure_message
from shared.services import accounts, anonymous, anonymous_passkey, message_pages, messages

# New anonymous contacts from one network: enough for a family or a counselling office's
# guest computer, too few to fill the inbox.
NEW_CONTACTS = "5 per hour; 20 per day"
# Answers "this name is already used" per network: whether a pseudonym exists is what an
# enumeration asks, so after this many the page refuses for a while (as sign-in counts wrong
# passwords). Enough for a few tries at a name of one's own, also on a shared computer.
TAKEN_NAMES = "10 per hour; 30 per day"


def taken_names_key() -> str:
    """Per network (as ``client_address`` counts it), in a count of its own."""
    return "taken-names:" + client_address()


def _too_many_taken_names(limit):
    """The page again (status 429) with what was typed but the password and the passkey,
    saying when names can be tried again; no name is looked up meanwhile. The begin
    endpoint answers only that the form must go the ordinary way, which then lands
    here."""
    from flask import current_app

    if request.endpoint == "portal.anonymous_passkey_begin":
        return current_app.make_response((jsonify({"error": "", "resubmit": True}), 429))
    form = AnonymousStartForm()
    form.service.choices = _service_choices()
    form.password.data = None
    form.credential.data = ""  # hidden_tag() would write it back: the script would resend it
    refused = _("You tried several names that are already used. For your safety you can try "
                "another name from %(time)s. What you wrote is kept below.",
                time=ratelimits.retry_time(limit))
    return current_app.make_response(
        (render_template("portal/anonymous_start.html", form=form, refused=refused), 429))


# One count for the start page and the passkey's begin endpoint: both answer whether a
# name is taken, so an enumerator must not get the allowance twice.
taken_names_limit = limiter.shared_limit(
    TAKEN_NAMES, scope="taken-names", key_func=taken_names_key, methods=["POST"],
    deduct_when=ratelimits.only_failures, on_breach=_too_many_taken_names)

# The name the begin endpoint just counted as taken (its blind index): the script then
# sends the form the ordinary way to show why, the same answer, which must not count again.
TAKEN_COUNTED_KEY = "anonymous_taken_counted"


def _taken_name_mark(pseudonym: str) -> str:
    return current_keyring().blind_index("ratelimit.pseudonym",
                                         anonymous.clean_pseudonym(pseudonym)).hex()


def submitted_pseudonym_key() -> str:
    """Wrong passwords are counted per pseudonym (its blind index), however it is
    written."""
    value = " ".join((request.form.get("pseudonym") or "").split())
    if not value:
        return "no-pseudonym:" + client_address()
    return "pseudonym:" + current_keyring().blind_index("ratelimit.pseudonym", value).hex()


def _pseudonym_field(description=None) -> StringField:
    return StringField(
        _l("A name you choose"), id="anonymous-pseudonym",
        validators=[DataRequired(_l("Please choose a name to sign in with.")),
                    Length(max=anonymous.MAX_PSEUDONYM)],
        description=description,
        render_kw={"autocomplete": "username", "maxlength": anonymous.MAX_PSEUDONYM,
                   "spellcheck": "false", "autocapitalize": "none"})


class AnonymousStartForm(FlaskForm):
    pseudonym = _pseudonym_field(_l(
        "Not your real name and not an email address, for example “Sonnenblume 7”. You sign "
        "in with it, and our team sees it."))
    # Offered by static/js/anonymous_passkey.js where the device can make a passkey; the
    # form then carries the new credential (a hidden field) instead of a password.
    with_passkey = BooleanField(_l("Use a passkey instead of a password"),
                                id="anonymous-with-passkey")
    credential = HiddenField(id="anonymous-credential")
    password = new_password_field(_l("Choose a password"))
    service = SelectField(_l("To which team?"), id="anonymous-service", validate_choice=False,
                          validators=[InputRequired(_l("Please choose a team."))])
    topic = StringField(
        _l("Topic"), id="anonymous-topic",
        validators=[DataRequired(_l("Please write a topic in a few words.")),
                    Length(max=MAX_TOPIC, message=_l("Please shorten the topic to at most "
                                                     "%(max)d characters."))],
        render_kw={"maxlength": MAX_TOPIC, "autocomplete": "off"})
    body = _body_field("anonymous-body")
    submit = SubmitField(_l("Send message"), id="anonymous-submit")


class NotificationEmailForm(FlaskForm):
    email = email_field(_l("Email address for notifications"))
    submit = SubmitField(_l("Send confirmation link"), id="notification-email-submit")


class AnonymousLoginForm(FlaskForm):
    pseudonym = _pseudonym_field()
    password = current_password_field()
    submit = SubmitField(_l("Sign in"), id="anonymous-login-submit")


def _service_choices() -> list[SelectChoice]:
    return [SelectChoice("", _("Please choose"))] + [
        SelectChoice(str(s.id), service_text(s, "name").plain)
        for s in messages.services_to_write_to()]


def _signed_in_elsewhere():
    """A signed-in person has their own way to write; nobody starts a second identity
    from inside an account by accident."""
    flash(_("You are signed in. Write to our team from your messages."), "info")
    return redirect(url_for("portal.messages_index"))


def _start_form() -> AnonymousStartForm:
    form = AnonymousStartForm()
    form.service.choices = _service_choices()
    if form.with_passkey.data:
        form.password.validators = []  # the passkey is the way in: no password asked
    return form


def _chosen_service(form: AnonymousStartForm) -> uuid.UUID | None:
    try:
        return uuid.UUID(form.service.data or "")
    except ValueError:
        return None


# Until the first message is sent, the user handle the new passkey was made with.
PASSKEY_USER_KEY = "anonymous_passkey_user"


@bp.route("/messages/anonymous", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
@limiter.limit(NEW_CONTACTS, methods=["POST"], deduct_when=lambda response:
               response.status_code == 302)
@taken_names_limit
def anonymous_start():
    """Write to a team without a name or an email address: a pseudonym and a password (or
    a passkey made just before, see anonymous_passkey_begin), the team and the message on
    one page. Afterwards the person is signed in and sees the conversation. Refusals keep
    everything typed but the password and the passkey."""
    if current_user.is_authenticated:
        return _signed_in_elsewhere()
    form = _start_form()
    counted = session.pop(TAKEN_COUNTED_KEY, None) if form.is_submitted() else None
    if form.validate_on_submit():
        service_id = _chosen_service(form)
        try:
            if form.with_passkey.data:
                thread = anonymous_passkey.start(
                    pseudonym=form.pseudonym.data, service_id=service_id,
                    topic=form.topic.data, body=form.body.data, locale=str(get_locale()),
                    response=form.credential.data or "",
                    user_handle=_passkey_user_handle(), passkey_name="")
            else:
                if service_id is None:
                    raise messages.ServiceUnavailable
                thread = anonymous.start(
                    pseudonym=form.pseudonym.data, password=form.password.data,
                    service_id=service_id, topic=form.topic.data, body=form.body.data,
                    locale=str(get_locale()))
        except (anonymous.AnonymousError, accounts.WeakPassword, messages.MessagesError,
                passkeys.PasskeyError) as exc:
            if isinstance(exc, anonymous.PseudonymTaken) and (
                    counted != _taken_name_mark(form.pseudonym.data)):
                ratelimits.mark_failure()  # counted against TAKEN_NAMES
            _show_refusal(form, exc)
        else:
            first = message_pages.first_message(thread.id)
            if first is not None:
                message_pages.tell_of_new_message(first)
            if form.with_passkey.data:
                # No recovery codes here, unlike the passkey sign-up: without a password
                # (the first step they stand in for the passkey after) they open nothing.
                flash(_("Your message is sent. To read the answer, sign in again with your "
                        "passkey. Without this device nobody can open your conversation: "
                        "under “My account” you can add another passkey, or a password and "
                        "recovery codes."), "success")
            else:
                flash(_("Your message is sent. Sign in again with your name and password to "
                        "read the answer. Under “My account” you can add an email address to "
                        "be told of answers."), "success")
            return redirect(url_for("portal.message_thread", thread_id=thread.id))
    form.credential.data = ""  # a refused passkey is never sent again
    status = 400 if form.is_submitted() else 200
    return render_template("portal/anonymous_start.html", form=form), status


def _show_refusal(form: AnonymousStartForm, exc: Exception) -> None:
    """The refusal as a message at the field it is about."""
    if isinstance(exc, anonymous.PseudonymInvalid):
        form.pseudonym.errors = [_("Please choose a name of 3 to 40 characters that is "
                                   "not an email address.")]
    elif isinstance(exc, anonymous.PseudonymTaken):
        form.pseudonym.errors = [_("This name is already used. Please choose another "
                                   "one, for example with a number added.")]
    elif isinstance(exc, accounts.WeakPassword):
        form.password.errors = list(exc.problems)
    elif isinstance(exc, messages.ServiceUnavailable):
        form.service.errors = [_("This team takes no messages at the moment. Please "
                                 "choose another one.")]
    elif isinstance(exc, messages.EmptyMessage):
        if exc.what == "topic":
            form.topic.errors = [_("Please write a topic in a few words.")]
        else:
            form.body.errors = [_("Please write your message.")]
    elif isinstance(exc, anonymous_passkey.PasskeyNotDiscoverable):
        form.with_passkey.errors = [_(
            "This device made a passkey that it cannot offer when you sign in again: you "
            "could not open your conversation with it. Nothing was stored. Please choose a "
            "password instead.")]
    elif isinstance(exc, passkeys.PasskeyError):
        form.with_passkey.errors = [
            failure_message(exc), _("Nothing was stored. Send the message again to create "
                                    "a new passkey, or choose a password instead.")]
    else:
        raise exc


def _passkey_user_handle() -> bytes | None:
    kept = session.pop(PASSKEY_USER_KEY, None)
    try:
        return base64.urlsafe_b64decode(kept) if kept else None
    except (ValueError, TypeError):
        return None


@bp.post("/messages/anonymous/passkey/begin")
@limiter.limit(ratelimits.PER_ADDRESS)
@taken_names_limit
def anonymous_passkey_begin():
    """Options to create the passkey of a first contact, asked with the page's form
    (static/js/anonymous_passkey.js) and only once the form would be accepted, so no
    passkey is made for a message that is then refused. A refusal answers only that the
    form must go the ordinary way: the page then shows what is wrong."""
    if current_user.is_authenticated:
        return jsonify({"error": "", "resubmit": True}), 400
    form = _start_form()
    if not form.validate_on_submit():
        return jsonify({"error": "", "resubmit": True}), 400
    try:
        options, user_handle = anonymous_passkey.begin(
            pseudonym=form.pseudonym.data, service_id=_chosen_service(form),
            topic=form.topic.data, body=form.body.data,
            device_label=_("Anonymous contact"))
    except anonymous.PseudonymTaken:
        ratelimits.mark_failure()  # whether a name is used is what enumeration asks
        session[TAKEN_COUNTED_KEY] = _taken_name_mark(form.pseudonym.data)
        return jsonify({"error": "", "resubmit": True}), 400
    except (anonymous.AnonymousError, messages.MessagesError):
        return jsonify({"error": "", "resubmit": True}), 400
    session[PASSKEY_USER_KEY] = base64.urlsafe_b64encode(user_handle).decode()
    return bp_json(options)


@bp.route("/login/anonymous", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
@limiter.limit(ratelimits.PER_ACCOUNT_FAILURES, methods=["POST"],
               key_func=submitted_pseudonym_key, deduct_when=ratelimits.only_failures)
def anonymous_login():
    """Sign in with the pseudonym and password of an anonymous first contact. One answer
    for an unknown name and a wrong password."""
    if current_user.is_authenticated:
        return _signed_in_elsewhere()
    form = AnonymousLoginForm()
    next_url = login_flow.safe_next(request.args.get("next"))
    if form.validate_on_submit():
        result = anonymous.authenticate(pseudonym=form.pseudonym.data,
                                        password=form.password.data)
        if result.account is None:
            ratelimits.mark_failure()
            form.password.errors.append(_("Name or password is not right."))
        elif result.needs_second_factor:
            login_flow.begin(result.account, next_url=next_url)
            return redirect(url_for("portal.login_second_factor"))
        else:
            sessions.start(result.account, second_factor=False)
            return redirect(next_url or url_for("portal.messages_index"))
    status = 400 if form.is_submitted() else 200
    return render_template("portal/anonymous_login.html", form=form), status


@bp.get("/account/anonymous")
@client_required
def anonymous_account():
    """The anonymous contact's account page: the name they sign in with, why there is no
    reset by email, security and deletion."""
    if not current_user.is_pseudonymous:
        return redirect(url_for("portal.account"))
    return _account_page(NotificationEmailForm())


def _account_page(form: NotificationEmailForm, status: int = 200):
    return render_template("portal/anonymous_account.html", email_form=form,
                           remove_form=ConfirmForm(prefix="remove-email")), status


@bp.post("/account/anonymous/email")
@client_required
@limiter.limit(ratelimits.PER_ADDRESS)
@limiter.limit(ratelimits.MAIL_SENDING, key_func=ratelimits.signed_in_account_key)
def anonymous_email():
    """Ask for a link to confirm an address for notifications only."""
    if not current_user.is_pseudonymous:
        return redirect(url_for("portal.account"))
    form = NotificationEmailForm()
    if not form.validate_on_submit():
        return _account_page(form, 400)
    anonymous.request_notification_email(account=current_user, email=form.email.data)
    flash(_("We sent a link to %(email)s. Open it to receive notifications there.",
            email=form.email.data), "success")
    return redirect(url_for("portal.anonymous_account"))


def _notification_link_invalid():
    return render_template("portal/link_invalid.html", notification_email=True), 400


@bp.route("/account/anonymous/email/<token>", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
def anonymous_email_confirm(token: str):
    """The emailed link: a button confirms (a mail scanner opening the link does not).
    A link that is unknown, used, replaced or expired says so at once."""
    if not anonymous.notification_link_valid(token):
        return _notification_link_invalid()
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            anonymous.confirm_notification_email(token=token)
        except anonymous.LinkInvalid:
            return _notification_link_invalid()
        flash(_("Your address is confirmed. We will tell you there when there is an answer, "
                "never what it says."), "success")
        if current_user.is_authenticated:
            return redirect(url_for("portal.anonymous_account"))
        return redirect(url_for("portal.anonymous_login"))
    return render_template("portal/anonymous_email_confirm.html", form=form)


@bp.post("/account/anonymous/email/remove")
@client_required
def anonymous_email_remove():
    form = ConfirmForm(prefix="remove-email")
    if form.validate_on_submit():
        anonymous.remove_notification_email(account=current_user)
        flash(_("Your email address is deleted. We send you no more emails."), "success")
    return redirect(url_for("portal.anonymous_account"))
