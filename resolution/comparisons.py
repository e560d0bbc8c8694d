"""Comparison vectors: for each pair of accounts, one level per comparison.

A comparison looks at one kind of evidence of the two accounts and puts the pair in a level:
`-1` (no information: either side has no value), `0` (different), then increasingly close
agreement up to the exact level `k`. `resolution.fellegi_sunter` turns levels into weights.

Every account first gets a *profile*: its scalar standardised columns, and per attribute the
array of `struct(value_key, holders)` of the values it holds, where `holders` is how many
accounts hold that value (hub values included). Set comparisons (any shared card, any shared
return address) and exact scalar comparisons both read these arrays, so the same code gives
the exact level and its term frequency `tf = holders / accounts` of the rarest shared value:
agreeing on a warehouse used by 5,000 sellers then weighs far less than agreeing on a rare one.

Fuzzy levels (all native Spark):
- names: the best of token Jaccard (`张伟` / `Zhang Wei` are already one token set) and
  normalised Levenshtein similarity of the keys;
- addresses: token Jaccard of the romanised token sets; for logistics address sets, the best
  pair across the two accounts' sets;
- identity numbers: the two accounts' symmetric-deletion hashes overlap (one typo apart),
  computed on keyed hashes, so no raw number is ever compared here;
- phones: Levenshtein distance 1 between E.164 forms;
- registration IPs: the same /24 (IPv4) or /48 (IPv6) network.

Everything here is a pure `DataFrame -> DataFrame` transformation with no action.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features import columns as c
from resolution.config import ComparisonSpec
from resolution.fellegi_sunter import gamma_column, tf_column

VALUES = "values"  # map<attribute, array<struct<value_key, holders>>> of a profile
_L = "_l"
_R = "_r"

# Profile columns read by the comparisons (all produced by features.standardise).
_ACCOUNT_COLUMNS = (
    c.NAME_KEY,
    c.NAME_TOKENS,
    c.PHONE_E164,
    c.BIRTH_DATE,
    c.ID_NUMBER_FUZZY,
    c.IP_PREFIX,
    c.ADDRESS_TOKENS,
)
LOGISTICS_TOKENS = "logistics_tokens"  # array<array<string>>: token sets of logistics addresses


def profile_fields(accounts_std: DataFrame, logistics_std: DataFrame) -> DataFrame:
    """One row per account of `accounts_std`: the profile's own columns, the scalar columns
    comparisons read and `logistics_tokens` (token sets of its logistics addresses other than
    pickup points). They depend on the account's input only, so an incremental run keeps them
    in `account_state` (`resolution.incremental.state_rows`)."""
    tokens = (
        logistics_std.where(
            (F.col(c.ROLE) != F.lit("pickup")) & (F.size(F.col(c.ADDRESS_TOKENS)) > 0)
        )
        .groupBy(c.ACCOUNT_ID)
        .agg(F.collect_set(F.col(c.ADDRESS_TOKENS)).alias(LOGISTICS_TOKENS))
    )
    return accounts_std.select(c.ACCOUNT_ID, *_ACCOUNT_COLUMNS).join(
        tokens, on=c.ACCOUNT_ID, how="left"
    )


def with_values(fields: DataFrame, counted_keys: DataFrame) -> DataFrame:
    """`fields` (from `profile_fields`) with `values`: per attribute, the account's values with
    their holder counts. `counted_keys` is `(account_id, attribute, value_key, account_count)`
    from `resolution.blocking.count_value_holders`, before the hub cap."""
    per_attribute = counted_keys.groupBy(c.ACCOUNT_ID, c.ATTRIBUTE).agg(
        F.array_sort(
            F.collect_set(
                F.struct(
                    F.col(c.VALUE_KEY).alias("value_key"),
                    F.col(c.ACCOUNT_COUNT).cast("long").alias("holders"),
                )
            )
        ).alias(VALUES)
    )
    values = per_attribute.groupBy(c.ACCOUNT_ID).agg(
        F.map_from_entries(F.collect_list(F.struct(c.ATTRIBUTE, VALUES))).alias(VALUES)
    )
    return fields.join(values, on=c.ACCOUNT_ID, how="left")


def account_profiles(
    accounts_std: DataFrame, logistics_std: DataFrame, counted_keys: DataFrame
) -> DataFrame:
    """One row per account: the scalar columns comparisons read, `values` (every attribute's
    values with their holder counts) and `logistics_tokens` (token sets of its logistics
    addresses other than pickup points): `with_values(profile_fields(...), counted_keys)`.

    `counted_keys` is `(account_id, attribute, value_key, account_count)` from
    `resolution.blocking.count_value_holders`, before the hub cap.
    """
    return with_values(profile_fields(accounts_std, logistics_std), counted_keys)


def pair_profiles(pairs: DataFrame, profiles: DataFrame) -> DataFrame:
    """`pairs` (`account_id_l`, `account_id_r`, anything else) with both profiles attached,
    every profile column suffixed `_l` / `_r`."""
    columns = [name for name in profiles.columns if name != c.ACCOUNT_ID]
    left = profiles.select(
        F.col(c.ACCOUNT_ID).alias(c.ACCOUNT_ID_L), *[F.col(n).alias(n + _L) for n in columns]
    )
    right = profiles.select(
        F.col(c.ACCOUNT_ID).alias(c.ACCOUNT_ID_R), *[F.col(n).alias(n + _R) for n in columns]
    )
    return pairs.join(left, on=c.ACCOUNT_ID_L).join(right, on=c.ACCOUNT_ID_R)


# Level expressions -------------------------------------------------------------------------


def _values_of(side: str, attributes: Sequence[str]) -> Column:
    """The concatenated value arrays of `attributes` on one side (empty when none)."""
    empty = F.array().cast("array<struct<value_key:string,holders:bigint>>")
    parts = [F.coalesce(F.element_at(F.col(VALUES + side), F.lit(a)), empty) for a in attributes]
    return parts[0] if len(parts) == 1 else F.concat(*parts)


def _shared(attributes: Sequence[str]) -> tuple[Column, Column, Column]:
    """(either side has no value, the shared values, tf of the rarest shared value * N)."""
    left, right = _values_of(_L, attributes), _values_of(_R, attributes)
    shared = F.filter(
        left,
        lambda x: F.exists(right, lambda y: y.getField("value_key") == x.getField("value_key")),
    )
    missing = (F.size(left) == F.lit(0)) | (F.size(right) == F.lit(0))
    rarest = F.array_min(F.transform(shared, lambda x: x.getField("holders")))
    return missing, shared, rarest


def _jaccard(a: Column, b: Column) -> Column:
    union = F.size(F.array_union(a, b))
    return F.when(
        union > F.lit(0), F.size(F.array_intersect(a, b)).cast("double") / union.cast("double")
    )


def _levenshtein_similarity(a: Column, b: Column) -> Column:
    longest = F.greatest(F.length(a), F.length(b))
    return F.when(
        longest > F.lit(0),
        F.lit(1.0) - F.levenshtein(a, b).cast("double") / longest.cast("double"),
    )


def _best_pair_jaccard(sets_l: Column, sets_r: Column) -> Column:
    """The highest token Jaccard over every pair of one set from each side."""
    per_left = F.transform(
        sets_l,
        lambda a: F.array_max(
            F.transform(sets_r, lambda b: F.coalesce(_jaccard(a, b), F.lit(0.0)))
        ),
    )
    return F.array_max(per_left)


def _side(name: str, side: str) -> Column:
    return F.col(name + side)


def _fuzzy_similarity(spec: ComparisonSpec) -> tuple[Column, Column] | None:
    """(missing, similarity in [0, 1]) of a fuzzy kind; None for kinds without one."""
    if spec.kind == "name":
        a, b = _side(c.NAME_KEY, _L), _side(c.NAME_KEY, _R)
        missing = a.isNull() | b.isNull()
        similarity = F.greatest(
            F.coalesce(_jaccard(_side(c.NAME_TOKENS, _L), _side(c.NAME_TOKENS, _R)), F.lit(0.0)),
            F.coalesce(_levenshtein_similarity(a, b), F.lit(0.0)),
        )
        return missing, similarity
    if spec.kind == "address":
        a, b = _side(c.ADDRESS_TOKENS, _L), _side(c.ADDRESS_TOKENS, _R)
        missing = F.coalesce(F.size(a), F.lit(0)) * F.coalesce(F.size(b), F.lit(0)) == F.lit(0)
        return missing, F.coalesce(_jaccard(a, b), F.lit(0.0))
    if spec.kind == "logistics_address":
        a, b = _side(LOGISTICS_TOKENS, _L), _side(LOGISTICS_TOKENS, _R)
        missing = F.coalesce(F.size(a), F.lit(0)) * F.coalesce(F.size(b), F.lit(0)) == F.lit(0)
        return missing, F.coalesce(_best_pair_jaccard(a, b), F.lit(0.0))
    return None


def _close(spec: ComparisonSpec) -> tuple[Column, Column] | None:
    """(missing, close) of a kind with one fuzzy level; None otherwise."""
    if spec.kind == "identity":
        a, b = _side(c.ID_NUMBER_FUZZY, _L), _side(c.ID_NUMBER_FUZZY, _R)
        return a.isNull() | b.isNull(), F.coalesce(F.arrays_overlap(a, b), F.lit(False))
    if spec.kind == "phone":
        a, b = _side(c.PHONE_E164, _L), _side(c.PHONE_E164, _R)
        return a.isNull() | b.isNull(), F.levenshtein(a, b) <= F.lit(1)
    if spec.kind == "ip":
        a, b = _side(c.IP_PREFIX, _L), _side(c.IP_PREFIX, _R)
        return a.isNull() | b.isNull(), a == b
    return None


def comparison_levels(spec: ComparisonSpec, *, hub_cap: int | None = None) -> tuple[Column, Column]:
    """(gamma, tf) expressions of one comparison over a frame from `pair_profiles`.

    With `hub_cap`, a pair whose shared values of `spec.attributes` are all held by more than
    `hub_cap` accounts (hubs) gets level -1 (no information), whatever its fuzzy similarity.

    The exact level needs a shared value of one of `spec.attributes` (with frequency classes,
    the level of the rarest shared value's holder count: `ComparisonSpec.exact_labels`);
    `tf` is the share of
    accounts holding the rarest shared value (so it needs `accounts`, see `compare_pairs`) and
    is null below the exact level.
    """
    missing_exact, shared, rarest = _shared(spec.attributes)
    exact = F.size(shared) > F.lit(0)
    exact_level: Column = F.lit(spec.exact_level)
    for bound in spec.frequency_classes:
        # One level up per class bound the rarest shared value's holder count is within.
        exact_level = exact_level + F.when(rarest <= F.lit(bound), F.lit(1)).otherwise(F.lit(0))
    gamma = F.when(exact, exact_level)
    fuzzy = _fuzzy_similarity(spec)
    close = _close(spec)
    missing = missing_exact
    if fuzzy is not None:
        fuzzy_missing, similarity = fuzzy
        missing = missing_exact & fuzzy_missing
        for level in range(len(spec.thresholds), 0, -1):
            gamma = gamma.when(similarity >= F.lit(spec.thresholds[level - 1]), F.lit(level))
    elif close is not None:
        close_missing, is_close = close
        missing = missing_exact & close_missing
        gamma = gamma.when(F.coalesce(is_close, F.lit(False)), F.lit(1))
    gamma = gamma.when(missing, F.lit(-1)).otherwise(F.lit(0))
    if hub_cap is not None:
        gamma = F.when(exact & (rarest > F.lit(hub_cap)), F.lit(-1)).otherwise(gamma)
    return gamma.cast("int"), F.when(exact, rarest.cast("double"))


def value_holders(counted_keys: DataFrame, specs: Sequence[ComparisonSpec]) -> dict[str, int]:
    """Per comparison, how many accounts hold at least one value of its attributes: the
    denominator of its term frequencies (u is estimated among pairs where both sides hold a
    value, so a term frequency must be a share of the accounts that hold one). One small
    aggregation; comparisons whose attributes nobody holds get 1."""
    spark = counted_keys.sparkSession
    mapping = spark.createDataFrame(
        [(a, spec.name) for spec in specs for a in spec.attributes],
        f"{c.ATTRIBUTE} string, comparison string",
    )
    rows = (
        counted_keys.select(c.ACCOUNT_ID, c.ATTRIBUTE)
        .join(F.broadcast(mapping), on=c.ATTRIBUTE)
        .groupBy("comparison")
        .agg(F.countDistinct(c.ACCOUNT_ID).alias("holders"))
        .collect()
    )
    found = {row["comparison"]: int(row["holders"]) for row in rows}
    return {spec.name: max(found.get(spec.name, 1), 1) for spec in specs}


def compare_pairs(
    pairs: DataFrame,
    profiles: DataFrame,
    specs: Sequence[ComparisonSpec],
    *,
    holders: dict[str, int],
    hub_cap: int | None = None,
) -> DataFrame:
    """`account_id_l`, `account_id_r`, the pair's other columns, and per comparison
    `gamma_<name>` (int level) and, for tf-adjusted ones, `tf_<name>`: the rarest shared
    value's holders divided by `holders[name]` (see `value_holders`); null unless exact.
    `hub_cap`: pairs sharing only hub values of a comparison get -1 there
    (`comparison_levels`).

    Example::

        profiles = account_profiles(accounts_std, logistics_std, counted_keys)
        holders = value_holders(counted_keys, specs)
        gammas = compare_pairs(candidate_pairs, profiles, specs, holders=holders)
    """
    joined = pair_profiles(pairs, profiles)
    extra = [n for n in pairs.columns if n not in (c.ACCOUNT_ID_L, c.ACCOUNT_ID_R)]
    selected: list[Column] = [F.col(c.ACCOUNT_ID_L), F.col(c.ACCOUNT_ID_R), *map(F.col, extra)]
    for spec in specs:
        gamma, value_count = comparison_levels(spec, hub_cap=hub_cap)
        selected.append(gamma.alias(gamma_column(spec.name)))
        if spec.tf_adjusted:
            selected.append(
                (value_count / F.lit(float(max(holders[spec.name], 1)))).alias(tf_column(spec.name))
            )
    compared = joined.select(*selected)
    implied = [spec for spec in specs if spec.implied_by]
    if not implied:
        return compared
    # Evidence another comparison already holds counts once: agreement there (level >= 1)
    # leaves no information here (ComparisonSpec.implied_by).
    return compared.withColumns(
        {
            gamma_column(spec.name): F.when(
                F.greatest(*[F.col(gamma_column(n)) for n in spec.implied_by], F.lit(0))
                >= F.lit(1),
                F.lit(-1),
            ).otherwise(F.col(gamma_column(spec.name)))
            for spec in implied
        }
    )
