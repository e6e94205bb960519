"""Messages from clients: the inbox of one's services (open conversations, and one's own),
taking or joining a conversation, reading and answering it, attachments, and how one
hears of new messages. Who may read what is the service's (shared/services/messages.py);
each read is written to the client's access log there."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from shared import message_views, paging, security_log
from shared.auth.forms import ConfirmForm
from shared.models.staff import NOTIFY_DIGEST, NOTIFY_INSTANT, StaffMember
from shared.services import message_pages, messages
from staff import bp

MAX_BODY = 10_000


class StaffReplyForm(FlaskForm):
    body = TextAreaField(
        _l("Your answer"), id="reply-body",
        validators=[DataRequired(_l("Please write your answer.")),
                    Length(max=MAX_BODY, message=_l("Please shorten your answer to at most "
                                                    "%(max)d characters."))],
        render_kw={"rows": 8, "maxlength": MAX_BODY})
    confidential = BooleanField(_l("Confidential from guardians"), id="reply-confidential",
                                description=_l("Parents or guardians do not see this answer "
                                               "or its attachment; the client does."))
    attachment = message_views.attachment_field("reply-attachment")
    submit = SubmitField(_l("Send answer"), id="reply-submit")


class NotificationForm(FlaskForm):
    notifications = RadioField(
        _l("How do you want to hear of new messages?"), id="notifications",
        choices=[SelectChoice(NOTIFY_INSTANT, _l("An email for each new message")),
                 SelectChoice(NOTIFY_DIGEST,
                              _l("One email a day with the number of unread messages"))],
        validators=[InputRequired(_l("Please choose."))])
    submit = SubmitField(_l("Save"), id="notifications-submit")


def _member() -> StaffMember:
    return current_user.staff_member


# The inbox's views: (endpoint, what the service is asked for).
VIEWS = {"staff.messages_inbox": {"unassigned": True}, "staff.messages_mine": {"mine": True},
         "staff.messages_all": {}}


def _inbox():
    try:
        result = messages.inbox(member=_member(), page=paging.page_arg(),
                                **VIEWS[request.endpoint])
    except messages.NotAllowed:
        security_log.deny()
    return render_template("staff/messages.html", result=result, view=request.endpoint,
                           action_form=ConfirmForm(), member=_member())


@bp.get("/messages")
def messages_inbox():
    """Open: the conversations of one's services that nobody has taken yet, the most
    recent first."""
    return _inbox()


@bp.get("/messages/mine")
def messages_mine():
    """The conversations one took or joined."""
    return _inbox()


@bp.get("/messages/all")
def messages_all():
    """Every conversation of one's services, taken or not (to join a colleague's)."""
    return _inbox()


def _back(thread_id: uuid.UUID):
    return redirect(url_for("staff.message_thread", thread_id=thread_id))


@bp.post("/messages/<uuid:thread_id>/take")
def message_take(thread_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        messages.take(member=_member(), thread_id=thread_id)
    except messages.ThreadNotFound:
        abort(404)
    except messages.NotAllowed:
        security_log.deny()
    except messages.AlreadyTaken as taken:
        flash(_("%(name)s took this conversation a moment ago. You can join it.",
                name=taken.holder.name if taken.holder and taken.holder.name
                else _("A colleague")), "warning")
    else:
        flash(_("You took this conversation. The client sees your name on your answers."),
              "success")
    return _back(thread_id)


@bp.post("/messages/<uuid:thread_id>/join")
def message_join(thread_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        messages.join(member=_member(), thread_id=thread_id)
    except messages.ThreadNotFound:
        abort(404)
    except messages.NotAllowed:
        security_log.deny()
    else:
        flash(_("You joined this conversation."), "success")
    return _back(thread_id)


def _thread_page(thread_id: uuid.UUID, form: StaffReplyForm, status: int = 200):
    try:
        view = messages.thread_for_staff(member=_member(), thread_id=thread_id)
    except messages.ThreadNotFound:
        abort(404)
    except messages.NotAllowed:
        security_log.deny()
    return render_template("staff/message_thread.html", view=view, form=form,
                           authors=message_pages.authors_for_staff(view, _member()),
                           download_name=messages.download_name,
                           action_form=ConfirmForm(), member=_member()), status


@bp.get("/messages/<uuid:thread_id>")
def message_thread(thread_id: uuid.UUID):
    return _thread_page(thread_id, StaffReplyForm())


@bp.post("/messages/<uuid:thread_id>")
def message_reply(thread_id: uuid.UUID):
    """An answer; a refused attachment shows the page again with the text kept."""
    form = StaffReplyForm()
    if form.validate_on_submit():
        try:
            message = messages.reply_as_staff(
                member=_member(), thread_id=thread_id, body=form.body.data,
                confidential_from_guardians=form.confidential.data,
                attachments=message_views.uploads(form.attachment))
        except messages.ThreadNotFound:
            abort(404)
        except messages.NotAllowed:
            security_log.deny()
        except messages.AttachmentRejected as exc:
            form.attachment.errors = [message_views.attachment_problem(exc.reason)]
        except messages.EmptyMessage:
            form.body.errors = [_("Please write your answer.")]
        else:
            message_pages.tell_of_new_message(message)
            flash(_("Your answer is sent. The client is told by email, without its "
                    "content."), "success")
            return redirect(url_for("staff.message_thread", thread_id=thread_id,
                                    _anchor="latest"))
    return _thread_page(thread_id, form, status=400)


@bp.get("/messages/<uuid:thread_id>/since")
def message_since(thread_id: uuid.UUID):
    """The messages after ``after`` (the last one the open page shows), for
    shared/static/js/messages.js (polling: shared/message_views.new_messages says why).
    Any shown is a visit in the client's access log, as opening the page is."""
    try:
        view = messages.new_for_staff(member=_member(), thread_id=thread_id,
                                      after_id=message_views.after_arg())
    except messages.ThreadNotFound:
        abort(404)
    except messages.NotAllowed:
        security_log.deny()
    authors = message_pages.authors_for_staff(view, _member()) if view else {}
    return message_views.new_messages(view, authors, "staff",
                                      messages.download_name)


@bp.get("/messages/attachments/<uuid:attachment_id>")
def message_attachment(attachment_id: uuid.UUID):
    try:
        attachment = messages.attachment_for_staff(member=_member(),
                                                   attachment_id=attachment_id)
    except messages.ThreadNotFound:
        abort(404)
    except messages.NotAllowed:
        security_log.deny()
    return message_views.send_attachment(attachment, messages.download_name(attachment))


@bp.route("/messages/notifications", methods=["GET", "POST"])
def message_notifications():
    """Instant email or a daily digest: one's own setting, no client data."""
    form = NotificationForm()
    if form.validate_on_submit():
        messages.set_notifications(member=_member(), choice=form.notifications.data)
        flash(_("Saved."), "success")
        return redirect(url_for("staff.message_notifications"))
    if not form.is_submitted():
        form.notifications.data = _member().message_notifications
    return render_template("staff/message_notifications.html", form=form)
