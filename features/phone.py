"""Phone numbers to E.164 with Google's libphonenumber rules (the `phonenumbers` package)."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.text import blank_to_null, to_half_width

# A DataType, not a DDL string: parsing DDL needs a session, and importing must not need one.
PHONE_STRUCT = T.StructType(
    [T.StructField("e164", T.StringType(), True), T.StructField("valid", T.BooleanType(), True)]
)


@lru_cache(maxsize=65536)
def parse_phone(raw: str | None, region: str | None) -> tuple[str | None, bool]:
    """(E.164, valid) for one typed number; (None, False) when it cannot be parsed.

    `region` is the ISO 3166-1 alpha-2 code used for numbers without an international prefix;
    `0086...` and `+86...` carry their own. A number that parses but is not a possible number
    for its region gives None: it is not a usable identifier.
    """
    if raw is None or not raw.strip():
        return None, False
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None, False
    if not phonenumbers.is_possible_number(number):
        return None, False
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Some impossible-looking inputs (all zeros, national prefixes inside the number) format to
    # an E.164 string that parses to yet another number: such a key would not be stable.
    if (
        phonenumbers.format_number(
            phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.E164
        )
        != e164
    ):
        return None, False
    return e164, phonenumbers.is_valid_number(number)


# A vectorised (Arrow) UDF: number formats and region metadata live in libphonenumber, which has
# no Spark equivalent; batches amortise the Python call and `parse_phone` caches repeats.
@F.pandas_udf(PHONE_STRUCT)  # type: ignore[call-overload]
def _parse_phones(raw: pd.Series, region: pd.Series) -> pd.DataFrame:
    parsed = [
        parse_phone(None if pd.isna(value) else value, None if pd.isna(code) else code)
        for value, code in zip(raw, region, strict=True)
    ]
    return pd.DataFrame(
        {"e164": [e164 for e164, _ in parsed], "valid": [valid for _, valid in parsed]}
    )


def phone_e164(raw: Column, *, country: Column | None = None, default_region: str = "CN") -> Column:
    """A struct `(e164, valid)` for a typed phone number.

    The region for numbers without a prefix is the row's `country` when it is a two-letter
    code, else `default_region`. Null or blank input gives `(null, false)`.
    """
    region = F.lit(default_region)
    if country is not None:
        code = F.upper(F.trim(country))
        region = F.when(code.rlike("^[A-Z]{2}$"), code).otherwise(F.lit(default_region))
    return _parse_phones(blank_to_null(to_half_width(raw)), region)
