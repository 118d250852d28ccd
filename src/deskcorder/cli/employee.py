"""`deskcorder employee ...`: the people who may be recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._server_options import LOGIN, SERVER, admin_client
from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, open_store

app = typer.Typer(help="Add and list the employees who may be recorded.", no_args_is_help=True)


@app.command("add")
def add(
    handle: str = typer.Argument(..., help="Their login, e.g. alice (what devices are enrolled to)."),
    name: str | None = typer.Option(None, "--name", help="Display name, e.g. \"Alice Martin\"."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Add an employee (and create their encryption key). Nothing is recorded until they consent."""
    with open_store(data_dir, database_url) as store:
        employee = store.add_employee(handle, actor=cli_actor(), display_name=name)
    typer.echo(f"added {employee.handle} ({employee.employee_id}); next: enrol their device (deskcorder "
               f"device token --employee {employee.handle}) and ask for their consent (they give it in the portal at "
               f"/me; a signed form: deskcorder consent give --employee {employee.handle} --evidence WHAT)")


@app.command("list")
def list_(data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL, server: str | None = SERVER,
          login: str = LOGIN) -> None:
    """List employees with their devices and whether they currently consent (--server: ask that collector)."""
    if server is not None:
        with admin_client(server, login) as admin:
            _print_rows([(e.handle, e.display_name or "-", e.employee_id, _consent_words(e.latest_consent),
                          ", ".join(e.devices) or "-") for e in admin.employees()])
        return
    with open_store(data_dir, database_url) as store:
        rows = []
        for e in store.employees():
            history = store.consent_history(e.handle)
            devices = ", ".join(d.device_id for d in store.devices(employee=e.handle)) or "-"
            rows.append((e.handle, e.display_name or "-", e.employee_id,
                         _consent_words(history[-1] if history else None), devices))
    _print_rows(rows)


def _consent_words(latest: Any) -> str:
    """An employee's latest consent act, as the listing shows it (a store record or the API's, alike)."""
    return "never" if latest is None else f"{latest.action} v{latest.policy_version}"


def _print_rows(rows: list[tuple[str, ...]]) -> None:
    if not rows:
        typer.echo("no employees yet; add one with: deskcorder employee add HANDLE")
        return
    header = ("handle", "name", "employee_id", "consent", "devices")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
