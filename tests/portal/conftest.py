"""Fixtures of the portal's consent tests."""

import pytest

from shared.services import consents

TEXTS = {"de": {"title": "Fotos in der Kita", "text": "Ich willige ein, dass Fotos …"},
         "en": {"title": "Photos at daycare", "text": "I consent to photos …"}}


@pytest.fixture
def template(app):
    """The published photo consent (guardians sign for children); its id."""
    with app.app_context():
        saved = consents.save_template(key="fotos", texts=TEXTS, purpose="Fotos",
                                       legal_basis="Art. 6 Abs. 1 lit. a DSGVO",
                                       audience="Team der Kita", guardian_signs=True)
        consents.publish(saved.id)
        return saved.id
