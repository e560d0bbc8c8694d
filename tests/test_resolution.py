"""Blocking, the evidence score, clustering and evaluation on small inline data."""

from __future__ import annotations

import logging
import random
from datetime import date

import networkx as nx
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.blocking import (
    build_candidate_pairs,
    count_value_holders,
    extract_blocking_keys,
    find_hub_values,
    set_aside_desk_phones,
    summarise_pairs_by_attribute,
)
from resolution.clustering import assign_entities, connected_components, edge_partitions
from resolution.config import (
    EXACT_ATTRIBUTES,
    BlockingConfig,
    ClusteringConfig,
    EvidenceConfig,
    ModelConfig,
)
from resolution.errors import ClusteringError
from resolution.evaluation import evaluate
from resolution.scoring import accept_matches, score_pairs

ACCOUNTS_STD = (
    "account_id string, phone_e164 string, email_canonical string, id_number_hash string, "
    "device_norm string, ip_norm string, address_key string, name_key string, "
    "name_tokens array<string>, id_number_fuzzy array<string>, birth_date date, city_key string"
)
_NO_NAME = (None, None, None, None, None)
PAYMENTS_STD = "account_id string, instrument_type string, instrument_hash string"
LOGISTICS_STD = "account_id string, role string, address_key string, contact_phone_e164 string"


def _std_frames(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    accounts = spark.createDataFrame(
        [
            ("a1", "+8613800000001", "x@qq.com", "h-id-1", "dev1", "1.1.1.1", None) + _NO_NAME,
            ("a2", "+8613800000001", None, None, "dev2", "1.1.1.1", None) + _NO_NAME,
            ("a3", None, "y@qq.com", "h-id-1", None, "1.1.1.1", "addr-家") + _NO_NAME,
            ("a4", None, None, None, None, "1.1.1.1", "addr-家") + _NO_NAME,
            ("a5", None, None, None, None, None, None) + _NO_NAME,
        ],
        ACCOUNTS_STD,
    )
    payments = spark.createDataFrame(
        [
            ("a1", "card", "h-card-1"),
            ("a4", "card", "h-card-1"),
            ("a4", "bank_account", "h-card-1"),
            ("a5", "other", None),
        ],
        PAYMENTS_STD,
    )
    logistics = spark.createDataFrame(
        [
            ("a2", "warehouse", "wh-1|", "+8613900000000"),
            ("a5", "warehouse", "wh-1|", None),
            ("a5", "return", None, "+8613900000000"),
        ],
        LOGISTICS_STD,
    )
    return accounts, payments, logistics


def test_blocking_keys_hubs_and_pairs(spark: SparkSession) -> None:
    accounts, payments, logistics = _std_frames(spark)
    config = BlockingConfig(rules=EXACT_ATTRIBUTES, max_block_size=3)
    counted = count_value_holders(
        extract_blocking_keys(accounts, payments, logistics, attributes=config.rules)
    ).cache()
    keys = {tuple(r) for r in counted.select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY).collect()}
    assert ("a1", "card", "h-card-1") in keys
    assert ("a4", "bank_account", "h-card-1") in keys
    assert ("a2", "warehouse_address", "wh-1|") in keys
    assert ("a5", "contact_phone", "+8613900000000") in keys
    assert not any(key[2] is None for key in keys)

    hubs = {tuple(r) for r in find_hub_values(counted, config=config).collect()}
    assert hubs == {("registration_ip", "1.1.1.1", 4)}

    pairs = {
        (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): [tuple(s) for s in r[c.SHARED_ATTRIBUTES]]
        for r in build_candidate_pairs(counted, config=config).collect()
    }
    assert pairs == {  # (attribute, shared values, accounts holding the rarest shared value)
        ("a1", "a2"): [("phone", 1, 2)],
        ("a1", "a3"): [("id_number", 1, 2)],
        ("a1", "a4"): [("card", 1, 2)],
        ("a3", "a4"): [("registered_address", 1, 2)],
        ("a2", "a5"): [("contact_phone", 1, 2), ("warehouse_address", 1, 2)],
    }
    by_rule = {
        r[c.ATTRIBUTE]: r["pair_count"]
        for r in summarise_pairs_by_attribute(
            build_candidate_pairs(counted, config=config)
        ).collect()
    }
    assert by_rule == {
        "phone": 1,
        "id_number": 1,
        "card": 1,
        "registered_address": 1,
        "contact_phone": 1,
        "warehouse_address": 1,
    }


