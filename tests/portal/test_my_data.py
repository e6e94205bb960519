"""The "my data" page is generated from the catalogue and shows the client's values."""

from shared import catalogue
from shared.models import Base
from shared.services.my_data import OWNERS
from tests.conftest import submit


def test_every_table_with_personal_columns_has_an_owner_rule():
    tables = {entry.column.split(".")[0] for entry in catalogue.ENTRIES}
    assert tables <= set(OWNERS), f"add owner rules for: {sorted(tables - set(OWNERS))}"
    assert set(OWNERS) <= {t.name for t in Base.metadata.sorted_tables}


def test_my_data_shows_values_from_the_catalogue(client, auth, make_client):
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    submit(client, "/account", {"full_name": "Mia Demir", "phone": "0170 7654321"})
    page = client.get("/my-data").get_data(as_text=True)
    assert person.email in page
    assert "+491707654321" in page
    assert 'data-column="accounts.email"' in page
    assert 'data-column="client_name_tokens.token_bidx"' in page  # shown as a search key
    assert 'data-column="accounts.password_hash"' in page
    assert "$argon2" not in page  # the hash itself is never shown
