"""A generated redaction corpus: values from the libraries that define them, placed into typed contexts.

Every module in this package is a generator::

    def generate(rng: random.Random, *, split: str) -> Iterator[Sample]

``split`` is ``"dev"`` (what the detectors are tuned on) or ``"heldout"``
(only ever scored). A generator must make the two splits differ in more than
the random draw: different context templates, different locales, different
value sources where it can (see `halves`), so a rule fitted to the dev
templates does not score itself on the held-out part.

A `Sample` carries its own expected spans: ``(start, end, kind)`` where
``kind`` is a key of `deskcorder.privacy.PLACEHOLDERS` (``"EMAIL"``, not
``"<EMAIL>"``). A sample with no spans is a look-alike that must come out of
the redactor unchanged. ``category`` groups samples in the report
(``"pii/phone/de"``, ``"secret/vault"``, ``"lookalike/uuid"``); ``context``
names the template family (``"shell"``, ``"chat"``, ``"config"``...).

`place` builds a sample from a template with ``{}`` slots so no generator
computes offsets by hand; `load` runs every generator module of the package
with its own seeded `random.Random` (the seed is derived from the module name
too, so adding a generator does not reshuffle the others).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import random
import zlib
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

__all__ = ["SPLITS", "Sample", "generators", "halves", "load", "place"]

SPLITS = ("dev", "heldout")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Sample:
    text: str
    spans: list[tuple[int, int, str]]  # (start, end, placeholder kind); empty: must survive unchanged
    category: str
    context: str

    def __post_init__(self) -> None:
        for a, b, kind in self.spans:
            if not (0 <= a < b <= len(self.text)) or kind.startswith("<"):
                raise ValueError(f"Sample span {(a, b, kind)!r} does not fit {self.text!r}: "
                                 "spans are (start, end, KIND) with KIND without brackets")


def place(template: str, values: Sequence[tuple[str, str | None]], *, category: str, context: str) -> Sample:
    """Fill the ``{}`` slots of ``template`` in order; each value is ``(text, kind)``, kind None = not a span.

    ``place("mail {} now", [("a@b.de", "EMAIL")], ...)`` -> span over the address.
    Templates use ``{}`` only: literal braces are written ``{{``/``}}``.
    """
    pieces = template.replace("{{", "\0").replace("}}", "\1").split("{}")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"template {template!r} has {len(pieces) - 1} slots for {len(values)} values")
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    for piece, (value, kind) in zip(pieces, values):
        piece = piece.replace("\0", "{").replace("\1", "}")
        out.append(piece)
        pos += len(piece)
        if kind is not None:
            spans.append((pos, pos + len(value), kind))
        out.append(value)
        pos += len(value)
    out.append(pieces[-1].replace("\0", "{").replace("\1", "}"))
    return Sample("".join(out), spans, category, context)


def halves(items: Sequence[T], split: str) -> list[T]:
    """Deterministic disjoint halves of a list: even positions for dev, odd for held-out.

    For template lists, locale lists and word lists: the held-out split never
    sees what dev was tuned on.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return list(items[0 if split == "dev" else 1::2])


class _Generator(Protocol):
    def generate(self, rng: random.Random, *, split: str) -> Iterator[Sample]: ...


def generators() -> dict[str, _Generator]:
    """Every generator module of this package, by module name."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "generate"):
            found[info.name] = module
    return found


def load(split: str, *, seed: int = 0, only: Sequence[str] = ()) -> list[Sample]:
    """All samples of one split from every generator (or the ones named in ``only``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    samples: list[Sample] = []
    for name, module in generators().items():
        if only and name not in only:
            continue
        rng = random.Random(seed * 1_000_003 + zlib.crc32(f"{name}/{split}".encode()))
        samples.extend(module.generate(rng, split=split))
    return samples
