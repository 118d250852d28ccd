"""What admin commands that can work through a running collector share: ``--server URL`` and ``--login``, with
the password from ``DESKCORDER_ADMIN_PASSWORD`` or a prompt, opening a ``deskcorder.client.AdminClient``.

With ``--server`` a command needs no data dir, database or master key on this machine: the collector's admin
API (``/v1/admin/...``) does the work under the admin's own login, and audits it as ``admin:<login>``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..client import AdminClient

ADMIN_PASSWORD_ENV = "DESKCORDER_ADMIN_PASSWORD"
SERVER = typer.Option(None, "--server", help="A running collector's URL, e.g. http://collector:8765: ask its "
                                             "admin API instead of opening the store here.")
LOGIN = typer.Option("admin", "--login", help=f"With --server: the admin portal login (its password from "
                                              f"${ADMIN_PASSWORD_ENV}, else asked for).")


def admin_client(server: str, login: str) -> AdminClient:
    """A client of that collector's admin API; errors reach ``deskcorder.cli.main`` as one ``error:`` line."""
    from ..client import AdminClient

    password = os.environ.get(ADMIN_PASSWORD_ENV) or typer.prompt(f"password of {login}", hide_input=True)
    return AdminClient(server, login, password)
