"""Names of people in typed text and window titles: a gazetteer plus the words that introduce a name.

No model: a list of given names and surnames (`_names_data`, generated from
Faker's person providers of 16 locales by benchmarks/corpus/_gazetteer.py)
and context cues, all on capitalised words. A capitalised word is a name when

1. it follows a title (``Dr.``, ``Mr``, ``Mrs``, ``Frau``, ``Herr``, ``Mme``,
   ``Sr.``...): the next one or two capitalised words, in the list or not;
2. it follows a greeting or a sign-off line (``Hi``, ``Dear``, ``Thanks``,
   ``Hallo``, ``Bonjour``, ``Best,``/``Regards,`` then a line): the next one
   or two capitalised words that are not common words (``Hi Team`` stays);
3. it is a known given name (anywhere but as a lone first word of a text or
   sentence, where ``Will``, ``Paris`` and ``Grant`` usually are words), with
   a capitalised word after it taken as the surname;
4. it is a known surname right after another capitalised word (``Asger
   Schultz`` when only the surname is known);
5. it follows ``@`` and is a known given name (``@Anna``), or a name-shaped
   word followed by chat rather than code (``@Bekim any news?``; ``@Override
   public``, ``@Test`` on its own line and ``@Input()`` stay);
6. names in no list, found by context alone (`_by_context`): two or three
   capitalised words after a word that introduces a person (``met``,
   ``with``, ``spoke with``, ``owner:``, ``reviewer:``), before a verb only
   people do (``joined``, ``approved``, ``said``, ``will send``) or a
   ``(Team)`` label, or as a whole segment of a window title of a chat or
   meeting app (``Ayoka Iyanda | Slack``); a single such word only before a
   verb of saying or after a label. None of the words may be a common English
   word (``COMMON_WORDS``) or a workplace word (`_WORK_WORDS`): ``met
   Product Marketing`` and ``Docker Desktop will`` stay.

What it misses (measured in benchmarks/redaction_quality.py, pii/name/*):
names in scripts without capitals (Chinese, Japanese, Korean, Thai, Arabic),
names typed in lower case, lone given names that are not in the list and
have no cue, and single surnames without a title. What it takes that is not a
name: a known given name used as a capitalised word (``Victoria Station``);
common English words are kept out of the list for that reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ._names_data import COMMON_WORDS, GIVEN_NAMES, SURNAMES

__all__ = ["find_names"]

# Words: letters of any script, apostrophes and hyphens inside (O'Brien, Jean-Luc).
# Not inside a longer token: base64 (hDkNe+Ina28ov), identifiers with digits, paths, options.
_WORD_RE = re.compile(r"(?<![\w#$./\\+=-])[^\W\d_]++(?:['’-][^\W\d_]++)*+(?![\d+/=_])")  # ++: base_url is no "bas"
_CAPITALISED_RE = re.compile(r"(?:Mc|Mac|O'|O’|D'|D’)?[^\W\d_a-z][^\W\d_A-Z]+(?:-[^\W\d_a-z][^\W\d_A-Z]+)?")
_TITLES = frozenset(
    "dr mr mrs ms miss prof herr frau mme mlle m sr sra dott dottssa pan pani sir madam monsieur madame "
    "señor señora signor signora".split()
)
_GREETINGS = frozenset(
    "hi hello hey dear thanks thank cheers bonjour salut hallo liebe lieber hola ciao hej hei moin servus "
    "cher chère querido querida caro cara witaj ahoj".split()
)
# Verbs after which a capitalised word is a person (ping Lucho, ask Priya, cc Anna Schmidt).
_ADDRESSING = frozenset("ping ask tell cc bcc thank dm message email call remind invite".split())
# Lower-case particles inside a surname: Jens van der Heijden, Maria de la Cruz, Ludwig von Mises; and the
# capitalised Irish ones a surname starts with (Aongus Ó Breanndáin, Isobel Mac Inneirghe, Áine Ní Bhriain).
_PARTICLES = frozenset("van der den de del della di da das dos du la le von zu ter ten bin al el y e".split()
                       + ["Ó", "Ní", "Nic", "Mac", "Uí", "Ua"])
_IRISH_PARTICLES = frozenset({"Ó", "Ní", "Nic", "Mac", "Uí", "Ua"})
_SIGN_OFFS_RE = re.compile(
    r"(?im)^(?:best|regards|kind regards|best regards|cheers|thanks|sincerely|viele grüße|mit freundlichen grüßen|"
    r"cordialement|saludos|un saluto|pozdrawiam|--)\s*,?\s*\n\s*"
)
# Capitalised words that follow a greeting or title without being names, and given names that are
# also everyday words (kept out of rule 3; a title, a greeting or a known surname after them still counts).
_NOT_NAMES = frozenset(
    "all team everyone guys folks there world sir madam again so you sure both friends everybody "
    "will may mark bill grant hope rose chase faith grace joy max jack art dean page summer june april august "
    "holly ivy lily daisy iris ruby amber crystal pearl sky river rock stone king hunter penny sunny sandy "
    "dawn eve frank earl guy miles drew gene lane bud sue don ray rich van sunday monday tuesday "
    "wednesday thursday friday saturday january february march july september october november december "
    "victoria paris florence sydney austin dallas jordan georgia virginia carolina china india israel "
    "the a an and or but if it is in on at to for of with from by i we they he she this that".split()
)
# Words that make the capitalised word after them a place: San Francisco, Santa Clara, New York, St. Louis.
_PLACE_PREFIXES = frozenset(
    "san santa santo são sao st saint sainte new fort port mount mt lake los las el la le bad nueva nuevo "
    "porto puerto costa cape cap north south east west upper lower great little".split()
)
# Capitalised words that never start a person's name, even before a known surname.
_NOT_SURNAME_FIRST = frozenset(
    "the a an and or but if it is in on at to for of with from by i we they he she this that all team "
    "sunday monday tuesday wednesday thursday friday saturday january february march april june july "
    "august september october november december".split()
)
# Rule 6. Words after which capitalised words are a person: met Ayoka Iyanda, 1:1 with ..., spoke to ...
# Typed in lower case: "Defer And Stream Directives" is a Title-Case heading, not "and" before a person.
_INTRODUCING = frozenset("with met meet meeting spoke talked to by from mit avec con".split())
# Labels (followed by ":") whose value is a person.
_LABELS = frozenset(
    "owner assignee assigned reviewer reviewers author contact candidate interviewer interviewee attendee "
    "attendees organizer organiser host lead manager requester reporter from to cc by with".split()
)
# Verbs and phrases after which the capitalised words before them are a person (not a product).
_PERSON_AFTER_RE = re.compile(
    r"\s+(?:joined|left|approved|reviewed|said|says|wrote|asked|mentioned|told|replied|thinks|agreed|"
    r"is (?:out|off|away|on (?:leave|holiday|vacation|PTO))|will (?:send|call|join|review|be)|"
    r"has (?:left|joined|approved)|\((?:Guest|External|[A-Z][a-z]+)\))(?![\w-])"
)
_SAYING_RE = re.compile(r"\s+(?:said|says|wrote|asked|mentioned|told|replied|thinks|will send|will call)\b")
# Window titles of chat and meeting apps, whose other segment is often a person.
_CHAT_APP_RE = re.compile(
    r"(?i)(?:^|\s[-|–—]\s)(?:slack|zoom(?: meeting)?|microsoft teams|teams|google meet|meet|whatsapp|signal|telegram"
    r"|skype|webex|discord|messenger|facetime|element|mattermost|rocket\.chat)\b"
)
_TITLE_SEGMENT_RE = re.compile(r"\s[-|–—]\s")
# Words of which rule 6 needs one (or a ")"): checked on the words already split, before anything else.
_CONTEXT_HINTS = _INTRODUCING | _LABELS | frozenset(
    "joined left approved reviewed said says wrote asked mentioned told replied thinks agreed is will has".split())
# Capitalised words of desk work that pair up like names (Visual Studio, Docker Desktop): never rule 6.
_WORK_WORDS = frozenset(
    "studio code desktop cloud sync standup stand-up review reviews sales marketing weekly daily monthly guest "
    "visual docker slack zoom teams meet google microsoft apple amazon github gitlab jira confluence notion "
    "figma excel word outlook calendar chat call meeting huddle channel general random support engineering "
    "finance legal hr ops devops platform backend frontend mobile web api app apps server client admin "
    "dashboard release planning retro sprint roadmap budget report reports notes inbox draft update launch "
    "kickoff onboarding interview demo office account accounts customer customers partner partners vendor "
    "security infra infrastructure analytics research pipeline build deploy ci cd test tests qa prod staging "
    "windows linux ubuntu android chrome firefox safari edge terminal editor browser pull request merge "
    "project projects product products design team data board "
    "corp corporation inc ltd llc gmbh ag plc co company group labs holdings bank university "  # companies
    "storage provider providers format formats endpoint endpoints inference hub index engine service services "
    "network framework library toolkit gateway cluster database computing directive directives types unions "
    "enterprise edition studio suite console portal module plugin extension driver runtime kernel".split()
)
# Endings of English nouns and adjectives that names hardly have (Index Locations, Statistical Methods...).
# Not -ence/-ance (Florence, Constance), -ory (Rory, Gregory), -ive (Olive), -ings (Jennings, Hastings).
_WORD_ENDINGS = ("tion", "sion", "ment", "ness", "ity", "ics", "ical", "ous", "ible", "ware", "ism", "ology")
_CUES = _TITLES | _GREETINGS | _ADDRESSING
_SENTENCE_END = ".!?:\n"
_MAX_NAME_WORDS = 4
_REPORTING_RE = re.compile(r"\s+(?:said|says|wrote|writes|asked|asks|mentioned|told|thinks|replied|sagt|dit|dice)\b")

Word = tuple[int, int, str]


def _capitalised(word: str) -> bool:
    return bool(_CAPITALISED_RE.fullmatch(word))


def _gap(text: str, words: list[Word], i: int) -> str:
    """The characters between word ``i - 1`` and word ``i``."""
    return text[words[i - 1][1]:words[i][0]]


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'(«“")
    return not before or before[-1] in _SENTENCE_END


def _extend(text: str, words: list[Word], j: int) -> int:
    """Index after the name that continues after word ``j - 1``: more capitalised words, particles between."""
    k = j
    while k < len(words) and k - j < _MAX_NAME_WORDS and _gap(text, words, k) == " ":
        p = k
        while p < len(words) and words[p][2] in _PARTICLES and _gap(text, words, p) == " ":
            p += 1
        if p < len(words) and _gap(text, words, p) == " " and _capitalised(words[p][2]) \
                and words[p][2].lower() not in _NOT_NAMES - GIVEN_LIKE:
            k = p + 1
        else:
            break
    return k


# Names from _NOT_NAMES that are still names when they continue a name (Anna May Wong).
GIVEN_LIKE = frozenset(w for w in _NOT_NAMES if w.capitalize() in GIVEN_NAMES)


def _after_cue(text: str, words: list[Word], j: int, *, needs_known: bool = False) -> int:
    """Index after the capitalised name words starting at ``j`` (``j`` if none): the cue's target."""
    if j >= len(words) or words[j][2].lower() in _TITLES:
        return j  # "Dear Mr. Smith": the title names what follows it
    word = words[j][2]
    if word in _IRISH_PARTICLES and j + 1 < len(words) and _capitalised(words[j + 1][2]) \
            and _gap(text, words, j + 1) == " ":
        return _extend(text, words, j + 2)  # Dr. Ó Gruagáin
    if not _capitalised(word) or word.lower() in _NOT_NAMES and word not in GIVEN_NAMES:
        return j
    if needs_known and word not in GIVEN_NAMES and word not in SURNAMES:
        return j
    return _extend(text, words, j + 1)


