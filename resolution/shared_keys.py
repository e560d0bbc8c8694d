"""The population's shared blocking values, kept between runs so that an incremental run
recounts only the values its change reaches.

A full run counts the holders of every blocking value over the whole population (29.5M key rows
at 1,000,000 accounts): it judges the desk phones against the hub addresses, then counts each
value's holders. It keeps the rows of the values held by two accounts or more, and every desk
phone (`shared_rows`, the `shared_keys` table): all that pairing, cluster control, `hub_values`,
`entity_links` and `entity_leads` read, since a value held once pairs and links nobody.

An incremental run (`update_shared_keys`) updates them instead of recounting. A value's holder
count changes only when a holder gains or loses it, so only these values are recounted:

1. the *touched values*: every value a touched (new, changed, removed) account holds now or
   held before;
2. the phones of the *re-judged* accounts: a desk phone is a label phone printed only at hub
   addresses (`resolution.blocking.judge_desk_phones`), and an address becomes or stops being
   a hub (*flips*) only when a touched account starts or stops holding it; the unchanged
   accounts with a label at a flipped address are judged again.

Each recounted value is taken under both phone attributes (`contact_phone`, `desk_phone`), as
a judgement moves a phone from one to the other. One scan of the state's keys, with broadcast
lookups of small sets (the touched accounts, their values and addresses), finds every current
holder of those values and every account at those addresses (three more scans when an account
is re-judged); their counts replace the kept ones, and every other kept row stands. The result
is the same as a full run's recount (`tests/test_shared_keys.py`), at the cost of a scan of
the state, besides the one picking the touched accounts' rows, instead of a shuffle of the
population's keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features import columns as c
from resolution.blocking import (
    ADDRESS,
    ADDRESS_ROW_ATTRIBUTES,
    DESK_PHONE,
    LABEL,
    address_holders,
    address_rows,
    judge_desk_phones,
    key_address,
)
from resolution.config import BlockingConfig
from resolution.incremental import (
    CHANGED,
    KEY_PROBES,
    NEW,
    REMOVED,
    RESCORED,
    accounts_with,
    address_probe,
    cut_lineage,
    state_keys,
    value_probe,
)
from resolution.lineage import StageHook

logger = logging.getLogger(__name__)

CONTACT_PHONE = "contact_phone"
_PHONES = (CONTACT_PHONE, DESK_PHONE)
_VALUE = [c.ATTRIBUTE, c.VALUE_KEY]
_COLUMNS = (c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT)


def shared_rows(counted_keys: DataFrame) -> DataFrame:
    """The rows of `counted_keys` (judged keys with `account_count`) a run keeps: values held by
    two accounts or more, and every desk phone (an incremental run reads an unchanged account's
    judgement from them)."""
    return counted_keys.where(
        (F.col(c.ACCOUNT_COUNT) >= 2) | (F.col(c.ATTRIBUTE) == F.lit(DESK_PHONE))
    ).select(*_COLUMNS)


@dataclass(frozen=True)
class SharedUpdate:
    """`update_shared_keys`' result."""

    shared: DataFrame  # the population's shared keys now (`shared_rows` of a full recount)
    affected: DataFrame  # `(account_id, rescored)`, as `resolution.incremental.affected_accounts`
    rejudged: int  # unchanged accounts whose desk phones were judged again
    recounted: int  # (attribute, value_key) recounted, phones under both attributes


def _both_phone_attributes(values: DataFrame) -> DataFrame:
    """`(attribute, value_key)` with each phone under both `contact_phone` and `desk_phone`."""
    phone = F.col(c.ATTRIBUTE).isin(*_PHONES)
    return values.select(
        F.explode(
            F.when(phone, F.array(*[F.lit(a) for a in _PHONES])).otherwise(
                F.array(F.col(c.ATTRIBUTE))
            )
        ).alias(c.ATTRIBUTE),
        c.VALUE_KEY,
    )


