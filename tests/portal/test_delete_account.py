"""Deleting an account from "My account": a danger action, and per child a choice."""

from __future__ import annotations

import re

from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Client, Guardianship
from tests.conftest import submit


def add_child(client, full_name: str):
    return submit(client, "/household/new", {
        "full_name": full_name, "birth_date": "2019-05-04", "allergies": "Erdnüsse",
        "group_name": "Igel", "contact_name": "Oma Ayse", "contact_phone": "0170 1234567"})


def children_of(app, account_id) -> dict[str, object]:
    with app.app_context():
        return {link.dependant.full_name: link.dependant_id for link in db.session.scalars(
            select(Guardianship).where(Guardianship.guardian_account_id == account_id))}


def visible_text(html: str) -> str:
    html = re.sub(r"</?bdi\b[^>]*>", "", html)  # names isolated for either direction
    return re.sub(r"<[^>]+>", " ", html)


def test_my_account_leads_to_deletion_with_a_danger_button(app, client, auth, make_client):
    auth.login(make_client())
    page = client.get("/account").get_data(as_text=True)
    link = re.search(r'<a class="kern-btn kern-btn--danger" href="/my-data/delete">', page)
    assert link is not None
    assert "Konto löschen" in page
    css = client.get("/static/css/app.css").get_data(as_text=True)
    assert ".kern-btn--danger {" in css  # KERN 2.7.2 has none: ours, red, 44 px or more
    assert "min-height: max(2.75rem" in css
    assert client.get("/my-data/delete").status_code == 200


def test_each_child_gets_its_own_choice_and_the_file_kept_stays_with_us(
        app, client, auth, make_client, outbox):
    parent, other_parent = make_client(full_name="Mia Demir"), make_client()
    auth.login(parent)
    for name in ("Emil Demir", "Lina Demir", "Ali Demir"):
        add_child(client, name)
    children = children_of(app, parent.account_id)
    with app.app_context():  # Ali has another guardian too
        db.session.add(Guardianship(guardian_account_id=other_parent.account_id,
                                    dependant_id=children["Ali Demir"]))
        db.session.commit()

    page = client.get("/my-data/delete").get_data(as_text=True)
    text = visible_text(page)
    assert "Was geschieht mit Emil Demir?" in text
    assert "Was geschieht mit Lina Demir?" in text
    assert "Was geschieht mit Ali Demir?" not in text  # no choice: the other guardian
    assert "Ali Demir bleibt angemeldet, weil eine weitere sorgeberechtigte Person" in text
    assert text.count("Auch die Daten des Kindes löschen") == 2
    assert text.count("Akte des Kindes bei uns behalten") == 2
    for child_id in children.values():
        assert str(child_id) not in text
        assert child_id.hex not in text
    emil_field, lina_field = (f"child_{children[n].hex}" for n in ("Emil Demir", "Lina Demir"))
    preselected = [tag for tag in re.findall(r"<input [^>]*>", page)
                   if f'name="{emil_field}"' in tag and " checked" in tag]
    assert len(preselected) == 1  # "delete too", what the page describes first
    assert 'value="delete"' in preselected[0]

    refused = submit(client, "/my-data/delete", {"understood": "yes", lina_field: "maybe"})
    assert refused.status_code == 200  # not a choice on the page: nothing happened
    with app.app_context():
        assert db.session.get(Account, parent.account_id) is not None

    response = submit(client, "/my-data/delete", {"understood": "yes", emil_field: "delete",
                                                  lina_field: "keep"})
    assert response.headers["Location"] == "/login"
    with app.app_context():
        assert db.session.get(Account, parent.account_id) is None
        assert db.session.get(Client, children["Emil Demir"]) is None
        lina = db.session.get(Client, children["Lina Demir"])
        assert lina.restricted_at is None
        assert lina.full_name == "Lina Demir"
        assert lina.allergies == "Erdnüsse"
        assert db.session.scalar(select(Guardianship).where(
            Guardianship.dependant_id == lina.id)) is None  # stays with the organisation
        ali_guardians = db.session.scalars(select(Guardianship.guardian_account_id).where(
            Guardianship.dependant_id == children["Ali Demir"])).all()
        assert ali_guardians == [other_parent.account_id]
    assert "gelöscht" in outbox.last_to(parent.email)["Subject"]


def test_a_child_with_an_own_account_decides_alone(app, client, auth, make_client):
    from shared.services import erasure

    parent, young = make_client(), make_client(full_name="Lara Demir")
    with app.app_context():
        lara = db.session.scalar(select(Client).where(Client.account_id == young.account_id))
        db.session.add(Guardianship(guardian_account_id=parent.account_id,
                                    dependant_id=lara.id))
        db.session.commit()
        plan = erasure.plan(db.session.get(Account, parent.account_id))
        assert [(p.choosable, p.stays_because) for p in plan.people[1:]] == [
            (False, erasure.OWN_ACCOUNT)]
    auth.login(parent)
    text = visible_text(client.get("/my-data/delete").get_data(as_text=True))
    assert "Lara Demir hat ein eigenes Konto und entscheidet selbst" in text
    assert "Was geschieht mit" not in text
