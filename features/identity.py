"""Identity and business-registration numbers, card and bank numbers: normalised, then hashed.

The normalised raw number exists only inside the expression that hashes it: what these
functions return never holds a raw number, except `last_four`, which is the masked form the
contract allows.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from features.hashing import hmac_sha256_hex
from features.text import blank_to_null, digits_only, to_half_width

NUMERIC_INSTRUMENTS = ("card", "bank_account")


def id_number_norm(raw: Column) -> Column:
    """Half-width, upper case (`x` check character -> `X`), without spaces, dots and dashes."""
    return blank_to_null(F.upper(F.regexp_replace(to_half_width(raw), r"[\s.\-_/]+", "")))


def id_number_hash(raw: Column, *, key: bytes) -> Column:
    """Keyed hash of the normalised identity number; null when there is none."""
    return hmac_sha256_hex(F.concat(F.lit("id:"), id_number_norm(raw)), key=key)


def instrument_norm(instrument_type: Column, raw: Column) -> Column:
    """Cards and bank accounts to their digits; logins (alipay, wallet, other) to a compact form."""
    login = blank_to_null(F.lower(F.regexp_replace(to_half_width(raw), r"\s+", "")))
    return F.when(F.lower(instrument_type).isin(*NUMERIC_INSTRUMENTS), digits_only(raw)).otherwise(
        login
    )


def instrument_hash(instrument_type: Column, raw: Column, *, key: bytes) -> Column:
    """Keyed hash of the normalised instrument; the same number hashes alike whatever its type."""
    return hmac_sha256_hex(F.concat(F.lit("pay:"), instrument_norm(instrument_type, raw)), key=key)


def last_four(instrument_type: Column, raw: Column) -> Column:
    """The last four digits of a card or bank account (the masked form); null for logins."""
    digits = digits_only(raw)
    return F.when(
        F.lower(instrument_type).isin(*NUMERIC_INSTRUMENTS) & (F.length(digits) >= 8),
        F.substring(digits, -4, 4),
    )
