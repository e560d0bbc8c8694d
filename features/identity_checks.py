"""Validity checks of Chinese identity and business-registration numbers (python-stdnum).

What these functions return never holds the raw number: a validity flag, the birth date and
the 6-digit administrative region code (the county of first registration, shared by millions of
people) are derived flags in the contract's sense.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from functools import lru_cache

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

# Column names this module adds when callers follow its naming.
RIC_CHECKS = "ric_checks"
USCC_VALID = "uscc_valid"

# Fields of the struct returned by `ric_checks`.
VALID_FIELD = "valid"
BIRTH_DATE_FIELD = "birth_date"
REGION_CODE_FIELD = "region_code"

# A DataType, not a DDL string: parsing DDL needs a session, and importing must not need one.
RIC_STRUCT = T.StructType(
    [
        T.StructField(VALID_FIELD, T.BooleanType(), True),
        T.StructField(BIRTH_DATE_FIELD, T.DateType(), True),
        T.StructField(REGION_CODE_FIELD, T.StringType(), True),
    ]
)

# All whitespace (tabs, newlines, the ideographic space after NFKC) and the zero-width
# characters that survive copy-and-paste from web forms.
_SPACES = re.compile(r"[\s\u200b-\u200d\u2060\ufeff]+")

RicChecks = tuple[bool | None, datetime.date | None, str | None]


def normalise_number(raw: str) -> str:
    """NFKC (full-width digits and letters to ASCII), all whitespace removed, upper case."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", raw)).upper()


@lru_cache(maxsize=65536)
def check_ric(raw: str | None) -> RicChecks:
    """(valid, birth date, region code) of one typed resident identity number.

    (None, None, None) for None or blank text; (False, None, None) when stdnum rejects the
    number (length, format, check digit, birth date or unknown region code).
    """
    if raw is None:
        return None, None, None
    number = normalise_number(raw)
    if not number:
        return None, None, None
    try:
        number = ric.validate(number)
    except ValidationError:
        return False, None, None
    return True, ric.get_birth_date(number), number[:6]


@lru_cache(maxsize=65536)
def check_uscc(raw: str | None) -> bool | None:
    """stdnum's verdict on one typed unified social credit code; None for None or blank."""
    if raw is None:
        return None
    number = normalise_number(raw)
    if not number:
        return None
    return uscc.is_valid(number)


# Vectorised UDF: the region-code table and the date rules live in stdnum (its numdb), which
# has no Spark equivalent. Measured 2026-11-28, local[2], 200,000 numbers (199,939 distinct,
# half valid): 13,000 values/second, on a shared machine (load average 7 on 2 cores).
@F.pandas_udf(RIC_STRUCT)  # type: ignore[call-overload]
def _ric_checks_udf(raw: pd.Series) -> pd.DataFrame:
    checks = [check_ric(None if pd.isna(value) else value) for value in raw]
    return pd.DataFrame(
        {
            VALID_FIELD: pd.Series([valid for valid, _, _ in checks], dtype=object),
            BIRTH_DATE_FIELD: pd.Series([born for _, born, _ in checks], dtype=object),
            REGION_CODE_FIELD: pd.Series([region for _, _, region in checks], dtype=object),
        }
    )


# Vectorised UDF: stdnum is the reference implementation of the GB 32100-2015 check character;
# one implementation of the rule, not two. Measured as above, 200,000 distinct codes:
# 25,600 values/second.
@F.pandas_udf(T.BooleanType())  # type: ignore[call-overload]
def _uscc_valid_udf(raw: pd.Series) -> pd.Series:
    return pd.Series([check_uscc(None if pd.isna(value) else value) for value in raw], dtype=object)


def ric_checks(raw: Column) -> Column:
    """A struct `(valid boolean, birth_date date, region_code string)` for a typed RIC number.

    The number is normalised first (NFKC, so full-width digits count; all whitespace removed,
    tabs included; a lower-case check character `x` upper-cased), then checked by
    `stdnum.cn.ric`: 18 characters, check digit (ISO 7064 MOD 11-2), a real birth date and a
    known 6-digit region code. An invalid number gives `(false, null, null)`; null, empty or
    whitespace-only input gives `(null, null, null)`.

    >>> accounts.select(ric_checks(F.col("id_number")).alias(RIC_CHECKS))  # doctest: +SKIP
    """
    return _ric_checks_udf(raw)


def uscc_valid(raw: Column) -> Column:
    """Whether a typed unified social credit code passes `stdnum.cn.uscc` (length, format, check
    character), after the same normalisation as `ric_checks`. Null, empty or whitespace-only
    input gives null.

    >>> accounts.select(uscc_valid(F.col("id_number")).alias(USCC_VALID))  # doctest: +SKIP
    """
    return _uscc_valid_udf(raw)
