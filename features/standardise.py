"""Standardise the accepted input datasets: `DataFrame -> DataFrame`, no actions.

What leaves this module holds no raw identity, card or bank number: identity numbers leave as
keyed hashes (`id_number_hash`, and `id_number_fuzzy` for one-typo matches), card and bank
numbers as a keyed hash, their last four digits and the 6-digit issuer prefix (a bank product,
not a person); validity flags, the region code and birth date of a resident identity number
are derived flags in the contract's sense.

Python runs only where a library holds the rules (phonenumbers, python-stdnum, pypinyin,
Unicode NFKC), as vectorised UDFs in the modules named below; the rest is native Spark. Each
UDF result used more than once is computed in a first projection and read by the second, so
that it runs once per row.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from features.address import postcode_norm, romanised_address_key, romanised_address_tokens
from features.config import StandardiseConfig
from features.email import email_canonical
from features.identity import (
    NUMERIC_INSTRUMENTS,
    id_number_fuzzy,
    id_number_hash,
    instrument_hash,
    last_four,
)
from features.identity_checks import (
    BIRTH_DATE_FIELD,
    REGION_CODE_FIELD,
    VALID_FIELD,
    ric_checks,
    uscc_valid,
)
from features.ip_prefix import ipv4_prefix24, ipv6_prefix48
from features.names import (
    LATIN_TITLES,
    NAME_FIELD,
    SUFFIX_FIELD,
    name_tokens,
    strip_company_suffix,
)
from features.network import device_norm, ip_norm
from features.payment_checks import issuer_prefix, luhn_valid
from features.phone import phone_e164
from features.text import blank_to_null, clean_text, digits_only, let, to_half_width

RIC = "CN_RIC"
USCC = "CN_USCC"
_CARD_LENGTHS = (12, 19)  # ISO/IEC 7812: a card number has 12 to 19 digits

# Intermediate columns of the first projection (UDF results read more than once).
_PHONE = "_phone"
_RIC = "_ric"
_USCC_VALID = "_uscc_valid"
_COMPANY = "_company"
_ADDRESS_TOKENS_ALL = "_address_tokens_all"


def _name_key_of_tokens(tokens: Column) -> Column:
    # Title words are no part of a name key, wherever they stand: the key's tokens are sorted,
    # so a title left inside a name (`ØMr` gives `mr ø`) would lead the key and be taken as a
    # title when the key is standardised again (Hypothesis found it).
    untitled = F.filter(tokens, lambda token: ~token.isin(*LATIN_TITLES))
    return F.when(F.size(untitled) > 0, F.array_join(untitled, " "))


def _person_or_company_key(raw: Column) -> Column:
    """`name_key` of a name without its company form and honorific, as accounts' `name_key`:
    the same person or company gives the same key on an account, a card and a label."""
    return _name_key_of_tokens(name_tokens(strip_company_suffix(raw).getField(NAME_FIELD)))


def _address_columns(tokens: Column) -> list[Column]:
    """`address_key` (every token, sorted, one space apart) and `address_tokens` (distinct)."""
    return [
        F.array_join(tokens, " ").alias(c.ADDRESS_KEY),
        F.array_distinct(tokens).alias(c.ADDRESS_TOKENS),
    ]


def _date_of_birth(accounts: DataFrame) -> Column:
    """The optional `date_of_birth` column as a date: a date, a timestamp's date, or text
    `yyyymmdd` / `yyyy-mm-dd` (full-width digits and stray spaces allowed). Anything else,
    an impossible date (`2023-02-30`) included, gives null; so does an absent column."""
    if c.DATE_OF_BIRTH not in accounts.columns:
        return F.lit(None).cast(T.DateType())
    column = F.col(c.DATE_OF_BIRTH)
    data_type = accounts.schema[c.DATE_OF_BIRTH].dataType
    if isinstance(data_type, T.DateType):
        return column
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        return F.to_date(column)
    text = F.trim(to_half_width(column.cast(T.StringType())))
    return F.when(text.rlike(r"^[0-9]{8}$"), F.try_to_date(text, "yyyyMMdd")).when(
        text.rlike(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), F.try_to_date(text, "yyyy-MM-dd")
    )


def standardise_accounts(
    accounts: DataFrame, *, hash_key: bytes, config: StandardiseConfig
) -> DataFrame:
    """One row per account with standardised identifiers.

    Requires the contract's accounts columns (`account_id` and any optional ones; absent
    optional columns must have been added as nulls by the reader); reads `date_of_birth` too
    when the frame has it. Returns, in this order:

    - `account_id`;
    - `phone_e164` string, `phone_valid` boolean (false for a missing phone),
      `email_canonical` string;
    - `id_type` string (upper case, trimmed; blank -> null), `id_number_hash` string,
      `id_number_fuzzy` array<string> (keyed hashes of the number and its one-character
      deletions, `features.identity.id_number_fuzzy`), `id_valid` boolean (`CN_RIC`: the
      stdnum RIC check; `CN_USCC`: the USCC check character; other types or no number: null),
      `id_region` string (6-digit region code of a valid RIC, else null), `birth_date` date
      (of a valid RIC, else the `date_of_birth` column parsed, else null);
    - `device_norm` string, `ip_norm` string, `ip_prefix` string (`10.1.2.0/24` for IPv4,
      `2001:db8:1::/48` for IPv6, null when not an address);
    - `name_norm` string (the legal name cleaned), `name_tokens` array<string> and `name_key`
      string (`features.names`, of the legal name without its company form and honorific:
      `Mr Zhang Wei`, `张伟`, `ZHANG WEI CO., LTD.` all give `wei zhang`), `name_suffix`
      string (the company form removed, null if none);
    - `address_key` string and `address_tokens` array<string>: the romanised, order-insensitive
      key of the address and its distinct tokens (`features.address.romanised_address_tokens`);
    - `country` (upper case), `province`, `city` (cleaned) strings, and `city_key` string: the
      city as a romanised key, like `address_key` (`深圳市`, `深圳`, `Shenzhen`, `SHENZHEN`
      all give `shen zhen`).

    Nulls stay null. No raw identity number leaves: see the module docstring.

    >>> accounts_std = standardise_accounts(  # doctest: +SKIP
    ...     accounts, hash_key=key, config=StandardiseConfig()
    ... )
    """
    id_type = blank_to_null(F.upper(F.trim(F.col(c.ID_TYPE))))
    number = F.col(c.ID_NUMBER)
    ip = F.col(c.REGISTRATION_IP)
    computed = accounts.select(
        F.col(c.ACCOUNT_ID),
        phone_e164(
            F.col(c.PHONE), country=F.col(c.COUNTRY), default_region=config.default_phone_region
        ).alias(_PHONE),
        email_canonical(F.col(c.EMAIL)).alias(c.EMAIL_CANONICAL),
        id_type.alias(c.ID_TYPE),
        id_number_hash(number, key=hash_key).alias(c.ID_NUMBER_HASH),
        id_number_fuzzy(number, key=hash_key).alias(c.ID_NUMBER_FUZZY),
        # The checks see only numbers of their type: other rows reach the UDFs as nulls.
        ric_checks(F.when(id_type == F.lit(RIC), number)).alias(_RIC),
        uscc_valid(F.when(id_type == F.lit(USCC), number)).alias(_USCC_VALID),
        _date_of_birth(accounts).alias(c.DATE_OF_BIRTH),
        device_norm(F.col(c.DEVICE_ID)).alias(c.DEVICE_NORM),
        ip_norm(ip).alias(c.IP_NORM),
        F.coalesce(ipv4_prefix24(ip), ipv6_prefix48(ip)).alias(c.IP_PREFIX),
        clean_text(F.col(c.LEGAL_NAME)).alias(c.NAME_NORM),
        strip_company_suffix(F.col(c.LEGAL_NAME)).alias(_COMPANY),
        romanised_address_tokens(F.col(c.ADDRESS)).alias(_ADDRESS_TOKENS_ALL),
        F.upper(F.trim(F.col(c.COUNTRY))).alias(c.COUNTRY),
        clean_text(F.col(c.PROVINCE)).alias(c.PROVINCE),
        clean_text(F.col(c.CITY)).alias(c.CITY),
        romanised_address_key(F.col(c.CITY)).alias(c.CITY_KEY),
    ).withColumn(c.NAME_TOKENS, name_tokens(F.col(_COMPANY).getField(NAME_FIELD)))
    ric = F.col(_RIC)
    return computed.select(
        F.col(c.ACCOUNT_ID),
        F.col(_PHONE).getField("e164").alias(c.PHONE_E164),
        F.coalesce(F.col(_PHONE).getField("valid"), F.lit(False)).alias(c.PHONE_VALID),
        F.col(c.EMAIL_CANONICAL),
        F.col(c.ID_TYPE),
        F.col(c.ID_NUMBER_HASH),
        F.col(c.ID_NUMBER_FUZZY),
        F.when(F.col(c.ID_TYPE) == F.lit(RIC), ric.getField(VALID_FIELD))
        .when(F.col(c.ID_TYPE) == F.lit(USCC), F.col(_USCC_VALID))
        .alias(c.ID_VALID),
        ric.getField(REGION_CODE_FIELD).alias(c.ID_REGION),
        F.coalesce(ric.getField(BIRTH_DATE_FIELD), F.col(c.DATE_OF_BIRTH)).alias(c.BIRTH_DATE),
        F.col(c.DEVICE_NORM),
        F.col(c.IP_NORM),
        F.col(c.IP_PREFIX),
        F.col(c.NAME_NORM),
        F.col(c.NAME_TOKENS),
        _name_key_of_tokens(F.col(c.NAME_TOKENS)).alias(c.NAME_KEY),
        F.col(_COMPANY).getField(SUFFIX_FIELD).alias(c.NAME_SUFFIX),
        *_address_columns(F.col(_ADDRESS_TOKENS_ALL)),
        F.col(c.COUNTRY),
        F.col(c.PROVINCE),
        F.col(c.CITY),
        F.col(c.CITY_KEY),
    )


def standardise_payments(payments: DataFrame, *, hash_key: bytes) -> DataFrame:
    """One row per payment instrument. The raw `instrument_id` is not carried forward.

    Requires `account_id`, `instrument_type`, `instrument_id`, `holder_name`. Returns:
    `account_id`; `instrument_type` string (lower case, trimmed); `instrument_hash` string
    (keyed hash of the digits of a card or bank account, of the compact login otherwise);
    `instrument_last4` string (cards and bank accounts of 8 digits or more, else null);
    `instrument_valid` boolean (cards only: the Luhn check passes and the number has 12 to 19
    digits; null for other types and for a card without digits); `issuer_prefix` string (first
    six digits of a card or bank account of 12 digits or more, else null); `holder_name_key`
    string (`name_key` of the holder name without company form or honorific, as accounts'
    `name_key`). Nulls stay null.

    >>> payments_std = standardise_payments(payments, hash_key=key)  # doctest: +SKIP
    """
    instrument_type = F.lower(F.trim(F.col(c.INSTRUMENT_TYPE)))
    raw = F.col(c.INSTRUMENT_ID)
    shortest, longest = _CARD_LENGTHS
    # `let`: the Luhn check reads the digits once per digit.
    card_valid = let(
        digits_only(raw),
        lambda digits: luhn_valid(digits) & F.length(digits).between(shortest, longest),
    )
    return payments.select(
        F.col(c.ACCOUNT_ID),
        instrument_type.alias(c.INSTRUMENT_TYPE),
        instrument_hash(instrument_type, raw, key=hash_key).alias(c.INSTRUMENT_HASH),
        last_four(instrument_type, raw).alias(c.INSTRUMENT_LAST4),
        F.when(instrument_type == F.lit("card"), card_valid).alias(c.INSTRUMENT_VALID),
        F.when(instrument_type.isin(*NUMERIC_INSTRUMENTS), issuer_prefix(digits_only(raw))).alias(
            c.ISSUER_PREFIX
        ),
        _person_or_company_key(F.col(c.HOLDER_NAME)).alias(c.HOLDER_NAME_KEY),
    )


def standardise_logistics(logistics: DataFrame, *, config: StandardiseConfig) -> DataFrame:
    """One row per logistics record.

    Requires `account_id`, `role`, `contact_name`, `contact_phone`, `address`, `city`,
    `postcode`, `country`. Returns: `account_id`; `role` string (lower case, trimmed);
    `contact_phone_e164` string; `address_key` string and `address_tokens` array<string>, as
    accounts' (the postcode is not part of the key: one address is written with and without
    it); `postcode_norm` string (`features.address.postcode_norm`); `contact_name_key` string
    (`name_key` of the contact name without company form or honorific: `王女士` gives
    `wang`); `city` string (cleaned). Nulls stay null.

    >>> logistics_std = standardise_logistics(  # doctest: +SKIP
    ...     logistics, config=StandardiseConfig()
    ... )
    """
    phone = phone_e164(
        F.col(c.CONTACT_PHONE),
        country=F.col(c.COUNTRY),
        default_region=config.default_phone_region,
    )
    computed = logistics.select(
        F.col(c.ACCOUNT_ID),
        F.lower(F.trim(F.col(c.ROLE))).alias(c.ROLE),
        phone.getField("e164").alias(c.CONTACT_PHONE_E164),
        romanised_address_tokens(F.col(c.ADDRESS)).alias(_ADDRESS_TOKENS_ALL),
        postcode_norm(F.col(c.POSTCODE)).alias(c.POSTCODE_NORM),
        _person_or_company_key(F.col(c.CONTACT_NAME)).alias(c.CONTACT_NAME_KEY),
        clean_text(F.col(c.CITY)).alias(c.CITY),
    )
    return computed.select(
        F.col(c.ACCOUNT_ID),
        F.col(c.ROLE),
        F.col(c.CONTACT_PHONE_E164),
        *_address_columns(F.col(_ADDRESS_TOKENS_ALL)),
        F.col(c.POSTCODE_NORM),
        F.col(c.CONTACT_NAME_KEY),
        F.col(c.CITY),
    )
