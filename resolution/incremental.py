"""Incremental resolution: resolve new and changed accounts against a resolved population.

A run keeps, per resolved account, a fingerprint of its input rows, its blocking keys and,
with the Fellegi-Sunter model, the profile its comparisons read (`account_state`). The next
run with `--incremental`:

1. fingerprints every account's input rows as read (`input_fingerprints`, native Spark:
   one hash per row, one aggregate) and compares with the state (`account_changes`): new,
   changed, unchanged or removed. The job then checks only the rows of new and changed
   accounts (and of accounts with a row quarantined before, `QUARANTINED_ROWS`) and narrows
   the changes to accepted accounts (`accepted_changes`): every other row is as the base run
   read and accepted it;
2. standardises only the new and changed accounts (the *touched* ones) and takes the other
   accounts' blocking keys from the state, so value frequencies (hubs, holder counts) are
   those of the whole population; with the evidence score and a previous run's `shared_keys`,
   the holder counts kept there are updated only for the values the change reaches
   (`resolution.shared_keys.update_shared_keys`, which also finds the affected accounts)
   instead of counted over the population's keys;
3. finds the *affected* accounts (`affected_accounts`): the touched ones and every account
   that holds a blockable value a touched account holds or held, and among them the
   *rescored* ones, whose pairs are scored again (`blocking.incremental_rescore`):
   - "touched": the touched accounts, and the holders of a value that crossed
     the hub cap (whose pairs it made or unmade). Every other accepted edge keeps its
     evidence (`kept_edges`), though a value it shares may have gained or lost a holder: one
     holder more or less moves a pair's weight by a fraction of a bit (with the evidence
     weights at most `frequency_penalty`, 0.5). Measured: the same membership as a full run at
     100,000 accounts with the evidence weights, but 0.5% of 1,500 accounts in another entity
     with the Fellegi-Sunter model, whose term-frequency weights move more;
   - "holders" (the default): every affected account. Every candidate pair whose evidence
     can have changed has both ends affected (a pair's evidence is its shared values and their
     holder counts, and a holder count changes only when a touched account gains or loses the
     value), so this matches a full run's pairs exactly, at the cost of re-pairing all those
     holders (9 to 20 times the touched accounts).
   A Fellegi-Sunter model is not trained again: the pairs are scored with the previous run's
   model, unchanged accounts compared through their kept profiles (`stored_profile_fields`);
4. recomputes only the *affected region* (`affected_region`): the previous entities of the
   rescored accounts, widened by one step along the edges, plus the new accounts; connected
   components and cluster control run there, and every other account keeps its entity.

Stable ids (`resolution.stable_ids`) then run over the whole membership as in a full run, so
an entity outside the region continues with its id and no change row. The job writes what
changed with Delta MERGE.

What can differ from a full run on the same input: with "touched", the pairs of unchanged
accounts whose shared values' holder counts moved (kept as they were); cluster control of an
entity one step beyond the region that lost a bridge to it (not re-examined), a
term-frequency weight of a value shared only through a hub, and with the Fellegi-Sunter
model the frequency class of a value compared but not blocked on (a birth date) that a
touched account gained or lost, and the model itself (a full run trains again). The
equivalence tests and benchmark measure the difference.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from features.hashing import hmac_sha256_hex
from resolution.blocking import ADDRESS_ROW_ATTRIBUTES, LABEL_PHONE_ADDRESS, key_address
from resolution.comparisons import VALUES
from resolution.config import BlockingConfig
from resolution.errors import require_columns
from resolution.lineage import cut_now

FINGERPRINT = "fingerprint"
# How many of an account's input rows were quarantined: an incremental run reads such an
# account's rows again (their quarantine rows are the run's too).
QUARANTINED_ROWS = "quarantined_rows"
BLOCKING_KEYS = "blocking_keys"
# One 64-bit probe per kept key and per address the keys hold (`key_probes`): what an
# incremental run's scan for the holders of the touched values reads instead of the keys.
KEY_PROBES = "key_probes"
PROFILE = "profile"
_NOT_STORED = (c.ACCOUNT_ID, VALUES)  # a profile's id and holder counts are not kept
CHANGE = "change"
RESCORED = "rescored"
NEW, CHANGED, UNCHANGED, REMOVED = "new", "changed", "unchanged", "removed"

KEY_TYPE = T.ArrayType(
    T.StructType(
        [
            T.StructField(c.ATTRIBUTE, T.StringType()),
            T.StructField(c.VALUE_KEY, T.StringType()),
        ]
    )
)


def accounts_with(changes: DataFrame, *kinds: str) -> DataFrame:
    """`(account_id)` of the `changes` rows whose change is one of `kinds`."""
    return changes.where(F.col(CHANGE).isin(*kinds)).select(c.ACCOUNT_ID)


def change_counts(changes: DataFrame) -> dict[str, int]:
    """How many accounts each kind of change has (`NEW`, `CHANGED`, `UNCHANGED`, `REMOVED`;
    absent kinds 0): one small aggregate of `account_changes`."""
    counted = {row[CHANGE]: row["count"] for row in changes.groupBy(CHANGE).count().collect()}
    return {kind: int(counted.get(kind, 0)) for kind in (NEW, CHANGED, UNCHANGED, REMOVED)}


def population_sizes(counts: dict[str, int]) -> tuple[int, int]:
    """(accounts the previous run resolved, accounts now) from `change_counts`.

    >>> population_sizes({NEW: 5, CHANGED: 2, UNCHANGED: 90, REMOVED: 3})
    (95, 97)
    """
    before = counts[CHANGED] + counts[UNCHANGED] + counts[REMOVED]
    now = counts[NEW] + counts[CHANGED] + counts[UNCHANGED]
    return before, now


def few_touched(counts: Mapping[str, int], config: BlockingConfig) -> bool:
    """Whether the new, changed and removed accounts of `change_counts` are few enough to
    broadcast (`blocking.broadcast_touched_accounts`): then the population's keys and inputs
    are scanned for them, not shuffled."""
    touched = sum(n for kind, n in counts.items() if kind != UNCHANGED)
    return touched <= config.broadcast_touched_accounts


def cut_lineage(frame: DataFrame) -> DataFrame:
    """`frame` computed now, with its lineage cut (`resolution.lineage.cut_now`): to the
    checkpoint directory when the executors are processes of their own (survives a lost
    executor), else kept on the executors (in one process the run dies with them).

    An incremental run joins the same few frames (changes, keys, edges, membership) into each
    other many times; with whole lineages, Spark's analysis of those self-joins (relation
    de-duplication) grew until it took minutes for a few thousand accounts. Nothing reaches
    the driver.
    """
    return cut_now(frame)


_LOW_32 = 0xFFFFFFFF


def _row_hashes(frame: DataFrame, dataset: str, salt: str) -> DataFrame:
    """`(account_id, _h)`: one salted 64-bit hash per row of `frame` with an account id, over
    every column as read.

    `xxhash64` (native, no text built per row) takes no null, so the row's nulls are hashed
    as a bit mask: ("a", null) and (null, "a") differ. A nested column (array, map, struct)
    (or a variant) is hashed as its JSON: Spark hashes no map."""
    columns = sorted(name for name in frame.columns if name != c.ACCOUNT_ID)
    nested = (T.ArrayType, T.MapType, T.StructType, T.VariantType)
    values = [
        F.to_json(F.col(name)) if isinstance(frame.schema[name].dataType, nested) else F.col(name)
        for name in columns
    ]
    nulls = F.lit(0).cast("long")
    for position, name in enumerate(columns):
        nulls = nulls + F.when(F.col(name).isNull(), F.lit(1 << (position % 63))).otherwise(0)
    account = F.col(c.ACCOUNT_ID).cast("string")
    return frame.where(account.isNotNull()).select(
        account.alias(c.ACCOUNT_ID),
        F.xxhash64(F.lit(salt), F.lit(dataset), nulls, *values).alias("_h"),
    )


def input_fingerprints(
    accounts: DataFrame, payments: DataFrame, logistics: DataFrame, *, key: bytes
) -> DataFrame:
    """`(account_id, fingerprint)` per account id found in any of the three inputs, as read
    (before any check: an incremental run compares these with the state to pick the rows it
    reads again): a keyed hash of all the account's rows, whatever their order.

    Each row is hashed on its own (`_row_hashes`, salted with a value derived from `key`), and
    an account's fingerprint is the HMAC with `key` of the sum of its rows' hashes (two 32-bit
    halves summed apart, so no sum overflows) and their count: a multiset hash, one
    aggregate over narrow rows instead of a sorted list of digests per account (building a
    JSON text and a SHA-256 per row of 4,000,000 was most of the 21 s the fingerprints took
    at 1,000,000 accounts). Equal fingerprints mean the same rows but for a 64-bit collision;
    the stored value is an HMAC, not a plain hash that a dictionary of card numbers could
    reverse. Every column of each frame counts: give the columns whose change matters.
    """
    for name, frame in (("accounts", accounts), ("payments", payments), ("logistics", logistics)):
        require_columns(frame, f"input_fingerprints({name})", [c.ACCOUNT_ID])
    salt = hmac.new(key, b"seller-er input fingerprint", "sha256").hexdigest()
    rows = (
        _row_hashes(accounts, c.ACCOUNTS, salt)
        .unionByName(_row_hashes(payments, c.PAYMENT_INSTRUMENTS, salt))
        .unionByName(_row_hashes(logistics, c.LOGISTICS, salt))
    )
    summed = rows.groupBy(c.ACCOUNT_ID).agg(
        F.sum(F.col("_h").bitwiseAND(F.lit(_LOW_32))).alias("_low"),
        F.sum(F.shiftrightunsigned(F.col("_h"), 32)).alias("_high"),
        F.count(F.lit(1)).alias("_rows"),
    )
    digest = F.concat_ws(":", F.col("_low"), F.col("_high"), F.col("_rows"))
    return summed.select(c.ACCOUNT_ID, hmac_sha256_hex(digest, key=key).alias(FINGERPRINT))


def account_changes(fingerprints: DataFrame, state: DataFrame) -> DataFrame:
    """`(account_id, change)` for every account of either side: `new` (not in the state),
    `changed` (another fingerprint), `unchanged`, or `removed` (in the state only)."""
    require_columns(fingerprints, "account_changes(fingerprints)", [c.ACCOUNT_ID, FINGERPRINT])
    require_columns(state, "account_changes(state)", [c.ACCOUNT_ID, FINGERPRINT])
    now = fingerprints.select(c.ACCOUNT_ID, F.col(FINGERPRINT).alias("_now"))
    before = state.select(c.ACCOUNT_ID, F.col(FINGERPRINT).alias("_before"))
    joined = now.join(before, on=c.ACCOUNT_ID, how="full_outer")
    change = (
        F.when(F.col("_before").isNull(), F.lit(NEW))
        .when(F.col("_now").isNull(), F.lit(REMOVED))
        .when(F.col("_now") == F.col("_before"), F.lit(UNCHANGED))
        .otherwise(F.lit(CHANGED))
    )
    return joined.select(c.ACCOUNT_ID, change.alias(CHANGE))


def accepted_changes(seen: DataFrame, accepted: DataFrame) -> DataFrame:
    """The `account_changes` of the inputs as read (`seen`, before any check) narrowed to
    accepted accounts: a new or changed account none of whose rows is accepted now
    (`accepted`: `(account_id)` of the accounts read again and accepted) is no account, or a
    removed one. An unchanged account was accepted before and its rows are the same."""
    require_columns(seen, "accepted_changes(seen)", [c.ACCOUNT_ID, CHANGE])
    require_columns(accepted, "accepted_changes(accepted)", [c.ACCOUNT_ID])
    marked = seen.join(
        accepted.select(c.ACCOUNT_ID, F.lit(True).alias("_accepted")), on=c.ACCOUNT_ID, how="left"
    )
    read_again = F.col(CHANGE).isin(NEW, CHANGED)
    change = F.when(~read_again | F.col("_accepted").isNotNull(), F.col(CHANGE)).when(
        F.col(CHANGE) == CHANGED, F.lit(REMOVED)
    )
    return marked.select(c.ACCOUNT_ID, change.alias(CHANGE)).where(F.col(CHANGE).isNotNull())


def profile_type(fields: DataFrame) -> T.StructType:
    """The type of `account_state.profile`: the columns of `fields`
    (`resolution.comparisons.profile_fields`) other than the account id and the values."""
    return T.StructType([f for f in fields.schema.fields if f.name not in _NOT_STORED])


def _probe(hashed: Column) -> Column:
    """A 64-bit hash as its 8 bytes: as a number it would be 13 to 19 digits, some of which
    pass the Luhn check, and read as card numbers by any scanner of the tables (and by
    `tests/test_protection.py`)."""
    return F.unhex(F.lpad(F.hex(hashed), 16, "0"))


def value_probe(attribute: Column, value_key: Column) -> Column:
    """The 64-bit probe of a key (`attribute`, `value_key`) in `key_probes`."""
    return _probe(F.xxhash64(F.lit("value"), attribute, value_key))


def address_probe(address: Column, label: Column) -> Column:
    """The 64-bit probe of an address a key holds in `key_probes`: `label` true for the
    address part of a `label_phone_address` key, false for an address attribute's key (as
    `resolution.blocking.address_rows` tells them apart)."""
    return _probe(F.xxhash64(F.lit("address"), label, address))


def key_probes(keys: Column) -> Column:
    """`account_state.key_probes` of an array of `(attribute, value_key)` keys: the
    `value_probe` of each key with a value, then the `address_probe` of each address one holds.

    An incremental run looks for the unchanged holders of the touched values and addresses by
    exploding these (8 bytes a key) and joining them with the touched ones' probes, instead of
    exploding every account's keys (30 strings an account, most of them 64-character digests):
    at 1,000,000 accounts a scan of 1.4 s instead of 10 s (`resolution.shared_keys`). A probe
    is a hash, so two different keys could share one: the chance that one of a run's 30M
    probes meets one of its 400,000 touched ones by accident is about 1 in 1.5 million, and
    the cost then is one holder too many in one value's count. The probes hash kept keys (a
    sensitive number is kept as its HMAC), so they reveal nothing the keys do not."""
    with_value = F.filter(keys, lambda k: k.getField(c.VALUE_KEY).isNotNull())
    values = F.transform(
        with_value, lambda k: value_probe(k.getField(c.ATTRIBUTE), k.getField(c.VALUE_KEY))
    )
    held = F.transform(
        F.filter(keys, lambda k: k.getField(c.ATTRIBUTE).isin(*ADDRESS_ROW_ATTRIBUTES)),
        lambda k: F.struct(
            key_address(k.getField(c.ATTRIBUTE), k.getField(c.VALUE_KEY)).alias("address"),
            (k.getField(c.ATTRIBUTE) == F.lit(LABEL_PHONE_ADDRESS)).alias("label"),
        ),
    )
    addresses = F.transform(
        F.filter(held, lambda a: a.getField("address").isNotNull()),
        lambda a: address_probe(a.getField("address"), a.getField("label")),
    )
    return F.concat(values, addresses)


def state_rows(
    fingerprints: DataFrame,
    blocking_keys: DataFrame,
    profiles: DataFrame | None = None,
    *,
    stored_type: T.StructType | None = None,
    quarantined: DataFrame | None = None,
) -> DataFrame:
    """`account_state` rows: `(account_id, fingerprint, blocking_keys, key_probes, profile,
    quarantined_rows)`, the keys as an array of `(attribute, value_key)` (empty for an account
    without any) and their `key_probes`, `quarantined_rows` from `quarantined`
    (`(account_id, quarantined_rows)`, `LoadedInputs.quarantined_accounts`; 0 for an account
    not in it).

    `profile` is the account's profile fields (`resolution.comparisons.profile_fields`: they
    depend on its own input only) as one struct, from `profiles` (extra columns such as
    `values` are left out), so that an incremental run with a Fellegi-Sunter model compares
    unchanged accounts without standardising them again. Without `profiles` (the evidence
    score compares no profiles) it is null, of type `stored_type`: the column is always
    there, so a MERGE never leaves an earlier run's profile on a changed account."""
    keys = blocking_keys.groupBy(c.ACCOUNT_ID).agg(
        F.array_sort(F.collect_list(F.struct(c.ATTRIBUTE, c.VALUE_KEY))).alias(BLOCKING_KEYS)
    )
    rows = fingerprints.join(keys, on=c.ACCOUNT_ID, how="left")
    if profiles is not None:
        stored = profile_type(profiles)
        rows = rows.join(
            profiles.select(c.ACCOUNT_ID, F.struct(*stored.fieldNames()).alias(PROFILE)),
            on=c.ACCOUNT_ID,
            how="left",
        )
        profile = F.col(PROFILE)
    elif stored_type is not None:
        profile = F.lit(None).cast(stored_type)
    else:
        raise ValueError("state_rows: give the profiles or their stored_type")
    flagged = F.lit(0)
    if quarantined is not None:
        rows = rows.join(
            quarantined.select(c.ACCOUNT_ID, QUARANTINED_ROWS), on=c.ACCOUNT_ID, how="left"
        )
        flagged = F.coalesce(F.col(QUARANTINED_ROWS), F.lit(0))
    kept = F.coalesce(F.col(BLOCKING_KEYS), F.array().cast(KEY_TYPE))
    return rows.select(
        c.ACCOUNT_ID,
        FINGERPRINT,
        kept.alias(BLOCKING_KEYS),
        key_probes(kept).alias(KEY_PROBES),
        profile.alias(PROFILE),
        flagged.cast("int").alias(QUARANTINED_ROWS),
    )


