"""Recall and precision of a `Redactor` on a labelled corpus (tests/data/redaction_corpus.jsonl).

One corpus line: ``{"text", "expected": [{"kind", "value"}], "note"}`` plus
optional ``window_title``, ``app_class``, ``known_identifiers`` and
``source`` (``"title"`` scores `Redactor.redact_title` instead of ``redact``).
An entry with no expected spans is a look-alike that must survive unchanged.

Scoring is by span, strict about the kind:

- every occurrence of an expected value is an expected span; it is *found*
  when one redacted span of the same kind covers it entirely (recall);
- a redacted span is *correct* when it overlaps an expected span of its kind
  (precision). A wrong placeholder kind counts against both.

Shared by the tests (which assert the targets) and benchmarks/redaction_quality.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._redact import Redactor, Span

__all__ = ["CategoryScore", "CorpusScore", "load_corpus", "score_corpus", "score_samples"]


@dataclasses.dataclass
class CorpusScore:
    found: dict[str, int] = dataclasses.field(default_factory=dict)  # expected spans redacted with the right kind
    expected: dict[str, int] = dataclasses.field(default_factory=dict)
    correct: dict[str, int] = dataclasses.field(default_factory=dict)  # redactions that were expected
    redacted: dict[str, int] = dataclasses.field(default_factory=dict)
    misses: list[str] = dataclasses.field(default_factory=list)  # human-readable, for failing tests
    false_alarms: list[str] = dataclasses.field(default_factory=list)

    @property
    def recall(self) -> float:
        total = sum(self.expected.values())
        return sum(self.found.values()) / total if total else 1.0

    @property
    def precision(self) -> float:
        total = sum(self.redacted.values())
        return sum(self.correct.values()) / total if total else 1.0

    def kind_recall(self, kind: str) -> float | None:
        n = self.expected.get(kind, 0)
        return self.found.get(kind, 0) / n if n else None

    def kind_precision(self, kind: str) -> float | None:
        n = self.redacted.get(kind, 0)
        return self.correct.get(kind, 0) / n if n else None


def load_corpus(path: str | Path) -> list[dict[str, Any]]:
    entries = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            entry = json.loads(line)
            for exp in entry["expected"]:
                if exp["value"] not in entry["text"]:
                    raise ValueError(f"{path}:{lineno}: expected value {exp['value']!r} does not occur in text")
            entries.append(entry)
    return entries


def spans_for(redactor: Redactor, entry: dict[str, Any]) -> list[Span]:
    known = entry.get("known_identifiers", ())
    if entry.get("source") == "title":
        return redactor.find_title_spans(entry["text"], known_identifiers=known)
    return redactor.find_spans(
        entry["text"],
        app_class=entry.get("app_class"),
        window_title=entry.get("window_title"),
        known_identifiers=known,
    )


def _expected_spans(entry: dict[str, Any]) -> list[tuple[int, int, str]]:
    text, out = entry["text"], set()
    for exp in entry["expected"]:
        start = text.find(exp["value"])
        while start >= 0:
            out.add((start, start + len(exp["value"]), exp["kind"]))
            start = text.find(exp["value"], start + 1)
    return sorted(out)


def score_corpus(redactor: Redactor, entries: Iterable[dict[str, Any]]) -> CorpusScore:
    score = CorpusScore()
    for entry in entries:
        text = entry["text"]
        spans = spans_for(redactor, entry)
        expected = _expected_spans(entry)
        for a, b, kind in expected:
            score.expected[kind] = score.expected.get(kind, 0) + 1
            if any(s.kind == kind and s.start <= a and b <= s.end for s in spans):
                score.found[kind] = score.found.get(kind, 0) + 1
            else:
                got = [f"{s.kind}:{text[s.start:s.end]!r}" for s in spans if s.start < b and a < s.end]
                score.misses.append(f"{kind} {text[a:b]!r} not redacted (got {got or 'nothing'}) in {text!r}")
        for s in spans:
            score.redacted[s.kind] = score.redacted.get(s.kind, 0) + 1
            if any(kind == s.kind and s.start < b and a < s.end for a, b, kind in expected):
                score.correct[s.kind] = score.correct.get(s.kind, 0) + 1
            else:
                score.false_alarms.append(
                    f"{s.kind} {text[s.start:s.end]!r} by {s.detector} in {text!r} ({entry.get('note', '')})"
                )
    return score


# -- generated corpora (benchmarks/corpus) ---------------------------------------------------------


@dataclasses.dataclass
class CategoryScore:
    """One category of a generated corpus: expected spans found, look-alikes left alone, extra redactions."""

    samples: int = 0
    expected: int = 0
    found: int = 0  # expected spans covered by one redaction of the right kind
    unchanged: int = 0  # look-alike samples with no redaction at all
    look_alikes: int = 0
    extra: int = 0  # redactions that overlap no expected span (in any sample of the category)
    misses: list[str] = dataclasses.field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.found / self.expected if self.expected else None

    @property
    def survival(self) -> float | None:
        return self.unchanged / self.look_alikes if self.look_alikes else None


def score_samples(redactor: Redactor, samples: Iterable[Any], *, strict_kind: bool = True) -> dict[str, CategoryScore]:
    """Score `Sample`-like objects (``text``, ``spans`` as ``(start, end, kind)``, ``category``, ``context``).

    Samples whose context is ``"title"`` go through `Redactor.find_title_spans`, the rest through
    `Redactor.find_spans`. A sample without spans is a look-alike: it counts as unchanged when
    nothing at all is redacted. ``strict_kind=False`` counts an expected span as found under any
    placeholder (the value is gone either way; the benchmark reports the strict figure).
    """
    scores: dict[str, CategoryScore] = {}
    for sample in samples:
        text = sample.text
        score = scores.setdefault(sample.category, CategoryScore())
        score.samples += 1
        if sample.context == "title":
            spans = redactor.find_title_spans(text)
        else:
            spans = redactor.find_spans(text)
        for a, b, kind in sample.spans:
            score.expected += 1
            if any((s.kind == kind or not strict_kind) and s.start <= a and b <= s.end for s in spans):
                score.found += 1
            else:
                got = [f"{s.kind}:{text[s.start:s.end]!r}" for s in spans if s.start < b and a < s.end]
                score.misses.append(f"{kind} {text[a:b]!r} not redacted (got {got or 'nothing'}) in {text!r}")
        extra = [s for s in spans if not any(s.start < b and a < s.end for a, b, _ in sample.spans)]
        score.extra += len(extra)
        if not sample.spans:
            score.look_alikes += 1
            score.unchanged += not spans
        for s in extra:
            score.misses.append(f"EXTRA {s.kind} {text[s.start:s.end]!r} by {s.detector} in {text!r}")
    return scores