def test_desk_phones_of_hub_addresses_are_set_aside(spark: SparkSession) -> None:
    """A phone an account printed only on labels at a hub address (a consolidator's desk
    phone) pairs nobody; printed anywhere else too, it stays a key; an address that stops
    being a hub gives its phones back."""
    accounts = spark.createDataFrame(
        [(f"h{i}", None, None, None, None, None, None) + _NO_NAME for i in range(1, 5)]
        + [(f"r{i}", None, None, None, None, None, None) + _NO_NAME for i in (1, 2)],
        ACCOUNTS_STD,
    )
    payments = spark.createDataFrame([], PAYMENTS_STD)
    desk, own, ring = "+8613900000001", "+8613900000002", "+8613900000003"
    logistics = spark.createDataFrame(
        [
            ("h1", "warehouse", "hub|100", desk),
            ("h2", "warehouse", "hub|100", desk),
            ("h3", "warehouse", "hub|100", own),
            ("h3", "ship_from", "shop|200", desk),
            ("h4", "warehouse", "hub|100", None),
            ("r1", "return", "den|300", ring),
            ("r2", "return", "den|300", ring),
            ("r2", "warehouse", "hub|100", ring),
        ],
        LOGISTICS_STD,
    )
    rules = ("warehouse_address", "ship_from_address", "return_address", "contact_phone")
    extracted = extract_blocking_keys(accounts, payments, logistics, attributes=rules).cache()

    def phones(keys: DataFrame) -> set[tuple[str, str, str]]:
        return {
            (r[c.ACCOUNT_ID], r[c.ATTRIBUTE], r[c.VALUE_KEY])
            for r in keys.where(F.col(c.ATTRIBUTE).isin("contact_phone", "desk_phone")).collect()
        }

    # hub|100 is held by 5 accounts: a hub under a cap of 4.
    aside = set_aside_desk_phones(extracted, max_block_size=4).cache()
    assert phones(aside) == {
        ("h1", "desk_phone", desk),
        ("h2", "desk_phone", desk),
        ("h3", "desk_phone", own),
        ("h3", "contact_phone", desk),  # also printed at the seller's own shop
        ("r1", "contact_phone", ring),
        ("r2", "contact_phone", ring),  # printed at the hub and at the ring's return address
    }
    assert aside.count() == extracted.count()  # renamed, never dropped
    config = BlockingConfig(rules=rules, max_block_size=4)
    pairs = {
        (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): [s[c.ATTRIBUTE] for s in r[c.SHARED_ATTRIBUTES]]
        for r in build_candidate_pairs(count_value_holders(aside), config=config).collect()
    }
    assert pairs == {("r1", "r2"): ["contact_phone", "return_address"]}

    # Idempotent, and judged again: under a cap of 5 the address is no hub, the phones return.
    assert phones(set_aside_desk_phones(aside, max_block_size=4)) == phones(aside)
    assert phones(set_aside_desk_phones(aside, max_block_size=5)) == phones(extracted)
    assert {a for a, attribute, _ in phones(extracted)} == {"h1", "h2", "h3", "r1", "r2"}
    assert {attribute for _, attribute, _ in phones(extracted)} == {"contact_phone"}


def test_hub_cap_scales_down_with_the_population() -> None:
    default = BlockingConfig()
    # 1% of the accounts, never under 20 holders, never over max_block_size.
    assert [default.hub_cap(n) for n in (10, 1_500, 2_500, 4_000, 10_000, 1_000_000)] == [
        20,
        20,
        25,
        40,
        100,
        100,
    ]
    assert BlockingConfig(hub_share=None).hub_cap(1_500) == 100
    assert BlockingConfig(max_block_size=3).hub_cap(1_500) == 3
    assert BlockingConfig(hub_share=0.05, min_hub_size=2).hub_cap(100) == 5
    scaled = default.for_population(1_500)
    assert (scaled.max_block_size, scaled.rules) == (20, default.rules)


