"""The ``deskcorder`` command line: one thin module per command group, domain errors turned into clean messages here."""

from __future__ import annotations

import typer

from . import (agent, audit, consent, dataset, demo, device, employee, erase, export, init, policy, portal,
               retention, serve, writer)

app = typer.Typer(
    name="deskcorder",
    help="Record desktop work with consent and turn it into training datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(init.init)
app.add_typer(agent.app, name="agent")
app.command("serve")(serve.serve)
app.command("writer")(writer.writer)
app.command("demo")(demo.demo)
app.add_typer(dataset.app, name="dataset")
app.add_typer(employee.app, name="employee")
app.add_typer(device.app, name="device")
app.add_typer(consent.app, name="consent")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.command("erase")(erase.erase)
app.command("export")(export.export)
app.add_typer(retention.app, name="retention")
app.add_typer(portal.app, name="portal")


def main() -> None:
    """The ``deskcorder`` command. A ``DeskcorderError`` that no command turned into its own message ends here, once:
    ``error: <what was wrong and how to fix it>`` on one line, exit status 2 (as ``fail`` does), no traceback."""
    from .._errors import DeskcorderError

    try:
        app()
    except DeskcorderError as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        typer.echo(f"error: {message or type(exc).__name__}", err=True)
        raise SystemExit(2) from None
