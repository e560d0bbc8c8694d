"""Blocking: exact standardised values, exploded per account, with a hub cap.

Every account contributes one row per (attribute, value) it holds: its phone, email, identity
number hash, device, IP and registered address, each payment instrument and each logistics
address and contact phone. Two accounts become a candidate pair when they share a value of an
enabled attribute that at most `max_block_size` accounts hold; more widely shared values are
hubs (a consolidator's warehouse, a carrier's NAT address) and are reported instead.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from features import columns as c
from resolution.config import BlockingConfig

_PAYMENT_ATTRIBUTE = {
    "card": "card",
    "bank_account": "bank_account",
    "alipay": "alipay",
    "wallet": "wallet",
    "other": "payment_other",
}
_LOGISTICS_ATTRIBUTE = {
    "ship_from": "ship_from_address",
    "return": "return_address",
    "warehouse": "warehouse_address",
    "pickup": "pickup_address",
}
_ACCOUNT_ATTRIBUTE_COLUMNS = {
    "phone": c.PHONE_E164,
    "email": c.EMAIL_CANONICAL,
    "id_number": c.ID_NUMBER_HASH,
    "device": c.DEVICE_NORM,
    "registration_ip": c.IP_NORM,
    "registered_address": c.ADDRESS_KEY,
}


def _mapped(value: Column, mapping: dict[str, str]) -> Column:
    return F.element_at(F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv]), value)


def _key_rows(frame: DataFrame, attribute: Column, value: Column) -> DataFrame:
    return frame.select(F.col(c.ACCOUNT_ID), attribute.alias(c.ATTRIBUTE), value.alias(c.VALUE_KEY))


def extract_blocking_keys(
    accounts_std: DataFrame,
    payments_std: DataFrame,
    logistics_std: DataFrame,
    *,
    config: BlockingConfig,
) -> DataFrame:
    """Distinct `(account_id, attribute, value_key)` rows for the enabled attributes.

    Requires the columns written by `features.standardise`. Null values give no row. Sensitive
    values arrive here already hashed, so `value_key` never holds a raw number.
    """
    parts = [
        _key_rows(accounts_std, F.lit(attribute), F.col(column))
        for attribute, column in _ACCOUNT_ATTRIBUTE_COLUMNS.items()
    ]
    parts.append(
        _key_rows(
            payments_std,
            _mapped(F.col(c.INSTRUMENT_TYPE), _PAYMENT_ATTRIBUTE),
            F.col(c.INSTRUMENT_HASH),
        )
    )
    parts.append(
        _key_rows(logistics_std, _mapped(F.col(c.ROLE), _LOGISTICS_ATTRIBUTE), F.col(c.ADDRESS_KEY))
    )
    parts.append(_key_rows(logistics_std, F.lit("contact_phone"), F.col(c.CONTACT_PHONE_E164)))
    keys = parts[0]
    for part in parts[1:]:
        keys = keys.unionByName(part)
    return keys.where(
        F.col(c.VALUE_KEY).isNotNull() & F.col(c.ATTRIBUTE).isin(*config.attributes)
    ).distinct()


def count_value_holders(blocking_keys: DataFrame) -> DataFrame:
    """Add `account_count`: how many accounts hold each (attribute, value_key)."""
    by_value = Window.partitionBy(c.ATTRIBUTE, c.VALUE_KEY)
    return blocking_keys.withColumn(c.ACCOUNT_COUNT, F.count(F.lit(1)).over(by_value))


def find_hub_values(counted_keys: DataFrame, *, config: BlockingConfig) -> DataFrame:
    """`(attribute, value_key, account_count)` of the values held by more than the cap."""
    return (
        counted_keys.where(F.col(c.ACCOUNT_COUNT) > F.lit(config.max_block_size))
        .select(c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT)
        .distinct()
    )


def build_candidate_pairs(counted_keys: DataFrame, *, config: BlockingConfig) -> DataFrame:
    """Candidate pairs sharing at least one value held by 2..cap accounts.

    Returns `account_id_l < account_id_r` and `shared_attributes`: a sorted array of
    `struct(attribute, shared_values, holders)`: how many distinct values of that attribute the
    two accounts share, and how many accounts hold the rarest of them. One row per pair.
    """
    blockable = counted_keys.where(
        (F.col(c.ACCOUNT_COUNT) >= 2) & (F.col(c.ACCOUNT_COUNT) <= F.lit(config.max_block_size))
    ).select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT)
    left = blockable.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L)
    right = blockable.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_R).drop(c.ACCOUNT_COUNT)
    shared = left.join(right, on=[c.ATTRIBUTE, c.VALUE_KEY]).where(
        F.col(c.ACCOUNT_ID_L) < F.col(c.ACCOUNT_ID_R)
    )
    per_attribute = shared.groupBy(c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.ATTRIBUTE).agg(
        F.count(F.lit(1)).cast("int").alias("shared_values"),
        F.min(c.ACCOUNT_COUNT).cast("int").alias("holders"),
    )
    return per_attribute.groupBy(c.ACCOUNT_ID_L, c.ACCOUNT_ID_R).agg(
        F.array_sort(F.collect_list(F.struct(c.ATTRIBUTE, "shared_values", "holders"))).alias(
            c.SHARED_ATTRIBUTES
        )
    )


def summarise_pairs_by_attribute(candidate_pairs: DataFrame) -> DataFrame:
    """Diagnostics: `(attribute, pair_count)`, pairs that share at least one value of each."""
    return (
        candidate_pairs.select(F.explode(c.SHARED_ATTRIBUTES).alias("shared"))
        .groupBy(F.col("shared.attribute").alias(c.ATTRIBUTE))
        .agg(F.count(F.lit(1)).alias("pair_count"))
    )