def test_a_value_common_in_a_small_population_is_a_hub(spark: SparkSession) -> None:
    """In 60 accounts, an address 25 of them registered from (a carrier NAT) is a hub under
    the population's cap of 20, and pairs nobody; with the absolute cap alone it pairs 300."""
    accounts = spark.createDataFrame(
        [
            (f"n{i:02d}", "+8613800000001" if i < 2 else None, None, None, None)
            + ("10.0.0.1" if i < 25 else f"10.1.{i}.1", None)
            + _NO_NAME
            for i in range(60)
        ],
        ACCOUNTS_STD,
    )
    payments = spark.createDataFrame([], PAYMENTS_STD)
    logistics = spark.createDataFrame([], LOGISTICS_STD)
    rules = ("phone", "registration_ip")
    counted = count_value_holders(
        extract_blocking_keys(accounts, payments, logistics, attributes=rules)
    ).cache()
    base = BlockingConfig(rules=rules)
    scaled = base.for_population(accounts.count())
    assert scaled.max_block_size == 20
    hubs = {tuple(r) for r in find_hub_values(counted, config=scaled).collect()}
    assert hubs == {("registration_ip", "10.0.0.1", 25)}
    pairs = build_candidate_pairs(counted, config=scaled).collect()
    assert [(r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]) for r in pairs] == [("n00", "n01")]
    assert find_hub_values(counted, config=base).count() == 0
    assert build_candidate_pairs(counted, config=base).count() == 25 * 24 // 2


def test_blocking_only_enabled_rules(spark: SparkSession) -> None:
    accounts, payments, logistics = _std_frames(spark)
    counted = count_value_holders(
        extract_blocking_keys(accounts, payments, logistics, attributes=("card", "phone"))
    )
    config = BlockingConfig(rules=("card",), max_block_size=10)
    assert {r[c.ATTRIBUTE] for r in counted.collect()} == {"card", "phone"}
    pairs = build_candidate_pairs(counted, config=config).collect()
    assert [(r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]) for r in pairs] == [("a1", "a4")]


def test_fuzzy_rules_pair_typos_and_spellings(spark: SparkSession) -> None:
    born = date(1990, 5, 17)
    accounts = spark.createDataFrame(
        [
            ("f1", None, None, None, None, None, None)
            + ("jon smith", ["jon", "smith"], ["d1", "d2"], born, "perth"),
            ("f2", None, None, None, None, None, None)
            + ("john smyth", ["john", "smyth"], ["d2", "d3"], born, "perth"),
            ("f3", None, None, None, None, None, None)
            + ("john smyth", ["john", "smyth"], ["d9"], date(1971, 1, 1), "sydney"),
        ],
        ACCOUNTS_STD,
    )
    empty_payments = spark.createDataFrame([], PAYMENTS_STD)
    empty_logistics = spark.createDataFrame([], LOGISTICS_STD)
    rules = ("id_number_one_edit", "name_in_city", "name_birth_date")
    counted = count_value_holders(
        extract_blocking_keys(accounts, empty_payments, empty_logistics, attributes=rules)
    )
    keys = {(r[c.ACCOUNT_ID], r[c.ATTRIBUTE], r[c.VALUE_KEY]) for r in counted.collect()}
    assert ("f1", "name_in_city", "J500 S530|perth") in keys
    assert ("f2", "name_birth_date", "J500 S530|1990-05-17") in keys
    assert ("f2", "id_number_one_edit", "d3") in keys
    pairs = {
        (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): [s["attribute"] for s in r[c.SHARED_ATTRIBUTES]]
        for r in build_candidate_pairs(counted, config=BlockingConfig(rules=rules)).collect()
    }
    # f3 has the same name codes but lives elsewhere, was born another day, another number
    assert pairs == {("f1", "f2"): list(sorted(rules))}


