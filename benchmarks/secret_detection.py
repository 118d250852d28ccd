"""Secret detection on the generated corpus: deskcorder side by side with detect-secrets and Microsoft's secret masker.

    python benchmarks/secret_detection.py [--split dev|heldout|both] [--tools ours,detect-secrets,ms-masker]
                                          [--misses N] [--seconds 2] [--before OLD_SECRETS_PY]

Scores the ``secrets`` generator of benchmarks/corpus (vendor tokens, named
values, URL parameters, CLI passwords, prose, and look-alikes) per category:

- recall: share of expected spans that the tool's detections cover entirely
  (for deskcorder, with the ``<SECRET>`` placeholder: the whole `Redactor`
  runs, so a look-alike lost to a personal-data detector counts too);
- unchanged: share of look-alikes with no detection at all.

The reference tools are run through their own APIs with their default rule
sets: detect-secrets' ``scan_line`` with every default plugin and filter (its
findings are values, located back in the text), and the secret masker's
``detect_secrets`` with all its bundled pattern files. ``detect_secrets`` is
the module name of both Yelp's detect-secrets and Bridgecrew's fork: the
version printed says which one ran (install the other with
``pip install --target DIR`` and put DIR first on PYTHONPATH to score it).

Throughput is lines per second on one core for each tool on a mix of typed
lines (prose, code, shell, and 1 in 20 from the corpus).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import Sample, load  # noqa: E402
from benchmarks.redaction_quality import rate  # noqa: E402
from deskcorder.privacy import Redactor  # noqa: E402

Spans = list[tuple[int, int, str]]
Finder = Callable[[str], Spans]


def ours() -> Finder:
    redactor = Redactor()
    return lambda text: [(s.start, s.end, s.kind) for s in redactor.find_spans(text)]


def ours_secrets_only() -> Finder:
    from deskcorder.privacy._secrets import SECRET_DETECTORS

    redactor = Redactor(detectors=SECRET_DETECTORS)
    return lambda text: [(s.start, s.end, s.kind) for s in redactor.find_spans(text)]


def before_tool(path: Path) -> Finder:
    """The secret detectors of another version of _secrets.py (``git show REV:src/.../_secrets.py > FILE``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deskcorder.privacy._secrets_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    redactor = Redactor(detectors=module.SECRET_DETECTORS)
    return lambda text: [(s.start, s.end, s.kind) for s in redactor.find_spans(text)]


def detect_secrets_tool() -> Finder:
    # scan_line (its ad-hoc API) reports every candidate string whatever its entropy; the file
    # scan applies the plugins' limits and the filters, which is how the tool is meant to run.
    import tempfile

    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    path = Path(tempfile.mkdtemp(prefix="ds-bench-")) / "typed.txt"

    def find(text: str) -> Spans:
        path.write_text(text, encoding="utf-8")
        spans: Spans = []
        with default_settings():
            for found in scan_file(str(path)):
                value = found.secret_value
                start = text.find(value) if value else -1
                while start >= 0:
                    spans.append((start, start + len(value), "SECRET"))
                    start = text.find(value, start + 1)
        return spans

    return find


def ms_masker_tool() -> Finder:
    import microsoft_security_utilities_secret_masker as msm

    folder = Path(msm.__file__).parent / "GeneratedRegexPatterns"
    patterns = set()
    for path in sorted(folder.glob("*.json")):
        patterns |= msm.load_regex_patterns_from_json_file(path.name)
    masker = msm.SecretMasker(patterns)
    return lambda text: [(d.start, d.end, "SECRET") for d in masker.detect_secrets(text)]


def tool_version(name: str) -> str:
    if name == "detect-secrets":
        from detect_secrets.__version__ import VERSION

        return f"detect-secrets {VERSION} ({'bc-detect-secrets' if VERSION >= '1.5.5' else 'Yelp'})"
    if name == "ms-masker":
        import microsoft_security_utilities_secret_masker as msm

        return f"microsoft-security-utilities-secret-masker {msm.__VERSION__}"
    return "deskcorder before (--before)" if name == "before" else name


TOOLS: dict[str, Callable[[], Finder]] = {
    "ours": ours, "ours-secrets-only": ours_secrets_only, "detect-secrets": detect_secrets_tool,
    "ms-masker": ms_masker_tool,
}


def covered(a: int, b: int, kind: str, spans: Spans, *, strict_kind: bool) -> bool:
    """Whether [a, b) lies inside the union of detections (of the right kind where that is asked)."""
    pos = a
    for s, e, k in sorted(spans):
        if strict_kind and k != kind:
            continue
        if s <= pos < e:
            pos = e
            if pos >= b:
                return True
    return pos >= b


class Score:
    def __init__(self) -> None:
        self.by_cat: dict[str, list[int]] = {}  # category -> [good, total]
        self.misses: list[str] = []

    def add(self, category: str, good: bool, note: str) -> None:
        cell = self.by_cat.setdefault(category, [0, 0])
        cell[0] += good
        cell[1] += 1
        if not good:
            self.misses.append(f"{category}: {note}")

    def rate(self, category: str) -> float:
        good, total = self.by_cat[category]
        return good / total

    def total(self, prefix: str) -> tuple[int, int]:
        cells = [v for k, v in self.by_cat.items() if k.startswith(prefix)]
        return sum(c[0] for c in cells), sum(c[1] for c in cells)


def score(find: Finder, samples: list[Sample], *, strict_kind: bool) -> Score:
    result = Score()
    for sample in samples:
        spans = find(sample.text)
        if not sample.spans:
            got = [sample.text[a:b] for a, b, _ in spans]
            result.add(sample.category, not spans, f"{sample.text!r} lost {got}")
            continue
        for a, b, kind in sample.spans:
            ok = covered(a, b, kind, spans, strict_kind=strict_kind)
            got = [f"{k}:{sample.text[s:e]!r}" for s, e, k in spans]
            result.add(sample.category, ok, f"{sample.text[a:b]!r} in {sample.text!r} (got {got})")
    return result


WORDS = ["the", "report", "numbers", "meeting", "tomorrow", "please", "review", "section", "draft", "budget",
         "team", "deadline", "client", "update", "notes", "agenda", "thanks", "sure", "call", "later", "fixed"]
CODE = ["def main():", "return None", "for item in items:", "import numpy as np", "if x is None:", "self.count += 1",
        "SELECT id FROM users LIMIT 10;", "const total = a + b;", "git status", "ls -la", "cd ..", "npm run build",
        "docker compose up -d", "pytest -q tests/", "git commit -m 'fix typo'", "key = cache.get(user_id)",
        "export PATH=$HOME/.local/bin:$PATH", "curl -s https://example.com/api/v1/items?page=2 | jq ."]


def typed_lines(samples: list[Sample], n: int, rng: random.Random) -> list[str]:
    lines = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.05:
            lines.append(rng.choice(samples).text)
        elif roll < 0.45:
            lines.append(rng.choice(CODE))
        else:
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))))
    return lines


