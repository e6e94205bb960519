"""One visitor's journey through the production set-up (gunicorn workers, PostgreSQL,
Redis, production settings with secure cookies) loaded with the demo data: the welcome
page, Mia signs in, books an appointment and sees it waiting for staff."""

from __future__ import annotations

import json
import urllib.request

from tests.browser.conftest import PHONE, client_sign_in, new_context

MIA_EMAIL = "mia@example.org"
MIA_PASSWORD = "demo-client-Sonnenblume-42"  # README "Try it"


class Demo:
    email = MIA_EMAIL
    password = MIA_PASSWORD


def test_a_client_signs_in_and_books_on_the_production_set_up(browser, prod_url):
    with urllib.request.urlopen(prod_url + "/readyz", timeout=30) as answer:  # noqa: S310
        assert json.load(answer)["status"] == "ready"
    context = new_context(browser, prod_url, **PHONE)
    page = context.new_page()
    try:
        welcome = page.goto("/")
        assert welcome.status == 200
        assert welcome.headers["strict-transport-security"].startswith("max-age=")
        page.wait_for_selector("a[href='/login']")

        client_sign_in(page, Demo)
        cookie_names = {cookie["name"] for cookie in context.cookies()}
        assert "__Host-einblick" in cookie_names  # production's secure session cookie

        page.goto("/bookings")
        waiting = page.locator("[data-status='requested']").count()
        page.goto("/bookings/new")
        page.click("h2 a")  # the service
        page.wait_for_url("**/bookings/new/*")
        page.locator("a.slot").first.click()
        page.wait_for_url("**/bookings/new/*/*")
        chosen = page.locator("input[name=client]")
        if chosen.count() and not page.locator("input[name=client]:checked").count():
            chosen.first.check()  # Mia books for herself (her child is the other choice)
        page.click("button#submit")
        page.wait_for_url("**/bookings")
        assert page.locator("[data-status='requested']").count() == waiting + 1
    finally:
        context.close()