_ANY_CAPITALISED_RE = re.compile(r"(?<![\w'’-])(?:[^\W\d_a-z][^\W\d_A-Z]|[OD]['’][^\W\d_a-z])")  # O'Brien too


def _nothing_to_find(text: str) -> bool:
    """The common case, decided without splitting into words: no capitalised word but maybe the first."""
    if "@" in text or "\n" in text:
        return False
    first = _ANY_CAPITALISED_RE.search(text)
    if first is None:
        return True
    if first.start() > 0 or _ANY_CAPITALISED_RE.search(text, first.end()):
        return False
    word = _WORD_RE.match(text)
    return (word is not None and word.group() not in GIVEN_NAMES and word.group().lower() not in _CUES
            and _SAYING_RE.match(text, word.end()) is None)  # "Hekima will send the slides": rule 6


def find_names(text: str) -> Iterator[tuple[int, int]]:
    if _nothing_to_find(text):
        return
    words = [(m.start(), m.end(), m.group()) for m in _WORD_RE.finditer(text)]
    n = len(words)
    i = 0
    while i < n:
        start, end, word = words[i]
        lower = word.lower()
        # 5: @mention of a known given name, in any case, or of a name-shaped word as chat writes one
        if start > 0 and text[start - 1] == "@":
            if (start < 2 or not text[start - 2].isalnum()) and (
                    word.capitalize() in GIVEN_NAMES or _name_shaped(word) and _mention_in_chat(text, start, end)):
                yield start, end
            i += 1
            continue
        # 1 and 2: a title, greeting or addressing verb introduces the next capitalised words
        cue_gap_ok = i + 1 < n and len(_gap(text, words, i + 1)) <= 3 and "\n" not in _gap(text, words, i + 1)
        if cue_gap_ok and (lower in _TITLES or lower in _GREETINGS or lower in _ADDRESSING):
            j = _after_cue(text, words, i + 1)
            if j > i + 1:
                yield words[i + 1][0], words[j - 1][1]
                i = j
                continue
        if i > 0 and words[i - 1][2].lower() in _PLACE_PREFIXES and _gap(text, words, i) in (" ", ". "):
            i += 1
            continue
        if _capitalised(word) and lower not in _PLACE_PREFIXES:
            nxt = words[i + 1][2] if i + 1 < n and _gap(text, words, i + 1) == " " else ""
            surname_next = nxt in SURNAMES or nxt in GIVEN_NAMES and nxt.lower() not in _NOT_NAMES
            # 3: a known given name (not a lone first word), or any given name before a known surname
            if word in GIVEN_NAMES and (
                lower not in _NOT_NAMES and (not _sentence_start(text, start) or _reported(text, end)
                                             or _capitalised(nxt))
                or surname_next
            ):
                first = _back(text, words, i)
                j = _extend(text, words, i + 1)
                yield words[first][0], words[j - 1][1]
                i = j
                continue
            # 4: a known surname after a capitalised word: Asger Schultz
            if nxt and nxt in SURNAMES and _capitalised(nxt) and lower not in _NOT_SURNAME_FIRST:
                j = _extend(text, words, i + 2)
                yield start, words[j - 1][1]
                i = j
                continue
        i += 1
    yield from _by_context(text, words)
    for m in _SIGN_OFFS_RE.finditer(text):
        j = _first_word_at(words, m.end())
        if j is not None:
            k = _after_cue(text, words, j)
            if k > j:
                yield words[j][0], words[k - 1][1]


