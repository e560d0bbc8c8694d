"""Checks on card and bank-account numbers, natively in Spark.

The input is the digit string of an instrument (`features.text.digits_only` of the typed
value). Nothing returned holds the full number: a flag, the 6-digit issuer prefix (BIN, which
identifies a bank product, not a person) and the card scheme.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# Column names this module adds when callers follow its naming.
LUHN_VALID = "luhn_valid"
ISSUER_PREFIX = "issuer_prefix"
CARD_SCHEME = "card_scheme"

_MIN_CARD_LENGTH = 12  # ISO/IEC 7812 card numbers have 12 to 19 digits
_BIN_LENGTH = 6
_DIGITS = r"^[0-9]+$"
_CARD_DIGITS = f"^[0-9]{{{_MIN_CARD_LENGTH},}}$"
# Mastercard: 51-55 and the 2-series 2221-2720.
_MASTERCARD = r"^(5[1-5]|222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)"


def luhn_valid(digits: Column) -> Column:
    """Whether the digit string passes the Luhn (mod 10) check, as `stdnum.luhn.is_valid`.

    Native Spark: a higher-order function over the digits read from the right, so that no
    number travels through a Python worker and the optimiser sees the whole expression.
    Null, empty or anything but ASCII digits (spaces, dashes, full-width digits: clean with
    `digits_only` first) gives null.

    >>> cards.select(luhn_valid(digits_only(F.col("instrument_id"))))  # doctest: +SKIP
    """
    reversed_digits = F.reverse(digits)
    # Position 1 is the check digit; every second digit from it is doubled (9 subtracted when
    # the double has two digits). `ascii(c) - 48` cannot fail, unlike a cast under ANSI mode.
    values = F.transform(
        F.sequence(F.lit(1), F.length(digits)),
        lambda position: F.ascii(F.substring(reversed_digits, position, 1)) - F.lit(48),
    )
    weighted = F.transform(
        values,
        lambda value, index: (
            F.when(index % 2 == 0, value).when(value * 2 > 9, value * 2 - 9).otherwise(value * 2)
        ),
    )
    total = F.aggregate(weighted, F.lit(0).cast("long"), lambda acc, value: acc + value)
    return F.when(digits.rlike(_DIGITS), total % 10 == 0)


def issuer_prefix(digits: Column) -> Column:
    """The first six digits (the BIN / IIN) of a number of at least 12 digits; null otherwise
    (null, empty, shorter, or not only ASCII digits)."""
    return F.when(digits.rlike(_CARD_DIGITS), F.substring(digits, 1, _BIN_LENGTH))


def card_scheme(digits: Column) -> Column:
    """The card scheme from the leading digits: `unionpay` (62), `visa` (4), `mastercard`
    (51-55, 2221-2720), `amex` (34, 37), `jcb` (35), else `other`. Null for null, empty,
    fewer than 12 digits, or anything but ASCII digits."""
    scheme = (
        F.when(digits.startswith("62"), F.lit("unionpay"))
        .when(digits.startswith("4"), F.lit("visa"))
        .when(digits.rlike(_MASTERCARD), F.lit("mastercard"))
        .when(digits.rlike("^3[47]"), F.lit("amex"))
        .when(digits.startswith("35"), F.lit("jcb"))
        .otherwise(F.lit("other"))
    )
    return F.when(digits.rlike(_CARD_DIGITS), scheme)
