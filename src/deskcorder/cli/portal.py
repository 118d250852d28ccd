"""`deskcorder portal add-admin|set-password|list`: the accounts of the transparency portal and admin console."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store

app = typer.Typer(help="Create portal accounts and set their passwords (the portal is served by `deskcorder serve`).",
                  no_args_is_help=True)

PASSWORD_STDIN = typer.Option(False, "--password-stdin",
                              help="Read the password from the first line of standard input (for scripts) "
                                   "instead of asking for it.")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("add-admin")
def add_admin(
    login: str = typer.Argument(..., help="The admin's login, e.g. it-ops; not an employee's handle."),
    password_stdin: bool = PASSWORD_STDIN,
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Create an admin account for the console at /admin (devices, consent coverage, policy, datasets, audit).

    Admins never see anyone's recorded events, only aggregates over at least five people.
    """
    with open_store(data_dir, database_url) as store:
        if any(a.login == login for a in store.portal.accounts()):
            raise fail(f"account {login!r} already exists; change its password with: "
                       f"deskcorder portal set-password {login}")
        account = store.portal.set_password(login, _password(password_stdin), role="admin", actor=cli_actor())
    typer.echo(f"admin {account.login} can now log in at the collector's /login")


@app.command("set-password")
def set_password(
    login: str = typer.Argument(..., help="An employee's handle (creates their account) or an existing login."),
    password_stdin: bool = PASSWORD_STDIN,
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Set the password of a portal account, creating an employee's account on first use; ends its logins."""
    with open_store(data_dir, database_url) as store:
        existing = {a.login: a for a in store.portal.accounts()}.get(login)
        role = existing.role if existing is not None else "employee"
        account = store.portal.set_password(login, _password(password_stdin), role=role, actor=cli_actor())
    what = "created" if existing is None else "password changed"
    typer.echo(f"{account.role} account {account.login}: {what}; they log in at the collector's /login")


@app.command("list")
def list_(data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """List portal accounts: login, role, and when the password was last set."""
    with open_store(data_dir, database_url) as store:
        accounts = store.portal.accounts()
    if not accounts:
        typer.echo("no portal accounts yet; create one with: deskcorder portal add-admin LOGIN")
        return
    for a in accounts:
        typer.echo(f"{a.login}  {a.role}  password set {a.password_set_at:%Y-%m-%d %H:%M} UTC")
