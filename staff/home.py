"""The staff start page: today's appointments, open requests and the checks that are due."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from shared.models.base import utcnow
from shared.policy import ROLE_NAMES  # staff.team takes it from here too
from shared.services import bookings, messages, staff_home
from staff import bp


@bp.get("/")
def home():
    member = current_user.staff_member
    # Clients' messages wait for caseworkers only (a count, no one's data).
    unread = (messages.unread_for_staff(member=member) if messages.may_answer(member)
              else None)
    return render_template("staff/home.html", member=member, role_names=ROLE_NAMES,
                           work=staff_home.start_page(member=member), now=utcnow(),
                           queue_counted=bookings.QUEUE_COUNTED,
                           unread_messages=unread)
