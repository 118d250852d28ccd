"""privacy stage: nothing that identifies a person or unlocks a system reaches a dataset.

Every piece of typed text and every window title goes through a `Redactor`
before it is written to a dataset. Found spans become typed placeholders
(`PLACEHOLDERS`) and are counted, so dataset statistics (and the employee's
session page in the portal) say how much of each kind was removed without
saying what.

What it detects
---------------

- ``<PASSWORD>``: everything typed into a password prompt (recognised by window
  title such as "[sudo] password", "Sign in", "Unlock keyring", or by the
  prompter's window class such as pinentry, ssh-askpass, polkit, KeePass), and
  the lines typed after ``sudo``/``ssh``/``passwd``/``docker login`` in a
  terminal;
- ``<SECRET>`` (``_secrets.py`` and the modules it names): private keys; about
  seventy vendor token formats written from what the vendors publish (AWS,
  GitHub with its checksum, GitLab's ``glpat-``/``gldt-``/``glrt-``/... family,
  Slack tokens and webhooks over http or https, Discord bot tokens in all three
  parts, Stripe, Google, OpenAI, Anthropic, Hugging Face ``hf_``/``api_org_``,
  Vault ``hvs.``/``hvb.``/``hvr.``, Sourcegraph ``sgp_``, Pulumi ``pul-``,
  Grafana ``glc_``/``glsa_``, npm, PyPI...); JWTs; ``user:pass@`` in URLs; the
  password argument of admin tools (``mysql -p``, ``sqlcmd -P``,
  ``ldapsearch -w``, ``net user NAME PASS``, ``smbclient %``, ``xfreerdp
  /p:``, ``az login -p``, ``echo x | sudo -S``, ``htpasswd -b``, ``curl -u``,
  ``sshpass -p``...); values behind any secret-ish name, generic ones
  included (``KEY=``, ``FOO_KEY=``, ``const fooKey = "..."``, ``Key=`` in log
  lines), with hex- and UUID-shaped values behind weak names; URL query
  parameters (``?token=``, ``&key=``, ``X-Amz-Signature=``); terse prose
  (``pw: ...``, ``pass for db01: ...``, ``the password is ...``); long
  random-looking tokens (entropy). Checksums, digests (go.sum ``h1:``,
  ``sha512-``), base64 of prose, placeholders and ``${var}`` references are
  kept;
- ``<CREDIT_CARD>`` (Luhn + issuer prefix), ``<IBAN>`` (country length +
  mod-97), ``<NATIONAL_ID>`` (about thirty countries' national and tax ids
  checked by python-stdnum: US SSN, UK NINO and NHS, FR NIR, ES DNI/NIE,
  Nordic, PESEL, CPF/CNPJ, SIN, Aadhaar/PAN, RRN, TCKN, South African, Thai,
  CURP...), ``<ID_DOCUMENT>`` and ``<BANK_ACCOUNT>`` (behind a word that names
  them), ``<EMAIL>`` (punycode and Unicode domains too), ``<PHONE>``
  (libphonenumber, `DEFAULT_PHONE_REGIONS` for numbers without a country
  code, and national numbers written with a trunk ``0`` area code and a
  dash), ``<IP>`` (v4 and v6; loopback, unspecified and netmasks kept),
  ``<MAC>``;
- ``<NAME>``: people, from a gazetteer of given names and surnames (Faker's
  lists of 16 locales) and the words around a name: titles (``Dr.``,
  ``Frau``), greetings and sign-offs, addressing verbs (``ask``, ``ping``),
  and for names in no list, the context alone (``met ...``, ``spoke
  with ...``, ``owner: ...``, ``... approved``, ``... will send``, a segment
  of a chat or meeting app's window title, ``@...`` followed by chat rather
  than code);
- ``<HEALTH>``: conditions, treatments and medications from a lexicon in
  English, German, French and Spanish, with the word that says how they
  show (``migraine attacks``); their other senses (``economic depression``,
  ``cancer research``) are kept;
- ``<USER>``/``<HOST>``/``<IDENTIFIER>``: user names in home paths and
  ``user@host``, and the device's own hostname and people's logins passed
  as known identifiers.

How well, measured
------------------

benchmarks/redaction_quality.py scores a generated corpus (benchmarks/corpus:
Faker across some 30 locales, python-stdnum's valid ids, each vendor's published
format) in two splits: ``dev``, which the rules were tuned on, and
``heldout``, with other templates, locales and value sources, only scored.
On seed 0 (issue 10): secrets 100% recall on both splits (2,342 dev / 2,528
held-out spans), personal data 99.9% dev / 99.5% held-out, look-alikes
unchanged 100% / 100%; about 35,000-45,000 typed lines per second on one core.

What it misses, measured there or known:

- names typed with no cue and in no list (held-out ``pii/name/notes``:
  "interview: <name>, 2nd round" 46%), names typed in lower case, and names in
  scripts without capital letters (Chinese, Japanese, Korean, Thai, Arabic:
  not generated, not found);
- health terms outside the lexicon, misspelt, or in other languages; other
  senses it has no word for (``the depression in the road``);
- national phone numbers whose digit groups libphonenumber does not produce
  for the region and that carry no phone word (dev ``pii/phone/hu``: 93.8%,
  ``70/230 2015``);
- a number valid both as a card (Luhn) and as a national id is labelled
  ``<CREDIT_CARD>`` (held-out ``ro-cnp`` 95.5% by kind; redacted all the same);
- national ids of countries python-stdnum has no validator for, and bare ids
  with a weak checksum and no word naming them (Canadian SIN, Dutch BSN);
- passports and driver licences without a word naming the document;
- what it takes that is not personal: a known given name used as a word in
  a capitalised phrase (``Victoria Station`` is excepted, others are not),
  capitalised pairs after ``with``/``met`` that are neither common English
  nor workplace words (``with Apache Arrow``: on 124,000 comment and
  docstring lines of installed Python packages the context rules add 4
  finds to those of the list rules, 3 of them people), user names typed
  after a command that prompts for none (``sudo`` with cached credentials).

Detectors fail closed: a bug replaces the whole text with ``<REDACTED>``.

Frames (``FrameRedactor``, issue 12): before a frame enters a dataset its text
is read with Tesseract OCR (2x upscale), the Redactor runs over its rebuilt
lines, and each flagged word is blacked out; a frame OCR cannot check is left
out. benchmarks/frame_redaction.py, 25 frames of 8 corpus lines per split
(secrets, e-mail addresses, phones, national ids, IBANs, cards, IPs; held-out
in other fonts, sizes and colours), recall counted where each character was
drawn: dev 96.7% (145/150 spans), held-out 93.3% (140/150), one value per
split still read whole by OCR after masking (OCR read 69% / 59% of the values
whole before); 0.41 s CPU per 960x380 frame. At 1x (no upscale, previous
revision) 92.7% / 79.3% with 8 / 5 values still readable. It misses what OCR
misreads into no valid form (IPv6 with a misread group, a national id with an
extra digit, Unicode domains) and masks more than it must: 46-60% of the
corpus's look-alike lines (hashes, UUIDs, digests) get a box, by design of
its frame-only token-shape rule.

A `Pseudonymizer` replaces people, devices and hosts by keyed-HMAC ids; its
module documents the key file and key rotation.
"""

from ._dynamics import anonymise_keystrokes
from ._dynamics_pointer import anonymise_pointer
from ._frame_redact import FrameRedaction, FrameRedactor
from ._pseudonym import Pseudonymizer, PseudonymKeyError
from ._redact import PLACEHOLDERS, Redactor, Span

__all__ = ["FrameRedaction", "FrameRedactor", "PLACEHOLDERS", "PseudonymKeyError", "Pseudonymizer", "Redactor", "Span",
           "anonymise_keystrokes", "anonymise_pointer"]