def stored_profile_fields(state: DataFrame) -> DataFrame:
    """The profile fields kept in `state` (`account_id` and the columns of `profile`), as
    `resolution.comparisons.profile_fields` gives them. Fails when the state keeps none."""
    require_columns(state, "stored_profile_fields(state)", [c.ACCOUNT_ID, PROFILE])
    return state.select(c.ACCOUNT_ID, f"{PROFILE}.*")


def state_keys(state: DataFrame, *, attributes: Sequence[str] | None = None) -> DataFrame:
    """The `(account_id, attribute, value_key)` rows kept in `account_state`; with
    `attributes`, those of these attributes only (picked before the 30 key rows an account
    are made)."""
    keys = F.col(BLOCKING_KEYS)
    if attributes is not None:
        keys = F.filter(keys, lambda k: k.getField(c.ATTRIBUTE).isin(*attributes))
    return state.select(c.ACCOUNT_ID, F.explode(keys).alias("_k")).select(
        c.ACCOUNT_ID,
        F.col("_k").getField(c.ATTRIBUTE).alias(c.ATTRIBUTE),
        F.col("_k").getField(c.VALUE_KEY).alias(c.VALUE_KEY),
    )


def merged_keys(state: DataFrame, changes: DataFrame, touched_keys: DataFrame) -> DataFrame:
    """The whole population's blocking keys: the state's for unchanged accounts, the freshly
    extracted `touched_keys` for new and changed ones; removed accounts drop out."""
    unchanged = accounts_with(changes, UNCHANGED)
    kept = state_keys(state).join(unchanged, on=c.ACCOUNT_ID, how="left_semi")
    return kept.unionByName(touched_keys.select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY))


