"""Romanian IBANs with real ISO 13616 check digits (mod 97), for realistic-looking account ids."""

from __future__ import annotations

import string

COUNTRY = "RO"
# RO + 2 check digits + 4-letter bank code + 16 account characters.
LENGTH = 24
BBAN_ACCOUNT_LENGTH = 16

_LETTER_VALUES = {letter: str(10 + i) for i, letter in enumerate(string.ascii_uppercase)}


def _numeric(text: str) -> int:
    """The integer ISO 13616 reads from `text`: digits stay, letters become 10..35."""
    return int("".join(_LETTER_VALUES.get(char, char) for char in text))


def check_digits(country: str, bban: str) -> str:
    """The two check digits of the IBAN for `country` and `bban` (both upper case)."""
    return f"{98 - _numeric(bban + country + '00') % 97:02d}"


def make_iban(bank: str, account: str, country: str = COUNTRY) -> str:
    """A valid IBAN from a 4-letter bank code and the 16-character account part."""
    if len(bank) != 4 or not bank.isalpha() or not bank.isupper():
        raise ValueError(f"bank code must be 4 upper-case letters, got {bank!r}")
    if len(account) != BBAN_ACCOUNT_LENGTH or not account.isalnum() or account != account.upper():
        raise ValueError(f"account part must be {BBAN_ACCOUNT_LENGTH} upper-case letters or digits")
    bban = bank + account
    return country + check_digits(country, bban) + bban


def is_valid(iban: str) -> bool:
    """Whether `iban` passes the ISO 13616 mod-97 check (and, for RO, has the Romanian length)."""
    if len(iban) < 5 or not iban.isalnum() or iban != iban.upper():
        return False
    if iban.startswith(COUNTRY) and len(iban) != LENGTH:
        return False
    return _numeric(iban[4:] + iban[:4]) % 97 == 1
