"""The funder report reads counts kept when appointments are confirmed or cancelled and when
clients are erased: the same figures as counting every client's birth date, a constant
number of statements however many clients, and a backfill for what existed before."""

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from shared.extensions import db
from shared.models import AppMeta, Booking, Client, DataKey, ReportCount, Service, StaffMember
from shared.models.base import utcnow
from shared.services import bookings, erasure, reports
from shared.services.availability import local_zone
from tests.conftest import get_counting_statements, submit

YEAR = 2026
BIRTHS = [date(2015, 1, 1), date(2020, 6, 15), None, date(2008, 3, 20), date(1990, 2, 2),
          date(2021, 4, 1), date(2012, 5, 31)]


def old_monthly(year: int) -> dict:
    """The report as it was computed before the counts: every client decrypted."""
    zone = local_zone()
    first = datetime(year, 1, 1, tzinfo=zone)
    until = min(datetime(year + 1, 1, 1, tzinfo=zone), utcnow())
    rows = db.session.execute(
        select(Booking.client_id, Booking.start_at, Service.name)
        .join(Service, Booking.service_id == Service.id)
        .join(Client, Booking.client_id == Client.id)
        .where(Client.restricted_at.is_(None)).where(Booking.status == "confirmed")
        .where(Booking.start_at >= first).where(Booking.start_at < until)).all()
    groups = defaultdict(list)
    for client_id, start_at, service in rows:
        local = start_at.astimezone(zone)
        groups[(f"{local.year}-{local.month:02d}", service)].append(client_id)
    result = {}
    for (month, service), items in sorted(groups.items()):
        ages = dict.fromkeys(reports.AGE_LABELS, 0)
        for client_id in set(items):
            born = db.session.get(Client, client_id).birth_date
            ages[reports.age_band(born, date.fromisoformat(month + "-01"))] += 1
        result[(month, service)] = (len(set(items)), len(items), ages)
    return result


def new_monthly(year: int) -> dict:
    return {(r.month, str(r.service)): (r.clients, r.appointments, r.ages)
            for r in reports.monthly(year=year)}