def affected_accounts(
    counted_keys: DataFrame,
    previous_keys: DataFrame,
    changes: DataFrame,
    *,
    config: BlockingConfig,
    broadcast: bool = False,
    touched_keys: DataFrame | None = None,
) -> DataFrame:
    """`(account_id, rescored)`: the touched (new, changed) accounts and every current account
    holding a value of an enabled rule that a touched or removed account holds now or held
    before, and that was blockable (held by at most the cap) before or is now. Their keys are
    the ones candidate pairs are built from.

    `rescored` marks the accounts whose pairs are all scored again (`build_candidate_pairs`
    with `focus`), as `config.incremental_rescore` says:

    - "touched": the touched accounts, and the holders of a value that crossed the cap (a
      hub now and blockable before, or the other way): the pairs it made or unmade;
    - "holders": every affected account, so that every pair whose shared values' holder
      counts moved is scored again with the new counts.

    `counted_keys` are the merged keys with holder counts (`count_value_holders`);
    `previous_keys` the state's keys (`state_keys`). A value that is a hub both before and now
    pairs nobody, so its holders are not affected by it. `touched_keys`, when given, are the
    keys just extracted for the new and changed accounts (before desk phones are set aside):
    their values are taken from there instead of from a scan of `counted_keys` (a desk phone
    then counts as a contact phone: a few holders more are re-paired, with the same result).

    `counted_keys` is scanned once: its rows holding a touched value (with their holder
    counts) give both the values' counts now and their holders.

    `broadcast`: the touched accounts and their values are few (the caller knows how many):
    they are broadcast, so the population's keys are only scanned, never shuffled. At 1,000,000
    accounts with a 1% change the shuffled joins took 142 s of an incremental run.
    """

    def small(frame: DataFrame) -> DataFrame:
        return F.broadcast(frame) if broadcast else frame

    touched = accounts_with(changes, NEW, CHANGED, REMOVED)
    ruled = F.col(c.ATTRIBUTE).isin(*config.rules)
    if touched_keys is None:
        values_now = counted_keys.where(ruled).join(
            small(touched), on=c.ACCOUNT_ID, how="left_semi"
        )
    else:
        values_now = touched_keys.where(ruled)
    values_before = previous_keys.where(ruled).join(
        small(touched), on=c.ACCOUNT_ID, how="left_semi"
    )
    # Read three times below: computed once.
    touched_values = cut_lineage(
        values_now.select(c.ATTRIBUTE, c.VALUE_KEY)
        .unionByName(values_before.select(c.ATTRIBUTE, c.VALUE_KEY))
        .distinct()
    )
    value = [c.ATTRIBUTE, c.VALUE_KEY]
    cap = F.lit(config.max_block_size)
    # The one scan of the population's keys: the rows holding a touched value.
    near = cut_lineage(
        counted_keys.join(small(touched_values), on=value, how="left_semi").select(
            c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT
        )
    )
    count_now = near.select(
        c.ATTRIBUTE, c.VALUE_KEY, F.col(c.ACCOUNT_COUNT).alias("_now")
    ).distinct()
    count_before = (
        previous_keys.join(small(touched_values), on=value, how="left_semi")
        .groupBy(c.ATTRIBUTE, c.VALUE_KEY)
        .agg(F.count(F.lit(1)).alias("_before"))
    )
    counted = (
        touched_values.join(count_now, on=value, how="left")
        .join(count_before, on=value, how="left")
        .select(
            c.ATTRIBUTE,
            c.VALUE_KEY,
            (F.coalesce("_now", F.lit(0)) <= cap).alias("_blockable_now"),
            (F.coalesce("_before", F.lit(0)) <= cap).alias("_blockable_before"),
        )
    )
    # A value that crossed the cap rescores its holders' pairs (under "holders", any value).
    crossed = F.col("_blockable_now") != F.col("_blockable_before")
    pairing = counted.where(F.col("_blockable_now") | F.col("_blockable_before")).select(
        c.ATTRIBUTE,
        c.VALUE_KEY,
        (crossed | F.lit(config.incremental_rescore == "holders")).alias(RESCORED),
    )
    holders = near.join(small(pairing), on=value).select(c.ACCOUNT_ID, RESCORED)
    current_touched = accounts_with(changes, NEW, CHANGED).withColumn(RESCORED, F.lit(True))
    return (
        holders.unionByName(current_touched)
        .groupBy(c.ACCOUNT_ID)
        .agg(F.max(F.col(RESCORED).cast("int")).cast("boolean").alias(RESCORED))
    )


