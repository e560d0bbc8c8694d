"""The entity network and investigation leads, built from resolved entities.

Two outputs of the data contract sit on top of entity resolution:

- `entity_links`: entity-to-entity relations too weak or too common to merge on. Two different
  entities are linked when some of their accounts hold the same value of a logistics, payment
  or device attribute (a warehouse, a label contact phone, a card). One row per entity pair and
  link type, with how many distinct values of that type they share. A link is worth following
  when the value is rare among entities: a supplier's warehouse or a shipping agent's phone
  serving a few rings. A value held by more than `max_entities_per_value` entities (5 by
  default: a consolidator's warehouse, its desk phone) links no one: it would make many links
  that say nothing and is reported in `hub_values` already. The cap counts entities, not
  accounts, so it is independent of the blocking cap: a value too common to block on still
  links the few entities holding it. Carrier pickup points are left out by kind (not in the
  default attributes).
- `entity_leads`: entities ranked for investigation, with the reasons in words. Enforcement
  signals never decide a match (the contract); here they decide what is worth a look, and how
  big and how tightly knit the entity is decides how much it is worth.

Both are pure DataFrame transforms: nothing runs until the caller asks, nothing data-sized
reaches the driver. Value keys (hashed identity and payment numbers, address keys) never leave
this module: links and reasons carry counts and attribute names only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from features import columns as c
from resolution.blocking import count_value_holders
from resolution.config import LeadsConfig, NetworkConfig
from resolution.errors import ConfigError, require_columns

logger = logging.getLogger(__name__)

# entity_links ------------------------------------------------------------------------------
ENTITY_ID_L = "entity_id_l"
ENTITY_ID_R = "entity_id_r"
LINK_TYPE = "link_type"
SHARED_VALUE_COUNT = "shared_value_count"
MAX_VALUE_HOLDERS = "max_value_holders"
# count_link_values
LINKING_VALUES = "linking_values"
CAPPED_VALUES = "capped_values"
# entity_leads ------------------------------------------------------------------------------
LEAD_RANK = "lead_rank"
LEAD_SCORE = "lead_score"
REASONS = "reasons"
ACCOUNTS_WITH_SIGNALS = "accounts_with_signals"
WEIGHTED_SIGNALS = "weighted_signals"
MEAN_MATCH_PROBABILITY = "mean_match_probability"
MATCHED_PAIRS = "matched_pairs"
# One count column per contract signal type.
SIGNAL_COLUMNS = MappingProxyType(
    {
        "rights_holder_complaint": "rights_holder_complaints",
        "customer_complaint": "customer_complaints",
        "test_buy_counterfeit": "test_buys_counterfeit",
        "listing_takedown": "listing_takedowns",
        "other": "other_signals",
    }
)
LEAD_COLUMNS = (
    c.ENTITY_ID,
    LEAD_RANK,
    LEAD_SCORE,
    REASONS,
    c.ACCOUNT_COUNT,
    c.SIGNAL_COUNT,
    *SIGNAL_COLUMNS.values(),
    ACCOUNTS_WITH_SIGNALS,
    WEIGHTED_SIGNALS,
    SHARED_VALUE_COUNT,
    MEAN_MATCH_PROBABILITY,
    MATCHED_PAIRS,
)

_HOLDERS = "_holders"
_ENTITIES = "_entities"
_PAIR = "_pair"
_AMOUNT = "_amount"
_EXACT_PROBABILITY = "decimal(18,15)"
_SHARED = "_shared"

# What an investigator calls each attribute (singular, plural), for `reasons`.
ATTRIBUTE_NOUNS = MappingProxyType(
    {
        "phone": ("phone number", "phone numbers"),
        "email": ("email address", "email addresses"),
        "id_number": ("identity number", "identity numbers"),
        "name": ("name", "names"),
        "birth_date": ("birth date", "birth dates"),
        "card": ("bank card", "bank cards"),
        "bank_account": ("bank account", "bank accounts"),
        "alipay": ("Alipay account", "Alipay accounts"),
        "wallet": ("wallet", "wallets"),
        "payment_other": ("other payment account", "other payment accounts"),
        "device": ("device", "devices"),
        "registration_ip": ("registration IP", "registration IPs"),
        "registered_address": ("registered address", "registered addresses"),
        "ship_from_address": ("ship-from address", "ship-from addresses"),
        "return_address": ("return address", "return addresses"),
        "warehouse_address": ("warehouse address", "warehouse addresses"),
        "pickup_address": ("pickup point", "pickup points"),
        "contact_phone": ("label contact phone", "label contact phones"),
    }
)
SIGNAL_NOUNS = MappingProxyType(
    {
        "rights_holder_complaint": ("rights-holder complaint", "rights-holder complaints"),
        "customer_complaint": ("customer complaint", "customer complaints"),
        "test_buy_counterfeit": ("counterfeit test buy", "counterfeit test buys"),
        "listing_takedown": ("listing takedown", "listing takedowns"),
        "other": ("other signal", "other signals"),
    }
)


def _require_valid(what: str, problems: list[str]) -> None:
    if problems:
        raise ConfigError(f"{what}: " + "; ".join(problems))


def _members(membership: DataFrame) -> DataFrame:
    return membership.select(c.ACCOUNT_ID, c.ENTITY_ID).where(
        F.col(c.ACCOUNT_ID).isNotNull() & F.col(c.ENTITY_ID).isNotNull()
    )


def _entity_values(
    membership: DataFrame, blocking_keys: DataFrame, *, attributes: Sequence[str]
) -> DataFrame:
    """Distinct `(attribute, value_key, entity_id)` with `_holders`: how many entities hold the
    value.

    With holder counts in `blocking_keys` (`account_count`, as `Resolution.blocking_keys` has
    them), a value held by one account is dropped before the join: it cannot be held by two
    entities, and it is most of the population's keys (a device, an email, a card of its own).
    """
    wanted = F.col(c.ATTRIBUTE).isin(*attributes) & F.col(c.VALUE_KEY).isNotNull()
    if c.ACCOUNT_COUNT in blocking_keys.columns:
        wanted = wanted & (F.col(c.ACCOUNT_COUNT) >= 2)
    keys = blocking_keys.where(wanted).select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY)
    held = keys.join(_members(membership), on=c.ACCOUNT_ID).select(
        c.ATTRIBUTE, c.VALUE_KEY, c.ENTITY_ID
    )
    by_value = Window.partitionBy(c.ATTRIBUTE, c.VALUE_KEY)
    return held.distinct().withColumn(_HOLDERS, F.count(F.lit(1)).over(by_value))


def entity_links(
    membership: DataFrame, blocking_keys: DataFrame, *, config: NetworkConfig
) -> DataFrame:
    """Entity pairs whose accounts share logistics, payment or device values.

    Requires `membership` (`account_id`, `entity_id`) and `blocking_keys` (`account_id`,
    `attribute`, `value_key`, as `resolution.blocking.extract_blocking_keys` gives; holder
    counts `account_count`, when present, must be right: values counted once are skipped;
    other columns are ignored). Returns one row per entity pair and link type:

    - `entity_id_l` < `entity_id_r`: two different entities;
    - `link_type`: `shared_` + the attribute (`shared_warehouse_address`, `shared_card`, ...);
    - `shared_value_count` (long): how many distinct values of that attribute both hold;
    - `max_value_holders` (int): how many entities hold the most common of those values (2: the
      values are the pair's alone).

    Values of `config.attributes` held by 2..`max_entities_per_value` entities make links, however
    many accounts hold them; more common values make none (`count_link_values` counts them).
    Two entities are linked only if entity resolution kept them apart: a value that made the
    scoring merge two rings gives no link. Null keys and accounts without an entity are
    ignored. Each value's entities are paired inside one row (a sorted array,
    capped), so the work is bounded by the cap, never by the number of entities.

    Example::

        keys = extract_blocking_keys(accounts_std, payments_std, logistics_std,
                                     attributes=EXACT_ATTRIBUTES)
        links = entity_links(resolution.entity_membership, keys, config=NetworkConfig())
        links.where(F.col("link_type") == "shared_card").show()
    """
    require_columns(membership, "membership", [c.ACCOUNT_ID, c.ENTITY_ID])
    require_columns(blocking_keys, "blocking_keys", [c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY])
    _require_valid("entity_links config", config.problems())
    logger.debug("entity links over %s", ", ".join(config.attributes))

    values = _entity_values(membership, blocking_keys, attributes=config.attributes)
    linking = values.where(
        (F.col(_HOLDERS) >= 2) & (F.col(_HOLDERS) <= F.lit(config.max_entities_per_value))
    )
    per_value = linking.groupBy(c.ATTRIBUTE, c.VALUE_KEY).agg(
        F.max(_HOLDERS).cast("int").alias(_HOLDERS),
        F.array_sort(F.collect_list(c.ENTITY_ID)).alias(_ENTITIES),
    )
    entities = F.col(_ENTITIES)
    pairs = F.flatten(
        F.transform(
            entities,
            lambda left: F.transform(
                F.filter(entities, lambda right: right > left),
                lambda right: F.struct(left.alias(ENTITY_ID_L), right.alias(ENTITY_ID_R)),
            ),
        )
    )
    exploded = per_value.select(c.ATTRIBUTE, _HOLDERS, F.explode(pairs).alias(_PAIR))
    return exploded.groupBy(
        F.col(f"{_PAIR}.{ENTITY_ID_L}").alias(ENTITY_ID_L),
        F.col(f"{_PAIR}.{ENTITY_ID_R}").alias(ENTITY_ID_R),
        F.concat(F.lit("shared_"), F.col(c.ATTRIBUTE)).alias(LINK_TYPE),
    ).agg(
        F.count(F.lit(1)).alias(SHARED_VALUE_COUNT),
        F.max(_HOLDERS).cast("int").alias(MAX_VALUE_HOLDERS),
    )


def count_link_values(
    membership: DataFrame, blocking_keys: DataFrame, *, config: NetworkConfig
) -> DataFrame:
    """Diagnostics of `entity_links`: per attribute, `linking_values` (held by 2..cap entities:
    they make links) and `capped_values` (held by more: left out). Same inputs as
    `entity_links`; one row per attribute with at least one value held by two entities.

    Example::

        count_link_values(membership, keys, config=NetworkConfig()).show()
    """
    require_columns(membership, "membership", [c.ACCOUNT_ID, c.ENTITY_ID])
    require_columns(blocking_keys, "blocking_keys", [c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY])
    _require_valid("count_link_values config", config.problems())
    values = _entity_values(membership, blocking_keys, attributes=config.attributes)
    per_value = (
        values.where(F.col(_HOLDERS) >= 2).groupBy(c.ATTRIBUTE, c.VALUE_KEY).agg(F.max(_HOLDERS))
    )
    capped = F.col(f"max({_HOLDERS})") > F.lit(config.max_entities_per_value)
    return per_value.groupBy(c.ATTRIBUTE).agg(
        F.count(F.when(~capped, F.lit(1))).alias(LINKING_VALUES),
        F.count(F.when(capped, F.lit(1))).alias(CAPPED_VALUES),
    )


def _lookup(mapping: Mapping[str, object], key: Column) -> Column:
    table = F.create_map(*[F.lit(x) for kv in sorted(mapping.items()) for x in kv])
    return F.element_at(table, key)


def _counted(count: Column, nouns: tuple[str, str]) -> Column:
    """`1 device`, `3 devices`."""
    singular, plural = nouns
    return F.concat(
        count.cast("string"), F.when(count == 1, F.lit(f" {singular}")).otherwise(f" {plural}")
    )


def _join_words(words: Column) -> Column:
    """`a`, `a and b`, `a, b and c`; null for an empty array."""
    n = F.size(words)
    return F.when(n == 1, F.element_at(words, 1)).when(
        n > 1,
        F.concat(
            F.array_join(F.slice(words, F.lit(1), n - 1), ", "),
            F.lit(" and "),
            F.element_at(words, -1),
        ),
    )


def _signal_totals(
    members: DataFrame, signals: DataFrame, *, weights: Mapping[str, float]
) -> DataFrame:
    """Per entity: `signal_count`, one count per signal type, `accounts_with_signals` and
    `weighted_signals`."""
    # Types outside the contract's five (quarantined upstream) count as `other`.
    kind = F.when(F.col(c.SIGNAL_TYPE).isin(*c.SIGNAL_TYPES), F.col(c.SIGNAL_TYPE)).otherwise(
        F.lit("other")
    )
    # The contract's default count is 1; negative counts are quarantined upstream, count 0 here.
    amount = F.greatest(F.coalesce(F.col(c.SIGNAL_COUNT).cast("long"), F.lit(1)), F.lit(0))
    rows = signals.select(c.ACCOUNT_ID, kind.alias(c.SIGNAL_TYPE), amount.alias(_AMOUNT)).join(
        members, on=c.ACCOUNT_ID
    )
    n = F.col(_AMOUNT)
    totals = rows.groupBy(c.ENTITY_ID).agg(
        F.sum(n).alias(c.SIGNAL_COUNT),
        *[
            F.sum(F.when(F.col(c.SIGNAL_TYPE) == kind_name, n).otherwise(0)).alias(column)
            for kind_name, column in SIGNAL_COLUMNS.items()
        ],
        F.count_distinct(F.when(n > 0, F.col(c.ACCOUNT_ID))).alias(ACCOUNTS_WITH_SIGNALS),
    )
    # Weighted from the counts per type (whole numbers), in a fixed order: a sum of weighted
    # rows depends on the order Spark adds them in, so on the partitioning, by a unit in the
    # last place, enough to swap two leads whose scores are otherwise equal.
    weighted = F.lit(0.0)
    for kind_name, column in SIGNAL_COLUMNS.items():
        weight = float(weights.get(kind_name, 0.0))
        if weight:
            weighted = weighted + F.lit(weight) * F.col(column)
    return totals.withColumn(WEIGHTED_SIGNALS, weighted.cast("double"))


def _grouped_members(members: DataFrame, sizes: DataFrame, *, broadcast_max: int) -> DataFrame:
    """The `members` of the entities of two accounts or more (`sizes`: `entity_id`,
    `account_count`): only they can share a value or hold an accepted pair inside their entity.
    Broadcast when they are at most `broadcast_max` accounts (one aggregate over `sizes` tells):
    the joins with the keys and the edges then scan those, not shuffle them with every account
    (at 1,000,000 accounts, 620,000 of them alone in their entity)."""
    grouped_sizes = sizes.where(F.col(c.ACCOUNT_COUNT) >= 2)
    grouped = members.join(grouped_sizes.select(c.ENTITY_ID), c.ENTITY_ID, "left_semi")
    accounts = grouped_sizes.agg(F.sum(c.ACCOUNT_COUNT)).first()
    total = 0 if accounts is None or accounts[0] is None else int(accounts[0])
    return F.broadcast(grouped) if total <= broadcast_max else grouped


def _shared_inside(
    members: DataFrame, blocking_keys: DataFrame, *, config: LeadsConfig
) -> DataFrame:
    """Per entity: `shared_value_count`, the distinct values of `config.attributes` held by at
    least two of its accounts (and by at most `max_value_holders` accounts in all), and
    `_shared`: those counts per attribute as phrases (`3 bank cards`), most first."""
    # Each (account, attribute, value) once, as `count_value_holders` also needs: an entity's
    # holders of a value are then counted, not counted distinct (a distinct count over the
    # 1,000,000 accounts' shared keys took twice as long: 9.0 s against 4.2 s on 2 cores).
    counted = (
        blocking_keys
        if c.ACCOUNT_COUNT in blocking_keys.columns
        else count_value_holders(
            blocking_keys.select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY).distinct()
        )
    )
    keys = counted.where(
        F.col(c.ATTRIBUTE).isin(*config.attributes)
        & F.col(c.VALUE_KEY).isNotNull()
        & F.col(c.ACCOUNT_COUNT).between(2, config.max_value_holders)
    ).select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY)
    inside = (
        keys.join(members, on=c.ACCOUNT_ID)
        .groupBy(c.ENTITY_ID, c.ATTRIBUTE, c.VALUE_KEY)
        .agg(F.count(F.lit(1)).alias(_HOLDERS))
        .where(F.col(_HOLDERS) >= 2)
    )
    per_attribute = inside.groupBy(c.ENTITY_ID, c.ATTRIBUTE).agg(
        F.count(F.lit(1)).alias(SHARED_VALUE_COUNT)
    )
    count = F.col(SHARED_VALUE_COUNT)
    attribute = F.col(c.ATTRIBUTE)
    phrase = F.concat(
        count.cast("string"),
        F.lit(" "),
        F.when(
            count == 1, _lookup({a: ATTRIBUTE_NOUNS[a][0] for a in config.attributes}, attribute)
        ).otherwise(_lookup({a: ATTRIBUTE_NOUNS[a][1] for a in config.attributes}, attribute)),
    )
    position = _lookup({a: i for i, a in enumerate(config.attributes)}, attribute)
    # Sorted ascending on (-count, position in config): most shared first, then config order.
    ordered = F.struct((-count).alias("order"), position.alias("position"), phrase.alias("text"))
    return per_attribute.groupBy(c.ENTITY_ID).agg(
        F.sum(count).alias(SHARED_VALUE_COUNT),
        F.transform(F.array_sort(F.collect_list(ordered)), lambda s: s.getField("text")).alias(
            _SHARED
        ),
    )


def _match_strength(members: DataFrame, match_edges: DataFrame) -> DataFrame:
    """Per entity: `mean_match_probability` and `matched_pairs` of its accepted pairs (both
    accounts in the entity)."""
    left = members.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L)
    right = members.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_R)
    # The right end is joined on its account and the left end's entity together: an edge
    # across two entities finds no row (one equi-join, no filter over every joined edge).
    inside = (
        match_edges.select(c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_PROBABILITY)
        .join(left, on=c.ACCOUNT_ID_L)
        .join(right, on=[c.ACCOUNT_ID_R, c.ENTITY_ID])
    )
    # Averaged as exact decimals (15 places): a sum of doubles depends on the order Spark adds
    # them in, so on the partitioning, and a unit in the last place swaps two tied leads.
    exact = F.col(c.MATCH_PROBABILITY).try_cast(_EXACT_PROBABILITY)
    return inside.groupBy(c.ENTITY_ID).agg(
        F.avg(exact).cast("double").alias(MEAN_MATCH_PROBABILITY),
        F.count(F.lit(1)).alias(MATCHED_PAIRS),
    )


def _reasons() -> Column:
    """`12 accounts share 3 bank cards, 2 return addresses and 1 device; mean match probability
    0.97 over 11 matched pairs; 41 rights-holder complaints, 3 counterfeit test buys`."""
    accounts = F.col(c.ACCOUNT_COUNT)
    shared = _join_words(F.coalesce(F.col(_SHARED), F.array().cast("array<string>")))
    structure = F.concat(
        _counted(accounts, ("account", "accounts")),
        F.when(shared.isNotNull(), F.concat(F.lit(" share "), shared)).otherwise(F.lit("")),
    )
    pairs = F.col(MATCHED_PAIRS)
    matches = F.when(
        pairs > 0,
        F.concat(
            F.lit("; mean match probability "),
            F.format_number(F.col(MEAN_MATCH_PROBABILITY), 2),
            F.lit(" over "),
            _counted(pairs, ("matched pair", "matched pairs")),
        ),
    ).otherwise(F.lit(""))
    per_type = F.array_compact(
        F.array(
            *[
                F.when(F.col(column) > 0, _counted(F.col(column), SIGNAL_NOUNS[kind]))
                for kind, column in SIGNAL_COLUMNS.items()
            ]
        )
    )
    signals = F.when(
        F.col(c.SIGNAL_COUNT) > 0, F.concat(F.lit("; "), F.array_join(per_type, ", "))
    ).otherwise(F.lit("; no enforcement signals"))
    return F.concat(structure, matches, signals)


def entity_leads(
    membership: DataFrame,
    signals: DataFrame,
    blocking_keys: DataFrame,
    *,
    match_edges: DataFrame | None = None,
    entities: DataFrame | None = None,
    config: LeadsConfig,
) -> DataFrame:
    """Entities ranked for investigation, with the reasons in words.

    Requires `membership` (`account_id`, `entity_id`; one row per account), `signals` (the
    contract's `enforcement_signals`: `account_id`, `signal_type`, `signal_count`),
    `blocking_keys` (`account_id`, `attribute`, `value_key`, one row per distinct triple, and
    `account_count` as `resolution.blocking.count_value_holders` adds; counted here when
    absent) and optionally `match_edges` (`account_id_l`, `account_id_r`, `match_probability`).
    A null `signal_count` counts 1 (the contract's default); a signal type outside the
    contract's five counts as `other`; signals of accounts without an entity are ignored.
    `entities` (`entity_id`, `account_count`, as `resolution.clustering.summarise_entities`
    gives them for `membership`) saves counting the accounts again; without it they are
    counted from `membership`.

    One row per entity with at least `min_accounts` accounts or at least `min_signals` signals:
    `entity_id`, `lead_rank` (int, 1 first: by `lead_score` descending, ties by `entity_id`),
    `lead_score` (double), `reasons`, `account_count`, `signal_count`, one count per signal
    type (`rights_holder_complaints`, `customer_complaints`, `test_buys_counterfeit`,
    `listing_takedowns`, `other_signals`), `accounts_with_signals`, `weighted_signals`,
    `shared_value_count`, `mean_match_probability` (null without matched pairs) and
    `matched_pairs`.

    The score: with S = weighted_signals (sum over the entity's signals of signal_weights[type]
    * signal_count), n = account_count, V = shared_value_count and p = mean_match_probability
    (0 when absent),

        structure  = accounts_weight * log2(n) + shared_value_weight * log2(1 + V)
                     + match_weight * p
        lead_score = (1 + log2(1 + S)) * (1 + structure)   if the entity has a signal (>= 1)
                   = structure / (1 + structure)             otherwise (in [0, 1))

    so every entity with a signal ranks above every entity without one, and among either, the
    bigger, more tightly knit and (with signals) more heavily flagged ranks first. The logs keep
    one huge complaint count or one huge entity from drowning the other parts.

    `reasons` reads like `12 accounts share 3 bank cards, 2 return addresses and 1 device; 41
    rights-holder complaints, 3 counterfeit test buys`: counts and attribute names only, never
    a value. The ranking orders all leads in one window, that is in one partition: leads are
    one narrow row per multi-account or flagged entity, not per account.

    Example::

        keys = extract_blocking_keys(accounts_std, payments_std, logistics_std,
                                     attributes=EXACT_ATTRIBUTES)
        keys = count_value_holders(keys)
        leads = entity_leads(resolution.entity_membership, signals, keys,
                             match_edges=resolution.match_edges, config=LeadsConfig())
        leads.where(F.col("lead_rank") <= 20).select("lead_rank", "reasons").show(truncate=False)
    """
    require_columns(membership, "membership", [c.ACCOUNT_ID, c.ENTITY_ID])
    require_columns(signals, "signals", [c.ACCOUNT_ID, c.SIGNAL_TYPE, c.SIGNAL_COUNT])
    require_columns(blocking_keys, "blocking_keys", [c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY])
    if match_edges is not None:
        require_columns(
            match_edges, "match_edges", [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_PROBABILITY]
        )
    _require_valid("entity_leads config", config.problems())

    if entities is not None:
        require_columns(entities, "entities", [c.ENTITY_ID, c.ACCOUNT_COUNT])
    members = _members(membership)
    sizes = (
        members.groupBy(c.ENTITY_ID).agg(F.count(F.lit(1)).alias(c.ACCOUNT_COUNT))
        if entities is None
        else entities.select(c.ENTITY_ID, c.ACCOUNT_COUNT).where(F.col(c.ENTITY_ID).isNotNull())
    )
    grouped = _grouped_members(members, sizes, broadcast_max=config.broadcast_grouped_accounts)
    leads = sizes.join(
        _signal_totals(members, signals, weights=config.signal_weights), c.ENTITY_ID, "left"
    ).join(_shared_inside(grouped, blocking_keys, config=config), c.ENTITY_ID, "left")
    if match_edges is not None:
        leads = leads.join(_match_strength(grouped, match_edges), c.ENTITY_ID, "left")
    else:
        leads = leads.withColumn(MEAN_MATCH_PROBABILITY, F.lit(None).cast("double"))
        leads = leads.withColumn(MATCHED_PAIRS, F.lit(None).cast("long"))
    zero_filled = [c.SIGNAL_COUNT, *SIGNAL_COLUMNS.values(), ACCOUNTS_WITH_SIGNALS]
    leads = leads.fillna(0, subset=[*zero_filled, SHARED_VALUE_COUNT, MATCHED_PAIRS]).fillna(
        0.0, subset=[WEIGHTED_SIGNALS]
    )
    leads = leads.where(
        (F.col(c.ACCOUNT_COUNT) >= F.lit(config.min_accounts))
        | (F.col(c.SIGNAL_COUNT) >= F.lit(config.min_signals))
    )

    structure = (
        F.lit(float(config.accounts_weight)) * F.log2(F.col(c.ACCOUNT_COUNT).cast("double"))
        + F.lit(float(config.shared_value_weight)) * F.log2(F.lit(1.0) + F.col(SHARED_VALUE_COUNT))
        + F.lit(float(config.match_weight)) * F.coalesce(F.col(MEAN_MATCH_PROBABILITY), F.lit(0.0))
    )
    flagged = (F.lit(1.0) + F.log2(F.lit(1.0) + F.col(WEIGHTED_SIGNALS))) * (F.lit(1.0) + structure)
    score = F.when(F.col(c.SIGNAL_COUNT) > 0, flagged).otherwise(
        structure / (F.lit(1.0) + structure)
    )
    ranking = Window.orderBy(F.desc(LEAD_SCORE), F.asc(c.ENTITY_ID))
    return (
        leads.withColumn(LEAD_SCORE, score.cast("double"))
        .withColumn(REASONS, _reasons())
        .withColumn(LEAD_RANK, F.row_number().over(ranking).cast("int"))
        .select(*LEAD_COLUMNS)
    )
