"""Conversations in "my data": summed up in one line (how many conversations and messages,
and the day of the latest), with the values, who can see them and until when one tap away,
so that a phone's page does not grow with every message (docs: shared/UX.md)."""

from __future__ import annotations

import re

from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Client, StaffMember
from shared.services import messages


def test_my_data_sums_up_the_conversations_in_one_line(app, client, auth, make_client,
                                                       make_bookable):
    team = make_bookable(name="Elternberatung")
    person = make_client(full_name="Mia Demir")
    with app.test_request_context():
        account = db.session.get(Account, person.account_id)
        own = db.session.scalar(select(Client).where(Client.account_id == account.id))
        thread = messages.start_thread(account=account, client_id=own.id,
                                       service_id=team.service_id, topic="Kita",
                                       body="Meine Tochter weint jeden Morgen.")
        messages.reply_as_staff(member=db.session.get(StaffMember, team.staff_member_id),
                                thread_id=thread.id, body="Wir sprechen morgen darüber.")
        messages.start_thread(account=account, client_id=own.id, service_id=team.service_id,
                              topic="Termin", body="Geht es auch am Montag?")
    auth.login(person)
    page = client.get("/my-data").get_data(as_text=True)
    section = re.search(r'data-category="messages".*?</section>', page, re.S).group(0)

    summary = re.search(r"<summary[^>]*>(.*?)</summary>", section, re.S).group(1)
    assert re.fullmatch(r"2 Gespräche, 3 Nachrichten, zuletzt am \d\d\.\d\d\.\d{4}\.",
                        summary.strip()), summary
    details = re.search(r"<details.*?</details>", section, re.S).group(0)
    # Who can see it and until when, the way to the conversations and the values: inside.
    assert 'data-testid="who-and-how-long"' in details
    assert "Wer es sehen kann: Sie und Fachkräfte." in details
    assert 'href="/messages"' in details
    assert "Meine Tochter weint jeden Morgen." in details
    assert section.count('data-testid="who-and-how-long"') == 1  # not a second time below
