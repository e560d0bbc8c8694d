"""Cluster control on tiny hand-made graphs; Tarjan's bridges checked against networkx."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import networkx as nx
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.cluster_control import (
    ClusterControlConfig,
    ControlledClusters,
    _relabel,
    control_clusters,
    find_bridges,
    find_value_cut,
    find_weak_cut,
    map_groups,
)
from resolution.clustering import assign_entities
from resolution.config import EXACT_ATTRIBUTES, ClusteringConfig
from resolution.errors import ConfigError, ResolutionError
from tests.sqlconf import sql_settings

EDGES = "account_id_l string, account_id_r string, match_weight double"
ACCOUNTS = "account_id string"
KEYS = "account_id string, attribute string, value_key string"
CLUSTERING = ClusteringConfig(engine="graphx")
SPLIT_COLUMNS = (
    "entity_id",
    "round",
    "reason",
    "method",
    "threshold",
    "removed_edges",
    "parts",
    "part_sizes",
    "account_count",
    "edge_count",
)

Edge = tuple[str | None, str | None, float | None]
Key = tuple[str, str, str]


def _entity_id(account_id: str) -> str:
    """The id scheme of `assign_entities`, computed independently."""
    return "E" + hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:16]


def _expected_membership(parts: list[list[str]]) -> set[tuple[str, str]]:
    return {(account, _entity_id(min(part))) for part in parts for account in part}


def _ring(prefix: str) -> tuple[list[str], list[Edge]]:
    """Eight accounts chained by reused assets, with three chords: a small real ring."""
    accounts = [f"{prefix}-{i}" for i in range(8)]
    pairs = [(i, i + 1) for i in range(7)] + [(0, 2), (3, 5), (4, 7)]
    weights = (6.0, 7.5, 9.0)
    edges: list[Edge] = [
        (accounts[a], accounts[b], weights[k % 3]) for k, (a, b) in enumerate(pairs)
    ]
    return accounts, edges


def _clique(prefix: str, size: int, weight: float) -> tuple[list[str], list[Edge]]:
    accounts = [f"{prefix}{i}" for i in range(size)]
    edges: list[Edge] = [
        (accounts[a], accounts[b], weight) for a in range(size) for b in range(a + 1, size)
    ]
    return accounts, edges


def _run(
    spark: SparkSession,
    accounts: list[str],
    edges: list[Edge],
    config: ClusterControlConfig,
    *,
    components: list[list[str]] | None = None,
    shuffled: bool = False,
    keys: list[Key] | None = None,
) -> ControlledClusters:
    """Control the entities of `components` (accounts in none are singletons), or without
    them cluster with GraphX first as the pipeline does. `shuffled`: reversed input order and
    several partitions. `keys`: the blockable keys, for the value cut."""
    if shuffled:
        accounts, edges = accounts[::-1], edges[::-1]
    account_frame = spark.createDataFrame([(a,) for a in accounts], ACCOUNTS)
    edge_frame = spark.createDataFrame(edges, EDGES)
    if shuffled:
        account_frame, edge_frame = account_frame.repartition(3), edge_frame.repartition(4)
    if components is not None:
        membership = spark.createDataFrame(
            sorted(_expected_membership(components)), "account_id string, entity_id string"
        )
    else:
        accepted = edge_frame.where("account_id_l is not null and account_id_r is not null")
        membership = assign_entities(account_frame, accepted, config=CLUSTERING)
    if shuffled:
        membership = membership.repartition(2)
    return control_clusters(
        account_frame,
        edge_frame,
        membership,
        config=config,
        clustering=CLUSTERING,
        blocking_keys=None if keys is None else spark.createDataFrame(keys, KEYS),
    )


def _membership(result: ControlledClusters) -> set[tuple[str, str]]:
    rows = result.membership.select(c.ACCOUNT_ID, c.ENTITY_ID).collect()
    assert len(rows) == len({row[0] for row in rows}), "an account appears twice"
    return {(row[0], row[1]) for row in rows}


def _splits(result: ControlledClusters) -> set[tuple]:  # type: ignore[type-arg]
    return {
        tuple(tuple(v) if isinstance(v, list) else v for v in row)
        for row in result.splits.select(*SPLIT_COLUMNS).collect()
    }


def _hub_bridged_rings() -> tuple[list[str], list[Edge], list[list[str]]]:
    """Two pairs of rings, and bystanders: (accounts, edges, expected parts).

    `r1`/`r2` are joined by one weak edge (also given reversed, weaker: the pair counts once
    with its highest weight); `环A`/`环B` by two weak edges through one hub account of `环A`
    (a value shared with two accounts of `环B`): a two-edge cut, no single bridge. `x1`-`x2`
    is weak but too small to split; `　` (full-width space) and `` have no edge; an edge with a
    null account is ignored.
    """
    r1, r1_edges = _ring("r1")
    r2, r2_edges = _ring("r2")
    han_a, han_a_edges = _ring("环A")
    han_b, han_b_edges = _ring("环B")
    bystanders = ["x1", "x2", "\u3000", ""]
    edges = (
        r1_edges
        + r2_edges
        + [("r1-7", "r2-0", 3.5), ("r2-0", "r1-7", 2.0)]
        + han_a_edges
        + han_b_edges
        + [("环A-3", "环B-2", 3.0), ("环A-3", "环B-5", 4.0)]
        + [("x1", "x2", 2.0), ("x1", None, 1.0)]
    )
    parts = [r1, r2, han_a, han_b, ["x1", "x2"], ["\u3000"], [""]]
    return r1 + r2 + han_a + han_b + bystanders, edges, parts


# What splitting `_hub_bridged_rings` records (the `SPLIT_COLUMNS`).
_HUB_SPLITS = {
    (
        _entity_id("r1-0"),
        1,
        "bridge edges (1) hold 2 parts of 8 and 8 accounts",
        "bridges",
        None,
        1,
        2,
        (8, 8),
        16,
        21,
    ),
    (
        _entity_id("环A-0"),
        1,
        "bridge edges (2) hold 2 parts of 8 and 8 accounts",
        "bridges",
        None,
        2,
        2,
        (8, 8),
        16,
        22,
    ),
}


# --- Tarjan and the weak-cut search, without Spark -------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_find_bridges_matches_networkx(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(40):
        n = rng.randint(1, 30)
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, 2 * n))]
        multiplicity = Counter(frozenset(e) for e in edges)
        simple = nx.Graph()
        simple.add_nodes_from(range(n))
        simple.add_edges_from(e for e in edges if e[0] != e[1])
        # networkx.bridges takes a simple graph: a doubled edge is never a bridge.
        expected = {frozenset(e) for e in nx.bridges(simple) if multiplicity[frozenset(e)] == 1}
        found = find_bridges(n, edges)
        assert {frozenset(edges[index]) for index, _, _ in found} == expected
        for index, below, total in found:
            cut = simple.copy()
            cut.remove_edge(*edges[index])
            sides = sorted(len(nx.node_connected_component(cut, v)) for v in edges[index])
            assert sorted((below, total - below)) == sides


def test_find_bridges_on_a_long_chain_needs_no_recursion() -> None:
    n = 20_000  # deeper than Python's recursion limit
    found = find_bridges(n, [(i, i + 1) for i in range(n - 1)])
    assert sorted(index for index, _, _ in found) == list(range(n - 1))
    assert {(index, below, total) for index, below, total in found} == {
        (i, n - 1 - i, n) for i in range(n - 1)
    }


def test_find_weak_cut_one_bridge_two_edge_cut_and_weak_chain() -> None:
    triangles = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    strong = [9.0] * 6
    # One weak bridge.
    assert find_weak_cut(6, [*triangles, (2, 3)], [*strong, 3.0], min_part=3, max_weight=5) == [6]
    # The same bridge, strong: nothing to cut; cutting off fewer than min_part: nothing either.
    assert find_weak_cut(6, [*triangles, (2, 3)], [*strong, 6.0], min_part=3, max_weight=5) == []
    assert find_weak_cut(6, [*triangles, (2, 3)], [*strong, 3.0], min_part=4, max_weight=5) == []
    # Two weak edges from one hub vertex: a two-edge cut, unless only single bridges are sought.
    hub = [*triangles, (2, 3), (2, 4)]
    assert find_weak_cut(6, hub, [*strong, 3.0, 4.0], min_part=3, max_weight=5) == [6, 7]
    assert (
        find_weak_cut(6, hub, [*strong, 3.0, 4.0], min_part=3, max_weight=5, max_cut_edges=1) == []
    )
    # A weak chain is cut into runs of at least min_part, not shattered; NaN is never weak.
    chain = [(i, i + 1) for i in range(29)]
    cut = find_weak_cut(30, chain, [4.0] * 29, min_part=5, max_weight=5)
    runs = [b - a for a, b in zip([-1, *cut], [*cut, 29], strict=True)]
    assert sum(runs) == 30 and min(runs) >= 5 and len(cut) >= 2
    assert find_weak_cut(30, chain, [float("nan")] * 29, min_part=5, max_weight=5) == []


@pytest.mark.parametrize("seed", range(4))
def test_find_weak_cut_finds_a_cut_exactly_when_networkx_finds_one(seed: int) -> None:
    """Against a brute force over every weak edge and pair of weak edges: a cut is returned
    exactly when one exists, and what is returned cuts the entity into parts of min_part
    accounts or more along weak edges only (rings joined by strong edges included, which the
    search skips without looking at a candidate)."""
    rng = random.Random(seed)
    min_part, max_weight = 3, 5.0
    for _ in range(60):
        n = rng.randint(6, 14)
        # Connected: a random spanning tree, then extra edges; weights mostly strong.
        edges = [(rng.randrange(v), v) for v in range(1, n)]
        edges += [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, n))]
        edges = [e for e in edges if e[0] != e[1]]
        weights = [rng.choice([2.0, 4.0, 7.0, 9.0, 9.0, 9.0]) for _ in edges]
        weak = [i for i, w in enumerate(weights) if w < max_weight]

        pairs = [{i, j} for k, i in enumerate(weak) for j in weak[k + 1 :]]
        exists = any(_qualifies(n, edges, cut, min_part) for cut in [*({i} for i in weak), *pairs])
        cut = find_weak_cut(n, edges, weights, min_part=min_part, max_weight=max_weight)
        assert bool(cut) == exists, (edges, weights)
        if cut:
            assert all(weights[i] < max_weight for i in cut)
            assert _qualifies(n, edges, set(cut), min_part)


def _qualifies(n: int, edges: list[tuple[int, int]], removed: set[int], min_part: int) -> bool:
    """Whether removing `removed` leaves two or more parts, each of min_part vertices or more."""
    graph = nx.MultiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(e for i, e in enumerate(edges) if i not in removed)
    sizes = [len(part) for part in nx.connected_components(graph)]
    return len(sizes) >= 2 and min(sizes) >= min_part


def test_config_problems_and_input_errors(spark: SparkSession) -> None:
    assert ClusterControlConfig().problems() == []
    bad = ClusterControlConfig(
        max_size=1,
        min_density=0.0,
        max_cut_edges=3,
        weight_step=0.0,
        lineage_cut="none",
        grouped_relabel_max_accounts=-1,
    )
    assert [p.split(":")[0] for p in bad.problems()] == [
        "cluster_control.max_size",
        "cluster_control.min_density",
        "cluster_control.max_cut_edges",
        "cluster_control.weight_step",
        "cluster_control.lineage_cut",
        "cluster_control.grouped_relabel_max_accounts",
    ]
    accounts = spark.createDataFrame([("a",)], ACCOUNTS)
    edges = spark.createDataFrame([("a", "b", 1.0)], EDGES)
    membership = spark.createDataFrame([("a", "Ea")], "account_id string, entity_id string")
    with pytest.raises(ConfigError, match="cluster_control.max_size: must be >= 2"):
        control_clusters(accounts, edges, membership, config=bad, clustering=CLUSTERING)
    with pytest.raises(
        ResolutionError,
        match="match_edges lacks column.s. match_weight; found: account_id_l, account_id_r",
    ):
        control_clusters(
            accounts,
            edges.drop("match_weight"),
            membership,
            config=ClusterControlConfig(),
            clustering=CLUSTERING,
        )


# --- control_clusters on Spark ----------------------------------------------------------------


# A split entity's parts found one entity at a time in Python (the default) or with GraphX (0).
RELABEL_PATHS = pytest.mark.parametrize(
    "grouped_up_to", [20_000, 0], ids=["grouped_relabel", "graphx_relabel"]
)


@RELABEL_PATHS
def test_hub_bridged_rings_are_split_into_the_rings(
    spark: SparkSession, grouped_up_to: int
) -> None:
    accounts, edges, parts = _hub_bridged_rings()
    config = ClusterControlConfig(grouped_relabel_max_accounts=grouped_up_to)
    result = _run(spark, accounts, edges, config)

    assert _membership(result) == _expected_membership(parts)
    # Each pair of rings is split once, in round 1, named by its anchor account's entity id.
    assert _splits(result) == _HUB_SPLITS
    stats = result.statistics.first()
    assert stats is not None
    assert (stats.entity_count, stats.largest_entity, stats.split_count) == (7, 8, 2)
    assert (stats.rounds, stats.unsplittable, stats.unchecked) == (1, 0, 0)
    # Four rings of 10 edges on 8 accounts, and x1-x2.
    assert stats.mean_density == pytest.approx((4 * 10 / 28 + 1.0) / 5)


def test_ids_do_not_depend_on_partitioning_or_order(spark: SparkSession) -> None:
    accounts, edges, parts = _hub_bridged_rings()
    config = ClusterControlConfig(lineage_cut="local")
    shuffled = _run(spark, accounts, edges, config, shuffled=True)
    assert _membership(shuffled) == _expected_membership(parts)
    assert _splits(shuffled) == _HUB_SPLITS


def test_coherent_chain_ring_of_30_is_not_split(spark: SparkSession) -> None:
    # A chain of reused assets: density 2/30 = 0.067, every edge a bridge, but none weak.
    ring = [f"ring{i:02d}" for i in range(30)]
    weights = (5.5, 6.0, 9.0, 12.0)
    ring_edges: list[Edge] = [(ring[i], ring[i + 1], weights[i % 4]) for i in range(29)]
    # The same shape held by weak edges only is cut into runs of min_bridge_part (5): the most
    # balanced weak bridge first (20 | 20), then each that leaves no part under 5.
    weak = [f"weak{i:02d}" for i in range(40)]
    weak_edges: list[Edge] = [(weak[i], weak[i + 1], 4.0) for i in range(39)]
    # The density rule applies from 20 accounts here; 0.067 is far above min_density 0.01.
    config = ClusterControlConfig(min_size_for_density=20, lineage_cut="local")
    result = _run(
        spark, [*ring, *weak, "alone"], ring_edges + weak_edges, config, components=[ring, weak]
    )

    runs = [weak[i : i + 5] for i in range(0, 40, 5)]
    assert _membership(result) == _expected_membership([ring, ["alone"], *runs])
    assert _splits(result) == {
        (
            _entity_id("weak00"),
            1,
            "bridge edges (7) hold 8 parts of 5, 5, 5, 5, 5, ... accounts",
            "bridges",
            None,
            7,
            8,
            (5,) * 8,
            40,
            39,
        )
    }
    stats = result.statistics.first()
    assert stats is not None
    assert (stats.entity_count, stats.largest_entity, stats.split_count, stats.rounds) == (
        10,
        30,
        1,
        1,
    )
    assert (stats.size_p50, stats.size_p90) == (5, 5)
    assert stats.mean_density == pytest.approx((2 / 30 + 8 * 4 / 10) / 9)


@RELABEL_PATHS
def test_sparse_and_oversized_entities_are_split_at_a_higher_threshold(
    spark: SparkSession, grouped_up_to: int
) -> None:
    # Over max_size (10 > 9): two cliques held by two links of weight 4 and 4.5, no bridge.
    p, p_edges = _clique("p", 5, 9.0)
    q, q_edges = _clique("q", 5, 9.0)
    p_edges[0] = ("p0", "p1", 5.5)  # weak inside a part: dropped too, splits nothing
    links: list[Edge] = [("p4", "q0", 4.0), ("p3", "q1", 4.5)]
    # Sparse (11 / 36 = 0.306 < 0.35): three triangles chained by links of 5.5 and 6.0, too
    # strong to be weak bridges, and too few accounts (9 < 2 * 5) for the bridge search.
    t, t_edges = _clique("t", 3, 9.0)
    u, u_edges = _clique("u", 3, 9.0)
    v, v_edges = _clique("v", 3, 9.0)
    chained: list[Edge] = [("t2", "u0", 5.5), ("u2", "v0", 6.0)]
    config = ClusterControlConfig(
        max_size=9,
        min_size_for_density=9,
        min_density=0.35,
        lineage_cut="local",
        grouped_relabel_max_accounts=grouped_up_to,
    )
    result = _run(
        spark,
        p + q + t + u + v,
        p_edges + q_edges + links + t_edges + u_edges + v_edges + chained,
        config,
        components=[p + q, t + u + v],
    )

    assert _membership(result) == _expected_membership([p, q, t, u, v])
    # Threshold = the weakest edge + weight_step 2.0: 6.0 drops the links and p0-p1, 7.5 both
    # chain links.
    assert _splits(result) == {
        (_entity_id("p0"), 1, "10 accounts > max_size 9", "threshold", 6.0, 3, 2, (5, 5), 10, 22),
        (
            _entity_id("t0"),
            1,
            "density 0.306 < 0.35 with 9 accounts",
            "threshold",
            7.5,
            2,
            3,
            (3, 3, 3),
            9,
            11,
        ),
    }


@RELABEL_PATHS
def test_split_that_cannot_be_improved_stops_after_max_rounds(
    spark: SparkSession, grouped_up_to: int
) -> None:
    # A chain whose weights rise by 1: each round's threshold (weakest + 0.5) peels one
    # account off, and the rest is still too large when max_rounds runs out.
    chain = [f"c{i}" for i in range(10)]
    chain_edges: list[Edge] = [(chain[i], chain[i + 1], float(i + 1)) for i in range(9)]
    # A clique over max_size whose every edge is at max_threshold: flagged, not splittable.
    strong, strong_edges = _clique("s", 5, 12.0)
    config = ClusterControlConfig(
        max_size=3,
        weight_step=0.5,
        max_rounds=2,
        lineage_cut="local",
        grouped_relabel_max_accounts=grouped_up_to,
    )
    result = _run(
        spark, chain + strong, chain_edges + strong_edges, config, components=[chain, strong]
    )

    membership = _membership(result)
    assert sorted(account for account, _ in membership) == sorted(chain + strong)
    assert membership == _expected_membership([["c0"], ["c1"], chain[2:], strong])
    assert _splits(result) == {
        (_entity_id("c0"), 1, "10 accounts > max_size 3", "threshold", 1.5, 1, 2, (9, 1), 10, 9),
        (_entity_id("c1"), 2, "9 accounts > max_size 3", "threshold", 2.5, 1, 2, (8, 1), 9, 8),
    }
    stats = result.statistics.first()
    assert stats is not None
    # Round 2's parts {c1} and c2..c9 were not examined again; the clique could not be split.
    assert (stats.rounds, stats.unsplittable, stats.unchecked) == (2, 1, 2)
    assert (stats.entity_count, stats.largest_entity, stats.split_count) == (4, 8, 2)


def test_disabled_control_returns_the_membership(spark: SparkSession) -> None:
    accounts, edges, parts = _hub_bridged_rings()
    merged = [parts[0] + parts[1], parts[2] + parts[3], *parts[4:]]
    # The empty account id is missing from the membership given: it comes back a singleton.
    given = [part for part in merged if part != [""]]
    result = _run(spark, accounts, edges, ClusterControlConfig(enabled=False), components=given)
    assert _membership(result) == _expected_membership(merged)
    assert result.splits.collect() == []


# --- the value cut --------------------------------------------------------------------------


def _keyed_ring(prefix: str) -> tuple[list[str], list[Edge], list[Key]]:
    """`_ring`, each edge resting on a card only its two accounts hold."""
    accounts, edges = _ring(prefix)
    keys: list[Key] = []
    for a, b, _ in edges:
        assert a is not None and b is not None
        keys += [(a, "card", f"card:{a}|{b}"), (b, "card", f"card:{a}|{b}")]
    return accounts, edges, keys


def _supplier_rings(
    prefix_a: str, prefix_b: str, *, with_card: bool = False
) -> tuple[list[str], list[Edge], list[Key]]:
    """Two rings of 8 whose accounts 2 and 5 (ring a) and 1, 4 and 6 (ring b) use one supplier's
    warehouse: every two of those five are matched at 6.0, as strong as the rings' own edges,
    on the warehouse alone (with `with_card`, on the warehouse and a card they all hold)."""
    a, a_edges, a_keys = _keyed_ring(prefix_a)
    b, b_edges, b_keys = _keyed_ring(prefix_b)
    holders = [a[2], a[5], b[1], b[4], b[6]]
    supplier: list[Edge] = [
        (holders[i], holders[j], 6.0) for i in range(5) for j in range(i + 1, 5)
    ]
    keys = a_keys + b_keys + [(h, "warehouse_address", "warehouse:supplier-1") for h in holders]
    if with_card:
        keys += [(h, "card", "card:supplier-1") for h in holders]
    return a + b, a_edges + b_edges + supplier, keys


def test_find_value_cut_leaves_small_fragments_attached() -> None:
    triangles = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    shared = [(1, 3), (2, 4), (1, 4)]
    values: list[str | None] = [None] * 6 + ["w"] * 3
    assert find_value_cut(6, triangles + shared, values, min_part=3) == ([6, 7, 8], "w")
    assert find_value_cut(6, triangles + shared, values, min_part=4) == ([], None)
    # Account 6 is matched through "w" alone, twice to the second triangle: it stays there.
    fragment = [(6, 1), (6, 3), (6, 4)]
    assert find_value_cut(7, triangles + shared + fragment, values + ["w"] * 3, min_part=3) == (
        [6, 7, 8, 9],
        "w",
    )
    # Of two values that both cut, the one cutting fewer edges; no value, no cut.
    two = triangles + shared + [(0, 5)]
    assert find_value_cut(6, two, [*values, "v"], min_part=3) == ([], None)
    assert find_value_cut(6, two, [None] * 6 + ["v"] * 4, min_part=3) == ([6, 7, 8, 9], "v")
    assert find_value_cut(6, triangles + shared, [None] * 9, min_part=3) == ([], None)


def test_a_value_cut_is_not_made_between_parts_that_share_a_kept_by_value() -> None:
    triangles = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    shared = [(1, 3), (2, 4), (1, 4)]
    values: list[str | None] = [None] * 6 + ["w"] * 3
    none: frozenset[str] = frozenset()
    # Accounts 0 and 5, one in each part, were registered from one IP: no cut.
    across = [frozenset({"ip"}), none, none, none, none, frozenset({"ip"})]
    assert find_value_cut(6, triangles + shared, values, min_part=3, kept_by=across) == ([], None)
    # The same IP inside one part keeps nothing apart: the cut is made.
    inside = [frozenset({"ip"}), frozenset({"ip"}), none, none, none, frozenset({"ip2"})]
    assert find_value_cut(6, triangles + shared, values, min_part=3, kept_by=inside) == (
        [6, 7, 8],
        "w",
    )


def test_supplier_bridged_rings_are_split_at_the_shared_value(spark: SparkSession) -> None:
    accounts, edges, keys = _supplier_rings("sa", "sb")
    config = ClusterControlConfig(lineage_cut="local")
    result = _run(spark, accounts, edges, config, components=[accounts], keys=keys)

    assert _membership(result) == _expected_membership([accounts[:8], accounts[8:]])
    # The 6 edges between the rings are cut; the 4 inside them rest on the warehouse too but
    # join no parts. The reason names the kind of value, never its key.
    assert _splits(result) == {
        (
            _entity_id("sa-0"),
            1,
            "6 edges resting only on one shared warehouse_address hold 2 parts of 8 and 8 accounts",
            "value_cut",
            None,
            6,
            2,
            (8, 8),
            16,
            30,
        )
    }
    reasons = " ".join(row.reason for row in result.splits.collect())
    assert "supplier" not in reasons and "warehouse:" not in reasons
    # Without the keys, or with value_cut off, strong parallel edges are not cut.
    for off, given in ((config, None), (ClusterControlConfig(value_cut=False), keys)):
        kept = _run(spark, accounts, edges, off, components=[accounts], keys=given)
        assert _membership(kept) == _expected_membership([accounts])
        assert kept.splits.collect() == []


def test_a_value_holding_too_small_a_part_is_not_cut(spark: SparkSession) -> None:
    # Ten accounts: a chain of 7 and a chain of 3 on cards, and one return address held by
    # c6 and c7 alone: the one edge resting on it would cut off 3 < min_bridge_part accounts.
    ring = [f"c{i}" for i in range(10)]
    edges: list[Edge] = [(ring[i], ring[i + 1], 6.0) for i in range(9)]
    keys: list[Key] = [
        (account, "card", f"card:{i}")
        for i in range(9)
        if i != 6
        for account in (ring[i], ring[i + 1])
    ] + [("c6", "return_address", "return:1"), ("c7", "return_address", "return:1")]
    result = _run(
        spark, ring, edges, ClusterControlConfig(lineage_cut="local"), components=[ring], keys=keys
    )
    assert _membership(result) == _expected_membership([ring])
    assert result.splits.collect() == []


def test_an_edge_sharing_another_value_does_not_rest_on_the_warehouse(
    spark: SparkSession,
) -> None:
    # The supplier's holders also share a card: their edges rest on two values, none is cut.
    accounts, edges, keys = _supplier_rings("ta", "tb", with_card=True)
    config = ClusterControlConfig(lineage_cut="local")
    result = _run(spark, accounts, edges, config, components=[accounts], keys=keys)
    assert _membership(result) == _expected_membership([accounts])
    assert result.splits.collect() == []


def test_supplier_rings_registered_from_one_ip_are_not_split(spark: SparkSession) -> None:
    # One account of each ring registered from one IP (too weak for an edge): one operator.
    accounts, edges, keys = _supplier_rings("ua", "ub")
    keys += [(accounts[0], "registration_ip", "ip:1"), (accounts[-1], "registration_ip", "ip:1")]
    config = ClusterControlConfig(lineage_cut="local")
    result = _run(spark, accounts, edges, config, components=[accounts], keys=keys)
    assert _membership(result) == _expected_membership([accounts])
    assert result.splits.collect() == []
    # Without the check the supplier cut is made.
    unchecked = ClusterControlConfig(lineage_cut="local", value_cut_kept_by=())
    split = _run(spark, accounts, edges, unchecked, components=[accounts], keys=keys)
    assert _membership(split) == _expected_membership([accounts[:8], accounts[8:]])


def test_value_cut_config_problems() -> None:
    assert ClusterControlConfig(value_cut=False, value_cut_attributes=("card",)).problems() == []
    bad = ClusterControlConfig(value_cut_attributes=("warehouse_address", "warehouse", "card"))
    assert bad.problems() == [
        "cluster_control.value_cut_attributes: unknown attribute 'warehouse' (known: "
        + ", ".join(EXACT_ATTRIBUTES)
        + ")"
    ]
    empty = ClusterControlConfig(value_cut_attributes=())
    assert empty.problems() == [
        "cluster_control.value_cut_attributes: at least one attribute is needed"
    ]
    twice = ClusterControlConfig(value_cut_attributes=("contact_phone", "contact_phone"))
    assert [p.split(":")[0] for p in twice.problems()] == ["cluster_control.value_cut_attributes"]


def test_map_groups_keeps_groups_whole_when_a_join_below_becomes_a_broadcast_join(
    spark: SparkSession,
) -> None:
    """The frame comes from a join planned as a sort-merge join (on the group key) that
    adaptive execution turns into a broadcast join at run time, every key's rows in both
    partitions of its input. `repartition(key)` then `mapInPandas` handed most groups to the
    function in two pieces here (the repartition was dropped as redundant with the join's
    shuffle, which was then read mapper by mapper); each group must come whole, once."""
    keys, rows_per_key = 2000, 40
    rows = (
        spark.range(keys * rows_per_key, numPartitions=2)
        .select(
            (F.col("id") % keys).alias("entity_id"),
            F.col("id").alias("value"),
            F.substring(F.repeat(F.sha2(F.col("id").cast("string"), 256), 8), 1, 200).alias(
                "payload"
            ),
        )
        .localCheckpoint(eager=True)
    )
    # Estimated as large as `rows` (an aggregate of it), a few KB when run.
    wanted = rows.groupBy("entity_id").count().where("entity_id % 2 = 0").select("entity_id")

    def seen(group: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"entity_id": [int(group["entity_id"].iloc[0])], "rows": [len(group)]})

    settings = {
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.autoBroadcastJoinThreshold": "-1",  # not broadcast when planned...
        "spark.sql.adaptive.autoBroadcastJoinThreshold": "10485760",  # ...but when run
        "spark.sql.shuffle.partitions": "8",
    }
    with sql_settings(spark, settings):
        calls = map_groups(
            rows.join(wanted, "entity_id", "left_semi"),
            "entity_id",
            seen,
            "entity_id long, rows long",
        ).collect()
    assert len(calls) == keys // 2
    assert {row["entity_id"] for row in calls} == set(range(0, keys, 2))
    assert {row["rows"] for row in calls} == {rows_per_key}


@pytest.mark.parametrize("rows_per_batch", [3, 10_000])
def test_map_groups_hands_each_group_whole_to_the_function_once(
    spark: SparkSession, rows_per_batch: int
) -> None:
    # Groups of 1 to 9 rows; with 3 rows an Arrow batch most groups straddle batches.
    rng = random.Random(5)
    rows = [(f"g{g:03d}", i) for g in range(60) for i in range(rng.randint(1, 9))]
    rng.shuffle(rows)
    frame = spark.createDataFrame(rows, "entity_id string, value long").repartition(4)

    def summary(group: pd.DataFrame) -> pd.DataFrame | None:
        if int(group["entity_id"].iloc[0][1:]) % 3 == 0:
            return None  # no rows for this group
        return pd.DataFrame(
            {
                "entity_id": [group["entity_id"].iloc[0]],
                "rows": [len(group)],
                "total": [int(group["value"].sum())],
                "keys": [group["entity_id"].nunique()],
            }
        )

    def as_frame(group: pd.DataFrame) -> pd.DataFrame:  # applyInPandas wants a frame
        found = summary(group)
        empty = pd.DataFrame(columns=["entity_id", "rows", "total", "keys"])
        return empty if found is None else found

    schema = "entity_id string, rows long, total long, keys long"
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, str(rows_per_batch))
    try:
        got = sorted(tuple(r) for r in map_groups(frame, "entity_id", summary, schema).collect())
        expected = sorted(
            tuple(r)
            for r in frame.groupBy("entity_id").applyInPandas(as_frame, schema=schema).collect()
        )
    finally:
        spark.conf.set(key, before)
    assert got == expected
    assert len(got) == 40 and all(keys == 1 for *_, keys in got)


@pytest.mark.parametrize("seed", [3, 11])
def test_grouped_relabel_finds_the_parts_graphx_finds(spark: SparkSession, seed: int) -> None:
    """The parts of split entities, found per entity in Python and with GraphX, on random
    sparse graphs: isolated accounts, chains, several parts per entity, and account ids whose
    smallest differs between byte and naive orderings (upper case, digits, non-ASCII)."""
    rng = random.Random(seed)
    names = ["a", "B", "z9", "Z", "é", "10", "2", "ß", "x_", "Ω"]
    members: list[tuple[str, str]] = []
    edges: list[tuple[str, str, str, float]] = []
    for entity in range(12):
        accounts = [f"{rng.choice(names)}{entity}-{i}" for i in range(rng.randint(1, 25))]
        accounts = sorted(set(accounts))
        members += [(account, f"E{entity}") for account in accounts]
        for _ in range(rng.randint(0, len(accounts))):
            left, right = rng.sample(accounts, 2) if len(accounts) > 1 else (accounts[0],) * 2
            if left != right:
                edges.append((f"E{entity}", min(left, right), max(left, right), 1.0))
    moved = spark.createDataFrame(members, "account_id string, entity_id string").repartition(3)
    kept = spark.createDataFrame(
        edges, "entity_id string, account_id_l string, account_id_r string, match_weight double"
    ).repartition(2)

    def parts(grouped: bool) -> set[tuple[str, str, str]]:
        relabelled = _relabel(moved, kept, CLUSTERING, grouped=grouped)
        return {tuple(row) for row in relabelled.collect()}

    grouped, graphx = parts(True), parts(False)
    assert grouped == graphx
    assert len(grouped) == len(members)
    # networkx's components give the same parts, each named by its smallest account.
    graph = nx.Graph()
    graph.add_nodes_from(account for account, _ in members)
    graph.add_edges_from((left, right) for _, left, right, _ in edges)
    entity_of = dict(members)
    expected = {
        (account, entity_of[account], _entity_id(min(part)))
        for part in nx.connected_components(graph)
        for account in part
    }
    assert grouped == expected
