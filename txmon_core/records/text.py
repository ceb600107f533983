"""Text from a record, made safe to show: no control or bidi character reaches a terminal, header or log."""

from __future__ import annotations

import re

# Characters that must never reach a terminal, an email header or a log line as they came: C0 and C1
# controls and DEL (escape sequences, CR/LF, BEL), line/paragraph separators, and the bidi controls that
# reorder what is shown (Trojan Source, CVE-2021-42574).
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: str | None) -> str:
    """Text from a record, safe to show: null as "", each unsafe character as a visible `\\xNN`/`\\uNNNN`.

    Escaped rather than dropped, so an operator sees that a record carried them. Decoding applies it to
    every text field of an alert; readers of other stores (the report) apply it to what they print.
    """
    if value is None:
        return ""
    if value.isascii() and value.isprintable():
        return value  # the common case, without the regular expression
    return _UNSAFE_TEXT.sub(_escape, value)
