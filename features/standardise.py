"""Standardise the accepted input datasets: `DataFrame -> DataFrame`, no actions.

What leaves this module holds no raw identity, card or bank number: those columns are replaced
by keyed hashes (and, for cards and bank accounts, the last four digits).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features import columns as c
from features.config import StandardiseConfig
from features.email import email_canonical
from features.identity import id_number_hash, instrument_hash, last_four
from features.network import device_norm, ip_norm
from features.phone import phone_e164
from features.text import clean_text, compact_key


def standardise_accounts(
    accounts: DataFrame, *, hash_key: bytes, config: StandardiseConfig
) -> DataFrame:
    """One row per account with standardised identifiers.

    Requires the contract's accounts columns (`account_id` and any optional ones; absent
    optional columns must have been added as nulls by the reader). Adds `phone_e164`,
    `phone_valid`, `email_canonical`, `id_number_hash`, `device_norm`, `ip_norm`,
    `address_key`, `name_norm`; keeps `account_id`, `country`, `province`, `city`. Nulls stay
    null; `phone_valid` is false for a missing phone.
    """
    phone = phone_e164(
        F.col(c.PHONE), country=F.col(c.COUNTRY), default_region=config.default_phone_region
    )
    return accounts.select(
        F.col(c.ACCOUNT_ID),
        phone.getField("e164").alias(c.PHONE_E164),
        F.coalesce(phone.getField("valid"), F.lit(False)).alias(c.PHONE_VALID),
        email_canonical(F.col(c.EMAIL)).alias(c.EMAIL_CANONICAL),
        id_number_hash(F.col(c.ID_NUMBER), key=hash_key).alias(c.ID_NUMBER_HASH),
        device_norm(F.col(c.DEVICE_ID)).alias(c.DEVICE_NORM),
        ip_norm(F.col(c.REGISTRATION_IP)).alias(c.IP_NORM),
        compact_key(F.col(c.ADDRESS)).alias(c.ADDRESS_KEY),
        clean_text(F.col(c.LEGAL_NAME)).alias(c.NAME_NORM),
        F.upper(F.trim(F.col(c.COUNTRY))).alias(c.COUNTRY),
        clean_text(F.col(c.PROVINCE)).alias(c.PROVINCE),
        clean_text(F.col(c.CITY)).alias(c.CITY),
    )


def standardise_payments(payments: DataFrame, *, hash_key: bytes) -> DataFrame:
    """One row per payment instrument: `account_id`, `instrument_type`, `instrument_hash`,
    `instrument_last4`. The raw `instrument_id` is not carried forward."""
    instrument_type = F.lower(F.trim(F.col(c.INSTRUMENT_TYPE)))
    return payments.select(
        F.col(c.ACCOUNT_ID),
        instrument_type.alias(c.INSTRUMENT_TYPE),
        instrument_hash(instrument_type, F.col(c.INSTRUMENT_ID), key=hash_key).alias(
            c.INSTRUMENT_HASH
        ),
        last_four(instrument_type, F.col(c.INSTRUMENT_ID)).alias(c.INSTRUMENT_LAST4),
    )


def standardise_logistics(logistics: DataFrame, *, config: StandardiseConfig) -> DataFrame:
    """One row per logistics record: `account_id`, `role`, `address_key`, `contact_phone_e164`.

    The address key joins address text with the postcode so that the same street text in two
    cities with different postcodes stays apart; either part may be null.
    """
    phone = phone_e164(
        F.col(c.CONTACT_PHONE),
        country=F.col(c.COUNTRY),
        default_region=config.default_phone_region,
    )
    address = compact_key(F.col(c.ADDRESS))
    postcode = compact_key(F.col(c.POSTCODE))
    return logistics.select(
        F.col(c.ACCOUNT_ID),
        F.lower(F.trim(F.col(c.ROLE))).alias(c.ROLE),
        F.when(address.isNotNull(), F.concat_ws("|", address, postcode)).alias(c.ADDRESS_KEY),
        phone.getField("e164").alias(c.CONTACT_PHONE_E164),
    )
