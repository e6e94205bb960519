"""Alembic environment: runs inside the app so it uses the app's database and models."""

from __future__ import annotations

from alembic import context
from flask import current_app, has_app_context

import shared.models  # noqa: F401  (fills the metadata)
from shared.models.base import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    if has_app_context():
        _run(current_app)
    else:
        from shared.app import create_app

        app = create_app()
        with app.app_context():
            _run(app)


def _run(app) -> None:
    from shared.extensions import db

    connectable = db.engine
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run `flask db upgrade`.")
run_migrations()
