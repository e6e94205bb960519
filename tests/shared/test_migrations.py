"""The Alembic migrations build exactly the schema the models describe, up and down."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from shared.app import create_app
from shared.cli import alembic_config, upgrade_database
from shared.extensions import db
from shared.models import Base
from tests.conftest import make_config


def test_migrated_schema_equals_the_models(fresh_database_url, tmp_path):
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        db.engine.dispose()
    assert diff == []


def test_downgrade_to_nothing_and_up_again(fresh_database_url, tmp_path):
    from alembic import command

    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database()
        command.downgrade(alembic_config(), "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade_database()
        assert "accounts" in inspect(db.engine).get_table_names()
        db.engine.dispose()
