"""Identity and business-registration numbers, card and bank numbers: normalised, then hashed.

The normalised raw number exists only inside the expression that hashes it: what these
functions return never holds a raw number, except `last_four`, which is the masked form the
contract allows.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from features.hashing import hmac_sha256_hex
from features.text import blank_to_null, digits_only, let, to_half_width

NUMERIC_INSTRUMENTS = ("card", "bank_account")


def id_number_norm(raw: Column) -> Column:
    """Half-width, upper case (`x` check character -> `X`), without spaces, dots and dashes."""
    return blank_to_null(F.upper(F.regexp_replace(to_half_width(raw), r"[\s.\-_/]+", "")))


def id_number_hash(raw: Column, *, key: bytes) -> Column:
    """Keyed hash of the normalised identity number; null when there is none."""
    return hmac_sha256_hex(F.concat(F.lit("id:"), id_number_norm(raw)), key=key)


def id_number_fuzzy(raw: Column, *, key: bytes) -> Column:
    """`array<string>`: keyed hashes of the normalised identity number and of each of its
    single-character deletions, for finding numbers one typo apart without comparing them.

    The symmetric-deletion idea (Garbe's SymSpell): two strings within one substitution,
    insertion or deletion of each other share at least one element of these sets. A
    substitution at position i leaves both with the same deletion at i; an insertion makes the
    shorter number itself a deletion of the longer; equal numbers share everything. Conversely
    a shared element is at most one deletion from each side, so numbers at Levenshtein
    distance 3 or more share nothing (distance 2, a swap of neighbours for example, may share).

    The hashes are `hmac_sha256_hex` with the same key as `id_number_hash` but the domain
    prefix `iddel:` instead of `id:`, so they cannot be joined with `id_number_hash`; no raw
    digit is returned. Repeated deletions (`11` gives `1` twice) are hashed once. Null for a
    null, empty or whitespace-only number.

    >>> accounts.select(id_number_fuzzy(F.col("id_number"), key=key))  # doctest: +SKIP
    """
    return let(id_number_norm(raw), lambda number: _deletion_hashes(number, key=key))


def _deletion_hashes(number: Column, *, key: bytes) -> Column:
    deletions = F.transform(
        F.sequence(F.lit(1), F.length(number)),
        lambda position: F.concat(
            F.substring(number, 1, position - 1),
            F.substring(number, position + 1, F.length(number)),
        ),
    )
    variants = F.array_distinct(F.concat(F.array(number), deletions))
    hashes = F.transform(
        variants, lambda variant: hmac_sha256_hex(F.concat(F.lit("iddel:"), variant), key=key)
    )
    return F.when(number.isNotNull(), hashes)


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
