"""Completeness: every value written through the portal's and the staff file's forms shows
up on "my data" and in the export's data.json (or, where the client may not read it, is
shown as existing). A form that stores something the transparency pages miss fails here."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import jsonschema
from sqlalchemy import select

from shared.extensions import db
from shared.models import Assignment, Booking, Client
from tests.conftest import submit, tomorrow_slot_token
from tests.portal.test_bookings import book
from tests.portal.test_household import add_child
from tests.staff.test_casefile import PDF, upload, write_note


def test_every_canary_from_every_form_is_on_my_data_and_in_data_json(
        app, client, auth, make_client, make_bookable, outbox):
    tag = uuid.uuid4().hex[:6]
    c = {name: f"{name}-{tag}" for name in (
        "Selbstname", "Kindname", "Allergie", "Medizin", "Gruppe", "Notfallkontakt",
        "Terminnotiz", "Absagegrund", "Korrekturwunsch", "Lesbarenotiz", "Geheimnotiz",
        "Dokumentname", "Notfallgrund")}
    bookable = make_bookable()
    other = make_bookable(name="Zweitberatung")
    person = make_client()
    auth.login(person)
    # Portal forms.
    submit(client, "/account", {"full_name": c["Selbstname"], "phone": "0171 2223334"})
    add_child(client, full_name=c["Kindname"], allergies=c["Allergie"],
              medical_notes=c["Medizin"], group_name=c["Gruppe"],
              contact_name=c["Notfallkontakt"], contact_phone="0172 3334445")
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    assert book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(own),
                note=c["Terminnotiz"]).status_code == 302
    assert book(client, other, tomorrow_slot_token(app, other), for_id=str(own)
                ).status_code == 302
    submit(client, "/my-data/corrections", {"client": str(own), "about": "other",
                                             "message": c["Korrekturwunsch"]})
    auth.logout()
    # Staff forms: the assigned caseworker writes notes and shares a document, declines a
    # booking with a message; another caseworker opens the file in an emergency.
    with app.app_context():
        db.session.add(Assignment(client_id=own, staff_member_id=bookable.staff_member_id))
        declined = db.session.scalar(select(Booking.id).where(
            Booking.service_id == other.service_id))
        db.session.commit()
    auth.login(bookable.staff, area="staff")
    write_note(client, own, c["Lesbarenotiz"], visible_to_client="y")
    write_note(client, own, c["Geheimnotiz"])
    assert upload(client, own, PDF, f"{c['Dokumentname']}.pdf",
                  visible_to_client="y").status_code == 302
    auth.logout("staff")
    auth.login(other.staff, area="staff")
    submit(client, f"/staff/bookings/{declined}/decline", {"message": c["Absagegrund"]},
           form_url="/staff/bookings")
    submit(client, f"/staff/clients/{own}/break-glass", {"reason": c["Notfallgrund"]})
    auth.logout("staff")

    auth.login(person)
    page = client.get("/my-data").get_data(as_text=True)
    response = submit(client, "/my-data/export", {})
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = archive.namelist()
    assert len(names) == len(set(names)), "a file name appears twice in the ZIP"
    assert {"me/data/notes.csv", "me/access-log.csv"} <= set(names)
    data = json.loads(archive.read("data.json"))
    jsonschema.validate(data, json.loads(archive.read("schema.json")))
    exported = json.dumps(data, ensure_ascii=False)

    readable = [k for k in c if k != "Geheimnotiz"]
    # "My data" counts the access log and links to it; the reason given for an emergency
    # opening is read there.
    assert 'href="/my-data/access"' in page
    page += client.get("/my-data/access").get_data(as_text=True)
    missing_page = [c[k] for k in readable if c[k] not in page]
    missing_json = [c[k] for k in readable if c[k] not in exported]
    assert not missing_page, f"not on /my-data: {missing_page}"
    assert not missing_json, f"not in data.json: {missing_json}"
    # The note the client may not read: its existence, author and date, never its text.
    assert c["Geheimnotiz"] not in page
    assert c["Geheimnotiz"] not in exported
    assert 'data-column="notes.created_at"' in page
    notes = next(item for subject in data["subjects"] if subject["is_self"]
                 for item in subject["categories"]["notes"]
                 if item["column"] == "notes.created_at")
    assert len(notes["values"]) == 2
    # The shared document travels as a file.
    assert any(name.endswith(f"{c['Dokumentname']}.pdf") for name in archive.namelist())
