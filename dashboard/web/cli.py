"""Add the ``flask --app app:server`` commands: database upgrade, users, kiosk tokens and open-data API keys."""

import sys
from datetime import datetime, timezone

import click
from flask import current_app

from dashboard.storage import apikeys
from dashboard.storage import users as accounts
from dashboard.storage.db import upgrade


def init_app(server) -> None:
    """Register the command groups on the Flask server."""

    @server.cli.group("db")
    def db():
        """Manage the database schema."""

    @db.command("upgrade")
    @click.argument("revision", default="head")
    def db_upgrade(revision):
        """Apply the Alembic migrations up to REVISION (default: head)."""
        upgrade(current_app.extensions["panorama"].engine, revision)
        click.echo(f"database at {revision}")

    init_user_commands(server)
    init_apikey_commands(server)


def _engine():
    return current_app.extensions["panorama"].engine


def _read_password() -> str:
    """Read the password: prompted twice on a terminal, one line from a pipe."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


def _ms(value) -> str:
    return "-" if value is None else datetime.fromtimestamp(value / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


def init_user_commands(server) -> None:
    """Register ``users`` and ``kiosk``: accounts and the wall's read-only tokens."""

    @server.cli.group("users")
    def users_group():
        """Manage who may sign in."""

    @users_group.command("create")
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice(accounts.ROLES))
    @click.option("--department", default=None, help="department code (required for a liaison)")
    @click.option("--district", default=None,
                  help="district code (or name) of the user's district centre; none: the city centre")
    def users_create(name, role, department, district):
        """Create user NAME; the password is read from standard input."""
        city = current_app.extensions["panorama"].city
        departments = [d["code"] for d in city.departments]
        districts = [d.code for d in city.districts]
        if district:
            found = city.resolve(district)
            district = found.code if found else district  # unknown: refused below with the codes there are
        try:
            accounts.validate(role, department, departments)  # before asking for a password
            accounts.validate_district(district, districts)
            user = accounts.create_user(_engine(), name, _read_password(), role, department, departments,
                                        district=district, districts=districts)
        except accounts.UserError as err:
            raise click.ClickException(str(err)) from err
        place = ", ".join(filter(None, (user.department, user.district)))
        click.echo(f"created {user.username} ({user.role}{', ' + place if place else ''})")

    @users_group.command("disable")
    @click.argument("name")
    def users_disable(name):
        """Disable user NAME; every session it has ends at once."""
        if not accounts.set_active(_engine(), name, False):
            raise click.ClickException(f"no user {name!r}")
        click.echo(f"disabled {name}")

    @users_group.command("sign-out")
    @click.argument("name")
    def users_sign_out(name):
        """End every session of user NAME now (a lost phone, a copied cookie); they may sign in again."""
        username = accounts.end_sessions(_engine(), name)
        if username is None:
            raise click.ClickException(f"no user {name!r}")
        click.echo(f"signed out {username} everywhere")

    @users_group.command("enable")
    @click.argument("name")
    def users_enable(name):
        """Enable user NAME again."""
        if not accounts.set_active(_engine(), name, True):
            raise click.ClickException(f"no user {name!r}")
        click.echo(f"enabled {name}")

    @users_group.command("list")
    def users_list():
        """List the users (never their passwords)."""
        for u in accounts.list_users(_engine()):
            click.echo(f"{u['username']:<24} {u['role']:<10} {u['department'] or '-':<16} {u['district'] or '-':<8} "
                       f"{'sso' if u['sso'] else 'password':<9} "
                       f"{'active' if u['active'] else 'disabled':<9} last sign-in {_ms(u['last_login_ms'])}")

    @server.cli.group("kiosk")
    def kiosk_group():
        """Manage the read-only tokens of wall displays (/wall?token=...)."""

    @kiosk_group.command("create")
    @click.argument("label")
    @click.option("--district", default=None,
                  help="district code (or name): the wall of that district centre, showing that district only")
    def kiosk_create(label, district):
        """Create a kiosk token for LABEL and print it; it is shown this once only."""
        city = current_app.extensions["panorama"].city
        if district:
            found = city.resolve(district)
            district = found.code if found else district  # unknown: refused below with the codes there are
        try:
            token_id, token = accounts.create_kiosk_token(_engine(), label, district, [d.code for d in city.districts])
        except accounts.UserError as err:
            raise click.ClickException(str(err)) from err
        click.echo(f"kiosk token {token_id} ({label}{', district ' + district if district else ''}): {token}")
        click.echo(f"open /wall?token={token} on the wall's browser; it cannot be shown again")

    @kiosk_group.command("revoke")
    @click.argument("token_id", type=int)
    def kiosk_revoke(token_id):
        """Revoke kiosk token ID."""
        if not accounts.revoke_kiosk_token(_engine(), token_id):
            raise click.ClickException(f"no live kiosk token {token_id}")
        click.echo(f"revoked kiosk token {token_id}")

    @kiosk_group.command("list")
    def kiosk_list():
        """List the kiosk tokens (ids and labels; the tokens themselves are not kept)."""
        for k in accounts.list_kiosk_tokens(_engine()):
            state = f"revoked {_ms(k['revoked_ms'])}" if k["revoked_ms"] else "live"
            click.echo(f"{k['id']:>4} {k['label']:<32} {k['district'] or 'city':<8} created {_ms(k['created_ms'])} "
                       f"{state}")


def init_apikey_commands(server) -> None:
    """Register ``apikeys``: the keys outside developers send to the open-data API (SPEC section 14)."""

    @server.cli.group("apikeys")
    def apikeys_group():
        """Manage the open-data API keys (/api/open/, the X-API-Key header)."""

    @apikeys_group.command("create")
    @click.argument("owner")
    def apikeys_create(owner):
        """Create a key for OWNER (a person or an organisation) and print it; it is shown this once only."""
        try:
            key, secret = apikeys.create_key(_engine(), owner)
        except apikeys.ApiKeyError as err:
            raise click.ClickException(str(err)) from err
        click.echo(f"api key {key.id} ({key.owner}, {key.prefix}...): {secret}")
        click.echo("send it as the X-API-Key header; it cannot be shown again")

    @apikeys_group.command("revoke")
    @click.argument("key_id", type=int)
    def apikeys_revoke(key_id):
        """Revoke API key ID: its next request is refused."""
        if not apikeys.revoke_key(_engine(), key_id):
            raise click.ClickException(f"no live api key {key_id}")
        click.echo(f"revoked api key {key_id}")

    @apikeys_group.command("list")
    def apikeys_list():
        """List the API keys (ids, prefixes and owners; the keys themselves are not kept)."""
        for k in apikeys.list_keys(_engine()):
            state = f"revoked {_ms(k['revoked_ms'])}" if k["revoked_ms"] else "live"
            click.echo(f"{k['id']:>4} {k['prefix']:<14} {k['owner']:<32} created {_ms(k['created_ms'])} {state}")
