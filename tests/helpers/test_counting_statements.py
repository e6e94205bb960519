"""The statement counter is not thrown by the session's once-a-minute "last seen" write,
so a test that seeds for longer than a minute on a loaded machine counts the same."""

from datetime import timedelta

from shared.auth import sessions
from tests.conftest import get_counting_statements


def test_the_periodic_session_touch_is_not_counted(app, client, auth, make_client,
                                                   monkeypatch):
    auth.login(make_client())
    quiet, quiet_count = get_counting_statements(app, client, "/home")
    monkeypatch.setattr(sessions, "_TOUCH_INTERVAL", timedelta(0))  # due on every request
    touched, touched_count = get_counting_statements(app, client, "/home")
    assert quiet.status_code == touched.status_code == 200
    assert touched_count == quiet_count
    assert sessions._TOUCH_INTERVAL == timedelta(0)  # given back after the count
