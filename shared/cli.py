"""Command-line interface: ``flask db``, ``flask demo``, ``flask staff``, ``flask keys``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from shared.config import SUPPORTED_LOCALES
from shared.extensions import db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_database(revision: str = "head") -> int:
    """Apply migrations to the app's database (needs an app context); then the erasure
    journal. Returns how many clients the journal erased again."""
    from shared.app import check_keys_match_database

    alembic_command.upgrade(alembic_config(), revision)
    check_keys_match_database()
    if revision == "head":
        # A start on an unmigrated database skipped the journal; apply it now.
        from shared.services import erasure

        return erasure.apply_journal()
    return 0


def database_at_head() -> bool:
    """Whether every migration has been applied: until then stored values may be in a
    format this code no longer reads (e.g. field format 1 before migration 0009)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads


def register_cli(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(staff_group)
    app.cli.add_command(keys_group)
    app.cli.add_command(bookings_group)
    app.cli.add_command(audit_group)
    app.cli.add_command(consents_group)
    app.cli.add_command(retention_group)
    app.cli.add_command(backup_group)


@click.group("db", cls=AppGroup, help="Database migrations.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply all migrations.")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    upgrade_database(revision)
    click.echo("Database is up to date.")


@db_group.command("downgrade", help="Revert to a revision.")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    alembic_command.downgrade(alembic_config(), revision)


@db_group.command("revision", help="Create a migration from the model changes.")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    alembic_command.revision(alembic_config(), message=message, autogenerate=True)


@click.group("demo", cls=AppGroup, help="Demo data for trying the portal.")
def demo_group() -> None:
    pass


@demo_group.command("load", help="Create the demo accounts listed in the README.")
def demo_load() -> None:
    from shared.services import demo

    config = current_app.extensions["einblick"].config
    if config.production:
        click.echo("Refusing to load demo data when EINBLICK_ENV=production.", err=True)
        sys.exit(1)
    for line in demo.load():
        click.echo(line)


@click.group("staff", cls=AppGroup, help="Staff accounts.")
def staff_group() -> None:
    pass


@staff_group.command("create", help="Create a staff member and email an invitation link.")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "caseworker", "reception"]))
@click.option("--name", default=None, help="Name shown to clients, e.g. 'A. Schmidt'.")
@click.option("--locale", default="de", type=click.Choice(SUPPORTED_LOCALES))
def staff_create(email: str, role: str, name: str | None, locale: str) -> None:
    from shared.services import staff
    from shared.validation import InvalidEmail, normalise_email

    try:
        email = normalise_email(email)
        staff.create_staff(email=email, role=role, name=name, locale=locale)
    except InvalidEmail as exc:
        raise click.BadParameter(str(exc), param_hint="--email") from exc
    except staff.StaffExists as exc:
        raise click.ClickException("A staff member with this email address exists.") from exc
    click.echo(f"Created {role}; the invitation link was emailed (valid 72 hours).")


@staff_group.command("invite", help="Email a staff member a new invitation link.")
@click.option("--email", required=True)
def staff_invite(email: str) -> None:
    from shared.services import staff
    from shared.validation import InvalidEmail, normalise_email

    try:
        staff.reinvite(email=normalise_email(email))
    except (InvalidEmail, staff.StaffError) as exc:
        raise click.ClickException("No staff member with this email address.") from exc
    click.echo("A new invitation link was emailed (valid 72 hours).")


@click.group("keys", cls=AppGroup, help="Encryption keys.")
def keys_group() -> None:
    pass


@keys_group.command("rotate", help="Re-wrap every data key under a new (or the active) KEK.")
@click.option(
    "--retire/--keep-old",
    default=True,
    help="With the key file: drop KEKs no data key uses any more (default).",
)
def keys_rotate(retire: bool) -> None:
    from shared import crypto
    from shared.models.keys import DataKey

    state = current_app.extensions["einblick"]
    config = state.config
    key_file = None
    if not config.master_keys:
        key_file = crypto.key_file_path(config.instance_path)
        new_id = crypto.add_kek_to_key_file(key_file)
        state.keyring = crypto.load_keys(
            master_keys=None,
            index_key=None,
            secret_key=None,
            instance_path=config.instance_path,
            may_generate=False,
        ).keyring
        click.echo(f"New key-encryption key {new_id} is active.")
    else:
        click.echo(
            f"Re-wrapping under {state.keyring.active_kek_id}, the first key in "
            "EINBLICK_MASTER_KEYS."
        )
    changed = 0
    total = 0
    batch = 500
    last_id = None
    while True:
        stmt = select(DataKey).order_by(DataKey.id).limit(batch)
        if last_id is not None:
            stmt = stmt.where(DataKey.id > last_id)
        rows = db.session.scalars(stmt).all()
        if not rows:
            break
        for row in rows:
            changed += row.rewrap()
            total += 1
        last_id = rows[-1].id
        db.session.commit()
        db.session.expunge_all()
    from shared import security_log

    security_log.record("keys.rotated")
    click.echo(f"Re-wrapped {changed} of {total} data keys.")
    if key_file is not None and retire:
        in_use = set(db.session.scalars(select(DataKey.kek_id).distinct()).all())
        in_use.add(state.keyring.active_kek_id)
        retired = crypto.retire_keks_in_key_file(key_file, in_use)
        if retired:
            click.echo(f"Retired keys: {', '.join(retired)}")


