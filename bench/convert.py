"""The contract's input datasets as one row per account, the shape Splink links.

Splink compares two rows of one table, so the multi-valued attributes of an account (its
payment instruments, its logistics addresses, the contact phones on its labels) become list
columns, and every value gets the simple clean-up a Splink user would write in pandas: Unicode
NFKC (full-width digits and letters become ASCII), trimmed, lower case; digits only for phone
numbers (with a leading `86` / `0086` country code dropped before an 11-digit number); letters
and digits only for identity, instrument and address values. None of the project's own
standardisation (pinyin names, E.164, keyed hashes, address keys) is used: this is the
baseline's input, not ours.

Pure pandas, no Splink, so that it is tested in the main venv (tests/test_bench.py) and run in
Splink's (bench/splink_runner.py). Example::

    >>> import pandas as pd
    >>> accounts = pd.DataFrame({"account_id": ["A1"], "phone": ["+86 138-0013-8000"]})
    >>> account_rows(accounts).loc[0, "phone"]
    '13800138000'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import partial

import pandas as pd

ACCOUNT_ID = "account_id"

# Column of the accounts dataset -> how its values are cleaned ("text", "phone", "alnum").
ACCOUNT_COLUMNS: dict[str, str] = {
    "legal_name": "text",
    "shop_name": "text",
    "id_number": "alnum",
    "phone": "phone",
    "email": "text",
    "registration_ip": "text",
    "device_id": "text",
    "city": "text",
    "address": "alnum",
}

# List columns: which rows of which dataset feed them, and which column holds the value.
PAYMENT_IDS = "payment_ids"  # card, bank_account, alipay, wallet (and unknown types)
COLLECTION_IDS = "collection_ids"  # instrument_type `other`: collection accounts
LOGISTICS_ADDRESSES = "logistics_addresses"  # roles ship_from, return, warehouse (and unknown)
PICKUP_ADDRESSES = "pickup_addresses"  # role pickup: carrier pickup points
CONTACT_PHONES = "contact_phones"  # phones on labels, every role
LIST_COLUMNS = (PAYMENT_IDS, COLLECTION_IDS, LOGISTICS_ADDRESSES, PICKUP_ADDRESSES, CONTACT_PHONES)

_NOT_DIGIT = re.compile(r"[^0-9]")
_NOT_ALNUM = re.compile(r"[\W_]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_COUNTRY_CODE = re.compile(r"^(?:00)?86(?=\d{11}$)")


def _nfkc(value: object) -> str | None:
    if not isinstance(value, str) and (value is None or pd.isna(value)):
        return None
    return unicodedata.normalize("NFKC", str(value))


def clean_text(value: object) -> str | None:
    """NFKC, lower case, inner whitespace runs to one space, trimmed; blank gives None."""
    text = _nfkc(value)
    if text is None:
        return None
    cleaned = _SPACES.sub(" ", text).strip().lower()
    return cleaned or None


def clean_alnum(value: object) -> str | None:
    """NFKC, lower case, letters and digits only (any script); nothing left gives None."""
    text = _nfkc(value)
    if text is None:
        return None
    cleaned = _NOT_ALNUM.sub("", text).lower()
    return cleaned or None


def clean_phone(value: object) -> str | None:
    """Digits only (after NFKC), a leading 86 or 0086 dropped before 11 digits; None if none."""
    text = _nfkc(value)
    if text is None:
        return None
    digits = _COUNTRY_CODE.sub("", _NOT_DIGIT.sub("", text))
    return digits or None


_CLEANERS = {"text": clean_text, "alnum": clean_alnum, "phone": clean_phone}


def _value_lists(
    rows: pd.DataFrame | None, *, value: str, cleaner: str, keep: pd.Series | None = None
) -> pd.Series:
    """account_id -> sorted list of the distinct cleaned values of `value` in `rows`."""
    if rows is None or rows.empty or value not in rows.columns:
        return pd.Series(dtype=object)
    selected = rows if keep is None else rows[keep]
    values = selected[value].map(_CLEANERS[cleaner])
    pairs = pd.DataFrame({ACCOUNT_ID: selected[ACCOUNT_ID], "value": values}).dropna()
    if pairs.empty:
        return pd.Series(dtype=object)
    return pairs.groupby(ACCOUNT_ID)["value"].agg(lambda v: sorted(set(v)))


def _column(rows: pd.DataFrame | None, name: str) -> pd.Series:
    if rows is None or name not in rows.columns:
        return pd.Series(dtype=object)
    return rows[name].map(clean_text)


def account_rows(
    accounts: pd.DataFrame,
    payment_instruments: pd.DataFrame | None = None,
    logistics: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per usable account: `account_id`, the cleaned `ACCOUNT_COLUMNS` and the
    `LIST_COLUMNS` (None, not an empty list, where an account has no value, so that Splink's
    null level applies).

    Rows with a null or blank `account_id` are dropped, and of repeated ids the first row is
    kept (Splink needs a unique id). Rows of the other datasets whose account is not among the
    accounts are ignored, as are null values. Missing optional columns give null columns.
    """
    if ACCOUNT_ID not in accounts.columns:
        raise ValueError(
            f"accounts has no column {ACCOUNT_ID!r}; columns found: {list(accounts.columns)}"
        )
    ids = accounts[ACCOUNT_ID].map(clean_text)
    usable = accounts.assign(**{ACCOUNT_ID: accounts[ACCOUNT_ID].map(_strip)})[ids.notna()]
    usable = usable.drop_duplicates(ACCOUNT_ID, keep="first").reset_index(drop=True)
    rows = pd.DataFrame({ACCOUNT_ID: usable[ACCOUNT_ID]})
    for name, cleaner in ACCOUNT_COLUMNS.items():
        source = usable[name] if name in usable.columns else pd.Series(None, index=usable.index)
        rows[name] = source.map(_CLEANERS[cleaner]).astype(object)

    payment = _stripped_ids(payment_instruments)
    logistic = _stripped_ids(logistics)
    instrument_type = _column(payment, "instrument_type")
    role = _column(logistic, "role")
    lists = {
        PAYMENT_IDS: _value_lists(
            payment, value="instrument_id", cleaner="alnum", keep=instrument_type != "other"
        ),
        COLLECTION_IDS: _value_lists(
            payment, value="instrument_id", cleaner="alnum", keep=instrument_type == "other"
        ),
        LOGISTICS_ADDRESSES: _value_lists(
            logistic, value="address", cleaner="alnum", keep=role != "pickup"
        ),
        PICKUP_ADDRESSES: _value_lists(
            logistic, value="address", cleaner="alnum", keep=role == "pickup"
        ),
        CONTACT_PHONES: _value_lists(logistic, value="contact_phone", cleaner="phone"),
    }
    for name, by_account in lists.items():
        rows[name] = rows[ACCOUNT_ID].map(by_account).astype(object)
        rows[name] = rows[name].where(rows[name].notna(), None)
    return rows


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _stripped_ids(rows: pd.DataFrame | None) -> pd.DataFrame | None:
    if rows is None:
        return None
    if ACCOUNT_ID not in rows.columns:
        raise ValueError(f"no column {ACCOUNT_ID!r}; columns found: {list(rows.columns)}")
    return rows.assign(**{ACCOUNT_ID: rows[ACCOUNT_ID].map(_strip)})


