"""The entity network (`entity_links`) and investigation leads (`entity_leads`) on tiny frames."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.blocking import count_value_holders
from resolution.clustering import summarise_entities
from resolution.errors import ConfigError, ResolutionError
from resolution.network import (
    ENTITY_ID_L,
    ENTITY_ID_R,
    LINK_TYPE,
    LeadsConfig,
    NetworkConfig,
    count_link_values,
    entity_leads,
    entity_links,
)
from tests.sqlconf import sql_settings

MEMBERSHIP = "account_id string, entity_id string"
KEYS = "account_id string, attribute string, value_key string"
COUNTED_KEYS = KEYS + ", account_count long"
SIGNALS = "account_id string, signal_type string, signal_count long, observed_at timestamp"
EDGES = "account_id_l string, account_id_r string, match_probability double"
LINK_COLUMNS = [ENTITY_ID_L, ENTITY_ID_R, LINK_TYPE, "shared_value_count", "max_value_holders"]


def _rows(frame: DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in frame.select(*columns).collect())


# Entity ids deliberately sort against their accounts' ids: `Ez` holds a1 and a2, `Ea` a3.
@pytest.fixture(scope="module")
def network(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    membership = spark.createDataFrame(
        [
            ("a1", "Ez"),
            ("a2", "Ez"),
            ("a3", "Ea"),
            ("a4", "Em"),
            ("a5", "Eb"),
            ("a6", None),  # not resolved: holds nothing for the network
        ],
        MEMBERSHIP,
    )
    keys = spark.createDataFrame(
        [
            # Ez and Ea share two warehouses (one written in Han) and a label contact phone.
            ("a1", "warehouse_address", "wh|上海 仓库 1"),
            ("a3", "warehouse_address", "wh|上海 仓库 1"),
            ("a2", "warehouse_address", "wh|2"),
            ("a3", "warehouse_address", "wh|2"),
            ("a1", "contact_phone", "+8613900000001"),
            ("a3", "contact_phone", "+8613900000001"),
            # Twice from two accounts of one entity: no link, no second count.
            ("a1", "contact_phone", "+8613900000002"),
            ("a2", "contact_phone", "+8613900000002"),
            ("a3", "contact_phone", "+8613900000002"),
            # Inside Ez only: no link.
            ("a1", "card", "hk_card_7d1f"),
            ("a2", "card", "hk_card_7d1f"),
            # One device held by three entities.
            ("a3", "device", "dev9"),
            ("a4", "device", "dev9"),
            ("a5", "device", "dev9"),
            # Not a network attribute: no link.
            ("a1", "phone", "+8613800000000"),
            ("a4", "phone", "+8613800000000"),
            # No entity, no value, no account in membership.
            ("a6", "warehouse_address", "wh|2"),
            ("a4", "warehouse_address", None),
            ("a9", "warehouse_address", "wh|2"),
        ],
        KEYS,
    )
    return membership, keys


def test_links_through_shared_warehouse_and_contact_phone(
    network: tuple[DataFrame, DataFrame],
) -> None:
    membership, keys = network
    links = entity_links(membership, keys, config=NetworkConfig())
    assert links.columns == LINK_COLUMNS
    assert _rows(links, LINK_COLUMNS) == [
        ("Ea", "Eb", "shared_device", 1, 3),
        ("Ea", "Em", "shared_device", 1, 3),
        ("Ea", "Ez", "shared_contact_phone", 2, 2),
        ("Ea", "Ez", "shared_warehouse_address", 2, 2),
        ("Eb", "Em", "shared_device", 1, 3),
    ]


def test_holder_counts_drop_single_holder_values_without_changing_the_links(
    network: tuple[DataFrame, DataFrame],
) -> None:
    """The job passes its counted keys (`account_count`): values held by one account are left
    out before the join, and the links and their summary are those of the uncounted keys. A
    count of 1 on a shared value would drop its links, so the count is what is read."""
    membership, keys = network
    counted = count_value_holders(keys)
    for config in (NetworkConfig(), NetworkConfig(max_entities_per_value=2)):
        assert _rows(entity_links(membership, counted, config=config), LINK_COLUMNS) == _rows(
            entity_links(membership, keys, config=config), LINK_COLUMNS
        )
        assert _rows(
            count_link_values(membership, counted, config=config),
            [c.ATTRIBUTE, "linking_values", "capped_values"],
        ) == _rows(
            count_link_values(membership, keys, config=config),
            [c.ATTRIBUTE, "linking_values", "capped_values"],
        )
    miscounted = counted.withColumn(
        c.ACCOUNT_COUNT,
        F.when(F.col(c.ATTRIBUTE) == "device", F.lit(1)).otherwise(F.col(c.ACCOUNT_COUNT)),
    )
    types = {
        row[LINK_TYPE]
        for row in entity_links(membership, miscounted, config=NetworkConfig()).collect()
    }
    assert types == {"shared_contact_phone", "shared_warehouse_address"}


def test_no_link_within_one_entity(spark: SparkSession) -> None:
    membership = spark.createDataFrame([("a1", "E1"), ("a2", "E1"), ("a3", "E2")], MEMBERSHIP)
    keys = spark.createDataFrame(
        [
            ("a1", "card", "hk_1"),
            ("a2", "card", "hk_1"),
            ("a1", "warehouse_address", "wh|1"),
            ("a2", "warehouse_address", "wh|1"),
            ("a3", "warehouse_address", "wh|3"),
        ],
        KEYS,
    )
    assert entity_links(membership, keys, config=NetworkConfig()).collect() == []


def test_value_held_by_more_entities_than_the_cap_links_no_one(
    network: tuple[DataFrame, DataFrame],
) -> None:
    membership, keys = network
    config = NetworkConfig(max_entities_per_value=2)
    links = entity_links(membership, keys, config=config)
    assert _rows(links, [ENTITY_ID_L, ENTITY_ID_R, LINK_TYPE]) == [
        ("Ea", "Ez", "shared_contact_phone"),
        ("Ea", "Ez", "shared_warehouse_address"),
    ]
    summary = count_link_values(membership, keys, config=config)
    assert _rows(summary, [c.ATTRIBUTE, "linking_values", "capped_values"]) == [
        ("contact_phone", 2, 0),
        ("device", 0, 1),
        ("warehouse_address", 2, 0),
    ]


def test_links_ordered_left_below_right_without_duplicates(spark: SparkSession) -> None:
    membership = spark.createDataFrame(
        [("a1", "E9"), ("a2", "E1"), ("a3", "E5"), ("a4", "E9")], MEMBERSHIP
    )
    keys = spark.createDataFrame(
        [
            ("a1", "card", "hk_1"),
            ("a1", "card", "hk_1"),  # a repeated row
            ("a2", "card", "hk_1"),
            ("a3", "card", "hk_1"),
            ("a4", "card", "hk_1"),
            ("a4", "wallet", "w|1"),
            ("a2", "wallet", "w|1"),
        ],
        KEYS,
    )
    links = _rows(entity_links(membership, keys, config=NetworkConfig()), LINK_COLUMNS)
    assert all(left < right for left, right, *_ in links)
    assert len({tuple(link[:3]) for link in links}) == len(links)
    assert links == [
        ("E1", "E5", "shared_card", 1, 3),
        ("E1", "E9", "shared_card", 1, 3),
        ("E1", "E9", "shared_wallet", 1, 2),
        ("E5", "E9", "shared_card", 1, 3),
    ]


def test_default_network_leaves_pickup_points_out_and_caps_at_five_entities() -> None:
    config = NetworkConfig()
    assert "pickup_address" not in config.attributes
    assert {"warehouse_address", "contact_phone", "card", "device"} <= set(config.attributes)
    assert config.max_entities_per_value == 5


@pytest.fixture(scope="module")
def upstream(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    """Two rings (R1: r1-r3, R2: r4-r5) and a third (R3: r6) buying from one supplier; twelve
    single sellers (s01-s12) and the rings' accounts r1 and r6 at one carrier pickup point."""
    singles = [(f"s{i:02d}", f"S{i:02d}") for i in range(1, 13)]
    rings = [("r1", "R1"), ("r2", "R1"), ("r3", "R1"), ("r4", "R2"), ("r5", "R2"), ("r6", "R3")]
    membership = spark.createDataFrame([*rings, *singles, ("r7", None)], MEMBERSHIP)
    pickup = [(a, "pickup_address", "pk|驿站 1") for a, _ in singles]
    keys = spark.createDataFrame(
        [
            # The supplier's warehouse: two accounts of R1, one of R2 (and an unresolved one).
            ("r1", "warehouse_address", "wh|supplier"),
            ("r2", "warehouse_address", "wh|supplier"),
            ("r4", "warehouse_address", "wh|supplier"),
            ("r7", "warehouse_address", "wh|supplier"),
            # The shipping agent's label phone, on labels of R2 and R3.
            ("r5", "contact_phone", "+8613700000009"),
            ("r6", "contact_phone", "+8613700000009"),
            # A carrier pickup point: 12 single sellers and two rings.
            *pickup,
            ("r1", "pickup_address", "pk|驿站 1"),
            ("r6", "pickup_address", "pk|驿站 1"),
            # The same pickup point's counter phone on six sellers' labels: a hub, over the cap.
            *[(a, "contact_phone", "+86 20 8888 0000") for a, _ in singles[:6]],
        ],
        KEYS,
    )
    return membership, keys