@click.group("bookings", cls=AppGroup, help="Appointments.")
def bookings_group() -> None:
    pass


@bookings_group.command("remind", help="Email reminders for tomorrow's appointments, and "
                                         "tell clients of requests that expired unanswered.")
def bookings_remind() -> None:
    """Safe to run every few minutes: each appointment is reminded at most once, and each
    expired request is told at most once (only counts are printed, never who)."""
    from shared.services import bookings

    click.echo(f"Sent {bookings.send_reminders()} reminders.")
    click.echo(f"Sent {bookings.send_expiry_notices()} notices of expired requests.")


@click.group("consents", cls=AppGroup, help="Consents.")
def consents_group() -> None:
    pass


@consents_group.command("remind", help="Email one reminder per consent request nobody "
                        "answered within consent_reminder_days.")
def consents_remind() -> None:
    """Safe to run every few minutes: each request is reminded of at most once."""
    from shared.services import consents

    click.echo(f"Sent {consents.send_reminders()} consent reminders.")


@consents_group.command("verify", help="Re-check a stored consent's signature from its evidence.")
@click.argument("consent_id")
def consents_verify(consent_id: str) -> None:
    import uuid

    from shared.services import consents

    try:
        ok, reason = consents.verify_stored(uuid.UUID(consent_id))
    except ValueError as exc:
        raise click.BadParameter("not a consent id") from exc
    if not ok:
        raise click.ClickException(reason)
    click.echo(f"OK: {reason}")


@click.group("audit", cls=AppGroup, help="The access log.")
def audit_group() -> None:
    pass


@audit_group.command("verify", help="Check every client's hash chain; report the first break.")
def audit_verify() -> None:
    from shared import audit

    broken = audit.verify_all() + audit.verify_anchor()
    if broken:
        first = broken[0]
        raise click.ClickException(
            f"Broken chain for client {first.client_id} at event {first.seq}: {first.reason}"
        )
    click.echo("The access log is intact.")


@audit_group.command("anchor",
                     help="Write every client's chain head to the anchor file (run hourly).")
def audit_anchor() -> None:
    from shared import audit

    try:
        count = audit.write_anchor()
    except audit.AnchorRefused as refused:
        first = refused.broken[0]
        raise click.ClickException(
            f"Not anchored: client {first.client_id} at event {first.seq}: {first.reason}. "
            "Investigate first; the previous anchor is kept.") from None
    click.echo(f"Anchored {count} access-log chains.")


@click.group("retention", cls=AppGroup, help="Retention periods from the data catalogue.")
def retention_group() -> None:
    pass


@retention_group.command("purge", help="Delete everything whose retention has passed.")
def retention_purge() -> None:
    from shared.services import erasure

    result = erasure.purge()
    for table, count in sorted(result.counts.items()):
        click.echo(f"{table}: {count}")
    click.echo(f"Deleted {result.total} items whose retention had passed.")


@click.group("backup", cls=AppGroup,
             help="Database backups (keys are not included: keep instance/keys.json apart).")
def backup_group() -> None:
    pass


@backup_group.command("create", help="Write a consistent copy of the database to FILE.")
@click.argument("path", type=click.Path(dir_okay=False))
def backup_create(path: str) -> None:
    from shared.services import backup

    backup.create(Path(path))
    click.echo(f"Backup written to {path}.")


@backup_group.command("restore",
                      help="Replace the database with FILE, then re-apply the erasure journal.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def backup_restore(path: str, yes: bool) -> None:
    from shared.services import backup

    if not yes:
        click.confirm("This replaces every row of the database. Continue?", abort=True)
    erased = backup.restore(Path(path))
    click.echo(f"Database restored from {path}.")
    click.echo(f"Erasure journal re-applied: {erased} clients erased again.")
    click.echo("The access log anchor now matches the restored database.")
