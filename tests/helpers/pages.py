"""Every GET page of the URL map, with ids filled in from the demo data: the walk that
tests/test_pages.py (unique ids, readable dates) and tests/browser/test_axe_every_page.py
(axe) take through the whole app."""

from __future__ import annotations

import itertools
import re

# Arguments the walk cannot fill from the demo data: links sent by email (tokens, checked in
# their own tests) and a slot, which is a link from the slots page (see SLOT_LINK).
UNFILLED_ARGUMENTS = {"token", "filename", "slot"}
NOT_HTML = (".ics", ".pdf", ".csv")
# The booking step of a chosen slot is only reached by a link from the slots page.
SLOT_LINK = re.compile(r'href="(/bookings/new/[0-9a-f-]{36}/[^"/]+)"')


def argument_values(app) -> dict[str, list[str]]:
    """Every id a URL of the map may take, from what the demo data holds."""
    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import (
        Booking,
        Client,
        Consent,
        ConsentTemplate,
        Document,
        Guardianship,
        MessageAttachment,
        MessageThread,
        Service,
    )

    with app.app_context():
        def ids(model) -> list[str]:
            return [str(i) for i in db.session.scalars(select(model.id))]

        clients = ids(Client)
        return {"client_id": clients, "subject_id": clients, "service_id": ids(Service),
                "booking_id": ids(Booking), "template_id": ids(ConsentTemplate),
                "consent_id": ids(Consent), "document_id": ids(Document),
                "link_id": ids(Guardianship), "kind": ["consent", "withdrawal"],
                "thread_id": ids(MessageThread), "attachment_id": ids(MessageAttachment)}


def page_urls_by_route(app, *, per_route: int = 8) -> dict[str, list[str]]:
    """Each GET route of the URL map that shows an HTML page, with up to ``per_route`` of
    its URLs (one for every combination of the demo's ids)."""
    values = argument_values(app)
    routes: dict[str, list[str]] = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.endswith(NOT_HTML):
            continue
        if rule.arguments & UNFILLED_ARGUMENTS:
            continue
        names = sorted(rule.arguments)
        combos = list(itertools.product(*(values[name] for name in names)))[:per_route]
        urls = routes.setdefault(rule.rule, [])
        for combo in combos:
            # Built from the rule itself: url_for would give the first rule of an endpoint
            # with two (/staff/services/new and /staff/services/<id> share one view).
            url = rule.build(dict(zip(names, combo, strict=True)), append_unknown=False)[1]
            if url not in urls:
                urls.append(url)
    return routes


def page_urls(app) -> list[str]:
    """Each GET page of the URL map, once for every combination of the demo's ids (a few
    per route), without the pages that are not HTML."""
    return sorted({url for urls in page_urls_by_route(app).values() for url in urls})