def test_scoring_weights_probability_and_threshold(spark: SparkSession) -> None:
    pairs = spark.createDataFrame(
        [
            ("a", "b", [("card", 1, 2), ("registration_ip", 1, 2)]),
            ("a", "c", [("registration_ip", 2, 2)]),
            ("b", "c", [("unweighted", 1, 2)]),
            ("c", "d", [("card", 1, 9)]),  # a card 9 accounts hold: 10 - log2(8) = 7
        ],
        "account_id_l string, account_id_r string, "
        "shared_attributes array<struct<attribute:string,shared_values:int,holders:int>>",
    )
    config = EvidenceConfig(
        prior_weight=-4.0, weights={"card": 10.0, "registration_ip": 2.0}, frequency_penalty=1.0
    )
    model = ModelConfig(kind="evidence", evidence=config, threshold=0.9)
    scored = {
        (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): r
        for r in score_pairs(pairs, config=config).collect()
    }
    assert scored[("a", "b")][c.MATCH_WEIGHT] == pytest.approx(8.0)
    assert scored[("a", "b")][c.MATCH_PROBABILITY] == pytest.approx(256 / 257)
    assert [tuple(e) for e in scored[("a", "b")][c.EVIDENCE]] == [
        ("card", 1, 2, 10.0),
        ("registration_ip", 1, 2, 2.0),
    ]
    assert scored[("c", "d")][c.MATCH_WEIGHT] == pytest.approx(3.0)
    assert scored[("c", "d")][c.MATCH_PROBABILITY] == pytest.approx(8 / 9)
    assert scored[("a", "c")][c.MATCH_PROBABILITY] == pytest.approx(0.2)
    assert scored[("b", "c")][c.MATCH_WEIGHT] == pytest.approx(-4.0)
    accepted = accept_matches(score_pairs(pairs, config=config), config=model)
    assert [(r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]) for r in accepted.collect()] == [("a", "b")]
    no_penalty = EvidenceConfig(prior_weight=-4.0, weights={"card": 10.0}, frequency_penalty=0.0)
    rescored = {
        (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): r[c.MATCH_WEIGHT]
        for r in score_pairs(pairs, config=no_penalty).collect()
    }
    assert rescored[("c", "d")] == pytest.approx(6.0)


def _partition(groups) -> set[frozenset]:  # type: ignore[no-untyped-def]
    return {frozenset(group) for group in groups}


@pytest.mark.parametrize(
    ("seed", "partitions", "edges_per_partition"),
    [(1, 1, 1_000_000), (2, 24, 1_000_000), (3, 24, 10)],
)
def test_graphx_components_match_networkx(
    spark: SparkSession, seed: int, partitions: int, edges_per_partition: int
) -> None:
    rng = random.Random(seed)
    vertices = rng.sample(range(-(2**40), 2**40), 120)
    edges = [(rng.choice(vertices), rng.choice(vertices)) for _ in range(90)]
    edges += [(v, v) for v in vertices[:3]]  # self loops must not break anything
    graph = nx.Graph()
    graph.add_edges_from(edges)
    expected = _partition(nx.connected_components(graph))

    # However many partitions the edges come in, and however many they are coalesced to.
    frame = spark.createDataFrame(edges, "src long, dst long").repartition(partitions)
    config = ClusteringConfig(engine="graphx", edges_per_partition=edges_per_partition)
    rows = connected_components(frame, config=config).collect()
    got: dict[int, set[int]] = {}
    for row in rows:
        got.setdefault(row[c.COMPONENT], set()).add(row["id"])
    assert _partition(got.values()) == expected
    # Each component is labelled with its smallest vertex id.
    assert all(label == min(members) for label, members in got.items())


def test_edges_are_coalesced_to_one_partition_per_core_or_per_block_of_edges() -> None:
    assert edge_partitions(208_381, parallelism=2, edges_per_partition=1_000_000) == 2
    assert edge_partitions(0, parallelism=2, edges_per_partition=1_000_000) == 2
    assert edge_partitions(2_000_001, parallelism=2, edges_per_partition=1_000_000) == 3
    assert edge_partitions(93, parallelism=1, edges_per_partition=10) == 10


def test_components_run_on_the_coalesced_edges(
    spark: SparkSession, caplog: pytest.LogCaptureFixture
) -> None:
    frame = spark.createDataFrame([(i, i + 1) for i in range(50)], "src long, dst long")
    cores = spark.sparkContext.defaultParallelism
    with caplog.at_level(logging.INFO, logger="resolution.clustering"):
        components = connected_components(
            frame.repartition(cores + 20), config=ClusteringConfig(engine="graphx")
        )
    assert components.select(c.COMPONENT).distinct().count() == 1
    assert f"50 edges in {cores} partitions" in caplog.text


def test_graphx_components_release_the_graphs_they_cache(spark: SparkSession) -> None:
    # GraphX caches its input and labelled graphs; a run calls connected components several
    # times, and what each call left cached took the memory later stages needed.
    def cached() -> int:
        return int(spark.sparkContext._jsc.getPersistentRDDs().size())

    before = cached()
    for shift in range(3):
        frame = spark.createDataFrame(
            [(shift * 100 + i, shift * 100 + i + 1) for i in range(0, 40, 2)], "src long, dst long"
        )
        components = connected_components(frame, config=ClusteringConfig(engine="graphx"))
        assert components.count() == 40
    # What stays cached is each call's result (two longs per vertex), not its graphs.
    assert cached() - before <= 3


