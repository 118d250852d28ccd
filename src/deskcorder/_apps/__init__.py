"""Small accessible apps for the tests and the demo, run as their own processes under Debian's /usr/bin/python3.

They import nothing from deskcorder (the virtual environment has no PyGObject,
by design), so only their paths live here: start one with
``[SYSTEM_PYTHON, str(GTK_FORM)]``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["GTK_FORM", "GTK_FORM_CLASS", "SYSTEM_PYTHON"]

GTK_FORM = Path(__file__).with_name("gtk_form.py")  # a button, a text entry, a password entry, a label (GTK 3)
GTK_FORM_CLASS = "DeskcorderForm"  # its WM_CLASS class (the agent's app_class), as gtk_form.py sets it
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where python3-gi and gir1.2-gtk-3.0 are installed