def _without(values: list[str] | None, *, common: set[str]) -> list[str] | None:
    if values is None:
        return None
    kept = [value for value in values if value not in common]
    return kept or None


def drop_common_values(
    rows: pd.DataFrame, *, columns: Sequence[str], max_holders: int | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Null out every value of `columns` held by more than `max_holders` accounts.

    A value shared by hundreds of unrelated accounts (a consolidator's warehouse, a carrier
    pickup point, a NAT address) makes one huge block and is no evidence of a match: the same
    cap as the project's `blocking.max_block_size`, applied to the data before Splink sees it.
    List columns lose such elements (an emptied list becomes None); other columns become None.
    Returns the new rows and, per column, how many distinct values were dropped. `max_holders`
    None returns the rows unchanged.
    """
    if max_holders is None:
        return rows, {}
    dropped: dict[str, int] = {}
    result = rows.copy()
    for name in columns:
        if name not in result.columns:
            raise ValueError(f"no column {name!r} to cap; columns found: {list(result.columns)}")
        column = result[name]
        if name in LIST_COLUMNS:
            exploded = result[[ACCOUNT_ID, name]].explode(name).dropna()
            holders = exploded.drop_duplicates().groupby(name)[ACCOUNT_ID].size()
            common = set(holders[holders > max_holders].index)
            if common:
                result[name] = column.map(partial(_without, common=common)).astype(object)
        else:
            holders = column.dropna().value_counts()
            common = set(holders[holders > max_holders].index)
            if common:
                result[name] = column.where(~column.isin(common), None).astype(object)
        dropped[name] = len(common)
    return result, dropped