def test_graphframes_engine_without_its_jar_is_a_clear_error(spark: SparkSession) -> None:
    jvm = spark.sparkContext._jvm
    if jvm.org.apache.spark.util.Utils.classIsLoadable("org.graphframes.GraphFrame"):
        pytest.skip("the GraphFrames jar is on this classpath")
    frame = spark.createDataFrame([(1, 2)], "src long, dst long")
    with pytest.raises(
        ClusteringError, match="org.graphframes.GraphFrame is not on the Spark classpath"
    ):
        connected_components(frame, config=ClusteringConfig(engine="graphframes"))


def test_assign_entities_includes_singletons_and_ignores_partitioning(spark: SparkSession) -> None:
    accounts = spark.createDataFrame([(f"acc{i:02d}",) for i in range(12)], "account_id string")
    edges = spark.createDataFrame(
        [("acc00", "acc01"), ("acc01", "acc05"), ("acc07", "acc08")],
        "account_id_l string, account_id_r string",
    )
    config = ClusteringConfig(engine="graphx")
    first = {tuple(r) for r in assign_entities(accounts, edges, config=config).collect()}
    shuffled = assign_entities(accounts.repartition(5), edges.repartition(3), config=config)
    assert {tuple(r) for r in shuffled.collect()} == first
    by_entity: dict[str, set[str]] = {}
    for account, entity in first:
        by_entity.setdefault(entity, set()).add(account)
    assert _partition(by_entity.values()) == _partition(
        [{"acc00", "acc01", "acc05"}, {"acc07", "acc08"}]
        + [{f"acc{i:02d}"} for i in (2, 3, 4, 6, 9, 10, 11)]
    )
    assert len(first) == 12
    assert all(entity.startswith("E") and len(entity) == 17 for _, entity in first)


def test_evaluation_figures(spark: SparkSession) -> None:
    # Predicted {a,b,c} {d} {e,f}; truth {a,b} {c,d} {e,f}; account g has no truth.
    membership = spark.createDataFrame(
        [("a", "P1"), ("b", "P1"), ("c", "P1"), ("d", "P2"), ("e", "P3"), ("f", "P3"), ("g", "P4")],
        "account_id string, entity_id string",
    )
    truth = spark.createDataFrame(
        [("a", "T1"), ("b", "T1"), ("c", "T2"), ("d", "T2"), ("e", "T3"), ("f", "T3")],
        "account_id string, entity_id string",
    )
    result = evaluate(membership, truth)
    assert result.accounts == 6
    assert (result.predicted_pairs, result.true_pairs, result.true_positive_pairs) == (4, 3, 2)
    assert result.pairwise_precision == pytest.approx(0.5)
    assert result.pairwise_recall == pytest.approx(2 / 3)
    assert result.pairwise_f1 == pytest.approx(4 / 7)
    # B-cubed precision: a,b: 2/3 each; c: 1/3; d: 1; e,f: 1 -> (2/3+2/3+1/3+1+1+1)/6
    assert result.bcubed_precision == pytest.approx((2 / 3 * 2 + 1 / 3 + 3) / 6)
    # B-cubed recall: a,b: 1; c: 1/2; d: 1/2; e,f: 1 -> 5/6
    assert result.bcubed_recall == pytest.approx(5 / 6)
    assert result.true_entities == 3
    assert result.entities_recovered_exactly == 1
    assert (result.largest_predicted_entity, result.largest_true_entity) == (3, 2)
    assert result.as_metrics()["eval_pairwise_f1"] == pytest.approx(4 / 7)


def test_evaluation_perfect_and_empty_claims(spark: SparkSession) -> None:
    truth = spark.createDataFrame(
        [("a", "T1"), ("b", "T1"), ("c", "T2")], "account_id string, entity_id string"
    )
    perfect = evaluate(truth.withColumn(c.ENTITY_ID, F.concat(F.lit("P"), c.ENTITY_ID)), truth)
    assert (perfect.pairwise_f1, perfect.bcubed_f1, perfect.entities_recovered_exactly) == (
        1.0,
        1.0,
        2,
    )
    singletons = evaluate(truth.withColumn(c.ENTITY_ID, F.col(c.ACCOUNT_ID)), truth)
    assert singletons.predicted_pairs == 0
    assert singletons.pairwise_precision == 1.0
    assert singletons.pairwise_recall == 0.0
    assert singletons.pairwise_f1 == 0.0
