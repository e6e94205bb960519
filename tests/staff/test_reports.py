"""Funder reports: per month and service, small cells shown as "< 5", CSV download."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from shared.extensions import db
from shared.models import Booking, Client, DataKey, Service, StaffMember


def held(app, service_name, people, when, birth=date(2015, 1, 1)):
    with app.app_context():
        service = db.session.scalar(select(Service).where(Service.name == service_name))
        if service is None:
            service = Service(name=service_name, duration_minutes=45)
            db.session.add(service)
        member = db.session.scalar(select(StaffMember))
        for i in range(people):
            key = DataKey.generate()
            client = Client(data_key=key)
            client.birth_date = birth
            db.session.add_all([key, client])
            db.session.flush()
            booking = Booking(client_id=client.id, data_key=key, service=service,
                              staff_member_id=member.id, status="confirmed",
                              start_at=when + timedelta(hours=i),
                              end_at=when + timedelta(hours=i, minutes=45))
            db.session.add(booking)
        db.session.commit()


def test_small_cells_are_suppressed_in_page_and_csv(app, client, auth, make_staff):
    admin = make_staff(role="admin")
    held(app, "Elternberatung", 6, datetime(2026, 3, 10, 9, tzinfo=UTC))
    held(app, "Jugendberatung", 2, datetime(2026, 3, 12, 9, tzinfo=UTC), birth=date(2010, 5, 5))
    auth.login(admin, area="staff")
    page = client.get("/staff/reports?year=2026").get_data(as_text=True)
    assert "Elternberatung" in page
    assert "Jugendberatung" in page
    assert "&lt; 5" in page
    response = client.get("/staff/reports.csv?year=2026")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    parents = next(r for r in rows if r["service"] == "Elternberatung")
    youth = next(r for r in rows if r["service"] == "Jugendberatung")
    assert parents["month"] == "2026-03"
    assert parents["clients"] == "6"
    assert parents["appointments"] == "6"
    assert parents["age 6-11"] == "6"
    assert youth["clients"] == "< 5"
    assert youth["age 12-17"] == "*"  # a small total hides every group
    assert youth["age 0-5"] == "0"


def test_a_small_age_group_cannot_be_worked_out_by_subtraction(app, client, auth, make_staff):
    admin = make_staff(role="admin")
    held(app, "Elternberatung", 5, datetime(2026, 4, 10, 9, tzinfo=UTC))
    held(app, "Elternberatung", 1, datetime(2026, 4, 20, 9, tzinfo=UTC), birth=date(2012, 1, 1))
    auth.login(admin, area="staff")
    rows = list(csv.DictReader(io.StringIO(
        client.get("/staff/reports.csv?year=2026").get_data(as_text=True))))
    april = next(r for r in rows if r["month"] == "2026-04")
    assert april["clients"] == "6"
    assert april["age 12-17"] == "< 5"
    assert april["age 6-11"] == "*"  # else 6 - 5 = 1 would give it away


def test_a_year_out_of_range_is_not_found(client, auth, make_staff):
    auth.login(make_staff(role="admin"), area="staff")
    assert client.get("/staff/reports?year=9999").status_code == 404
    assert client.get("/staff/reports?year=abc").status_code == 200  # this year
