"""The ``deskcorder`` command line: one thin module per command group, domain errors turned into clean messages here."""

from __future__ import annotations

import sys
from typing import Any

import typer


def _build_app() -> typer.Typer:
    from . import (agent, audit, consent, dataset, demo, device, employee, erase, export, init, policy, portal,
                   retention, serve, writer)

    app = typer.Typer(
        name="deskcorder",
        help="Record desktop work with consent and turn it into training datasets.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Click's plain help, inherited by every command: it wraps to the terminal (at most 80 columns) and
        # never cuts an option name, where Rich's panels cut `--agent-upload-interval` to `--agent-upload-interv…`.
        rich_markup_mode=None,
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
    return app


def __getattr__(name: str) -> Any:
    # ``app`` is built on first use: the command modules import the store, the dataset builder and their
    # libraries, which `deskcorder agent` (running all day on every desk) never needs.
    if name == "app":
        globals()["app"] = built = _build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The ``deskcorder`` command. A ``DeskcorderError`` that no command turned into its own message ends here, once:
    ``error: <what was wrong and how to fix it>`` on one line, exit status 2 (as ``fail`` does), no traceback."""
    from .._errors import DeskcorderError

    try:
        if sys.argv[1:2] == ["agent"]:  # only the agent's own command: ~30 MiB less for the whole day
            from . import agent

            agent.app.rich_markup_mode = None  # the same plain help as the full app gives it
            agent.app(args=sys.argv[2:], prog_name="deskcorder agent")
        else:
            __getattr__("app")()
    except DeskcorderError as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        typer.echo(f"error: {message or type(exc).__name__}", err=True)
        raise SystemExit(2) from None
