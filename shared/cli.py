"""Command-line interface: ``flask db``, ``flask demo``, ``flask staff``, ``flask keys``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup

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
    app.cli.add_command(reports_group)
    app.cli.add_command(messages_group)


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


def _key_file() -> Path | None:
    from shared import crypto

    config = current_app.extensions["einblick"].config
    return None if config.master_keys else crypto.key_file_path(config.instance_path)


@keys_group.command("rotate", help="Phase 1: make a new key-encryption key primary and "
                    "re-wrap every data key under it; running processes switch without a "
                    "restart. Then `flask keys retire` (phase 2).")
@click.option("--to", "to", default=None, metavar="ID",
              help="With EINBLICK_MASTER_KEYS: the key to make primary (default: the first "
                   "one that is neither primary nor retired).")
@click.option("--retire", is_flag=True,
              help="Then retire the old keys at once (refused while another process still "
                   "uses them; run `flask keys retire` later).")
@click.option("--wait", default=int(2 * 30), type=click.IntRange(0, 3600), metavar="SECONDS",
              help="With --retire: wait up to this long for processes to switch (default 60).")
def keys_rotate(to: str | None, retire: bool, wait: int) -> None:
    import dataclasses

    from shared import crypto, key_rotation, security_log

    state = current_app.extensions["einblick"]
    key_file = _key_file()
    if key_file is not None:
        if to:
            raise click.UsageError("--to is for keys in EINBLICK_MASTER_KEYS; the key file "
                                   "gets a new key.")
        to = crypto.add_kek_to_key_file(key_file)
        loaded = crypto.load_keys(master_keys=None, index_key=None, secret_key=None,
                                  instance_path=state.config.instance_path,
                                  may_generate=False).keyring
        state.keyring = dataclasses.replace(state.keyring,
                                            keks={**state.keyring.keks, to: loaded.keks[to]})
        click.echo(f"New key-encryption key {to} is in {key_file}.")
    elif to is None:  # the first configured key that is neither primary nor retired
        current = key_rotation.read_primary()
        retired = key_rotation.read_retired()
        db.session.remove()
        configured = list(crypto.parse_master_keys(state.config.master_keys)[0])
        to = next((k for k in configured if k not in retired
                   and (current is None or k != current.kek_id)), configured[0])
    try:
        primary = key_rotation.make_primary(to)
    except key_rotation.Refused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(f"Key {primary.kek_id} is primary (generation {primary.generation}). Running "
               f"processes switch to it within {int(key_rotation.REFRESH_SECONDS)} s, "
               "without a restart.")
    for p in key_rotation.live_processes():
        if primary.kek_id not in p.holds and not p.from_file:
            click.echo(f"Warning: process {p.pid} on {p.host} does not have key "
                       f"{primary.kek_id}; it keeps wrapping under {p.kek_id} until it is "
                       "restarted with the key in EINBLICK_MASTER_KEYS.", err=True)
    _rewrap()
    security_log.record("keys.rotated")
    if retire:
        _retire(wait=wait)
    else:
        click.echo("Next: `flask keys retire` once every process uses the new key "
                   "(`flask keys status` shows them).")


def _rewrap() -> None:
    from shared import key_rotation

    try:
        changed, skipped = key_rotation.rewrap_all()
    except key_rotation.Refused as refused:
        raise click.ClickException(str(refused)) from None
    total = sum(key_rotation.data_keys_by_kek().values())
    db.session.remove()
    click.echo(f"Re-wrapped {changed} of {total} data keys.")
    if skipped:
        click.echo(f"{skipped} data keys are wrapped under a key this process does not have.",
                   err=True)


@keys_group.command("rewrap", help="Wrap every data key that is not under the primary key "
                    "under it (part of phase 1; safe to repeat).")
def keys_rewrap() -> None:
    _rewrap()


@keys_group.command("retire", help="Phase 2: retire every key but the primary. Refused while "
                    "a live process still uses an older one or a data key is wrapped under it.")
@click.option("--wait", default=0, type=click.IntRange(0, 3600), metavar="SECONDS",
              help="Wait up to this long for processes to switch (default: do not wait).")
def keys_retire(wait: int) -> None:
    _retire(wait=wait)


def _retire(*, wait: float) -> None:
    import time

    from shared import crypto, key_rotation, security_log

    deadline = time.monotonic() + wait
    while True:
        try:
            retired = key_rotation.retire()
            break
        except key_rotation.Refused as refused:
            # Processes switch on their own within REFRESH_SECONDS; data keys do not.
            if not refused.processes_only or time.monotonic() >= deadline:
                raise click.ClickException(str(refused)) from None
            time.sleep(2)
    primary = key_rotation.read_primary()
    db.session.remove()
    key_file = _key_file()
    if key_file is not None:
        retired = sorted(set(retired) | set(
            crypto.retire_keks_in_key_file(key_file, {primary.kek_id})))
    if not retired:
        click.echo(f"No key to retire: every data key is under {primary.kek_id}.")
        return
    security_log.record("keys.retired")
    click.echo(f"Retired keys: {', '.join(retired)}. No process decrypts with them any more.")
    if key_file is None:
        click.echo("Remove them from EINBLICK_MASTER_KEYS on every machine (processes "
                   "ignore them already).")


@keys_group.command("status", help="The primary key, data keys per key and the processes "
                    "that reported which key they use.")
def keys_status() -> None:
    import time

    from shared import key_rotation

    primary = key_rotation.read_primary()
    if primary is None:
        click.echo("No primary key recorded yet (start the app once).")
        return
    click.echo(f"Primary key: {primary.kek_id} (generation {primary.generation})")
    for kek_id, count in sorted(key_rotation.data_keys_by_kek().items()):
        click.echo(f"  {count} data keys under {kek_id}")
    retired = key_rotation.read_retired()
    if retired:
        click.echo(f"Retired: {', '.join(sorted(retired))}")
    now = time.time()
    live = key_rotation.live_processes(now)
    click.echo(f"Processes seen in the last {int(key_rotation.LIVE_SECONDS)} s: {len(live)}")
    for p in live:
        mark = "" if (p.kek_id, p.generation) == (primary.kek_id, primary.generation) else (
            "  <- not switched yet")
        click.echo(f"  {p.host} pid {p.pid}: {p.kek_id} (generation {p.generation}), "
                   f"{int(p.age(now))} s ago{mark}")
    reasons = key_rotation.retire_check()[1]
    click.echo("Old keys can be retired now." if not reasons else
               "Not ready to retire: " + "; ".join(reasons) + ".")


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


@click.group("messages", cls=AppGroup, help="Messages between clients and staff.")
def messages_group() -> None:
    pass


@messages_group.command("digest", help="Email the daily digest of unread messages to the "
                                        "staff who chose it instead of an email per message.")
def messages_digest() -> None:
    """Safe to run every hour: each staff member gets at most one digest a day, and only
    when clients' messages wait unread (counts only, never who or what)."""
    from shared.services import messages

    click.echo(f"Sent {messages.send_digests()} digests.")