def test_supplier_values_link_rings_and_a_pickup_point_links_no_one(
    upstream: tuple[DataFrame, DataFrame],
) -> None:
    membership, keys = upstream
    links = entity_links(membership, keys, config=NetworkConfig())
    assert _rows(links, LINK_COLUMNS) == [
        ("R1", "R2", "shared_warehouse_address", 1, 2),
        ("R2", "R3", "shared_contact_phone", 1, 2),
    ]
    summary = count_link_values(membership, keys, config=NetworkConfig())
    assert _rows(summary, [c.ATTRIBUTE, "linking_values", "capped_values"]) == [
        ("contact_phone", 1, 1),
        ("warehouse_address", 1, 0),
    ]


def test_pickup_points_link_when_configured_and_under_the_cap(
    upstream: tuple[DataFrame, DataFrame],
) -> None:
    membership, keys = upstream
    # 14 entities hold the pickup point: with a cap of 14 it links all 91 pairs, with 13 none.
    wide = NetworkConfig(attributes=("pickup_address",), max_entities_per_value=14)
    links = _rows(entity_links(membership, keys, config=wide), LINK_COLUMNS)
    assert len(links) == 14 * 13 // 2
    assert ("R1", "R3", "shared_pickup_address", 1, 14) in links
    assert {link[4] for link in links} == {14}
    narrow = NetworkConfig(attributes=("pickup_address",), max_entities_per_value=13)
    assert entity_links(membership, keys, config=narrow).collect() == []


