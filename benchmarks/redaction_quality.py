"""Redaction quality and speed: the generated corpus per category (dev and held-out side by side), the old
hand-written corpus, and typed lines per second next to a single-regex reference.

    python benchmarks/redaction_quality.py [--seed 0] [--misses 3] [--misses-of dev] [--seconds 3]
                                           [--only pii_ids,lookalikes] [--corpus tests/data/redaction_corpus.jsonl]

Generated corpus (benchmarks/corpus): every generator module, both splits, on
one seed. Per category: *recall*, the share of expected spans one placeholder
of the right kind covers entirely; *unchanged*, the share of look-alikes that
come out with no redaction at all; *extra*, redactions that overlap no
expected span. The misses listed are the dev split's (what one tunes on);
``--misses-of heldout`` lists the held-out ones, for reading after a change,
never for writing rules from. Categories below the issue's targets (recall 99%, look-alikes
unchanged 97%) are flagged ``<``. The detectors were tuned on ``dev`` only;
``heldout`` uses other templates, other locales and other value sources
(benchmarks/corpus/__init__.py).

The old hand-written corpus (tests/data/redaction_corpus.jsonl, 450 strings)
is scored as before: recall and precision by kind.

Throughput is single-threaded CPU time of ``Redactor.redact`` on typed runs
as the dataset builder produces them (mostly prose, code and shell with the
window title passed, 1 in 20 from the corpus), next to the same lines through
one compiled regular expression (the cheapest scan of the text there is), and
window titles through ``redact_title``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import SPLITS, load  # noqa: E402
from deskcorder.privacy import Redactor  # noqa: E402
from deskcorder.privacy._quality import CategoryScore, load_corpus, score_corpus, score_samples  # noqa: E402

RECALL_TARGET, UNCHANGED_TARGET = 0.99, 0.97
WORDS = [
    "the", "report", "numbers", "meeting", "tomorrow", "please", "review", "section", "draft", "budget",
    "team", "deadline", "client", "update", "notes", "agenda", "thanks", "sure", "call", "later", "fixed",
    "merged", "release", "branch", "test", "build", "deploy",
]
CODE = ["def main():", "return None", "for item in items:", "import numpy as np", "if x is None:", "self.count += 1",
        "SELECT id FROM users LIMIT 10;", "const total = a + b;", "git status", "ls -la", "cd ..", "npm run build",
        "docker compose up -d", "pytest -q tests/", "git commit -m 'fix typo'"]
TITLES = ["report.docx - LibreOffice Writer", "~/src/app - Terminal", "Inbox - Mail", "main.py - Visual Studio Code",
          "Q3 numbers.xlsx - Calc", "Pull request #42 - Mozilla Firefox", "Slack | #general"]
# The reference: one pass of one compiled expression over the same line.
REFERENCE_RE = re.compile(r"(?i)password|secret|token|@|\d{4}")


def typed_runs(n: int, corpus_texts: list[str], rng: random.Random) -> list[tuple[str, str]]:
    runs = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.05:
            text = rng.choice(corpus_texts)
        elif roll < 0.45:
            text = rng.choice(CODE)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
        runs.append((text, rng.choice(TITLES)))
    return runs


def rate(fn: Callable, items: list, seconds: float) -> float:
    """Items per second of CPU time of this process (a loaded machine does not count against us)."""
    done, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for item in items:
            fn(item)
        done += len(items)
    return done / (time.process_time() - start)


def fmt(x: float | None) -> str:
    return "    -  " if x is None else f"{x:7.1%}"


def _flag(score: CategoryScore | None) -> str:
    if score is None:
        return " "
    low = (score.recall is not None and score.recall < RECALL_TARGET) or (
        score.survival is not None and score.survival < UNCHANGED_TARGET)
    return "<" if low else " "


def _total(scores: Iterable[CategoryScore]) -> CategoryScore:
    total = CategoryScore()
    for s in scores:
        total.samples += s.samples
        total.expected += s.expected
        total.found += s.found
        total.look_alikes += s.look_alikes
        total.unchanged += s.unchanged
        total.extra += s.extra
    return total


def generated_table(redactor: Redactor, seed: int, only: list[str], misses: int, misses_of: str = "dev") -> None:
    scores = {split: score_samples(redactor, load(split, seed=seed, only=only)) for split in SPLITS}
    print(f"generated corpus (seed {seed}): recall / look-alikes unchanged, per category; "
          f"< marks a category under {RECALL_TARGET:.0%} / {UNCHANGED_TARGET:.0%}")
    print(f"{'category':42s} | {'dev n':>6s} {'recall':>7s} {'unchgd':>7s} {'extra':>5s}  "
          f"| {'held n':>6s} {'recall':>7s} {'unchgd':>7s} {'extra':>5s}")
    rows = sorted(set(scores["dev"]) | set(scores["heldout"]))

    def cells(s: CategoryScore | None) -> str:
        if s is None:
            return f"{'':>6s} {'':>7s} {'':>7s} {'':>5s} "
        return f"{s.samples:6d} {fmt(s.recall)} {fmt(s.survival)} {s.extra:5d}{_flag(s)}"

    groups: dict[str, list[str]] = {}
    for cat in rows:
        groups.setdefault(cat.split("/")[0], []).append(cat)
    for group, cats in groups.items():
        for cat in cats:
            print(f"{cat:42s} | {cells(scores['dev'].get(cat))} | {cells(scores['heldout'].get(cat))}")
        dev = _total(scores["dev"].get(c) for c in cats if c in scores["dev"])
        held = _total(scores["heldout"].get(c) for c in cats if c in scores["heldout"])
        print(f"{'  = ' + group + ' (all)':42s} | {cells(dev)} | {cells(held)}")
    dev, held = _total(scores["dev"].values()), _total(scores["heldout"].values())
    print(f"{'= everything':42s} | {cells(dev)} | {cells(held)}")
    if misses:
        print(f"\n{misses_of} misses and extra redactions (first {misses} per category):")
        for cat in rows:
            s = scores[misses_of].get(cat)
            for line in (s.misses[:misses] if s else []):
                print(f"  {cat}: {line}")


def old_corpus(redactor: Redactor, path: Path) -> list[str]:
    corpus = load_corpus(path)
    score = score_corpus(redactor, corpus)
    positives = sum(1 for e in corpus if e["expected"])
    print(f"\nhand-written corpus {path.name}: {len(corpus)} strings ({positives} with secrets/PII, "
          f"{len(corpus) - positives} look-alikes), {sum(score.expected.values())} expected spans: "
          f"recall {score.recall:.4f}  precision {score.precision:.4f}")
    print(f"{'kind':12s} {'expected':>8s} {'recall':>7s} {'redacted':>8s} {'precision':>9s}")
    for kind in sorted(set(score.expected) | set(score.redacted)):
        print(f"{kind:12s} {score.expected.get(kind, 0):8d} {fmt(score.kind_recall(kind)):>7s} "
              f"{score.redacted.get(kind, 0):8d} {fmt(score.kind_precision(kind)):>9s}")
    for line in score.misses:
        print("  MISS", line)
    for line in score.false_alarms:
        print("  FALSE ALARM", line)
    return [e["text"] for e in corpus]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "tests" / "data" / "redaction_corpus.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated generator modules (default: all)")
    parser.add_argument("--misses", type=int, default=3, help="misses shown per category")
    parser.add_argument("--misses-of", choices=SPLITS, default="dev",
                        help="whose misses to list: dev (tune on these) or heldout (read, never tune on)")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time per throughput measurement")
    args = parser.parse_args()

    redactor = Redactor()
    generated_table(redactor, args.seed, [m for m in args.only.split(",") if m], args.misses, args.misses_of)
    texts = old_corpus(redactor, args.corpus)

    rng = random.Random(7)
    runs = typed_runs(5000, texts, rng)
    avg = sum(len(t) for t, _ in runs) / len(runs)
    typed = rate(lambda r: redactor.redact(r[0], window_title=r[1]), runs, args.seconds)
    reference = rate(lambda r: REFERENCE_RE.search(r[0]), runs, args.seconds)
    dense = rate(redactor.redact, texts, args.seconds)
    titles = [rng.choice(TITLES) for _ in range(200)] + ["alice@ws-0423: ~/src", "/home/jdoe/notes.md - Code"]
    title_rate = rate(redactor.redact_title, titles, args.seconds)
    print(f"\nthroughput (1 core, CPU time): typed lines (avg {avg:.0f} chars) {typed:,.0f} lines/s "
          f"(reference, one compiled regex over the same lines: {reference:,.0f} lines/s, "
          f"{reference / typed:.0f}x faster); hand-written corpus texts (PII-dense) {dense:,.0f} strings/s; "
          f"titles {title_rate:,.0f} titles/s")


if __name__ == "__main__":
    main()
