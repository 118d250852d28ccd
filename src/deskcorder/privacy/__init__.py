"""privacy stage: nothing that identifies a person or unlocks a system reaches a dataset.

Every piece of typed text and every window title goes through a `Redactor`
before it is written to a dataset. Found spans become typed placeholders
(`PLACEHOLDERS`) and are counted, so dataset statistics say how much was
removed without saying what:

- ``<PASSWORD>``: everything typed into a password prompt (recognised by window
  title such as "[sudo] password", "Sign in", "Unlock keyring", or by the
  prompter's window class such as pinentry, ssh-askpass, polkit), and the line
  typed after ``sudo``/``ssh``/``passwd`` in a terminal;
- ``<SECRET>``: private keys, vendor tokens (AWS, GitHub, GitLab, Slack,
  Stripe, Google, OpenAI, npm, PyPI...), JWTs, ``user:pass@`` in URLs,
  ``mysql -p...``/``--password x``/``curl -u``, values assigned to
  secret-named keys (``DB_PASSWORD=``, ``"api_key": "..."``, ``token: ...``),
  "the password is ..." in prose, and long random-looking tokens (entropy);
- ``<CREDIT_CARD>`` (Luhn + issuer prefix), ``<IBAN>`` (country length +
  mod-97), ``<NATIONAL_ID>`` (US SSN, UK NINO, FR NIR with key, ES DNI/NIE
  with control letter), ``<EMAIL>``, ``<PHONE>`` (international and common
  national formats), ``<MAC>``;
- ``<USER>``/``<HOST>``/``<IDENTIFIER>``: user names in home paths and
  ``user@host``, and the device's own hostname/login passed as known
  identifiers.

Checksums are why redaction can be aggressive on secrets and still leave
prices, dates, order numbers, git SHAs and UUIDs alone; recall and precision
are measured on tests/data/redaction_corpus.jsonl (see
benchmarks/redaction_quality.py). Detectors fail closed: a bug replaces the
whole text with ``<REDACTED>``.

A `Pseudonymizer` replaces people, devices and hosts by keyed-HMAC ids; its
module documents the key file and key rotation.
"""

from ._dynamics import anonymise_keystrokes
from ._dynamics_pointer import anonymise_pointer
from ._pseudonym import Pseudonymizer, PseudonymKeyError
from ._redact import PLACEHOLDERS, Redactor

__all__ = ["PLACEHOLDERS", "PseudonymKeyError", "Pseudonymizer", "Redactor", "anonymise_keystrokes",
           "anonymise_pointer"]
