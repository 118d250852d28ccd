"""`deskcorder dataset ...`."""

import typer

app = typer.Typer(help="Build and inspect training datasets.", no_args_is_help=True)


@app.command("build")
def build() -> None:
    """Not built yet."""
    raise typer.Exit(1)