def rescored_accounts(affected: DataFrame) -> DataFrame:
    """`(account_id)` of the `affected_accounts` whose pairs are all scored again."""
    return affected.where(F.col(RESCORED)).select(c.ACCOUNT_ID)


STANDS = "stands"


def edge_fates(previous_edges: DataFrame, affected: DataFrame, changes: DataFrame) -> DataFrame:
    """`previous_edges` with `stands`: true for an edge that stands (no end removed, and not
    scored again), false for one this run drops or scores again. A pair is scored again when
    both ends are `affected` and one is `rescored` (`affected_accounts`; without a `rescored`
    column, every affected account is). One pass gives both the kept edges and the write
    scope of `match_edges` (`write_scopes`)."""
    gone = accounts_with(changes, REMOVED)
    rescored = F.col(RESCORED) if RESCORED in affected.columns else F.lit(True)
    # One row an account at either end (the aggregation also drops repeats): removed, or
    # affected (and whether rescored).
    ended = (
        affected.select(c.ACCOUNT_ID, rescored.alias(RESCORED), F.lit(False).alias("_gone"))
        .unionByName(
            gone.select(
                c.ACCOUNT_ID,
                F.lit(None).cast("boolean").alias(RESCORED),
                F.lit(True).alias("_gone"),
            )
        )
        .groupBy(c.ACCOUNT_ID)
        .agg(F.max(RESCORED).alias(RESCORED), F.max("_gone").alias("_gone"))
    )
    flagged = previous_edges.join(
        ended.select(
            F.col(c.ACCOUNT_ID).alias(c.ACCOUNT_ID_L),
            F.col("_gone").alias("_gone_l"),
            F.col(RESCORED).alias("_l"),
        ),
        c.ACCOUNT_ID_L,
        "left",
    ).join(
        ended.select(
            F.col(c.ACCOUNT_ID).alias(c.ACCOUNT_ID_R),
            F.col("_gone").alias("_gone_r"),
            F.col(RESCORED).alias("_r"),
        ),
        c.ACCOUNT_ID_R,
        "left",
    )
    removed_end = F.coalesce(F.col("_gone_l"), F.lit(False)) | F.coalesce(
        F.col("_gone_r"), F.lit(False)
    )
    scored_again = F.col("_l").isNotNull() & F.col("_r").isNotNull() & (F.col("_l") | F.col("_r"))
    return flagged.select(
        *previous_edges.columns,
        (~(removed_end | F.coalesce(scored_again, F.lit(False)))).alias(STANDS),
    )


