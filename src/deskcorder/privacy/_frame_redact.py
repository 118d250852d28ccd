"""Secrets never in the pixels of a dataset: a frame's text is read with OCR and what the Redactor flags is blacked out.

The agent already blacks out what it knows is protected (password fields,
``Frame.masked``). Everything else it saw is text on a screen: a token in a
terminal, an e-mail address in a form, a national id in a spreadsheet. Before
a frame enters a dataset, `FrameRedactor.redact_frame`:

1. decodes it (Pillow), upscales it by ``upscale`` (screen text is 9-13 px
   high, downscaled frames smaller; Tesseract's LSTM reads better at about
   twice that: benchmarks/frame_redaction.py scores 1x, 1.5x and 2x);
2. reads its words with their boxes (Tesseract through pytesseract's
   ``image_to_data``) and rebuilds the visual lines from the boxes, joined by
   newlines into one text, so a detector sees a word in the context of its
   line ("my SSN is ...", "KEY=...") and of the lines above it (a terminal's
   ``sudo`` before the password line);
3. runs the same `Redactor` that redacts typed text (``find_spans``) over
   that text three times: words spaced as OCR split them, and glued where
   their boxes nearly touch (OCR splits long tokens where glyphs sit
   loose), plus a frame-only rule for long random-looking words (OCR
   misreads a character of a token, which no checksum survives);
4. blacks out the box of every word that overlaps a flagged span and of its
   neighbours that look like pieces of the same token, padded (anti-aliased
   fringes and boxes that stop short of the last glyph must not leave a
   readable edge), plus ``extra_boxes`` the caller names (the box of a UI
   element whose name was redacted);
5. re-encodes it as PNG (lossless: no codec smears a masked box's edge back
   into view).

A frame that cannot be checked (undecodable, OCR failed or ran past its
timeout) is not returned: the result says why (``reason``) and the dataset
leaves it out and counts it. Fail closed, like the text detectors.

Why Tesseract through pytesseract: it is Debian's packaged OCR with its
English model in the package (no model download at run time), and pytesseract
is a thin wrapper over its command line whose ``image_to_data`` gives word
boxes and a timeout. One ``tesseract`` process per frame costs a process
start-up on top of recognition; tesserocr would save that but builds against
the C++ library from source.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..observations import Box

if TYPE_CHECKING:
    from PIL import Image

    from ._redact import Redactor, Span

__all__ = ["FrameRedaction", "FrameRedactor", "OcrWord", "UNCHECKED_REASONS", "ocr_words"]

log = logging.getLogger("deskcorder.privacy")

# Why a frame could not be checked, and so was left out of a dataset.
UNCHECKED_REASONS: tuple[str, ...] = ("undecodable", "ocr_error", "ocr_timeout")
DEFAULT_UPSCALE = 2.0
# Generous: a frame that runs past it is left out of the dataset, and on a loaded build machine (a load
# of 15 on 2 cores) one 960x400 frame took 8 s of wall time for 0.7 s of CPU.
DEFAULT_TIMEOUT_S = 60.0
# Padding around a masked word, in frame pixels: Tesseract's boxes hug the ink, and a one-pixel
# anti-aliased fringe left on each side is enough for a second OCR pass to guess characters. Sideways
# it grows with the text: a box can stop short of a word's last glyph (measured: most of an "R" at 11 px).
_PAD_PX = 2
_PAD_SIDE = 0.5  # of the word box's height (a neighbour's first glyph may go black too)
# --psm 11 (sparse text): a window is not a page, its words sit scattered (toolbars, form fields, table
# cells); lines are rebuilt from the word boxes (_lines), not from Tesseract's layout. On a handful of
# the benchmark's frames the page mode (3) read the same words in about the same time; it was not
# scored at scale.
_TESSERACT_CONFIG = "--oem 1 --psm 11"
# Gaps between two word boxes, in line heights, under which they are read as one word too (see
# _lines_text): a tight reading (OCR's loose splits inside a token) and a wide one (hex tokens that
# OCR cuts every few characters, "pul-4e7436 3b32b2 89ef9 ...").
_GLUES = (0.3, 0.8)
# OCR misreads a character or two of a long token (O/0, l/I, S/5), which no checksum or exact vendor
# length survives. In a frame, a word of 16+ token characters that looks random (`_token_shaped`) is
# masked as a secret whatever the detectors say. The price, measured on the corpus's look-alikes in
# benchmarks/frame_redaction.py: hashes, UUIDs and digests are masked too.
_TOKEN_RE = re.compile(r"(?<![\w+/=.-])[\w+/=.-]{16,}")


def _token_shaped(word: str) -> bool:
    """Mixed case with 2+ digits (vendor keys, base62), 4+ digits among 4+ letters (hex, base32), or capitals
    and 2+ digits run together with no separator (AWS access key ids read with a letter too many)."""
    digits = sum(c.isdigit() for c in word)
    letters = sum(c.isalpha() for c in word)
    upper = any(c.isupper() for c in word)
    lower = any(c.islower() for c in word)
    return ((upper and lower and digits >= 2) or (digits >= 4 and letters >= 4)
            or (upper and not lower and digits >= 2 and word.isalnum()))


@dataclasses.dataclass(frozen=True, slots=True)
class OcrWord:
    text: str
    box: Box  # in frame pixels (the OCR image's box divided by the upscale)
    line: tuple[int, int, int]  # (block, paragraph, line) as Tesseract numbers them


@dataclasses.dataclass(slots=True)
class FrameRedaction:
    """What checking one frame gave.

    ``image``: the PNG to write, masked; None when the frame could not be checked (``reason``, one of
    `UNCHECKED_REASONS`), and then it must not enter a dataset. ``masked``: the boxes blacked out here
    (frame pixels), one per flagged word or extra box; ``counts``: flagged spans per placeholder kind.
    """

    image: bytes | None
    width: int = 0
    height: int = 0
    masked: list[Box] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    words: int = 0  # words OCR read
    reason: str | None = None


def _tesseract_env() -> None:
    """One OpenMP thread per Tesseract process: a build runs one process per CPU at once
    (`FrameRedactor.workers`), and each process's own threads on top would oversubscribe the cores.
    Set in this process's environment because pytesseract starts Tesseract with it (it takes no env)."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def ocr_words(image: Image.Image, *, upscale: float = DEFAULT_UPSCALE, timeout_s: float = DEFAULT_TIMEOUT_S,
              lang: str = "eng") -> list[OcrWord]:
    """Words Tesseract reads in ``image`` with their boxes in ``image`` pixels, in reading order.

    Raises ``RuntimeError`` when Tesseract runs past ``timeout_s`` and ``pytesseract.TesseractError``
    when it fails; `FrameRedactor` turns both into an unchecked frame.
    """
    import pytesseract
    from PIL import Image as PILImage

    _tesseract_env()
    gray = image.convert("L")
    if upscale != 1:
        gray = gray.resize((max(1, round(gray.width * upscale)), max(1, round(gray.height * upscale))),
                           PILImage.Resampling.LANCZOS)
    data = pytesseract.image_to_data(gray, lang=lang, config=_TESSERACT_CONFIG, timeout=timeout_s,
                                     output_type=pytesseract.Output.DICT)
    words: list[OcrWord] = []
    for i, text in enumerate(data["text"]):
        text = text.strip()
        if not text:
            continue
        left, top = data["left"][i] / upscale, data["top"][i] / upscale
        right, bottom = left + data["width"][i] / upscale, top + data["height"][i] / upscale
        x0, y0 = int(left), int(top)
        box = Box(x0, y0, max(1, int(right + 0.999) - x0), max(1, int(bottom + 0.999) - y0))
        words.append(OcrWord(text, box, (data["block_num"][i], data["par_num"][i], data["line_num"][i])))
    return words


