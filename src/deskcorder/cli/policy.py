"""`deskcorder policy set FILE | show`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..policy import consent_text
from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store

app = typer.Typer(help="Set and show the recording policy (TOML; see deskcorder.policy).", no_args_is_help=True)


@app.command("set")
def set_(
    file: Path = typer.Argument(..., help="The policy TOML; its `version` must be higher than the current one."),
    note: str | None = typer.Option(None, "--note", help="Why it changed (goes to the audit log)."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Store a new policy version. Every employee must consent again before they are recorded under it."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from exc
    with open_store(data_dir, database_url) as store:
        record = store.set_policy(text, actor=cli_actor(), note=note)
    typer.echo(f"policy version {record.version} is now current; employees must consent to it before they are "
               f"recorded again")


@app.command("show")
def show(data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """Print the current policy (TOML), or say that none is set."""
    with open_store(data_dir, database_url) as store:
        record = store.current_policy()
    if record.version == 0:
        typer.echo("no policy is set: nothing may be recorded (deskcorder policy set FILE)")
        return
    typer.echo(f"# version {record.version}, set {record.created_at:%Y-%m-%d %H:%M} UTC by {record.created_by}"
               + (f": {record.note}" if record.note else ""))
    typer.echo(record.text.rstrip("\n"))
    if record.policy is not None:  # as TOML comments: the output can still be saved and set again
        typer.echo("\n# What employees are shown and consent to, generated from the rules above:")
        typer.echo("\n".join(f"# {line}" for line in consent_text(record.policy).splitlines()))