def kept_edges(previous_edges: DataFrame, affected: DataFrame, changes: DataFrame) -> DataFrame:
    """The previous run's accepted edges that stand (`edge_fates`)."""
    fates = edge_fates(previous_edges, affected, changes)
    return fates.where(F.col(STANDS)).drop(STANDS)


def affected_region(
    previous_membership: DataFrame,
    affected: DataFrame,
    edges: DataFrame,
    changes: DataFrame,
) -> DataFrame:
    """`(account_id)` of the accounts whose entity is recomputed: every account of a previous
    entity holding an affected or removed account or an account one edge away from an
    affected one (cluster control may have cut a bridge between entities), plus the new
    accounts; removed accounts drop out. `edges` are this run's accepted edges (kept and new).
    A previous entity is in the region whole or not at all."""
    gone = accounts_with(changes, REMOVED)
    affected_ids = affected.select(c.ACCOUNT_ID)
    hop = (
        edges.join(
            affected_ids.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L),
            c.ACCOUNT_ID_L,
            "left_semi",
        )
        .select(F.col(c.ACCOUNT_ID_R).alias(c.ACCOUNT_ID))
        .unionByName(
            edges.join(
                affected_ids.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_R),
                c.ACCOUNT_ID_R,
                "left_semi",
            ).select(F.col(c.ACCOUNT_ID_L).alias(c.ACCOUNT_ID))
        )
    )
    seeds = affected_ids.unionByName(hop).distinct()
    entities = (
        previous_membership.join(seeds.unionByName(gone), on=c.ACCOUNT_ID, how="left_semi")
        .select(c.ENTITY_ID)
        .distinct()
    )
    members = previous_membership.join(entities, on=c.ENTITY_ID, how="left_semi").select(
        c.ACCOUNT_ID
    )
    new = accounts_with(changes, NEW)
    return (
        members.unionByName(new)
        .unionByName(seeds)
        .distinct()
        .join(gone, on=c.ACCOUNT_ID, how="left_anti")
    )


