"""WSGI entry point: ``gunicorn wsgi:app``."""

from shared.app import create_app

app = create_app()
