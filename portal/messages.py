"""Messages to the team: the client's (or a guardian's) conversations with a service, a
new one, a conversation with its reply form, and attachment downloads. Plain forms and a
page reload; what may be written and read is the service's (shared/services/messages.py)."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from portal import bp
from portal.guards import client_required
from shared import message_views, paging
from shared.content_i18n import service_text
from shared.services import message_pages, messages

MAX_BODY = 10_000
MAX_TOPIC = 120


def _body_field(field_id: str) -> TextAreaField:
    return TextAreaField(
        _l("Your message"), id=field_id,
        validators=[DataRequired(_l("Please write your message.")),
                    Length(max=MAX_BODY, message=_l("Please shorten your message to at most "
                                                    "%(max)d characters."))],
        render_kw={"rows": 8, "maxlength": MAX_BODY})


class NewMessageForm(FlaskForm):
    # The choices are checked by the service (whom one may write for, which service takes
    # messages), with a message that says what to do.
    client = RadioField(_l("Who is it about?"), id="message-client", validate_choice=False,
                        validators=[InputRequired(_l("Please choose who it is about."))])
    service = SelectField(_l("To which team?"), id="message-service", validate_choice=False,
                          validators=[InputRequired(_l("Please choose a team."))])
    topic = StringField(
        _l("Topic"), id="message-topic",
        validators=[DataRequired(_l("Please write a topic in a few words.")),
                    Length(max=MAX_TOPIC, message=_l("Please shorten the topic to at most "
                                                     "%(max)d characters."))],
        description=_l("A few words, for example “Question about the next appointment”. "
                       "Emails never contain it."),
        render_kw={"maxlength": MAX_TOPIC, "autocomplete": "off"})
    body = _body_field("message-body")
    attachment = message_views.attachment_field("message-attachment")
    # Shown to a young person whose parents or guardians have an account of their own.
    confidential = BooleanField(
        _l("Keep this conversation from my parents or guardians"), id="message-confidential",
        description=_l("Only when it is about you. They do not see it, and they are not "
                       "told about answers."))
    submit = SubmitField(_l("Send message"), id="message-submit")


class ReplyForm(FlaskForm):
    body = _body_field("reply-body")
    attachment = message_views.attachment_field("reply-attachment")
    submit = SubmitField(_l("Send reply"), id="reply-submit")


@bp.get("/messages")
@client_required
def messages_index():
    """The conversations of the account (its own and its children's), the newest first."""
    result = messages.threads_for(account=current_user, page=paging.page_arg())
    return render_template("portal/messages.html", result=result,
                           unread=messages.unread_count(account=current_user),
                           may_write=bool(messages.writable_clients(current_user)))


def _new_form(clients: list) -> NewMessageForm:
    """The form, its choices filled: whom the account may write about, and the services
    that take messages."""
    form = NewMessageForm()
    own = getattr(current_user.client, "id", None)
    form.client.choices = [
        SelectChoice(str(c.id), _("Me") if c.id == own else (c.full_name or _("My child")))
        for c in clients]
    if len(clients) == 1 and not form.client.data:
        form.client.data = str(clients[0].id)
    form.service.choices = [SelectChoice("", _("Please choose"))] + [
        SelectChoice(str(s.id), service_text(s, "name").plain)
        for s in messages.services_to_write_to()]
    return form


def _uuid(field) -> uuid.UUID | None:
    try:
        return uuid.UUID(field.data or "")
    except ValueError:
        return None


@bp.route("/messages/new", methods=["GET", "POST"])
@client_required
def message_new():
    """Write to a team. A refused attachment shows the form again with everything typed
    (status 400); only the file has to be chosen again."""
    clients = messages.writable_clients(current_user)
    if not clients:
        abort(404)
    form = _new_form(clients)
    if form.validate_on_submit():
        client_id, service_id = _uuid(form.client), _uuid(form.service)
        try:
            if client_id is None:
                raise messages.NotAllowed
            if service_id is None:
                raise messages.ServiceUnavailable
            thread = messages.start_thread(
                account=current_user, client_id=client_id,
                service_id=service_id, topic=form.topic.data,
                body=form.body.data, attachments=message_views.uploads(form.attachment),
                confidential_from_guardians=form.confidential.data)
        except messages.AttachmentRejected as exc:
            form.attachment.errors = [message_views.attachment_problem(exc.reason)]
        except messages.EmptyMessage as exc:
            _empty(form, exc)
        except messages.ServiceUnavailable:
            form.service.errors = [_("This team takes no messages at the moment. Please "
                                     "choose another one.")]
        except messages.NotAllowed:
            form.client.errors = [_("Please choose who it is about.")]
        else:
            first = message_pages.first_message(thread.id)
            if first is not None:
                message_pages.tell_of_new_message(first)
            flash(_("Your message is sent. We will tell you by email when there is an "
                    "answer."), "success")
            return redirect(url_for("portal.message_thread", thread_id=thread.id))
    status = 400 if form.is_submitted() else 200
    return render_template("portal/message_new.html", form=form,
                           has_guardians=message_pages.has_guardians(current_user)), status


def _empty(form, error: messages.EmptyMessage) -> None:
    if error.what == "topic":
        form.topic.errors = [_("Please write a topic in a few words.")]
    else:
        form.body.errors = [_("Please write your message.")]


def _thread_page(thread_id: uuid.UUID, form: ReplyForm, status: int = 200):
    try:
        view = messages.thread_for_client(account=current_user, thread_id=thread_id)
    except messages.NotAllowed:  # ThreadNotFound too
        abort(404)
    return render_template("portal/message_thread.html", view=view, form=form,
                           authors=message_pages.authors_for_client(view, current_user),
                           download_name=messages.download_name), status


@bp.get("/messages/<uuid:thread_id>")
@client_required
def message_thread(thread_id: uuid.UUID):
    """A conversation, oldest message first, with the reply form below; opening it marks
    its messages read."""
    return _thread_page(thread_id, ReplyForm())


@bp.post("/messages/<uuid:thread_id>")
@client_required
def message_reply(thread_id: uuid.UUID):
    form = ReplyForm()
    if form.validate_on_submit():
        try:
            message = messages.reply(account=current_user, thread_id=thread_id,
                                     body=form.body.data,
                                     attachments=message_views.uploads(form.attachment))
        except messages.NotAllowed:
            abort(404)
        except messages.AttachmentRejected as exc:
            form.attachment.errors = [message_views.attachment_problem(exc.reason)]
        except messages.EmptyMessage as exc:
            _empty(form, exc)
        else:
            message_pages.tell_of_new_message(message)
            flash(_("Your reply is sent."), "success")
            return redirect(url_for("portal.message_thread", thread_id=thread_id,
                                    _anchor="latest"))
    return _thread_page(thread_id, form, status=400)


@bp.get("/messages/<uuid:thread_id>/since")
@client_required
def message_since(thread_id: uuid.UUID):
    """The messages after ``after`` (the last one the open page shows), read as opening
    the page reads them: the team's are marked read. Without JavaScript nobody asks; a
    reload shows them."""
    try:
        view = messages.new_for_client(account=current_user, thread_id=thread_id,
                                       after_id=message_views.after_arg())
    except messages.NotAllowed:  # ThreadNotFound too
        abort(404)
    authors = message_pages.authors_for_client(view, current_user) if view else {}
    return message_views.new_messages(view, authors, "portal",
                                      messages.download_name)


@bp.get("/messages/attachments/<uuid:attachment_id>")
@client_required
def message_attachment(attachment_id: uuid.UUID):
    try:
        attachment = messages.attachment_for_client(account=current_user,
                                                    attachment_id=attachment_id)
    except messages.NotAllowed:
        abort(404)
    return message_views.send_attachment(attachment, messages.download_name(attachment))
