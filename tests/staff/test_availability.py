"""Weekly hours and absences: staff change their own, admins anyone's."""

import uuid
from datetime import date, time

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import AvailabilityException, AvailabilityRule, StaffMember
from shared.services import availability
from tests.conftest import staff_member_id, submit

MONDAY_MORNING = {"rule-weekday": "0", "rule-start_time": "09:00", "rule-end_time": "12:00",
                  "rule-submit": "1"}


def hours_by_owner(app) -> dict[uuid.UUID, int]:
    with app.app_context():
        owners = db.session.scalars(select(AvailabilityRule.staff_member_id)).all()
    return {owner: owners.count(owner) for owner in owners}


def add_hours(app, member_id: uuid.UUID) -> uuid.UUID:
    with app.app_context():
        rule = AvailabilityRule(staff_member_id=member_id, weekday=2, start_time=time(8),
                                end_time=time(10))
        db.session.add(rule)
        db.session.commit()
        return rule.id


def test_a_caseworker_asking_for_a_colleagues_hours_changes_only_their_own(
        app, client, auth, make_staff):
    colleague, caseworker = make_staff(), make_staff()
    colleague_id = staff_member_id(app, colleague)
    auth.login(caseworker, area="staff")
    response = submit(client, f"/staff/availability?staff={colleague_id}", MONDAY_MORNING)
    assert response.status_code == 302
    assert hours_by_owner(app) == {staff_member_id(app, caseworker): 1}


def test_an_admin_adds_hours_for_a_colleague(app, client, auth, make_staff):
    colleague = make_staff()
    colleague_id = staff_member_id(app, colleague)
    auth.login(make_staff(role="admin"), area="staff")
    response = submit(client, f"/staff/availability?staff={colleague_id}", MONDAY_MORNING)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/availability?staff={colleague_id}"
    assert hours_by_owner(app) == {colleague_id: 1}
    assert client.get(f"/staff/availability?staff={uuid.uuid4()}").status_code == 404
    assert client.get("/staff/availability?staff=nobody").status_code == 404


def test_only_the_owner_or_an_admin_removes_hours(app, client, auth, make_staff):
    colleague, caseworker = make_staff(), make_staff()
    colleague_id, own_id = staff_member_id(app, colleague), staff_member_id(app, caseworker)
    theirs, mine = add_hours(app, colleague_id), add_hours(app, own_id)
    auth.login(caseworker, area="staff")
    refused = submit(client, f"/staff/availability/rule/{theirs}/delete", {},
                     form_url="/staff/availability")
    assert refused.status_code == 404
    removed = submit(client, f"/staff/availability/rule/{mine}/delete", {},
                     form_url="/staff/availability")
    assert removed.headers["Location"] == f"/staff/availability?staff={own_id}"
    assert hours_by_owner(app) == {colleague_id: 1}
    auth.logout("staff")
    auth.login(make_staff(role="admin"), area="staff")
    by_admin = submit(client, f"/staff/availability/rule/{theirs}/delete", {},
                      form_url="/staff/availability")
    assert by_admin.headers["Location"] == f"/staff/availability?staff={colleague_id}"
    assert hours_by_owner(app) == {}
    unknown = submit(client, f"/staff/availability/holiday/{mine}/delete", {},
                     form_url="/staff/availability")
    assert unknown.status_code == 404


CHANGES = {
    "rule": lambda member, owner_id, _existing: availability.add_rule(
        member=member, staff_member_id=owner_id, weekday=0, start=time(9), end=time(12)),
    "absence": lambda member, owner_id, _existing: availability.add_exception(
        member=member, staff_member_id=owner_id, day=date(2030, 1, 7)),
    "remove": lambda member, _owner_id, existing: availability.remove_hours(
        member=member, kind="rule", item_id=existing),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_the_hours_service_refuses_a_colleagues_hours_also_without_the_page(
        app, make_staff, change):
    """A CLI command or another view calling the service gets the same answer."""
    colleague_id = staff_member_id(app, make_staff())
    existing = add_hours(app, colleague_id)
    caseworker_id = staff_member_id(app, make_staff())
    with app.app_context():
        caseworker = db.session.get(StaffMember, caseworker_id)
        with pytest.raises(availability.NotYourHours):
            CHANGES[change](caseworker, colleague_id, existing)
        db.session.rollback()
        assert db.session.scalars(select(AvailabilityException)).all() == []
    assert hours_by_owner(app) == {colleague_id: 1}
