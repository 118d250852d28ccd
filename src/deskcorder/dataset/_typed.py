"""Typed text through the Redactor: each typing run, with the line entered before it as context.

A terminal does not retitle itself for ``sudo``'s password prompt, so the
line entered just before a run ("sudo apt install ...", Enter) tells the
Redactor that the run answers a prompt. The two are redacted as one text,
``previous + "\\n" + run``, and the spans found are mapped back onto the run:
a span inside the run is kept, one that crosses the newline is cut at it, one
inside the previous line is that line's own (counted when it was redacted
itself). The run is never recovered by splitting redacted joined text: a
password-prompt window or a failing detector replaces the whole joined text,
newline included, by one placeholder (issue 9, failure 10).

The spans (in run coordinates) are kept per action: the keystrokes table masks
the keys whose characters they cover (``_keystrokes.py``).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Iterable, Protocol

if TYPE_CHECKING:
    from ..privacy import Span

__all__ = ["TypedRedaction", "redact_runs"]

Spans = list[tuple[int, int]]


class _SpanFinder(Protocol):
    def find_spans(self, text: str, *, app_class: str | None = None, window_title: str | None = None,
                   known_identifiers: Iterable[str] = ()) -> list[Span]: ...


class TypedRedaction:
    """What redacting every typing run gave: the texts to write, each run's spans, counts per kind."""

    __slots__ = ("texts", "spans", "counts")

    def __init__(self) -> None:
        self.texts: list[str | None] = []
        self.spans: list[Spans | None] = []  # per action: redacted (start, end) in its raw text; None: not a run
        self.counts: Counter[str] = Counter()


def redact_runs(redactor: _SpanFinder, kinds: list[str], raw: list[str | None], keys: list[str | None],
                episode_of: list[int], app_classes: list[str | None], windows: list[str | None],
                known: tuple[str, ...]) -> TypedRedaction:
    """Redact the text of every ``type`` action (the others pass through with no spans)."""
    done = TypedRedaction()
    for i, (kind, text) in enumerate(zip(kinds, raw)):
        if kind != "type" or not text:
            done.texts.append(text)
            done.spans.append([] if kind == "type" else None)
            continue
        entered = _entered_line(i, kinds, raw, keys, episode_of)
        context = raw[entered] if entered is not None else None
        joined = text if context is None else context + "\n" + text
        offset = 0 if context is None else len(context) + 1
        found = redactor.find_spans(joined, app_class=app_classes[i], window_title=windows[i],
                                    known_identifiers=known)
        spans: Spans = []
        out: list[str] = []
        pos = 0
        for s in found:
            if s.end <= offset:
                continue  # the previous line's own span
            start, end = max(s.start, offset) - offset, s.end - offset
            out.append(text[pos:start])
            out.append(f"<{s.kind}>")  # as PLACEHOLDERS writes them
            done.counts[s.kind] += 1
            spans.append((start, end))
            pos = end
        out.append(text[pos:])
        done.texts.append("".join(out))
        done.spans.append(spans)
    return done


def _entered_line(i: int, kinds: list[str], raw: list[str | None], keys: list[str | None],
                  episode_of: list[int]) -> int | None:
    """The action typed and entered right before action ``i`` in the same episode (type, then Enter), if any."""
    if i >= 2 and kinds[i - 1] == "key" and keys[i - 1] == "enter" and kinds[i - 2] == "type" \
            and episode_of[i - 2] == episode_of[i] and raw[i - 2]:
        return i - 2
    return None