def _back(text: str, words: list[Word], i: int) -> int:
    """Gesine Carsten: an unknown capitalised word right before a known given name is part of the name."""
    if i > 0 and _gap(text, words, i) == " ":
        prev = words[i - 1][2]
        if _capitalised(prev) and prev.lower() not in _NOT_NAMES and prev.lower() not in _TITLES \
                and prev.lower() not in _GREETINGS and prev.lower() not in _PLACE_PREFIXES:
            return i - 1
    return i


def _reported(text: str, end: int) -> bool:
    """``Anna said ...``: a given name as the first word still counts before a verb of saying."""
    return bool(_REPORTING_RE.match(text, end))


def _first_word_at(words: list[tuple[int, int, str]], pos: int) -> int | None:
    for idx, (start, _end, _word) in enumerate(words):
        if start >= pos:
            return idx if start == pos else None
    return None


def _name_shaped(word: str) -> bool:
    """A capitalised word that could be an unlisted name: no common, workplace or cue word."""
    lower = word.lower()
    return (_capitalised(word) and lower not in COMMON_WORDS and lower not in _WORK_WORDS
            and not lower.endswith(_WORD_ENDINGS)
            and lower not in _NOT_NAMES and lower not in _PLACE_PREFIXES and lower not in _CUES
            and lower not in _INTRODUCING)