@click.group("reports", cls=AppGroup, help="Funder reports.")
def reports_group() -> None:
    pass


@reports_group.command("rebuild", help="Count every confirmed appointment again for the funder "
                       "report (once after upgrading to the counted report; safe to repeat).")
def reports_rebuild() -> None:
    from shared.services import reports

    counted = reports.rebuild()
    db.session.commit()
    click.echo(f"Report counts rebuilt from the appointments of {counted} clients.")


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


def _problem(link) -> str:
    from shared import audit

    if link.client_id == audit.NOBODY:
        return f"The access log anchor does not verify: {link.reason}."
    return f"Broken chain for client {link.client_id} at event {link.seq}: {link.reason}."


def _problems(broken: list, shown: int = 10) -> str:
    lines = [_problem(link) for link in broken[:shown]]
    if len(broken) > shown:
        lines.append(f"... and {len(broken) - shown:,} more.")
    return "\n".join(lines)


@audit_group.command("verify", help="Check the access log against the anchor: by default "
                     "the chains that changed since the last anchor, with --full every chain "
                     "from its start (weekly).")
@click.option("--full", is_flag=True, help="Read every chain and the whole anchor file.")
def audit_verify(full: bool) -> None:
    from shared import audit

    check = audit.verify(full=full)
    if check.broken:
        message = _problems(check.broken)
        if not check.full:
            message += "\n(Only what changed since the last anchor was read; `flask audit " \
                       "verify --full` reads every chain.)"
        raise click.ClickException(message)
    if not check.full:
        click.echo("The access log is intact: "
                   + (f"{_count(check.chains, 'chain')} changed since the last anchor, "
                      f"{_count(check.events, 'event')} read." if check.chains
                      else "no chain changed since the last anchor."))
        return
    click.echo(f"The access log is intact: all {check.chains:,} chains read from their start "
               f"({check.events:,} events)"
               + (", and they match the anchor file." if check.anchored
                  else "; nothing is anchored yet (`flask audit anchor`)."))


@audit_group.command("anchor", help="Write the heads of the chains that changed since the "
                     "last anchor to the anchor file (hourly); --full: every chain (weekly).")
@click.option("--full", is_flag=True, help="Check every chain, then anchor all of them.")
def audit_anchor(full: bool) -> None:
    from shared import audit

    try:
        check = audit.write_anchor(full=full)
    except audit.AnchorRefused as refused:
        first = refused.broken[0]
        reason = (first.reason if first.client_id == audit.NOBODY
                  else f"client {first.client_id} at event {first.seq}: {first.reason}")
        raise click.ClickException(
            f"Not anchored: {reason}. Investigate first; the previous anchor is kept.") from None
    except OSError as exc:
        raise click.ClickException(
            f"The anchor file could not be written ({exc.strerror or exc}). The next run "
            "anchors every chain; until then `flask audit verify` checks against the "
            "database's copy of the heads.") from None
    except audit.AnchorBusy:
        raise click.ClickException("Another `flask audit anchor` wrote the anchor first; "
                                   "this run wrote nothing.") from None
    anchored = sum(1 for head in check.heads.values() if head is not None)
    if check.full:
        click.echo(f"Anchored {_count(anchored, 'access-log chain')} (all of them).")
        return
    gone = len(check.heads) - anchored
    click.echo(f"Anchored {_count(anchored, 'access-log chain')} that changed since the last "
               "anchor" + (f"; {_count(gone, 'chain')} went with an erasure." if gone else "."))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


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
