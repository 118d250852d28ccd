"""What a build would replace in some events, counted by the build's own code and written nowhere.

The portal's session page shows a person what a dataset made of their session
would replace (``collect/_portal/_views.py``); counting it with anything but
the build's own steps (episodes, actions, the previous line as context, the
default options) would show them a different number from the one the build
records in ``stats.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import pyarrow as pa

from ._build import _compute
from ._options import BuildOptions

if TYPE_CHECKING:
    from ..privacy import Redactor

__all__ = ["build_redactions"]


def build_redactions(events: pa.Table, redactor: Redactor,
                     known_identifiers: Iterable[str] = ()) -> tuple[dict[str, int], dict[str, int]]:
    """``(typed text: {kind: n}, window titles: {kind: n})`` that a build of ``events`` with the default
    options would replace; titles counted once per distinct title kept in the actions or episodes."""
    known = tuple(k for k in known_identifiers if k)
    part = _compute(events, BuildOptions(), redactor, known)
    titles: dict[str, int] = {}
    kept = set(part.actions["window_title"].drop_nulls()) | set(part.episodes["window_title"].drop_nulls())
    for title in kept:
        for kind, n in redactor.redact_title(title, known_identifiers=known)[1].items():
            titles[kind] = titles.get(kind, 0) + n
    return dict(part.redactions), titles
