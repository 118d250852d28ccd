"""Secrets in pixels: frames rendered with the generated corpus's secrets and personal data, masked by
``FrameRedactor``, scored on where the values were drawn.

    python benchmarks/frame_redaction.py [--frames 40] [--seed 0] [--upscale 1,1.5,2] [--misses 5]

Each frame is a window-sized image (Pillow) of corpus lines (benchmarks/corpus:
secrets, e-mail addresses, phone numbers, national ids, IBANs, cards, IPs)
and look-alike lines, drawn in one font, size and colour scheme. The two
splits differ in more than the draw: ``dev`` takes the corpus's dev samples
in DejaVu Sans / DejaVu Sans Mono / Nimbus Sans on light and dark themes;
``heldout`` takes its held-out samples in other fonts (DejaVu Serif, Nimbus
Mono PS, URW Gothic, Nimbus Sans Narrow), other sizes and other colours, and
is only scored, never tuned on.

Figures per split and upscale factor:

* *recall*: the share of expected spans every character of which lies under
  a masked box (the character's centre, from the font's own metrics where it
  was drawn): ground truth, independent of what OCR makes of the output;
* *readable*: the share of expected values OCR reads whole in the unmasked
  frame (what a reader with the same OCR could take from an unmasked frame);
* *leaked*: values OCR still reads whole in the masked frame (the issue's
  check: "OCR of every exported frame finds none");
* *look-alike lines masked*: lines with no expected span that got any mask;
* *s/frame*: wall time of ``redact_frame`` (decode, OCR, redact, mask, PNG), and its CPU time (this
  process and the Tesseract process it runs), which a loaded machine does not inflate.

tests/test_privacy_frame_redaction.py renders a few frames with the same
code (``render_frames``) and checks the same figures on them.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import Sample, load  # noqa: E402

# Generators whose values show on a screen as text; names and health (prose) are the text redactor's.
FRAME_GENERATORS = ("secrets", "pii_contact", "pii_ids", "pii_network")
FONTS = {"dev": ("DejaVu Sans", "DejaVu Sans Mono", "Nimbus Sans"),
         "heldout": ("DejaVu Serif", "Nimbus Mono PS", "URW Gothic", "Nimbus Sans Narrow")}
SIZES = {"dev": (11, 13, 16, 20), "heldout": (10, 12, 14, 18)}
# (background, text) colour pairs: light and dark themes, low-contrast greys, coloured panels.
THEMES = {"dev": (((255, 255, 255), (0, 0, 0)), ((30, 30, 30), (220, 220, 220)), ((240, 240, 240), (60, 60, 60)),
                  ((255, 255, 255), (0, 80, 160))),
          "heldout": (((250, 245, 230), (90, 60, 30)), ((0, 43, 54), (131, 148, 150)), ((40, 44, 52), (152, 195, 121)),
                      ((225, 235, 250), (20, 20, 90)))}
FRAME_WIDTH = 960
LINES_PER_FRAME = 8  # of which about 1 in 4 a look-alike


@dataclasses.dataclass(frozen=True)
class DrawnSpan:
    value: str
    kind: str
    centres: tuple[tuple[float, float], ...]  # each non-space character's centre, frame pixels


@dataclasses.dataclass(frozen=True)
class RenderedFrame:
    png: bytes
    spans: tuple[DrawnSpan, ...]
    lookalike_lines: tuple[tuple[int, int, int, int], ...]  # boxes of lines that must stay unmasked
    font: str
    size: int


@functools.lru_cache(maxsize=None)
def font_file(family: str) -> str | None:
    """The file fontconfig gives for ``family``, or None when it only has a substitute."""
    try:
        out = subprocess.run(["fc-match", "-f", "%{family}\t%{file}", family], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found, _, path = out.partition("\t")
    return path if family.lower() in found.lower() and path else None


def _usable(sample: Sample) -> bool:
    return "\n" not in sample.text and "\t" not in sample.text and len(sample.text) <= 90


def render_frames(split: str, n_frames: int, *, seed: int = 0) -> list[RenderedFrame]:
    """``n_frames`` frames of ``split``'s corpus samples, fonts, sizes and themes (see the module)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(f"frames/{split}/{seed}")
    samples = [s for s in load(split, seed=seed, only=FRAME_GENERATORS) if _usable(s)]
    with_spans = [s for s in samples if s.spans]
    lookalikes = [s for s in samples if not s.spans]
    fonts = [f for f in FONTS[split] if font_file(f)]
    if not fonts:
        raise RuntimeError(f"none of the fonts {FONTS[split]} is installed (fc-match); install fonts-dejavu "
                           "and fonts-urw-base35")
    frames = []
    for _ in range(n_frames):
        family, size = rng.choice(fonts), rng.choice(SIZES[split])
        background, ink = rng.choice(THEMES[split])
        font = ImageFont.truetype(font_file(family), size)
        line_h = round(size * 1.8)
        image = Image.new("RGB", (FRAME_WIDTH, line_h * LINES_PER_FRAME + 2 * line_h), background)
        draw = ImageDraw.Draw(image)
        spans: list[DrawnSpan] = []
        quiet: list[tuple[int, int, int, int]] = []
        y = line_h
        for line in range(LINES_PER_FRAME):
            look = line % 4 == 3
            for _try in range(20):
                sample = rng.choice(lookalikes if look else with_spans)
                if font.getlength(sample.text) < FRAME_WIDTH - 40:
                    break
            else:
                continue
            x = 20
            draw.text((x, y), sample.text, font=font, fill=ink)
            top, bottom = font.getbbox(sample.text)[1], font.getbbox(sample.text)[3]
            if look:
                quiet.append((x, y + top, x + round(font.getlength(sample.text)), y + bottom))
            for a, b, kind in sample.spans:
                centres = []
                for i in range(a, b):
                    if sample.text[i].isspace():
                        continue
                    left, right = font.getlength(sample.text[:i]), font.getlength(sample.text[:i + 1])
                    centres.append((x + (left + right) / 2, y + (top + bottom) / 2))
                spans.append(DrawnSpan(sample.text[a:b], kind, tuple(centres)))
            y += line_h
        out = io.BytesIO()
        image.save(out, format="PNG")
        frames.append(RenderedFrame(out.getvalue(), tuple(spans), tuple(quiet), family, size))
    return frames