def _run_of_names(text: str, words: list[Word], j: int) -> int:
    """Index after the name-shaped words from ``j`` (at most 3, one space apart); ``j`` if none."""
    k = j
    while k < len(words) and k - j < 4 and (k == j or _gap(text, words, k) == " "):
        word = words[k][2]
        if word in _IRISH_PARTICLES and k + 1 < len(words) and _name_shaped(words[k + 1][2]):
            k += 1  # Ó, Mac, Ní before the surname
        elif not _name_shaped(word):
            break
        k += 1
    return k


def _by_context(text: str, words: list[Word]) -> Iterator[tuple[int, int]]:
    """Rule 6 of the module docstring: names in no list, by the words around them."""
    chat_title = bool(_CHAT_APP_RE.search(text))
    if not chat_title and ")" not in text and not any(w.lower() in _CONTEXT_HINTS for _, _, w in words):
        return
    n = len(words)
    i = 0
    while i < n:
        j = _run_of_names(text, words, i)
        if j == i:
            i += 1
            continue
        start, end = words[i][0], words[j - 1][1]
        many = j - i >= 2
        before = text[:start]
        prev = words[i - 1][2] if i > 0 else ""  # as typed: cues are lower-case words
        gap = _gap(text, words, i) if i > 0 else ""
        found = (
            many and prev in _INTRODUCING and gap == " "
            or prev.lower() in _LABELS and gap.strip() == ":" and (many or words[i][2] in GIVEN_NAMES)
            or many and _PERSON_AFTER_RE.match(text, end) is not None
            or _SAYING_RE.match(text, end) is not None and (many or _sentence_start(text, start))
            or many and chat_title and _whole_segment(text, start, end)
        )
        if found and not before.endswith(("#", "@", "/", ".", "$")):
            yield start, end
        i = j