def test_cap_counts_entities_not_accounts(spark: SparkSession) -> None:
    # 40 accounts of two entities hold one warehouse: two entities, one link, whatever the
    # blocking cap on accounts.
    membership = spark.createDataFrame(
        [(f"a{i:02d}", "E1" if i < 30 else "E2") for i in range(40)], MEMBERSHIP
    )
    keys = spark.createDataFrame(
        [(f"a{i:02d}", "warehouse_address", "wh|big") for i in range(40)], KEYS
    )
    links = entity_links(membership, keys, config=NetworkConfig(max_entities_per_value=2))
    assert _rows(links, LINK_COLUMNS) == [("E1", "E2", "shared_warehouse_address", 1, 2)]


# Leads -------------------------------------------------------------------------------------

LEAD_FIELDS = [
    c.ENTITY_ID,
    "lead_rank",
    c.ACCOUNT_COUNT,
    c.SIGNAL_COUNT,
    "rights_holder_complaints",
    "customer_complaints",
    "test_buys_counterfeit",
    "accounts_with_signals",
    "shared_value_count",
]
# Value keys of the leads' input, shaped like the keyed hashes and keys of the real data.
LEAD_VALUE_KEYS = (
    "3f9a1c0e7b5d2a11",
    "8c2e44d90f1b7a66",
    "wh|shenzhen baoan 仓库 7",
    "+8613912345678",
    "dev7c1e0a",
    "wh|consolidator 1",
)