def _probed_neighbours(
    state: DataFrame,
    touched: DataFrame,
    touched_values: DataFrame,
    touched_addresses: DataFrame,
    *,
    small: Callable[[DataFrame], DataFrame],
    checkpoint: StageHook,
) -> tuple[DataFrame, DataFrame]:
    """Scan 1 over the state's `key_probes`: `(account_id, attribute, value_key)` of the
    unchanged accounts' keys holding a touched value, and `(account_id, address, label)` of
    their addresses among the touched ones (as `address_rows` gives them). The probes of the
    touched values and addresses (under both labels) are looked up in one broadcast join; a
    probe names what it stands for, so the keys themselves are never read."""
    none = F.lit(None).cast("string")
    wanted = (
        touched_values.where(F.col(c.VALUE_KEY).isNotNull())
        .select(
            value_probe(F.col(c.ATTRIBUTE), F.col(c.VALUE_KEY)).alias("_wanted"),
            c.ATTRIBUTE,
            c.VALUE_KEY,
            none.alias(ADDRESS),
            F.lit(None).cast("boolean").alias(LABEL),
        )
        .unionByName(
            touched_addresses.where(F.col(ADDRESS).isNotNull())
            .select(ADDRESS, F.explode(F.array(F.lit(False), F.lit(True))).alias(LABEL))
            .select(
                address_probe(F.col(ADDRESS), F.col(LABEL)).alias("_wanted"),
                none.alias(c.ATTRIBUTE),
                none.alias(c.VALUE_KEY),
                ADDRESS,
                LABEL,
            )
        )
    )
    # Joined on a 64-bit hash of each probe, then the probes compared: a hash join on the
    # 8-byte binaries themselves took 8.3 s at 1,000,000 accounts, on their hashes 5.1 s. The
    # comparison is kept out of the join keys (under coalesce), so it runs on the hits only
    # and no hash collision adds a holder.
    lookup = cut_lineage(wanted.withColumn("_hash", F.xxhash64("_wanted")))
    probes = state.join(small(touched), c.ACCOUNT_ID, "left_anti").select(
        c.ACCOUNT_ID, F.explode(KEY_PROBES).alias("_probe")
    )
    hits = checkpoint(
        "touched_neighbours",
        probes.withColumn("_hash", F.xxhash64("_probe"))
        .join(small(lookup), "_hash")
        .where(F.coalesce(F.col("_probe") == F.col("_wanted"), F.lit(False)))
        .drop("_probe", "_wanted", "_hash"),
        cut=True,
    )
    holding = hits.where(F.col(c.ATTRIBUTE).isNotNull()).select(c.ACCOUNT_ID, *_VALUE)
    at = hits.where(F.col(ADDRESS).isNotNull()).select(c.ACCOUNT_ID, ADDRESS, LABEL)
    return holding, at