# What follows an annotation or decorator in code (@Override public, @Test void, @Component class).
_CODE_AFTER_RE = re.compile(
    r" (?:@|public|private|protected|internal|static|final|abstract|void|class|interface|def|fun|val|var|async"
    r"|export|function|override|open|suspend|data|enum|record|int|long|String|boolean)\b"
)


def _mention_in_chat(text: str, start: int, end: int) -> bool:
    """``@Bekim any news?``: a mention is followed by a sentence or punctuation, an annotation by code or
    nothing (``@Override`` on its own line, ``@Input()``) or sits inside parentheses (``f(@Nullable T t)``)."""
    before = text[:start]
    if before.count("(") > before.count(")"):
        return False
    after = text[end:end + 12]
    if not after or after[0] in "(\n.=":
        return False
    return after[0] in ",:!?" or after[0] == " " and not _CODE_AFTER_RE.match(after)


def _whole_segment(text: str, start: int, end: int) -> bool:
    """``start:end`` is one segment of a title (between `` - ``/`` | `` separators), a ``(...)`` label aside."""
    segments = [0] + [m.end() for m in _TITLE_SEGMENT_RE.finditer(text)]
    ends = [m.start() for m in _TITLE_SEGMENT_RE.finditer(text)] + [len(text)]
    for a, b in zip(segments, ends):
        if a == start and (b == end or re.fullmatch(r"\s*\([^()]{1,20}\)\s*", text[end:b])):
            return True
    return False