@pytest.fixture(scope="module")
def lead_inputs(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    card_1, card_2, warehouse, label_phone, device, hub = LEAD_VALUE_KEYS
    membership = spark.createDataFrame(
        [
            ("r1", "E-ring"),
            ("r2", "E-ring"),
            ("r3", "E-ring"),
            *[(f"b{i}", "E-big") for i in range(1, 7)],
            ("s1", "E-single"),
            ("x1", "E-quiet"),
            ("t1", "E-t2"),
            ("t2", "E-t2"),
            ("t3", "E-t1"),
            ("t4", "E-t1"),
        ],
        MEMBERSHIP,
    )
    keys = spark.createDataFrame(
        [
            ("r1", "card", card_1, 2),
            ("r2", "card", card_1, 2),
            ("r1", "card", card_2, 2),
            ("r2", "card", card_2, 2),
            ("r2", "warehouse_address", warehouse, 2),
            ("r3", "warehouse_address", warehouse, 2),
            ("r1", "contact_phone", label_phone, 2),
            ("r3", "contact_phone", label_phone, 2),
            *[(f"b{i}", "device", device, 6) for i in range(1, 7)],
            ("b1", "card", card_2 + "0", 2),
            ("b2", "card", card_2 + "0", 2),
            # A consolidator's warehouse used by hundreds: no sign of a ring.
            ("b1", "warehouse_address", hub, 500),
            ("b2", "warehouse_address", hub, 500),
            ("t1", "warehouse_address", hub, 500),
            ("t2", "warehouse_address", hub, 500),
        ],
        COUNTED_KEYS,
    )
    signals = spark.createDataFrame(
        [
            ("r1", "rights_holder_complaint", 3, None),
            ("r2", "rights_holder_complaint", 2, None),
            ("r3", "test_buy_counterfeit", None, None),
            ("s1", "customer_complaint", None, None),
            ("zz", "test_buy_counterfeit", 9, None),  # an account without an entity
        ],
        SIGNALS,
    )
    return membership, signals, keys


@pytest.fixture(scope="module")
def leads(lead_inputs: tuple[DataFrame, DataFrame, DataFrame]) -> list[dict[str, Any]]:
    membership, signals, keys = lead_inputs
    frame = entity_leads(membership, signals, keys, config=LeadsConfig())
    return [row.asDict() for row in frame.orderBy("lead_rank").collect()]


def test_signals_and_shared_values_outrank_a_bigger_entity_without_signals(
    leads: list[dict[str, Any]],
) -> None:
    assert [tuple(lead[f] for f in LEAD_FIELDS) for lead in leads] == [
        ("E-ring", 1, 3, 6, 5, 0, 1, 3, 4),
        ("E-single", 2, 1, 1, 0, 1, 0, 1, 0),
        ("E-big", 3, 6, 0, 0, 0, 0, 0, 2),
        ("E-t1", 4, 2, 0, 0, 0, 0, 0, 0),
        ("E-t2", 5, 2, 0, 0, 0, 0, 0, 0),
    ]
    ring, single, big = leads[0], leads[1], leads[2]
    # weighted signals 3 * 5 + 8 * 1; structure log2(3) + log2(1 + 4)
    assert ring["weighted_signals"] == pytest.approx(23.0)
    assert ring["lead_score"] == pytest.approx(
        (1 + math.log2(24)) * (1 + math.log2(3) + math.log2(5))
    )
    assert single["lead_score"] == pytest.approx(1 + math.log2(1.5))
    structure = math.log2(6) + math.log2(3)
    assert big["lead_score"] == pytest.approx(structure / (1 + structure))


def test_lead_ranks_run_one_to_n_with_ties_broken_by_entity_id(
    leads: list[dict[str, Any]],
) -> None:
    assert [lead["lead_rank"] for lead in leads] == [1, 2, 3, 4, 5]
    tied = [lead for lead in leads if lead[c.ENTITY_ID] in ("E-t1", "E-t2")]
    assert tied[0]["lead_score"] == tied[1]["lead_score"]
    assert [lead[c.ENTITY_ID] for lead in tied] == ["E-t1", "E-t2"]


def test_reasons_in_words(leads: list[dict[str, Any]]) -> None:
    assert {lead[c.ENTITY_ID]: lead["reasons"] for lead in leads} == {
        "E-ring": "3 accounts share 2 bank cards, 1 warehouse address and 1 label contact phone; "
        "5 rights-holder complaints, 1 counterfeit test buy",
        "E-single": "1 account; 1 customer complaint",
        "E-big": "6 accounts share 1 bank card and 1 device; no enforcement signals",
        "E-t1": "2 accounts; no enforcement signals",
        "E-t2": "2 accounts; no enforcement signals",
    }


def test_null_signal_count_counts_as_one(leads: list[dict[str, Any]]) -> None:
    by_entity = {lead[c.ENTITY_ID]: lead for lead in leads}
    assert by_entity["E-single"]["customer_complaints"] == 1
    assert by_entity["E-ring"]["test_buys_counterfeit"] == 1
    assert by_entity["E-ring"][c.SIGNAL_COUNT] == 3 + 2 + 1


def test_reasons_never_contain_a_value_key(leads: list[dict[str, Any]]) -> None:
    reasons = " ".join(lead["reasons"] for lead in leads)
    for value_key in LEAD_VALUE_KEYS:
        assert value_key not in reasons
        assert value_key.split("|")[-1] not in reasons


def test_match_edges_add_their_mean_probability(
    spark: SparkSession, lead_inputs: tuple[DataFrame, DataFrame, DataFrame]
) -> None:
    membership, signals, keys = lead_inputs
    edges = spark.createDataFrame(
        [("r1", "r2", 0.99), ("r2", "r3", 0.95), ("b1", "r1", 0.5)],  # the last crosses entities
        EDGES,
    )
    leads = entity_leads(membership, signals, keys, match_edges=edges, config=LeadsConfig())
    ring = leads.where(F.col(c.ENTITY_ID) == "E-ring").first()
    assert ring is not None
    assert (ring["mean_match_probability"], ring["matched_pairs"]) == (pytest.approx(0.97), 2)
    assert ring["reasons"] == (
        "3 accounts share 2 bank cards, 1 warehouse address and 1 label contact phone; "
        "mean match probability 0.97 over 2 matched pairs; "
        "5 rights-holder complaints, 1 counterfeit test buy"
    )


def test_leads_are_the_same_whether_the_grouped_accounts_are_broadcast_or_shuffled(
    spark: SparkSession, lead_inputs: tuple[DataFrame, DataFrame, DataFrame]
) -> None:
    """The members of entities of two accounts or more (13 of the 15 accounts here) are
    broadcast up to `broadcast_grouped_accounts`, else joined by a shuffle: the same leads.
    (Spark's own broadcast of small frames is off here, so only the hint broadcasts.)"""
    membership, signals, keys = lead_inputs
    edges = spark.createDataFrame(
        [("r1", "r2", 0.99), ("r2", "r3", 0.95), ("b1", "r1", 0.5), ("t1", "t2", 0.9)], EDGES
    )
    entities = summarise_entities(membership)
    found: dict[int, list[dict[str, Any]]] = {}
    plans: dict[int, str] = {}
    with sql_settings(spark, {"spark.sql.autoBroadcastJoinThreshold": "-1"}):
        for limit in (13, 12):
            frame = entity_leads(
                membership,
                signals,
                keys,
                match_edges=edges,
                entities=entities,
                config=LeadsConfig(broadcast_grouped_accounts=limit),
            )
            plans[limit] = frame._jdf.queryExecution().executedPlan().toString()
            found[limit] = [row.asDict() for row in frame.orderBy("lead_rank").collect()]
    assert "BroadcastHashJoin" in plans[13]
    assert "BroadcastHashJoin" not in plans[12]
    assert found[13] == found[12]
    by_entity = {lead[c.ENTITY_ID]: lead for lead in found[13]}
    assert (by_entity["E-t2"]["matched_pairs"], by_entity["E-ring"]["shared_value_count"]) == (
        1,
        4,
    )
    assert "E-single" in by_entity and by_entity["E-single"]["matched_pairs"] == 0


def test_leads_read_the_given_entity_sizes_and_count_uncounted_keys_once(
    lead_inputs: tuple[DataFrame, DataFrame, DataFrame], leads: list[dict[str, Any]]
) -> None:
    membership, signals, keys = lead_inputs
    entities = summarise_entities(membership)
    given = entity_leads(membership, signals, keys, entities=entities, config=LeadsConfig())
    assert [row.asDict() for row in given.orderBy("lead_rank").collect()] == leads
    # Without holder counts, a key row given twice is one holder: a device of r1's own,
    # repeated, is shared by no two accounts.
    own = membership.sparkSession.createDataFrame(
        [("r1", "device", "device of r1 alone")], keys.drop(c.ACCOUNT_COUNT).schema
    )
    uncounted = keys.drop(c.ACCOUNT_COUNT).unionByName(own)
    repeated = uncounted.unionByName(own)
    once, twice = (
        [
            row.asDict()
            for row in entity_leads(membership, signals, frame, config=LeadsConfig())
            .orderBy("lead_rank")
            .collect()
        ]
        for frame in (uncounted, repeated)
    )
    assert twice == once
    ring = next(lead for lead in once if lead[c.ENTITY_ID] == "E-ring")
    assert ring["shared_value_count"] == 4


def test_sizes_given_without_their_column_are_refused(
    lead_inputs: tuple[DataFrame, DataFrame, DataFrame],
) -> None:
    membership, signals, keys = lead_inputs
    with pytest.raises(ResolutionError, match="account_count"):
        entity_leads(
            membership,
            signals,
            keys,
            entities=membership.select(c.ENTITY_ID).distinct(),
            config=LeadsConfig(),
        )


def test_lead_scores_and_ranks_do_not_depend_on_partitioning(spark: SparkSession) -> None:
    """Two entities with the same structure and signals, their edges' probabilities and their
    signals spread differently over accounts and partitions, tie exactly (ranked by id) under
    every partitioning: a sum of doubles in Spark's order would differ in the last place."""
    probabilities = [0.1, 0.2, 0.3, 0.7, 0.11, 0.13, 0.17, 0.19, 0.23, 0.29, 0.31, 0.37, 0.41, 0.43]
    members, edges, signals = [], [], []
    for entity, order in (("E-a", probabilities), ("E-b", probabilities[::-1])):
        accounts = [f"{entity}-{i}" for i in range(6)]
        members += [(account, entity) for account in accounts]
        pairs = [(a, b) for i, a in enumerate(accounts) for b in accounts[i + 1 :]]
        edges += [(a, b, p) for (a, b), p in zip(pairs, order, strict=False)]
        for i, account in enumerate(accounts if entity == "E-a" else accounts[::-1]):
            signals.append((account, "customer_complaint", i + 1, None))
            signals.append((account, "rights_holder_complaint", 1, None))
    weights = {"customer_complaint": 0.1, "rights_holder_complaint": 0.7}
    config = LeadsConfig(signal_weights=weights)
    keys = spark.createDataFrame([], COUNTED_KEYS)
    results = []
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        for partitions in (1, 3, 7):
            spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
            frames = [
                spark.createDataFrame(rows, schema).repartition(partitions)
                for rows, schema in ((members, MEMBERSHIP), (edges, EDGES), (signals, SIGNALS))
            ]
            leads = entity_leads(
                frames[0], frames[2], keys, match_edges=frames[1], config=config
            ).orderBy("lead_rank")
            results.append([row.asDict() for row in leads.collect()])
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    assert results[1] == results[0] and results[2] == results[0]
    first, second = results[0]
    assert (first[c.ENTITY_ID], second[c.ENTITY_ID]) == ("E-a", "E-b")
    assert first["lead_score"] == second["lead_score"]
    exact = sum(Fraction(str(p)) for p in probabilities) / len(probabilities)
    assert first["mean_match_probability"] == float(exact)
    # rights-holder complaints first, as `SIGNAL_COLUMNS` orders the types
    assert first["weighted_signals"] == 0.0 + 0.7 * 6 + 0.1 * 21


def test_config_problems_are_all_reported() -> None:
    assert NetworkConfig().problems() == []
    assert LeadsConfig().problems() == []
    assert NetworkConfig(attributes=("card", "fax"), max_entities_per_value=1).problems() == [
        "network.attributes: unknown attribute 'fax' (known: "
        "phone, email, id_number, name, birth_date, card, bank_account, alipay, wallet, "
        "payment_other, device, registration_ip, registered_address, ship_from_address, "
        "return_address, warehouse_address, pickup_address, contact_phone)",
        "network.max_entities_per_value: must be >= 2, got 1",
    ]
    problems = LeadsConfig(
        signal_weights={"spam": 1.0, "other": -1.0}, min_accounts=0, broadcast_grouped_accounts=-1
    ).problems()
    assert problems == [
        "leads.signal_weights: unknown signal type 'spam' (known: rights_holder_complaint, "
        "customer_complaint, test_buy_counterfeit, listing_takedown, other)",
        "leads.signal_weights.other: must be >= 0, got -1.0",
        "leads.min_accounts: must be >= 1, got 0",
        "leads.broadcast_grouped_accounts: must be >= 0, got -1",
    ]


def test_missing_columns_and_bad_config_fail_before_any_work(
    network: tuple[DataFrame, DataFrame],
) -> None:
    membership, keys = network
    with pytest.raises(ResolutionError, match="blocking_keys lacks column.s. value_key; found"):
        entity_links(membership, keys.drop(c.VALUE_KEY), config=NetworkConfig())
    with pytest.raises(ConfigError, match="max_entities_per_value"):
        entity_links(membership, keys, config=NetworkConfig(max_entities_per_value=0))