def _lines(words: Sequence[OcrWord]) -> list[list[int]]:
    """Word indices grouped into visual lines (top to bottom), each left to right.

    Rebuilt from the boxes rather than taken from Tesseract's line numbers: in sparse-text mode it
    numbers each scattered chunk as its own block, and a form's label and its field (``SSN:`` and the
    number) must be one line for a detector to see the label. A word joins the line whose vertical
    centre is within half its height of the word's.
    """
    order = sorted(range(len(words)), key=lambda i: (words[i].box.y + words[i].box.height / 2, words[i].box.x))
    lines: list[list[int]] = []
    centre = height = 0.0
    for i in order:
        box = words[i].box
        cy = box.y + box.height / 2
        if lines and abs(cy - centre) <= max(height, box.height) / 2:
            lines[-1].append(i)
            n = len(lines[-1])
            centre += (cy - centre) / n
            height += (box.height - height) / n
        else:
            lines.append([i])
            centre, height = cy, float(box.height)
    for line in lines:
        line.sort(key=lambda i: words[i].box.x)
    return lines


def _lines_text(words: Sequence[OcrWord], lines: list[list[int]], *, glue: float | None = None
                ) -> tuple[str, dict[int, tuple[int, int]]]:
    """The words as one text, a newline between lines, and each word's (start, end) in it.

    Words of a line are joined by a space, or (``glue``) by nothing where the gap between their boxes
    is under ``glue`` times the line's height: OCR splits a long token where its glyphs sit loose
    ("secret_qAaCDcs2CadGbm SSLViOk..."), and a vendor format or an entropy rule only matches it whole.
    """
    parts: list[str] = []
    offsets: dict[int, tuple[int, int]] = {}
    pos = 0
    for n, line in enumerate(lines):
        if n:
            parts.append("\n")
            pos += 1
        height = sorted(words[i].box.height for i in line)[len(line) // 2]
        previous: OcrWord | None = None
        for i in line:
            word = words[i]
            if previous is not None:
                gap = word.box.x - (previous.box.x + previous.box.width)
                if glue is None or gap >= glue * height:
                    parts.append(" ")
                    pos += 1
            offsets[i] = (pos, pos + len(word.text))
            parts.append(word.text)
            pos += len(word.text)
            previous = word
    return "".join(parts), offsets


# A fragment OCR split off a flagged token: a digit in it (quotes and brackets OCR glued on included),
# 6+ letters and digits, or one or two characters (a glyph OCR read as a word of its own).
_FRAGMENT_RE = re.compile(r"\S*\d\S*|[A-Za-z0-9_+/=-]{6,}|\S{1,2}")
_SPREAD_GAP = 1.6  # line heights (a "1" OCR left out of both pieces of a key left a 1.45 gap)


def _spread(words: Sequence[OcrWord], lines: list[list[int]], hit: set[int]) -> set[int]:
    """``hit`` grown along each line to the neighbours of a flagged word that look like its fragments.

    OCR cuts a long token where its glyphs sit apart ("e85d878f36 0aeb1 e2daec...") and misreads a
    character or two, so one piece can match a rule while the piece next to it, too short to match any,
    stays readable. A neighbour closer than `_SPREAD_GAP` line heights that could be a piece of a token is
    masked with it; prose words next to a secret (letters only, or short) are not.
    """
    grown = set(hit)
    for line in lines:
        height = sorted(words[i].box.height for i in line)[len(line) // 2]
        for order in (line, line[::-1]):
            for prev, word in zip(order, order[1:]):
                if prev not in grown or word in grown:
                    continue
                a, b = sorted((words[prev].box, words[word].box), key=lambda box: box.x)
                if b.x - (a.x + a.width) < _SPREAD_GAP * height and _FRAGMENT_RE.fullmatch(words[word].text):
                    grown.add(word)
    return grown


def _runs(words: Sequence[OcrWord], hit: Iterable[int]) -> list[Box]:
    """The flagged words' boxes, where neighbours on a line closer than `_SPREAD_GAP` line heights are one
    box: a character between two pieces of a token lies in neither piece's box (measured: a PMAK key's
    "1" at 11 px), and a masked region is then one secret, not each piece OCR made of it."""
    flagged = [words[i] for i in sorted(hit)]
    boxes: list[Box] = []
    for line in _lines(flagged):
        run: Box | None = None
        for i in line:
            box = flagged[i].box
            if run is not None and box.x - (run.x + run.width) < _SPREAD_GAP * max(run.height, box.height):
                x1, y1 = max(run.x + run.width, box.x + box.width), max(run.y + run.height, box.y + box.height)
                x0, y0 = min(run.x, box.x), min(run.y, box.y)
                run = Box(x0, y0, x1 - x0, y1 - y0)
                continue
            if run is not None:
                boxes.append(run)
            run = box
        if run is not None:
            boxes.append(run)
    return boxes


def _pad(box: Box, width: int, height: int, pad: int = _PAD_PX, side: float = _PAD_SIDE) -> Box:
    across = max(pad, round(side * box.height))
    x0, y0 = max(0, box.x - across), max(0, box.y - pad)
    x1, y1 = min(width, box.x + box.width + across), min(height, box.y + box.height + pad)
    return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


class FrameRedactor:
    """Reads a frame's text with OCR and blacks out every word the ``redactor`` flags (see the module).

    Safe to share between threads (it holds the Redactor and settings); each call starts one Tesseract
    process. ``upscale`` enlarges the frame before OCR (1 to turn it off); ``timeout_s`` bounds one frame;
    ``workers`` is how many frames a dataset build checks at once (default: one per CPU of this process;
    the Tesseract processes run in parallel while the threads wait for them).
    """

    def __init__(self, redactor: Redactor | None = None, *, upscale: float = DEFAULT_UPSCALE,
                 timeout_s: float = DEFAULT_TIMEOUT_S, lang: str = "eng", workers: int | None = None) -> None:
        if redactor is None:
            from ._redact import Redactor

            redactor = Redactor()
        if not upscale > 0:
            raise ValueError(f"FrameRedactor upscale must be a positive factor, not {upscale!r}")
        if not timeout_s > 0:
            raise ValueError(f"FrameRedactor timeout_s must be a positive number of seconds, not {timeout_s!r}")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"FrameRedactor workers must be a whole number >= 1, not {workers!r}")
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.workers = workers
        self.redactor = redactor
        self.upscale = upscale
        self.timeout_s = timeout_s
        self.lang = lang

    def flagged(self, words: Sequence[OcrWord], *, app_class: str | None = None, window_title: str | None = None,
                known_identifiers: Iterable[str] = ()) -> tuple[list[int], list[Span]]:
        """Indices of the words that overlap a span the redactor flags in their rebuilt lines, and the spans.

        The lines are read twice, words spaced as OCR split them and with closely set words glued back
        together (`_lines_text`); a word flagged in either is masked.
        """
        from ._redact import Span

        lines = _lines(words)
        hit: set[int] = set()
        found: list[Span] = []
        for glue in (None, *_GLUES):
            text, offsets = _lines_text(words, lines, glue=glue)
            spans = self.redactor.find_spans(text, app_class=app_class, window_title=window_title,
                                             known_identifiers=known_identifiers)
            spans = spans + [Span(*m.span(), "SECRET", "frame_token_shape", 90)
                             for m in _TOKEN_RE.finditer(text) if _token_shaped(m.group())
                             and not any(s.start <= m.start() and m.end() <= s.end for s in spans)]
            for i, (a, b) in offsets.items():
                if any(s.start < b and a < s.end for s in spans):
                    hit.add(i)
            if len(spans) > len(found):
                found = spans  # counted once: the reading that found more
        return sorted(_spread(words, lines, hit)), found

    def redact_frame(self, data: bytes, *, app_class: str | None = None, window_title: str | None = None,
                     known_identifiers: Iterable[str] = (), extra_boxes: Iterable[Box] = ()) -> FrameRedaction:
        """Check one encoded frame (WebP or PNG) and return it masked as PNG, or why it could not be checked.

        ``app_class`` and ``window_title`` are the window's, as for typed text (a frame of a password
        prompt is masked whole); ``extra_boxes`` (frame pixels) are blacked out as well.
        """
        from PIL import Image as PILImage, ImageDraw, UnidentifiedImageError

        try:
            with PILImage.open(io.BytesIO(data)) as opened:
                image = opened.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            log.warning("frame could not be decoded (%s); left out", type(exc).__name__)
            return FrameRedaction(None, reason="undecodable")
        try:
            words = ocr_words(image, upscale=self.upscale, timeout_s=self.timeout_s, lang=self.lang)
        except RuntimeError as exc:
            # pytesseract says "Tesseract process timeout" by RuntimeError; TesseractError is a RuntimeError too.
            reason = "ocr_timeout" if "timeout" in str(exc).lower() and type(exc) is RuntimeError else "ocr_error"
            log.warning("frame OCR failed (%s: %s); left out", type(exc).__name__, reason)
            return FrameRedaction(None, reason=reason)
        except OSError as exc:  # tesseract missing or not runnable
            log.warning("frame OCR could not run (%s); left out", type(exc).__name__)
            return FrameRedaction(None, reason="ocr_error")
        hit, spans = self.flagged(words, app_class=app_class, window_title=window_title,
                                  known_identifiers=known_identifiers)
        boxes = [_pad(b, image.width, image.height) for b in _runs(words, hit)]
        boxes += [b for b in (_pad(e, image.width, image.height, 0, 0) for e in extra_boxes) if b.width and b.height]
        if boxes:
            draw = ImageDraw.Draw(image)
            for b in boxes:
                draw.rectangle((b.x, b.y, b.x + b.width - 1, b.y + b.height - 1), fill=(0, 0, 0))
        counts: dict[str, int] = {}
        for s in spans:
            counts[s.kind] = counts.get(s.kind, 0) + 1
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False, compress_level=6)
        return FrameRedaction(out.getvalue(), image.width, image.height, boxes, counts, len(words))

    def redact_name(self, name: str | None, *, known_identifiers: Iterable[str] = ()) -> tuple[str | None,
                                                                                               dict[str, int]]:
        """A UI element's accessible name through the same redactor (as a window title: it is a label)."""
        if not name:
            return name, {}
        return self.redactor.redact_title(name, known_identifiers=known_identifiers)
