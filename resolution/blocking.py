"""Blocking: standardised values and fuzzy keys, exploded per account, with a hub cap.

Every account contributes one row per (attribute, value) it holds: its phone, email, identity
number hash, name key, device, IP and registered address, each payment instrument and each
logistics address and contact phone, and the keys of the fuzzy rules (identity numbers one typo
apart, Soundex name codes within a city or with a birth date). Two accounts become a candidate
pair when they share a value of an enabled rule that at most `max_block_size` accounts hold;
more widely shared values are hubs (a consolidator's warehouse, a carrier's NAT address) and
are reported instead. The same rows, with how many accounts hold each value, feed the
comparisons' term frequencies (`resolution.comparisons`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

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
    "name": c.NAME_KEY,
}


# Internal attributes, never blocking rules: where a label phone was printed
# (`phone|address_key`), and a label phone set aside as a hub's desk phone.
LABEL_PHONE_ADDRESS = "label_phone_address"
DESK_PHONE = "desk_phone"
ADDRESS = "address"  # address_rows' columns
LABEL = "label"
_ADDRESS_ATTRIBUTES = ("registered_address", *_LOGISTICS_ATTRIBUTE.values())


def _mapped(value: Column, mapping: dict[str, str]) -> Column:
    return F.element_at(F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv]), value)


def _account_value(attribute: str) -> Column:
    if attribute == "birth_date":
        return F.col(c.BIRTH_DATE).cast("string")
    return F.col(_ACCOUNT_ATTRIBUTE_COLUMNS[attribute])


def _key_rows(frame: DataFrame, attribute: Column, value: Column) -> DataFrame:
    return frame.select(F.col(c.ACCOUNT_ID), attribute.alias(c.ATTRIBUTE), value.alias(c.VALUE_KEY))


def _key_entry(attribute: Column, value: Column) -> Column:
    return F.struct(attribute.alias(c.ATTRIBUTE), value.cast("string").alias(c.VALUE_KEY))


def _exploded_key_rows(frame: DataFrame, entries: Column) -> DataFrame:
    """`(account_id, attribute, value_key)`: one row per element of `entries`, an array of
    `_key_entry` structs computed from each row of `frame`."""
    return frame.select(F.col(c.ACCOUNT_ID), F.explode(entries).alias("_key")).select(
        c.ACCOUNT_ID, f"_key.{c.ATTRIBUTE}", f"_key.{c.VALUE_KEY}"
    )


def name_code(tokens: Column) -> Column:
    """The sorted, distinct Soundex codes of a name's tokens, joined by spaces (null if none).

    `zhang wei` and `jang wei` share `J520 W000`; so do `jon smith` and `john smyth`.
    """
    codes = F.array_sort(F.array_distinct(F.transform(tokens, lambda t: F.soundex(t))))
    return F.when(F.size(tokens) > F.lit(0), F.array_join(codes, " "))


def _with_home(accounts_std: DataFrame, logistics_std: DataFrame) -> DataFrame:
    """`logistics_std` with `_home`: the row's address when it is the account's own registered
    address (else null)."""
    home = accounts_std.select(
        F.col(c.ACCOUNT_ID).alias("_home_account"), F.col(c.ADDRESS_KEY).alias("_home")
    ).where(F.col("_home").isNotNull())
    return logistics_std.join(
        home,
        (F.col(c.ACCOUNT_ID) == F.col("_home_account")) & (F.col(c.ADDRESS_KEY) == F.col("_home")),
        "left",
    )


def _logistics_address_entry() -> Column:
    """A logistics row's address, keyed by its role (`return_address`, ...), except that an
    address equal to the account's own registered address counts as `registered_address`
    (`_with_home`): shipping from home is evidence of living there (a household shares it),
    not of the reused warehouses and return addresses that tie a ring together."""
    attribute = F.when(F.col("_home").isNotNull(), F.lit("registered_address")).otherwise(
        _mapped(F.col(c.ROLE), _LOGISTICS_ATTRIBUTE)
    )
    return _key_entry(attribute, F.col(c.ADDRESS_KEY))


def _account_entries(attributes: tuple[str, ...]) -> Column:
    """The `_key_entry` array of an `accounts_std` row: its values of the account attributes
    and the fuzzy keys among `attributes`."""
    entries = [
        _key_entry(F.lit(attribute), _account_value(attribute))
        for attribute in (*_ACCOUNT_ATTRIBUTE_COLUMNS, "birth_date")
        if attribute in attributes
    ]
    code = name_code(F.col(c.NAME_TOKENS))
    if "name_in_city" in attributes:
        city = F.col(c.CITY_KEY)
        entries.append(
            _key_entry(
                F.lit("name_in_city"), F.when(city.isNotNull(), F.concat_ws("|", code, city))
            )
        )
    if "name_birth_date" in attributes:
        born = F.col(c.BIRTH_DATE).cast("string")
        entries.append(
            _key_entry(
                F.lit("name_birth_date"), F.when(born.isNotNull(), F.concat_ws("|", code, born))
            )
        )
    empty = F.array().cast(T.ArrayType(T.StringType()))
    array = F.array(*entries) if entries else None
    if "id_number_one_edit" in attributes:
        one_edit = F.transform(
            F.coalesce(F.col(c.ID_NUMBER_FUZZY), empty),
            lambda value: _key_entry(F.lit("id_number_one_edit"), value),
        )
        array = one_edit if array is None else F.concat(array, one_edit)
    return array if array is not None else F.array().cast(_ENTRIES)


_ENTRIES = T.ArrayType(
    T.StructType(
        [T.StructField(c.ATTRIBUTE, T.StringType()), T.StructField(c.VALUE_KEY, T.StringType())]
    )
)


def extract_blocking_keys(
    accounts_std: DataFrame,
    payments_std: DataFrame,
    logistics_std: DataFrame,
    *,
    attributes: tuple[str, ...],
) -> DataFrame:
    """Distinct `(account_id, attribute, value_key)` rows for `attributes`.

    Requires the columns written by `features.standardise`. Null values give no row. Sensitive
    values arrive here already hashed, so `value_key` never holds a raw number.

    Each input is read once: its row gives an array of `(attribute, value)` entries, exploded.
    (A union of one projection per attribute read the accounts ten times and the logistics
    three: some twenty branches, whose tasks and plan analysis cost an incremental run 15 to
    20 s however few accounts changed.)
    """
    phone, address = F.col(c.CONTACT_PHONE_E164), F.col(c.ADDRESS_KEY)
    logistics_entries = F.array(
        _logistics_address_entry(),
        _key_entry(F.lit("contact_phone"), phone),
        _key_entry(
            F.lit(LABEL_PHONE_ADDRESS),
            F.when(phone.isNotNull() & address.isNotNull(), F.concat_ws("|", phone, address)),
        ),
    )
    keys = (
        _exploded_key_rows(accounts_std, _account_entries(attributes))
        .unionByName(
            _key_rows(
                payments_std,
                _mapped(F.col(c.INSTRUMENT_TYPE), _PAYMENT_ATTRIBUTE),
                F.col(c.INSTRUMENT_HASH),
            )
        )
        .unionByName(_exploded_key_rows(_with_home(accounts_std, logistics_std), logistics_entries))
    )
    kept = (*attributes, LABEL_PHONE_ADDRESS) if "contact_phone" in attributes else attributes
    return keys.where(F.col(c.VALUE_KEY).isNotNull() & F.col(c.ATTRIBUTE).isin(*kept)).distinct()


def restore_desk_phones(blocking_keys: DataFrame) -> DataFrame:
    """`blocking_keys` with every `desk_phone` row back to `contact_phone`: the keys as
    extracted, before `set_aside_desk_phones` judged them (what `account_state` keeps, so an
    account's state changes only when its own input does)."""
    return blocking_keys.withColumn(
        c.ATTRIBUTE,
        F.when(F.col(c.ATTRIBUTE) == F.lit(DESK_PHONE), F.lit("contact_phone")).otherwise(
            F.col(c.ATTRIBUTE)
        ),
    )


def set_aside_desk_phones(blocking_keys: DataFrame, *, max_block_size: int) -> DataFrame:
    """Rename to `desk_phone` (not a blocking rule) the `contact_phone` values an account
    printed only on labels of hub addresses: addresses held by more than `max_block_size`
    accounts.

    A consolidator warehouse prints its own desk phone on many of its clients' labels; each
    tail consolidator's phone is held by fewer accounts than the cap, so without this rule it
    pairs dozens of unrelated sellers (at 1,000,000 generated accounts it made precision fall
    from 0.99 to 0.80). The same phone on a label from a non-hub address stays a key for that
    account. Idempotent: `desk_phone` rows are first restored to `contact_phone`, so keys kept
    from an earlier run are judged again against today's address counts (an address that
    stopped being a hub gives its phones back). Needs the `label_phone_address` rows of
    `extract_blocking_keys`; without them nothing changes.
    """
    restored = restore_desk_phones(blocking_keys)
    holders = address_holders(address_rows(restored), "_holders")
    hubs = holders.where(F.col("_holders") > F.lit(max_block_size)).select(ADDRESS)
    return judge_desk_phones(restored, hubs)


def address_holders(rows: DataFrame, name: str) -> DataFrame:
    """`(address, name)`: the number of distinct accounts holding each address of `rows`
    (`address_rows`, or a union of them)."""
    return (
        rows.select(c.ACCOUNT_ID, ADDRESS)
        .distinct()
        .groupBy(ADDRESS)
        .agg(F.count(F.lit(1)).alias(name))
    )


# The attributes `address_rows` reads.
ADDRESS_ROW_ATTRIBUTES = (*_ADDRESS_ATTRIBUTES, LABEL_PHONE_ADDRESS)


def key_address(attribute: Column | None = None, value_key: Column | None = None) -> Column:
    """The address a key row (`attribute`, `value_key`; the columns of those names unless
    given) holds: the key of an address attribute, the address part of a
    `label_phone_address` key (`phone|address`), else null."""
    attribute = F.col(c.ATTRIBUTE) if attribute is None else attribute
    value_key = F.col(c.VALUE_KEY) if value_key is None else value_key
    # Split at the first `|` only (an address key holds `|` too).
    label = F.split(value_key, r"\|", 2)
    return F.when(attribute == F.lit(LABEL_PHONE_ADDRESS), label[1]).when(
        attribute.isin(*_ADDRESS_ATTRIBUTES), value_key
    )


def address_rows(blocking_keys: DataFrame) -> DataFrame:
    """`(account_id, address, label)`: the addresses each account holds: ships from, returns
    to, stores at or is registered at (`label` false), or prints on a shipping label (`label`
    true, from the `label_phone_address` rows). An address's holders (distinct accounts over
    these rows) decide whether it is a hub for `judge_desk_phones`."""
    is_label = F.col(c.ATTRIBUTE) == F.lit(LABEL_PHONE_ADDRESS)
    # One pass over `blocking_keys`, not a union of two (each would scan it: at 1,000,000
    # accounts, two scans of the kept state's keys).
    return blocking_keys.where(is_label | F.col(c.ATTRIBUTE).isin(*_ADDRESS_ATTRIBUTES)).select(
        c.ACCOUNT_ID, key_address().alias(ADDRESS), is_label.alias(LABEL)
    )


def judge_desk_phones(restored: DataFrame, hubs: DataFrame) -> DataFrame:
    """`restored` (keys as extracted: no `desk_phone` rows) with each `contact_phone` an account
    printed only on labels at a hub address renamed `desk_phone`; `hubs` (`address`) must hold
    every hub among the label addresses of the accounts in `restored` (others may be left
    out; hubs are few, and broadcast). An account's judgement reads only its own labels and
    the hubs, so it can be made for a few accounts (an incremental run) as for the whole
    population."""
    label = F.split(c.VALUE_KEY, r"\|", 2)
    labels = restored.where(F.col(c.ATTRIBUTE) == F.lit(LABEL_PHONE_ADDRESS)).select(
        c.ACCOUNT_ID, label[1].alias(ADDRESS), label[0].alias("_phone")
    )
    flagged_hubs = hubs.select(ADDRESS, F.lit(True).alias("_hub"))
    desk = (
        labels.join(F.broadcast(flagged_hubs), on=ADDRESS, how="left")
        .groupBy(c.ACCOUNT_ID, F.col("_phone").alias(c.VALUE_KEY))
        .agg(F.min(F.col("_hub").isNotNull().cast("int")).alias("_desk"))
        .where(F.col("_desk") == F.lit(1))
        .select(c.ACCOUNT_ID, c.VALUE_KEY, "_desk")
    )
    is_phone = F.col(c.ATTRIBUTE) == F.lit("contact_phone")
    phones = (
        restored.where(is_phone)
        .join(desk, on=[c.ACCOUNT_ID, c.VALUE_KEY], how="left")
        .withColumn(
            c.ATTRIBUTE,
            F.when(F.col("_desk").isNotNull(), F.lit(DESK_PHONE)).otherwise(F.col(c.ATTRIBUTE)),
        )
        .drop("_desk")
    )
    return restored.where(~is_phone).unionByName(phones.select(*restored.columns))


def count_value_holders(blocking_keys: DataFrame) -> DataFrame:
    """Add `account_count`: how many accounts hold each (attribute, value_key)."""
    by_value = Window.partitionBy(c.ATTRIBUTE, c.VALUE_KEY)
    return blocking_keys.withColumn(c.ACCOUNT_COUNT, F.count(F.lit(1)).over(by_value))


def find_hub_values(counted_keys: DataFrame, *, config: BlockingConfig) -> DataFrame:
    """`(attribute, value_key, account_count)` of the blocking rules' values held by more than
    the cap."""
    return (
        counted_keys.where(
            (F.col(c.ACCOUNT_COUNT) > F.lit(config.max_block_size))
            & F.col(c.ATTRIBUTE).isin(*config.rules)
        )
        .select(c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT)
        .distinct()
    )


def build_candidate_pairs(
    counted_keys: DataFrame, *, config: BlockingConfig, focus: DataFrame | None = None
) -> DataFrame:
    """Candidate pairs sharing at least one value of an enabled rule held by 2..cap accounts.

    Returns `account_id_l < account_id_r` and `shared_attributes`: a sorted array of
    `struct(attribute, shared_values, holders)`: which rules paired them, how many distinct
    values of that rule the two accounts share, and how many accounts hold the rarest of them.
    One row per pair.

    `focus` (`account_id`): only the pairs with at least one end in it (an incremental run's
    rescored accounts); each such pair's `shared_attributes` still count every value the two
    share. The focus side is joined to the values it holds, so the cost follows the focus,
    not every pair among `counted_keys`.
    """
    blockable = counted_keys.where(
        (F.col(c.ACCOUNT_COUNT) >= 2)
        & (F.col(c.ACCOUNT_COUNT) <= F.lit(config.max_block_size))
        & F.col(c.ATTRIBUTE).isin(*config.rules)
    ).select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT)
    if focus is None:
        left = blockable.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L)
        right = blockable.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_R).drop(c.ACCOUNT_COUNT)
        shared = left.join(right, on=[c.ATTRIBUTE, c.VALUE_KEY]).where(
            F.col(c.ACCOUNT_ID_L) < F.col(c.ACCOUNT_ID_R)
        )
    else:
        flagged = blockable.join(
            focus.select(c.ACCOUNT_ID).distinct().withColumn("_focus", F.lit(True)),
            on=c.ACCOUNT_ID,
            how="left",
        )
        mine = flagged.where(F.col("_focus").isNotNull()).select(
            F.col(c.ACCOUNT_ID).alias("_a"), c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT
        )
        theirs = flagged.select(
            F.col(c.ACCOUNT_ID).alias("_b"), c.ATTRIBUTE, c.VALUE_KEY, F.col("_focus").alias("_bf")
        )
        # A pair of two focus accounts meets from both sides: it is kept from the smaller id's.
        shared = (
            mine.join(theirs, on=[c.ATTRIBUTE, c.VALUE_KEY])
            .where(
                (F.col("_a") != F.col("_b")) & (F.col("_bf").isNull() | (F.col("_a") < F.col("_b")))
            )
            .select(
                F.least("_a", "_b").alias(c.ACCOUNT_ID_L),
                F.greatest("_a", "_b").alias(c.ACCOUNT_ID_R),
                c.ATTRIBUTE,
                c.VALUE_KEY,
                c.ACCOUNT_COUNT,
            )
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
    """Diagnostics: `(attribute, pair_count)`, the candidate pairs each rule produced (a pair
    found by two rules counts for both)."""
    return (
        candidate_pairs.select(F.explode(c.SHARED_ATTRIBUTES).alias("shared"))
        .groupBy(F.col("shared.attribute").alias(c.ATTRIBUTE))
        .agg(F.count(F.lit(1)).alias("pair_count"))
    )
