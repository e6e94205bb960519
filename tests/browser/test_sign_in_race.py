"""A password sent the moment the sign-in page loads (as a password manager's auto-submit
does) is not lost to the passkey autofill. The autofill's request for a challenge writes
the session cookie when it is answered; a sign-in answered before it would be overwritten
by it. So the page holds the form (marking it data-held) until that answer is in, then
sends it. The challenge request is held here until the test lets it go, so the password
is always sent while it is outstanding."""

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, HeldRequests, new_context


def test_a_password_sent_before_the_passkey_challenge_arrives_still_signs_in(
        browser, live_server, make_client):
    person = make_client(email="mia.demir@example.org", full_name="Mia Demir")
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    sign_ins = []
    page.on("request", lambda request: sign_ins.append(request.url)
            if request.method == "POST" and request.url.endswith("/login") else None)
    challenge = HeldRequests(page, "**/login/passkey/begin")
    page.goto("/login")
    challenge.wait_until_held()  # the autofill asked for its challenge; no answer yet

    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    expect(page.locator("form[data-held]")).to_have_count(1)  # waits for the answer
    assert sign_ins == []

    challenge.release()
    page.wait_for_url("**/home")
    assert len(sign_ins) == 1
    # Still signed in on the next page.
    page.reload()
    expect(page.locator("h1")).to_be_visible()
    assert page.url.endswith("/home")
    context.close()


def test_a_refused_passkey_challenge_does_not_hold_the_password_back(
        browser, live_server, make_client):
    """The autofill's request is refused (too many requests): the password goes at once."""
    person = make_client(email="mia.demir@example.org", full_name="Mia Demir")
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.fulfill(status=429, content_type="application/json", body='{"error": "later"}')

    page.route("**/login/passkey/begin", refuse)
    page.goto("/login")
    page.wait_for_load_state("networkidle")
    assert refused  # the autofill asked and was refused
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/home")
    expect(page.locator("form[data-held]")).to_have_count(0)
    context.close()