def seed(app, clients: int, *, status: str = "requested", per_client: int = 3,
         start: datetime = datetime(YEAR, 1, 30, 8, tzinfo=UTC)) -> list:
    """``clients`` clients, each with ``per_client`` bookings over two services and a few
    months (two of a client's in one month and service, some at a month's edge)."""
    with app.app_context():
        services = [Service(name="Elternberatung", duration_minutes=45),
                    Service(name="Jugendberatung", duration_minutes=45,
                            translations={"tr": {"name": "Gençlik danışmanlığı"}})]
        db.session.add_all(services)
        member = db.session.scalar(select(StaffMember))
        ids = []
        for i in range(clients):
            key = DataKey.generate()
            client = Client(data_key=key)
            client.birth_date = BIRTHS[i % len(BIRTHS)]
            db.session.add_all([key, client])
            db.session.flush()
            for j in range(per_client):
                at = start + timedelta(days=17 * j + (i % 4), hours=i * per_client + j)
                booking = Booking(client_id=client.id, data_key=key,
                                  service=services[(i + j // 2) % 2],
                                  staff_member_id=member.id, status=status, start_at=at,
                                  end_at=at + timedelta(minutes=45))
                db.session.add(booking)
                db.session.flush()
                ids.append(booking.id)
        db.session.commit()
        return ids


def test_counts_kept_by_confirm_cancel_erasure_and_birth_date_equal_the_old_report(
        app, make_staff):
    make_staff(role="admin")
    booking_ids = seed(app, 14, per_client=5, start=datetime(YEAR, 3, 28, 20, tzinfo=UTC))
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        with time_machine.travel(datetime(YEAR, 1, 2, tzinfo=UTC), tick=False):
            reports.ensure_built()  # the counts exist (empty) before the appointments
            for booking_id in booking_ids[:-4]:
                bookings.confirm(member=member, booking_id=booking_id)
            for booking_id in booking_ids[3:12:4]:  # cancelled again (by the client or staff)
                bookings._set_status(db.session.get(Booking, booking_id),
                                     expected=bookings.ACTIVE, new=bookings.CANCELLED)
        assert db.session.scalar(select(ReportCount.clients)) is not None
        clients = list(db.session.scalars(select(Client).order_by(Client.id)))
        with time_machine.travel(datetime(YEAR, 2, 10, tzinfo=UTC), tick=False):
            # A guardian corrects a child's birth date: the counts move to the new group.
            child = clients[1]
            reports.birth_date_changed(child, child.birth_date, date(2000, 1, 1))
            child.birth_date = date(2000, 1, 1)
            db.session.commit()
            # One client erased with nothing kept, one restricted (kept, not used).
            assert erasure.erase_client(clients[2].id, at=utcnow(), shred=True) == "shredded"
            erasure.erase_client(clients[3].id, at=utcnow())
            db.session.commit()
        with time_machine.travel(datetime(YEAR, 5, 20, 12, tzinfo=UTC), tick=False):
            # Mid-year: appointments confirmed for later are not held yet.
            expected = old_monthly(YEAR)
            assert sum(v[1] for v in expected.values()) > 10
            assert new_monthly(YEAR) == expected
            # The months that are over are merged: one row per month, service and group.
            per_key = db.session.execute(
                select(ReportCount.month, ReportCount.service_id, ReportCount.age_band,
                       func.count()).where(ReportCount.month < date(YEAR, 5, 1))
                .group_by(ReportCount.month, ReportCount.service_id, ReportCount.age_band)
            ).all()
            assert per_key
            assert {n for *_key, n in per_key} == {1}
        with time_machine.travel(datetime(YEAR, 6, 15, tzinfo=UTC), tick=False):
            erasure.erase_client(clients[5].id, at=utcnow())  # after months were merged
            db.session.commit()
            assert new_monthly(YEAR) == old_monthly(YEAR)
        with time_machine.travel(datetime(YEAR + 1, 2, 1, tzinfo=UTC), tick=False):
            expected = old_monthly(YEAR)
            assert new_monthly(YEAR) == expected
            reports.rebuild()  # counting everything again gives the same
            db.session.commit()
            assert new_monthly(YEAR) == expected
        # Counts only: no client id, no birth date in the table.
        assert {c.name for c in ReportCount.__table__.columns} == {
            "slot_at", "service_id", "age_band", "month", "appointments", "clients"}


def test_the_report_runs_the_same_statements_for_3_and_30_clients(app, client, auth,
                                                                  make_staff):
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    counts = []
    for clients in (3, 30):
        with app.app_context():
            db.session.execute(Booking.__table__.delete())
            db.session.execute(Client.__table__.delete())
            db.session.execute(Service.__table__.delete())
            db.session.commit()
        seed(app, clients, status="confirmed")
        with app.app_context():
            reports.rebuild()
            db.session.commit()
        response, statements = get_counting_statements(app, client, f"/staff/reports?year={YEAR}")
        assert response.status_code == 200
        assert "Elternberatung" in response.get_data(as_text=True)
        counts.append(statements)
    assert counts[0] == counts[1], counts


def test_backfill_counts_what_existed_before_the_upgrade(app, client, auth, make_staff):
    admin = make_staff(role="admin")
    seed(app, 9, status="confirmed")  # as before the upgrade: no counts kept yet
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "9 clients" in result.output
    with app.app_context():
        expected = old_monthly(YEAR)
        assert new_monthly(YEAR) == expected
        # A restored backup from before the counts: the first report visit builds them.
        db.session.execute(ReportCount.__table__.delete())
        db.session.execute(AppMeta.__table__.delete().where(AppMeta.key == reports.BUILT_KEY))
        db.session.commit()
    auth.login(admin, area="staff")
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/staff/reports.csv?year={YEAR}").get_data(as_text=True))))
    assert {(r["month"], r["service"]) for r in rows} == set(expected)
    with app.app_context():
        assert new_monthly(YEAR) == expected
        assert db.session.get(AppMeta, reports.BUILT_KEY) is not None


def test_service_names_in_the_readers_language(app, client, auth, make_staff):
    admin = make_staff(role="admin")
    seed(app, 6, status="confirmed")
    auth.login(admin, area="staff")
    submit(client, "/language/tr", {}, form_url="/staff/reports")
    with app.app_context():
        reports.rebuild()
        db.session.commit()
    page = client.get(f"/staff/reports?year={YEAR}").get_data(as_text=True)
    assert "Gençlik danışmanlığı" in page