def update_shared_keys(
    state: DataFrame,
    changes: DataFrame,
    touched_keys: DataFrame,
    previous_shared: DataFrame,
    *,
    config: BlockingConfig,
    broadcast: bool,
    checkpoint: StageHook,
) -> SharedUpdate:
    """The population's shared keys after a change, and the affected accounts (see the module
    doc).

    `state` is the previous run's `account_state` (keys as extracted), `changes` the
    `account_changes`, `touched_keys` the keys just extracted for the new and changed accounts
    (as extracted: no desk phones), `previous_shared` the previous run's `shared_keys`, with the
    same hub cap (`config.max_block_size`). `broadcast`: the touched accounts and their values
    are few enough to broadcast (`blocking.broadcast_touched_accounts`), so the state is
    scanned, never shuffled.

    `affected` are the current touched accounts, the re-judged ones, and every current holder
    of a recounted value of an enabled rule that was blockable (2..cap holders) before or is
    now; `rescored` as `blocking.incremental_rescore` says (the touched and re-judged accounts
    always, the holders of a value that crossed the cap, or, with "holders", every one).
    """

    def small(frame: DataFrame) -> DataFrame:
        return F.broadcast(frame) if broadcast else frame

    cap = F.lit(config.max_block_size)
    touched = accounts_with(changes, NEW, CHANGED, REMOVED)
    current_touched = accounts_with(changes, NEW, CHANGED)
    before = state_keys(state)  # the previous population's keys, as extracted
    # The touched accounts' state rows are picked before their keys are exploded: 30 key
    # rows an account are not made for the million others.
    old_touched = checkpoint(
        "touched_state_keys",
        state_keys(state.join(small(touched), c.ACCOUNT_ID, "left_semi")),
        cut=True,
    )
    new_touched = touched_keys.select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY)

    # Addresses a touched account holds or held: the only ones whose holders changed.
    touched_addresses = cut_lineage(
        address_rows(old_touched).unionByName(address_rows(new_touched)).select(ADDRESS).distinct()
    )
    # The values a touched account holds or held, as extracted (phones as `contact_phone`).
    touched_values = cut_lineage(
        old_touched.select(*_VALUE).unionByName(new_touched.select(*_VALUE)).distinct()
    )
    # Scan 1, the one pass over the population's keys: the unchanged accounts' rows that hold a
    # touched value (their holder counts are recounted) or sit at a touched address (its hub
    # status is judged again). Each is a broadcast lookup in the same scan.
    unchanged_keys = before.join(small(touched), c.ACCOUNT_ID, "left_anti")
    if KEY_PROBES in state.columns:
        holding_before, unchanged_at = _probed_neighbours(
            state, touched, touched_values, touched_addresses, small=small, checkpoint=checkpoint
        )
    else:  # a state written without probes: its keys are exploded and looked up
        neighbours = checkpoint(
            "touched_neighbours",
            unchanged_keys.withColumn(ADDRESS, key_address())
            .join(small(touched_values.withColumn("_value", F.lit(True))), _VALUE, "left")
            .join(small(touched_addresses.withColumn("_address", F.lit(True))), ADDRESS, "left")
            .where(F.col("_value").isNotNull() | F.col("_address").isNotNull())
            .select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY, "_value"),
            cut=True,
        )
        holding_before = neighbours.where(F.col("_value")).select(c.ACCOUNT_ID, *_VALUE)
        unchanged_at = address_rows(neighbours).join(touched_addresses, ADDRESS, "left_semi")
    status = (
        touched_addresses.join(
            address_holders(unchanged_at.unionByName(address_rows(old_touched)), "_before"),
            ADDRESS,
            "left",
        )
        .join(
            address_holders(unchanged_at.unionByName(address_rows(new_touched)), "_now"),
            ADDRESS,
            "left",
        )
        .select(
            ADDRESS,
            (F.coalesce(F.col("_before"), F.lit(0)) > cap).alias("_hub_before"),
            (F.coalesce(F.col("_now"), F.lit(0)) > cap).alias("_hub_now"),
        )
    )
    status = cut_lineage(status)
    flipped = status.where(F.col("_hub_before") != F.col("_hub_now")).select(ADDRESS)
    hubs = status.where(F.col("_hub_now")).select(ADDRESS)
    rejudged_ids = cut_lineage(
        unchanged_at.where(F.col(LABEL))
        .join(F.broadcast(flipped), ADDRESS, "left_semi")
        .select(c.ACCOUNT_ID)
        .distinct()
    )
    rejudged = rejudged_ids.count()
    if rejudged:
        # Scans 2 and 3 (only when an address flipped): the re-judged accounts' keys, and the
        # holders of their other label addresses (no touched account holds those).
        rejudged_keys = cut_lineage(
            before.join(F.broadcast(rejudged_ids), c.ACCOUNT_ID, "left_semi")
        )
        other = (
            address_rows(rejudged_keys)
            .where(F.col(LABEL))
            .select(ADDRESS)
            .distinct()
            .join(touched_addresses, ADDRESS, "left_anti")
        )
        addresses_before = address_rows(state_keys(state, attributes=ADDRESS_ROW_ATTRIBUTES))
        other_holders = address_holders(
            addresses_before.join(F.broadcast(cut_lineage(other)), ADDRESS, "left_semi").join(
                small(touched), c.ACCOUNT_ID, "left_anti"
            ),
            "_now",
        )
        hubs = hubs.unionByName(other_holders.where(F.col("_now") > cap).select(ADDRESS))
        logger.info(
            "shared keys: %d unchanged accounts have a label at an address that became or "
            "stopped being a hub; their desk phones are judged again",
            rejudged,
        )
    else:
        rejudged_keys = before.limit(0)
    hubs = cut_lineage(hubs.distinct())
    judged = checkpoint(
        "judged_keys", judge_desk_phones(new_touched.unionByName(rejudged_keys), hubs), cut=True
    )
    is_phone = F.col(c.ATTRIBUTE).isin(*_PHONES)
    judged_touched = judged.join(small(current_touched), c.ACCOUNT_ID, "left_semi")
    rejudged_phones = judged.join(F.broadcast(rejudged_ids), c.ACCOUNT_ID, "left_semi").where(
        is_phone
    )

    values = checkpoint(
        "recounted_values",
        _both_phone_attributes(
            old_touched.select(*_VALUE)
            .unionByName(new_touched.select(*_VALUE))
            .unionByName(rejudged_keys.where(is_phone).select(*_VALUE))
        ).distinct(),
        cut=True,
    )
    recounted = values.count()
    as_extracted = values.select(
        F.when(F.col(c.ATTRIBUTE) == F.lit(DESK_PHONE), F.lit(CONTACT_PHONE))
        .otherwise(F.col(c.ATTRIBUTE))
        .alias(c.ATTRIBUTE),
        c.VALUE_KEY,
    ).distinct()
    # The unchanged accounts' rows holding a recounted value (from scan 1, and, when an account
    # was re-judged, scan 4 for its phones no touched account holds), judged as the previous
    # run judged them (its desk phones are all kept), but for the re-judged accounts' phones.
    previous_desk = (
        previous_shared.where(F.col(c.ATTRIBUTE) == F.lit(DESK_PHONE))
        .join(small(values), _VALUE, "left_semi")
        .select(c.ACCOUNT_ID, c.VALUE_KEY, F.lit(True).alias("_desk"))
    )
    if rejudged:
        phones = cut_lineage(as_extracted.join(touched_values, _VALUE, "left_anti"))
        holding_before = holding_before.unionByName(
            unchanged_keys.join(F.broadcast(phones), _VALUE, "left_semi")
        )
    unchanged_rows = (
        holding_before.join(
            F.broadcast(rejudged_ids.withColumn("_rejudged", F.lit(True))), c.ACCOUNT_ID, "left"
        )
        .where(F.col("_rejudged").isNull() | ~is_phone)
        .join(F.broadcast(previous_desk), [c.ACCOUNT_ID, c.VALUE_KEY], "left")
        .select(
            c.ACCOUNT_ID,
            F.when(
                (F.col(c.ATTRIBUTE) == F.lit(CONTACT_PHONE)) & F.col("_desk").isNotNull(),
                F.lit(DESK_PHONE),
            )
            .otherwise(F.col(c.ATTRIBUTE))
            .alias(c.ATTRIBUTE),
            c.VALUE_KEY,
        )
    )
    # Cut before it is counted and joined to its counts: both sides would scan the state.
    holding = cut_lineage(
        unchanged_rows.unionByName(judged_touched)
        .unionByName(rejudged_phones)
        .join(small(values), _VALUE, "left_semi")
    )
    near = checkpoint(
        "recounted_holders",
        holding.join(
            holding.groupBy(*_VALUE).agg(F.count(F.lit(1)).alias(c.ACCOUNT_COUNT)), _VALUE
        ),
        cut=True,
    )
    shared = previous_shared.select(*_COLUMNS).join(small(values), _VALUE, "left_anti")
    shared = shared.unionByName(shared_rows(near))

    # Affected: holders of a recounted value of a rule, blockable before or now.
    count_before = (
        previous_shared.join(small(values), _VALUE, "left_semi")
        .groupBy(*_VALUE)
        .agg(F.max(c.ACCOUNT_COUNT).alias("_before"))
    )
    count_now = near.select(*_VALUE, F.col(c.ACCOUNT_COUNT).alias("_now")).distinct()
    counted = (
        values.where(F.col(c.ATTRIBUTE).isin(*config.rules))
        .join(count_now, _VALUE, "left")
        .join(count_before, _VALUE, "left")
        .select(
            *_VALUE,
            (F.coalesce(F.col("_now"), F.lit(0)) <= cap).alias("_blockable_now"),
            (F.coalesce(F.col("_before"), F.lit(0)) <= cap).alias("_blockable_before"),
        )
    )
    crossed = F.col("_blockable_now") != F.col("_blockable_before")
    pairing = counted.where(F.col("_blockable_now") | F.col("_blockable_before")).select(
        *_VALUE,
        (crossed | F.lit(config.incremental_rescore == "holders")).alias(RESCORED),
    )
    holders = near.join(small(pairing), _VALUE).select(c.ACCOUNT_ID, RESCORED)
    always = current_touched.unionByName(rejudged_ids).withColumn(RESCORED, F.lit(True))
    affected = (
        holders.unionByName(always)
        .groupBy(c.ACCOUNT_ID)
        .agg(F.max(F.col(RESCORED).cast("int")).cast("boolean").alias(RESCORED))
    )
    logger.info(
        "shared keys: %d values recounted (phones under both attributes), %d accounts re-judged",
        recounted,
        rejudged,
    )
    return SharedUpdate(shared=shared, affected=affected, rejudged=rejudged, recounted=recounted)