@dataclass(frozen=True)
class WriteScopes:
    """The keys of the output rows an incremental run can have changed; every other row of
    `entity_membership`, `entities`, `match_edges` and `account_state` is the previous run's.
    The job MERGEs only within these (`OutputWriter.merge(..., scope=...)`), so the cost of
    writing follows the change, not the population.

    `accounts` (`account_id`): the region and the removed accounts (`entity_membership`);
    `entities` (`entity_id`): the entities of those accounts before and now (`entities`);
    `edges` (`account_id_l`, `account_id_r`): the previous edges that did not stand, and the
    new ones (`match_edges`); `state` (`account_id`): the new, changed and removed accounts
    (`account_state`, which keeps each account's keys as extracted from its own input).
    `broadcast`: each scope is small enough to broadcast (at most
    `blocking.broadcast_region_accounts` rows), so a MERGE scans its table's rows for the
    scope's rather than shuffling them.
    """

    accounts: DataFrame
    entities: DataFrame
    edges: DataFrame
    state: DataFrame
    broadcast: bool = False


def write_scopes(
    changes: DataFrame,
    region: DataFrame,
    *,
    previous_membership: DataFrame,
    membership: DataFrame,
    dropped_edges: DataFrame,
    new_edges: DataFrame,
) -> WriteScopes:
    """The `WriteScopes` of an incremental run: `region` as `affected_region` gives it,
    `membership` this run's (`account_id`, `entity_id`), `dropped_edges` the previous edges
    that do not stand (`edge_fates`) and `new_edges` the edges accepted among the affected
    accounts."""
    gone = accounts_with(changes, REMOVED)
    accounts = region.select(c.ACCOUNT_ID).unionByName(gone).distinct()
    entities = (
        previous_membership.join(accounts, on=c.ACCOUNT_ID, how="left_semi")
        .select(c.ENTITY_ID)
        .unionByName(
            membership.join(accounts, on=c.ACCOUNT_ID, how="left_semi").select(c.ENTITY_ID)
        )
        .distinct()
    )
    pair = [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R]
    edges = dropped_edges.select(*pair).unionByName(new_edges.select(*pair)).distinct()
    state = accounts_with(changes, NEW, CHANGED, REMOVED)
    return WriteScopes(accounts=accounts, entities=entities, edges=edges, state=state)