def covered(span: DrawnSpan, boxes) -> bool:
    """Every character of the span lies under one of ``boxes`` (observations.Box, frame pixels)."""
    return all(any(b.x <= cx < b.x + b.width and b.y <= cy < b.y + b.height for b in boxes)
               for cx, cy in span.centres)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def ocr_text(png: bytes, upscale: float = 2.0) -> str:
    """All the text OCR reads in an image, whitespace removed (values are looked for in it whole)."""
    from PIL import Image

    from deskcorder.privacy._frame_redact import ocr_words

    with Image.open(io.BytesIO(png)) as image:
        # A long timeout: this is the scorer, not the check; a loaded machine must not turn into a crash.
        return _squash("".join(w.text for w in ocr_words(image.convert("RGB"), upscale=upscale, timeout_s=300)))


@dataclasses.dataclass
class Score:
    spans: int = 0
    masked: int = 0
    readable: int = 0
    leaked: int = 0
    lookalike_lines: int = 0
    lookalike_masked: int = 0
    unchecked: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process and its Tesseract children: what a loaded machine does not inflate
    frames: int = 0
    misses: list[tuple[str, str, str, int]] = dataclasses.field(default_factory=list)  # value, kind, font, size

    def line(self, label: str) -> str:
        pct = lambda a, b: f"{100 * a / b:5.1f}%" if b else "   - "  # noqa: E731
        return (f"{label:<22} recall {pct(self.masked, self.spans)} ({self.masked}/{self.spans})  "
                f"readable {pct(self.readable, self.spans)}  leaked {self.leaked}  "
                f"look-alike lines masked {pct(self.lookalike_masked, self.lookalike_lines)}  "
                f"unchecked {self.unchecked}  {self.seconds / max(1, self.frames):.2f} s/frame "
                f"({self.cpu_seconds / max(1, self.frames):.2f} s CPU)")


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def score(frames: list[RenderedFrame], redactor, *, leak_check: bool = True) -> Score:
    """Mask ``frames`` with ``redactor`` (a FrameRedactor) and score them (see the module)."""
    result = Score()
    for frame in frames:
        start, cpu = time.perf_counter(), _cpu()
        done = redactor.redact_frame(frame.png)
        result.seconds += time.perf_counter() - start
        result.cpu_seconds += _cpu() - cpu
        result.frames += 1
        if done.image is None:
            result.unchecked += 1
            continue
        before = ocr_text(frame.png) if leak_check else ""
        after = ocr_text(done.image) if leak_check else ""
        for span in frame.spans:
            result.spans += 1
            value = _squash(span.value)
            if covered(span, done.masked):
                result.masked += 1
            else:
                result.misses.append((span.value, span.kind, frame.font, frame.size))
            result.readable += value in before
            result.leaked += value in after
        for x0, y0, x1, y1 in frame.lookalike_lines:
            result.lookalike_lines += 1
            result.lookalike_masked += any(b.x < x1 and x0 < b.x + b.width and b.y < y1 and y0 < b.y + b.height
                                           for b in done.masked)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per split (8 lines each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--upscale", default="1,1.5,2", help="comma-separated upscale factors to compare")
    parser.add_argument("--misses", type=int, default=5, help="dev misses to list per factor")
    parser.add_argument("--no-leak-check", action="store_true", help="skip the two extra OCR passes per frame")
    args = parser.parse_args()

    from deskcorder.privacy import FrameRedactor

    splits = {split: render_frames(split, args.frames, seed=args.seed) for split in ("dev", "heldout")}
    for factor in (float(f) for f in args.upscale.split(",")):
        redactor = FrameRedactor(upscale=factor)
        for split, frames in splits.items():
            result = score(frames, redactor, leak_check=not args.no_leak_check)
            print(result.line(f"{split} upscale {factor:g}"), flush=True)
            if split == "dev":
                for value, kind, font, size in result.misses[:args.misses]:
                    print(f"    missed {kind:<12} {value!r} ({font} {size} px)")


if __name__ == "__main__":
    main()
