"""`deskcorder export --employee HANDLE --out FILE.zip`: a subject access archive (GDPR Art. 15/20)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, open_store


def export(
    employee: str = typer.Option(..., "--employee", help="The employee's handle (login)."),
    out: Path = typer.Option(..., "--out", help="The zip file to write (created 0600: it is personal data)."),
    reason: str = typer.Option("subject access request", "--reason", help="Why (goes to the audit log)."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Write everything stored about an employee to a readable zip, with a README explaining each file."""
    with open_store(data_dir, database_url) as store:
        path = store.export_employee(employee, out, actor=cli_actor(), reason=reason)
    typer.echo(f"wrote {path}: everything stored about {employee} (README.txt inside explains each file); "
               f"it is personal data, hand it over securely")