def lines_per_second(find: Finder, lines: list[str], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for line in lines:
            find(line)
        done += len(lines)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "heldout", "both"), default="both")
    parser.add_argument("--tools", default="ours,ours-secrets-only,detect-secrets,ms-masker")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses per tool and split")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per throughput measurement (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--before", type=Path, help="another version's _secrets.py, scored as tool 'before'")
    args = parser.parse_args()

    names = [t for t in args.tools.split(",") if t]
    finders = {}
    for name in list(names):
        try:
            finders[name] = TOOLS[name]()
        except ImportError as e:  # a reference tool is optional: say so and score the others
            print(f"skipped {name}: {e.name} is not installed (pip install {'detect-secrets' if 'detect' in name else e.name})")
            names.remove(name)
    if args.before:
        names.append("before")
        finders["before"] = before_tool(args.before)
    splits = ("dev", "heldout") if args.split == "both" else (args.split,)
    figures: dict = {"tools": {n: tool_version(n) for n in names}, "splits": {}}
    for split in splits:
        samples = load(split, only=["secrets"])
        scores = {n: score(f, samples, strict_kind=n.startswith("ours") or n == "before") for n, f in finders.items()}
        cats = sorted({s.category for s in samples})
        print(f"\n== {split}: {len(samples)} samples; recall for secret/*, unchanged for lookalike/*")
        print(f"{'category':34s} {'n':>4s} " + " ".join(f"{n[:17]:>17s}" for n in names))
        for cat in cats:
            n = scores[names[0]].by_cat[cat][1]
            print(f"{cat:34s} {n:4d} " + " ".join(f"{scores[t].rate(cat):17.1%}" for t in names))
        for prefix, label in (("secret/", "all secrets (recall)"), ("lookalike/", "all look-alikes (unchanged)")):
            row = []
            for t in names:
                good, total = scores[t].total(prefix)
                row.append(f"{good / total:17.2%}")
            print(f"{label:39s} " + " ".join(row))
        figures["splits"][split] = {t: {c: scores[t].rate(c) for c in cats} for t in names}
        for t in names:
            for line in scores[t].misses[:args.misses]:
                print(f"  [{t}] MISS {line}")
    if args.seconds > 0:
        lines = typed_lines(load("dev", only=["secrets"]), 4000, random.Random(7))
        print(f"\nthroughput, one core, typed lines (avg {sum(map(len, lines)) / len(lines):.0f} chars):")
        # Rounds alternate between tools so a load change on a shared machine hits all of them alike.
        rates: dict[str, list[float]] = {t: [] for t in names}
        for _ in range(3):
            for t in names:
                rates[t].append(rate(finders[t], lines, args.seconds / 3))
        for t in names:
            lps = sorted(rates[t])[1]
            figures.setdefault("lines_per_second", {})[t] = lps
            print(f"  {t:20s} {lps:12,.0f} lines/s (median of 3 alternating rounds)")
    print("\n" + "; ".join(figures["tools"].values()) + f"; python {sys.version.split()[0]}, pid {os.getpid()}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
