"""Cluster control: re-examine entities that are too large for their evidence, and split them.

Connected components merge whatever a chain of accepted edges joins, so one weak link is enough
to fuse two rings (two rings bridged by one or two weak edges through a shared value) and a
run of weak links makes a giant. `control_clusters` takes the entities of
`resolution.clustering.assign_entities` and, round after round, flags the entities that look
over-merged and splits them along their weakest evidence, recording every split with its reason.

An entity is flagged when (see `ClusterControlConfig`):

- **size**: it has more than `max_size` accounts;
- **density**: it has at least `min_size_for_density` accounts and an edge density
  `edges / (n (n - 1) / 2)` below `min_density`. A connected entity is never sparser than a
  chain of the same size (density 2/n: a spanning tree is the fewest edges that connect n
  accounts), and rings are exactly that, chains of reused assets. So the rule cannot flag a
  chain of up to 2 / `min_density` accounts (200 with the defaults, above the largest ring
  the data contract describes, 150). In mean-degree terms it asks an entity of n accounts for
  a mean degree of at least `min_density` (n - 1): evidence growing with the size it claims;
- **bridges**: removing at most `max_cut_edges` edges, each weaker than `bridge_max_weight`,
  cuts it into parts of at least `min_bridge_part` accounts each (Tarjan's bridges; a
  two-edge cut is a bridge of the entity without one of its weak edges);
- **value cut** (`value_cut`, when the caller passes the blocking keys): removing the edges
  that rest on one value of a `value_cut_attributes` attribute (a warehouse, return or
  ship-from address, a label contact phone) cuts it into at least two parts of at least
  `min_bridge_part` accounts, whatever the edges weigh. An edge rests on a value when that
  value is the only blockable value its two accounts share (found by joining the edge's
  accounts' keys in Spark). This is an upstream supplier: one warehouse or phone used by a
  few rings, whose holders in each ring are matched to each other by many parallel edges as
  strong as the rings' own chain edges, so no weak cut exists. Parts that also share a
  value of a `value_cut_kept_by` attribute (a registration IP) are not cut. See
  `find_value_cut`.

A flagged entity is split by removing its qualifying weak cut when it has one (the weakest
bridges first, as many as leave every part at least `min_bridge_part` accounts, or else the
single weakest two-edge cut; the cut is searched only in entities of at most `max_size`
accounts with a weak edge); else by removing its value cut (searched in entities of
2 `min_bridge_part` to `max_size` accounts with an edge resting on one such value; of the
values that cut, the one removing the fewest edges); otherwise its acceptance threshold is
raised to its weakest edge's weight + `weight_step` (never above `max_threshold`: stronger
edges are never dropped). Its remaining edges are re-clustered with
`resolution.clustering.connected_components`. What a round changed is examined again in the
next, up to `max_rounds` rounds; entities a round did not change are not looked at again. A
part gets the entity id `assign_entities` gives: `E` + 16 hex of SHA-256 of its smallest
account id (the part holding the old anchor keeps the old id), so the result does not depend
on partitioning.

A value cut's parts still share the value, so `resolution.network.entity_links` links them: a
relation to follow, no longer a merge. Its limits: two rings fused through two different
supplier values are not cut (each value alone leaves them connected), and a ring whose own
warehouse or phone alone holds two parts of `min_bridge_part` accounts together is cut as a
supplier would be (measured at 20,000 generated accounts with `--supplier-share 0.15`: 30
value cuts, all 39 supplier-fused ring pairs separated and linked, 9 true rings of 10-40
accounts cut in two and linked).

Each round collects one handful of numbers (how many entities were flagged, by method, and the
largest) and finds the parts of the entities it acted on over their kept edges only: one
entity at a time in Python (union-find) when the largest has at most
`grouped_relabel_max_accounts` accounts, else with connected components (GraphX); the round's
results are checkpointed (`lineage_cut`) so that later rounds do not recompute them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.clustering import connected_components, vertex_id
from resolution.config import BlockingConfig, ClusterControlConfig, ClusteringConfig
from resolution.errors import ConfigError, require_columns
from resolution.lineage import resolved_cut

logger = logging.getLogger(__name__)


# Columns of the control's own frames.
EDGE_COUNT = "edge_count"
DENSITY = "density"
MIN_WEIGHT = "min_weight"
CUT_SIZE = "cut_size"
VALUE_CUT_SIZE = "value_cut_size"
CUT_ATTRIBUTE = "cut_attribute"
_VALUE_ID = "value_id"
_KEPT_BY = "kept_by"
_BUCKET = "_map_groups_bucket"
METHOD = "method"
THRESHOLD = "threshold"
ROUND = "round"
PARTS = "parts"
PART_SIZES = "part_sizes"
REMOVED_EDGES = "removed_edges"
_PREVIOUS_ENTITY_ID = "previous_entity_id"
_SIZE_FLAG = "size_flag"
_DENSITY_FLAG = "density_flag"
_ANCHOR = "anchor_account_id"
# How many part sizes a bridge reason spells out before "...".
_LISTED_PARTS = 5

SPLITS_SCHEMA = (
    "entity_id string, round int, reason string, method string, threshold double, "
    "removed_edges long, parts long, part_sizes array<long>, account_count long, "
    "edge_count long, density double, min_weight double"
)
_CUT_SCHEMA = "entity_id string, account_id_l string, account_id_r string, cut_size int"
_VALUE_CUT_SCHEMA = (
    "entity_id string, account_id_l string, account_id_r string, value_cut_size int, "
    "cut_attribute string"
)


@dataclass(frozen=True)
class ControlledClusters:
    """What `control_clusters` returns.

    `membership`: `(account_id, entity_id)`, one row per account of `accounts`. `splits`: one
    row per split (`SPLITS_SCHEMA`): the entity split (`entity_id`, its id before the split),
    the `round`, the `reason` it was flagged (it names a value cut's attribute, never its
    value), the `method` (`bridges`, `value_cut` or `threshold`), the raised `threshold` (null
    for the cuts), how many edges were removed, the number of `parts`
    and their sizes (largest first), and the entity's `account_count`, `edge_count`, `density`
    and `min_weight` before the split. `statistics`: one row for logging (see
    `control_statistics`).
    """

    membership: DataFrame
    splits: DataFrame
    statistics: DataFrame


# Tarjan's bridge-finding is written here rather than imported: no maintained library among the
# runtime dependencies offers it (networkx is a test-only dependency), and it is ~40 lines.
def find_bridges(vertex_count: int, edges: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """The bridges of an undirected multigraph on vertices `0 .. vertex_count - 1`.

    Tarjan (1974), "A note on finding the bridges of a graph": one depth-first search, an edge
    (parent, child) of the search tree is a bridge when no back edge from the child's subtree
    reaches the parent or above. Iterative, so deep chains do not hit Python's recursion limit.
    Self-loops are never bridges; of two parallel edges neither is. Returns one
    `(edge index, vertices on the child's side, vertices in the component)` per bridge, so the
    two parts a bridge holds together have `below` and `component - below` vertices. Example::

        find_bridges(4, [(0, 1), (1, 2), (2, 0), (2, 3)])  # [(3, 1, 4)]
    """
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(vertex_count)]
    for index, (u, v) in enumerate(edges):
        if u != v:
            adjacency[u].append((v, index))
            adjacency[v].append((u, index))
    order = [-1] * vertex_count
    low = [0] * vertex_count
    size = [1] * vertex_count
    found: list[tuple[int, int, int]] = []
    counter = 0
    for root in range(vertex_count):
        if order[root] != -1:
            continue
        order[root] = low[root] = counter
        counter += 1
        component_bridges: list[tuple[int, int]] = []
        # (vertex, index of the edge it was entered by, position in its adjacency list)
        stack = [(root, -1, 0)]
        while stack:
            vertex, via, position = stack[-1]
            neighbours = adjacency[vertex]
            while position < len(neighbours):
                neighbour, index = neighbours[position]
                position += 1
                if index == via:
                    continue
                if order[neighbour] == -1:
                    stack[-1] = (vertex, via, position)
                    order[neighbour] = low[neighbour] = counter
                    counter += 1
                    stack.append((neighbour, index, 0))
                    break
                low[vertex] = min(low[vertex], order[neighbour])
            else:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[vertex])
                    size[parent] += size[vertex]
                    if low[vertex] > order[parent]:
                        component_bridges.append((via, vertex))
        found += [(index, size[child], size[root]) for index, child in component_bridges]
    return found


def _part_sizes(
    vertex_count: int, edges: Sequence[tuple[int, int]], removed: set[int]
) -> list[int]:
    """Sizes of the connected components of the graph without the `removed` edges."""
    return list(Counter(_components(vertex_count, edges, removed)).values())


def find_weak_cut(
    vertex_count: int,
    edges: Sequence[tuple[int, int]],
    weights: Sequence[float],
    *,
    min_part: int,
    max_weight: float,
    max_cut_edges: int = 2,
    max_candidates: int = 200,
) -> list[int]:
    """Indices of the weak edges to remove from one connected entity, or [] if none qualify.

    An edge is weak when its weight is below `max_weight` (a NaN weight is never weak). First
    the weak bridges whose two sides both have at least `min_part` vertices, weakest first
    (then the most balanced): each is kept while every part cut off still has `min_part`
    vertices. Without one, and with `max_cut_edges` 2, the weakest pair of weak edges that
    together cut the entity into two such parts: a bridge of the graph without one weak
    non-bridge edge (at most `max_candidates` of them, weakest first). Ties break on edge
    index, so the answer depends on the order of `edges` alone. Example::

        # two triangles joined by one weak edge
        edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
        find_weak_cut(6, edges, [9.0] * 6 + [3.0], min_part=3, max_weight=5.0)  # [6]
    """
    weak = [weight < max_weight for weight in weights]
    # Every edge across a cut is weak, so each side is a union of the parts the strong edges
    # hold together: when those hold the whole entity, no cut exists (one union-find pass
    # instead of a Tarjan search a candidate edge: in a generated ring most edges are strong).
    strong_part = _components(vertex_count, edges, {i for i, w in enumerate(weak) if w})
    if len(set(strong_part)) == 1:
        return []
    bridges = find_bridges(vertex_count, edges)
    bridge_indices = {index for index, _, _ in bridges}
    qualifying = sorted(
        (weights[index], -min(below, total - below), index)
        for index, below, total in bridges
        if weak[index] and min(below, total - below) >= min_part
    )
    chosen: list[int] = []
    for _, _, index in qualifying:
        trial = {*chosen, index}
        if min(_part_sizes(vertex_count, edges, trial)) >= min_part:
            chosen.append(index)
    if chosen or max_cut_edges < 2:
        return sorted(chosen)
    candidates = sorted(
        (weights[index], index)
        for index in range(len(edges))
        if weak[index] and index not in bridge_indices and edges[index][0] != edges[index][1]
    )[:max_candidates]
    best: tuple[float, float, int, tuple[int, int]] | None = None
    for _, first in candidates:
        if strong_part[edges[first][0]] == strong_part[edges[first][1]]:
            continue  # its ends stay joined by strong edges: in no cut
        without = list(edges)
        without[first] = (edges[first][0], edges[first][0])  # a self-loop: indices unchanged
        for second, below, total in find_bridges(vertex_count, without):
            balance = min(below, total - below)
            if second in bridge_indices or not weak[second] or balance < min_part:
                continue
            pair = (min(first, second), max(first, second))
            key = (max(weights[first], weights[second]), weights[first] + weights[second])
            candidate = (*key, -balance, pair)
            if best is None or candidate < best:
                best = candidate
    return list(best[3]) if best is not None else []


def _ordered_edges(
    entity_edges: pd.DataFrame,
) -> tuple[list[int], dict[str, int], list[tuple[int, int]]]:
    """One entity's edges in `(account_id_l, account_id_r)` order (stable): the row of each,
    each account's position among the sorted accounts, and each edge as a pair of positions.
    Plain lists, not pandas: an entity usually has a few edges, and pandas' sorting, mapping
    and indexing took about 2 ms an entity, several times the search itself (4,000 generated
    entities of 2 to 21 accounts: 2.5 ms an entity that way, 0.45 ms so)."""
    lefts = entity_edges[c.ACCOUNT_ID_L].tolist()
    rights = entity_edges[c.ACCOUNT_ID_R].tolist()
    order = sorted(range(len(lefts)), key=lambda i: (lefts[i], rights[i]))
    accounts = sorted({*lefts, *rights})
    position = {account: index for index, account in enumerate(accounts)}
    edges = [(position[lefts[i]], position[rights[i]]) for i in order]
    return order, position, edges


def _cut_rows(
    entity_edges: pd.DataFrame, rows: list[int], extra: dict[str, Any]
) -> pd.DataFrame | None:
    """The `(entity_id, account_id_l, account_id_r)` of `entity_edges`' rows at `rows` (in that
    order), with the `extra` columns' one value each; None for no rows (`map_groups`)."""
    if not rows:
        return None
    cut = entity_edges[[c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R]].iloc[rows]
    return cut.assign(**extra).reset_index(drop=True)


def _cut_finder(config: ClusterControlConfig) -> Callable[[pd.DataFrame], pd.DataFrame | None]:
    """The grouped pandas function that finds one entity's weak cut.

    A pandas function because Tarjan's search is a sequential depth-first walk over one
    entity's whole edge list, which no native Spark expression can express; entities reach it
    only with at most `max_size` accounts and at least one weak edge. Measured on a busy
    2-core machine: a 500-account entity of 5,000 edges with 200 weak ones and no cut takes
    1.5-2.5 s (the two-edge-cut search: 200 Tarjan passes), a weak 500-account chain 0.16 s,
    a 30-account ring 0.03 ms.
    """
    min_part = config.min_bridge_part
    max_weight = config.bridge_max_weight
    max_cut_edges = config.max_cut_edges
    max_candidates = config.max_cut_candidates

    def find_cut(entity_edges: pd.DataFrame) -> pd.DataFrame | None:
        order, position, edges = _ordered_edges(entity_edges)
        weights = entity_edges[c.MATCH_WEIGHT].astype("float64").tolist()
        chosen = find_weak_cut(
            len(position),
            edges,
            [weights[i] for i in order],
            min_part=min_part,
            max_weight=max_weight,
            max_cut_edges=max_cut_edges,
            max_candidates=max_candidates,
        )
        return _cut_rows(entity_edges, [order[i] for i in chosen], {CUT_SIZE: len(chosen)})

    return find_cut


def _components(
    vertex_count: int, edges: Sequence[tuple[int, int]], removed: set[int]
) -> list[int]:
    """The component of each vertex (its smallest vertex) in the graph without `removed`."""
    parent = list(range(vertex_count))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for index, (u, v) in enumerate(edges):
        if index not in removed:
            ru, rv = root(u), root(v)
            parent[max(ru, rv)] = min(ru, rv)
    return [root(x) for x in range(vertex_count)]


def _value_cut_groups(
    vertex_count: int, edges: Sequence[tuple[int, int]], removed: set[int], min_part: int
) -> list[int] | None:
    """The part of each vertex once the `removed` edges are cut, or None if fewer than two parts
    of `min_part` vertices or more come apart.

    A fragment of fewer than `min_part` vertices stays attached: to the part it has the most
    removed edges with (then the larger part, then the one with the smaller vertex), fragments
    attached in vertex order, a fragment touching only other fragments once one of them is
    attached. A fragment is usually an account matched to its ring through the cut value
    alone; cutting it off would make a fragment entity the match threshold did not ask for.
    """
    component = _components(vertex_count, edges, removed)
    sizes = Counter(component)
    large = sorted(root for root, size in sizes.items() if size >= min_part)
    if len(large) < 2:
        return None
    group = {root: root for root in large}
    group_size = {root: sizes[root] for root in large}
    crossing = [
        (component[edges[i][0]], component[edges[i][1]])
        for i in sorted(removed)
        if component[edges[i][0]] != component[edges[i][1]]
    ]
    pending = sorted(root for root in sizes if root not in group)
    while pending:
        waiting: list[int] = []
        for fragment in pending:
            counts: Counter[int] = Counter()
            for a, b in crossing:
                other = b if a == fragment else a if b == fragment else None
                if other is not None and other in group:
                    counts[group[other]] += 1
            if not counts:
                waiting.append(fragment)
                continue
            target = min(counts, key=lambda g: (-counts[g], -group_size[g], g))
            group[fragment] = target
            group_size[target] += sizes[fragment]
        if len(waiting) == len(pending):  # not connected to any part: left as it is
            for fragment in waiting:
                group[fragment] = fragment
            break
        pending = waiting
    return [group[root] for root in component]


def _parts_share(groups: Sequence[int], kept_by: Sequence[frozenset[str]]) -> bool:
    """Whether vertices of two different groups hold a common value of `kept_by`."""
    group_of: dict[str, int] = {}
    for vertex, values in enumerate(kept_by):
        for value in values:
            if group_of.setdefault(value, groups[vertex]) != groups[vertex]:
                return True
    return False


def find_value_cut(
    vertex_count: int,
    edges: Sequence[tuple[int, int]],
    values: Sequence[str | None],
    *,
    min_part: int,
    kept_by: Sequence[frozenset[str]] | None = None,
) -> tuple[list[int], str | None]:
    """The edges to remove to cut one connected entity at one shared value, and that value; or
    `([], None)`.

    `values[i]` is the value edge `i` rests on (the only value its accounts share, among the
    values that may be cut), None for an edge resting on none. For each value, the edges resting
    on it are removed; the value qualifies when at least two parts of `min_part` vertices or
    more come apart (smaller fragments stay attached, see `_value_cut_groups`). Of the
    qualifying values, the one cutting the fewest edges (then leaving the largest smallest
    part, then the smallest value) is chosen; the edges it cuts are those between its parts
    (removed edges inside a part stay). `kept_by[v]`, when given, holds vertex `v`'s values
    that keep parts together: a value whose parts would share one of them does not qualify.
    Example::

        # two triangles whose accounts 1, 2 and 3, 4 share one value "w"
        edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (1, 3), (2, 4), (1, 4)]
        values = [None] * 6 + ["w"] * 3
        find_value_cut(6, edges, values, min_part=3)  # ([6, 7, 8], "w")
    """
    by_value: dict[str, set[int]] = {}
    for index, value in enumerate(values):
        if value is not None and edges[index][0] != edges[index][1]:
            by_value.setdefault(value, set()).add(index)
    best: tuple[tuple[int, int, str], list[int]] | None = None
    for value in sorted(by_value):
        removed = by_value[value]
        groups = _value_cut_groups(vertex_count, edges, removed, min_part)
        if groups is None or (kept_by is not None and _parts_share(groups, kept_by)):
            continue
        cut = sorted(i for i in removed if groups[edges[i][0]] != groups[edges[i][1]])
        smallest = min(Counter(groups).values())
        key = (len(cut), -smallest, value)
        if best is None or key < best[0]:
            best = (key, cut)
    return (best[1], best[0][2]) if best is not None else ([], None)


def _value_cut_finder(
    config: ClusterControlConfig,
) -> Callable[[pd.DataFrame], pd.DataFrame | None]:
    """The grouped pandas function that finds one entity's value cut (see `find_value_cut`).

    A pandas function for the reason `_cut_finder` is: a union-find per value over one entity's
    edge list. Entities reach it with at most `max_size` accounts. Its input carries each
    edge's value as an opaque hash (`value_id`) and attribute name, never the value key.
    """
    min_part = config.min_bridge_part

    def find_cut(entity_edges: pd.DataFrame) -> pd.DataFrame | None:
        order, position, edges = _ordered_edges(entity_edges)
        value_ids = entity_edges[_VALUE_ID].tolist()
        values = [None if pd.isna(value_ids[i]) else str(value_ids[i]) for i in order]
        kept: list[frozenset[str]] = [frozenset()] * len(position)
        for side in (c.ACCOUNT_ID_L, c.ACCOUNT_ID_R):
            sides = entity_edges[side].tolist()
            held_by = entity_edges[f"{_KEPT_BY}_{side}"].tolist()
            for i in order:
                held = held_by[i]
                if held is not None and len(held):
                    kept[position[sides[i]]] = frozenset(str(v) for v in held)
        chosen, _ = find_value_cut(len(position), edges, values, min_part=min_part, kept_by=kept)
        rows = [order[i] for i in chosen]
        attribute = entity_edges[CUT_ATTRIBUTE].iat[rows[0]] if rows else None
        return _cut_rows(
            entity_edges, rows, {VALUE_CUT_SIZE: len(chosen), CUT_ATTRIBUTE: attribute}
        )

    return find_cut


def entity_id_of(anchor_account_id: Column) -> Column:
    """The entity id of the entity whose smallest account id is `anchor_account_id`: `E` + the
    first 16 hex characters of its SHA-256, as `resolution.clustering.assign_entities` gives."""
    return F.concat(F.lit("E"), F.substring(F.sha2(anchor_account_id, 256), 1, 16))


def _complete_membership(accounts: DataFrame, membership: DataFrame) -> DataFrame:
    """One row per account of `accounts`; an account missing from `membership` is a singleton."""
    return (
        accounts.select(c.ACCOUNT_ID)
        .where(F.col(c.ACCOUNT_ID).isNotNull())
        .distinct()
        .join(membership.select(c.ACCOUNT_ID, c.ENTITY_ID), on=c.ACCOUNT_ID, how="left")
        .select(
            c.ACCOUNT_ID,
            F.coalesce(F.col(c.ENTITY_ID), entity_id_of(F.col(c.ACCOUNT_ID))).alias(c.ENTITY_ID),
        )
    )


def _entity_edges(match_edges: DataFrame, membership: DataFrame) -> DataFrame:
    """`(entity_id, account_id_l, account_id_r, match_weight)`: each pair once (`_l < _r`, its
    highest weight), both accounts in the same entity; self-pairs and null ids dropped."""
    left, right = F.col(c.ACCOUNT_ID_L), F.col(c.ACCOUNT_ID_R)
    pairs = (
        match_edges.where(left.isNotNull() & right.isNotNull() & (left != right))
        .select(
            F.least(left, right).alias(c.ACCOUNT_ID_L),
            F.greatest(left, right).alias(c.ACCOUNT_ID_R),
            F.col(c.MATCH_WEIGHT).cast("double").alias(c.MATCH_WEIGHT),
        )
        .groupBy(c.ACCOUNT_ID_L, c.ACCOUNT_ID_R)
        .agg(F.max(c.MATCH_WEIGHT).alias(c.MATCH_WEIGHT))
    )
    left_entity = membership.select(
        F.col(c.ACCOUNT_ID).alias(c.ACCOUNT_ID_L), F.col(c.ENTITY_ID).alias(c.ENTITY_ID)
    )
    right_entity = membership.select(
        F.col(c.ACCOUNT_ID).alias(c.ACCOUNT_ID_R), F.col(c.ENTITY_ID).alias("entity_id_r")
    )
    return (
        pairs.join(left_entity, on=c.ACCOUNT_ID_L)
        .join(right_entity, on=c.ACCOUNT_ID_R)
        .where(F.col(c.ENTITY_ID) == F.col("entity_id_r"))
        .select(c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_WEIGHT)
    )


def _entity_stats(membership: DataFrame, edges: DataFrame) -> DataFrame:
    """`(entity_id, account_count, edge_count, density, min_weight)` of the entities of
    `membership` with at least two accounts."""
    sizes = (
        membership.groupBy(c.ENTITY_ID)
        .agg(F.count(F.lit(1)).alias(c.ACCOUNT_COUNT))
        .where(F.col(c.ACCOUNT_COUNT) >= 2)
    )
    edge_stats = edges.groupBy(c.ENTITY_ID).agg(
        F.count(F.lit(1)).alias(EDGE_COUNT), F.min(c.MATCH_WEIGHT).alias(MIN_WEIGHT)
    )
    n = F.col(c.ACCOUNT_COUNT).cast("double")
    return (
        sizes.join(edge_stats, on=c.ENTITY_ID, how="left")
        .withColumn(EDGE_COUNT, F.coalesce(F.col(EDGE_COUNT), F.lit(0)).cast("long"))
        .withColumn(DENSITY, F.col(EDGE_COUNT) / (n * (n - 1) / 2))
    )


def map_groups(
    frame: DataFrame,
    key: str,
    func: Callable[[pd.DataFrame], pd.DataFrame | None],
    schema: str,
) -> DataFrame:
    """`frame.groupBy(key).applyInPandas(func, schema)`, with many groups to a Python call.

    `applyInPandas` hands each group to Python as an Arrow batch of its own, which costs about
    a millisecond a group whatever its size: on 2 cores, 10,000 groups of 20 rows took 11.5 s
    that way and 3.3 s in batches of groups. So the groups are gathered into hash buckets of
    `key` (four for each shuffle partition), each bucket is handed to one call of
    `applyInPandas`, and split into its groups there. `key` must not be null; `func` sees each
    group's rows (all columns, the key among them) once, in no particular row order, as with
    `applyInPandas`. It may return None for a group without rows: most groups have none, and
    concatenating an empty frame a group costs as much as the search that found nothing.

    Grouped, not `repartition(key)` then `mapInPandas`: that form handed a group to Python in
    pieces when adaptive execution turned a join below it into a broadcast join at run time.
    The repartition was dropped as redundant with the join's shuffle on the same key, which
    was then read mapper by mapper, so a group came in one piece from each mapper (a full run
    at 100,000 accounts then made 28 value cuts or 24, from run to run). A grouped Python
    function requires its groups together, and adaptive execution keeps that.
    """
    spark = frame.sparkSession
    buckets = 4 * max(int(spark.conf.get("spark.sql.shuffle.partitions") or 1), 1)
    columns = spark.createDataFrame([], schema).columns  # for a bucket without rows

    def applied(bucket: pd.DataFrame) -> pd.DataFrame:
        rows = bucket.drop(columns=[_BUCKET])
        found = [func(group) for _, group in rows.groupby(key, sort=False)]
        kept = [part for part in found if part is not None and not part.empty]
        return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=columns)

    return (
        frame.withColumn(_BUCKET, F.pmod(F.xxhash64(key), F.lit(buckets)))
        .groupBy(_BUCKET)
        .applyInPandas(applied, schema=schema)
    )


def _find_cuts(edges: DataFrame, stats: DataFrame, config: ClusterControlConfig) -> DataFrame:
    """The weak cut edges `(entity_id, account_id_l, account_id_r, cut_size)` of the entities
    that can hold one: between 2 `min_bridge_part` and `max_size` accounts, a weak edge."""
    searched = stats.where(
        F.col(c.ACCOUNT_COUNT).between(2 * config.min_bridge_part, config.max_size)
        & (F.col(MIN_WEIGHT) < config.bridge_max_weight)
    ).select(c.ENTITY_ID)
    return map_groups(
        edges.join(searched, on=c.ENTITY_ID, how="left_semi"),
        c.ENTITY_ID,
        _cut_finder(config),
        _CUT_SCHEMA,
    )


def blockable_keys(counted_keys: DataFrame, *, config: BlockingConfig) -> DataFrame:
    """`(account_id, attribute, value_key)` of the values blocking paired accounts on: of an
    enabled rule, held by 2 to `max_block_size` accounts (as `build_candidate_pairs` selects
    them). `counted_keys` is the output of `resolution.blocking.count_value_holders`."""
    return counted_keys.where(
        (F.col(c.ACCOUNT_COUNT) >= 2)
        & (F.col(c.ACCOUNT_COUNT) <= F.lit(config.max_block_size))
        & F.col(c.ATTRIBUTE).isin(*config.rules)
    ).select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY)


def _resting_values(
    edges: DataFrame, value_keys: DataFrame, config: ClusterControlConfig
) -> DataFrame:
    """`(entity_id, account_id_l, account_id_r, value_id, cut_attribute)` of the `edges` that
    rest on one value of a `value_cut_attributes` attribute: the only `value_keys` row their
    two accounts share. `value_id` is a hash of the value, so no key leaves Spark."""
    left = value_keys.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L)
    right = value_keys.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_R)
    attributes = list(config.value_cut_attributes)
    # Each shared value as numbers: its 64-bit hash (the `value_id` handed on) and its
    # attribute's position among the cut attributes (-1 for another), so that the edges are
    # grouped with a hash aggregation, where the min and max of an (attribute, value) struct
    # took a sort-based one (at 1,000,000 accounts its stage was 5.2 s of task time in an
    # incremental run). Two values are then told apart by their 64-bit hashes.
    code = F.lit(-1)
    for position, attribute in reversed(list(enumerate(attributes))):
        code = F.when(F.col(c.ATTRIBUTE) == attribute, F.lit(position)).otherwise(code)
    shared = (
        edges.select(c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R)
        .join(left, on=c.ACCOUNT_ID_L)
        .join(right, on=[c.ACCOUNT_ID_R, c.ATTRIBUTE, c.VALUE_KEY])
        .select(
            c.ENTITY_ID,
            c.ACCOUNT_ID_L,
            c.ACCOUNT_ID_R,
            F.xxhash64(c.ATTRIBUTE, c.VALUE_KEY).alias("_value"),
            code.alias("_attribute"),
        )
        .groupBy(c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R)
        .agg(
            F.min("_value").alias("_first"),
            F.max("_value").alias("_last"),
            F.max("_attribute").alias("_attribute"),
        )
    )
    names = (
        F.array(*[F.lit(name) for name in attributes])
        if attributes
        else F.array().cast("array<string>")
    )
    return shared.where((F.col("_first") == F.col("_last")) & (F.col("_attribute") >= 0)).select(
        c.ENTITY_ID,
        c.ACCOUNT_ID_L,
        c.ACCOUNT_ID_R,
        F.col("_first").cast("string").alias(_VALUE_ID),
        F.element_at(names, F.col("_attribute") + 1).alias(CUT_ATTRIBUTE),
    )


def _find_value_cuts(
    edges: DataFrame, stats: DataFrame, value_keys: DataFrame, config: ClusterControlConfig
) -> DataFrame:
    """The value cut edges `(entity_id, account_id_l, account_id_r, value_cut_size,
    cut_attribute)` of the entities that can hold one: between 2 `min_bridge_part` and
    `max_size` accounts, an edge resting on one value of a `value_cut_attributes` attribute."""
    searched = stats.where(
        F.col(c.ACCOUNT_COUNT).between(2 * config.min_bridge_part, config.max_size)
    ).select(c.ENTITY_ID)
    candidates = edges.join(searched, on=c.ENTITY_ID, how="left_semi")
    resting = _resting_values(candidates, value_keys, config)
    kept_by = (
        value_keys.where(F.col(c.ATTRIBUTE).isin(*config.value_cut_kept_by))
        .groupBy(c.ACCOUNT_ID)
        .agg(F.collect_set(F.xxhash64(c.ATTRIBUTE, c.VALUE_KEY).cast("string")).alias(_KEPT_BY))
    )
    searched_edges = candidates.join(
        resting.select(c.ENTITY_ID).distinct(), on=c.ENTITY_ID, how="left_semi"
    ).join(resting, on=[c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R], how="left")
    for side in (c.ACCOUNT_ID_L, c.ACCOUNT_ID_R):
        searched_edges = searched_edges.join(
            kept_by.withColumnRenamed(c.ACCOUNT_ID, side).withColumnRenamed(
                _KEPT_BY, f"{_KEPT_BY}_{side}"
            ),
            on=side,
            how="left",
        )
    return map_groups(
        searched_edges.select(
            c.ENTITY_ID,
            c.ACCOUNT_ID_L,
            c.ACCOUNT_ID_R,
            _VALUE_ID,
            CUT_ATTRIBUTE,
            f"{_KEPT_BY}_{c.ACCOUNT_ID_L}",
            f"{_KEPT_BY}_{c.ACCOUNT_ID_R}",
        ),
        c.ENTITY_ID,
        _value_cut_finder(config),
        _VALUE_CUT_SCHEMA,
    )


def _plan(
    stats: DataFrame, cuts: DataFrame, value_cuts: DataFrame, config: ClusterControlConfig
) -> DataFrame:
    """The flagged entities, with their flags, `cut_size`, `value_cut_size`, `cut_attribute`,
    `method` (`bridges`, `value_cut`, `threshold`, or `none` when nothing may be removed) and
    the raised `threshold`."""
    cut_sizes = cuts.groupBy(c.ENTITY_ID).agg(F.max(CUT_SIZE).alias(CUT_SIZE))
    value_cut_sizes = value_cuts.groupBy(c.ENTITY_ID).agg(
        F.max(VALUE_CUT_SIZE).alias(VALUE_CUT_SIZE), F.max(CUT_ATTRIBUTE).alias(CUT_ATTRIBUTE)
    )
    size_flag = F.col(c.ACCOUNT_COUNT) > config.max_size
    density_flag = (F.col(c.ACCOUNT_COUNT) >= config.min_size_for_density) & (
        F.col(DENSITY) < config.min_density
    )
    # Null when the entity has no weighed edge: nothing a threshold could drop.
    raisable = F.col(MIN_WEIGHT) < config.max_threshold
    method = (
        F.when(F.col(CUT_SIZE).isNotNull(), F.lit("bridges"))
        .when(F.col(VALUE_CUT_SIZE).isNotNull(), F.lit("value_cut"))
        .when(F.coalesce(raisable, F.lit(False)), F.lit("threshold"))
        .otherwise(F.lit("none"))
    )
    threshold = F.when(
        F.col(METHOD) == "threshold",
        F.least(F.col(MIN_WEIGHT) + config.weight_step, F.lit(float(config.max_threshold))),
    )
    return (
        stats.join(cut_sizes, on=c.ENTITY_ID, how="left")
        .join(value_cut_sizes, on=c.ENTITY_ID, how="left")
        .withColumn(_SIZE_FLAG, size_flag)
        .withColumn(_DENSITY_FLAG, density_flag)
        .where(
            F.col(_SIZE_FLAG)
            | F.col(_DENSITY_FLAG)
            | F.col(CUT_SIZE).isNotNull()
            | F.col(VALUE_CUT_SIZE).isNotNull()
        )
        .withColumn(METHOD, method)
        .withColumn(THRESHOLD, threshold.cast("double"))
    )


_END = "_end"
_RELABEL_SCHEMA = f"{c.ENTITY_ID} string, {c.ACCOUNT_ID} string, {_ANCHOR} string"


def _parts_of(group: pd.DataFrame) -> pd.DataFrame:
    """One entity's accounts with the smallest account of their part (`_RELABEL_SCHEMA`):
    `group` holds a row per account (`_end` null) and a row per edge kept (`account_id`,
    `_end`)."""
    members = group[group[_END].isna()][c.ACCOUNT_ID]
    pairs = group[group[_END].notna()]
    vertices = sorted(set(members) | set(pairs[c.ACCOUNT_ID]) | set(pairs[_END]))
    index = {account: i for i, account in enumerate(vertices)}
    roots = _components(
        len(vertices),
        [(index[a], index[b]) for a, b in zip(pairs[c.ACCOUNT_ID], pairs[_END], strict=True)],
        set(),
    )
    part = [roots[index[account]] for account in members]
    frame = pd.DataFrame({c.ACCOUNT_ID: members.to_numpy(), "_part": part})
    # The part's smallest account among the entity's accounts, as the GraphX path takes it.
    frame[_ANCHOR] = frame.groupby("_part")[c.ACCOUNT_ID].transform("min")
    frame[c.ENTITY_ID] = group[c.ENTITY_ID].iloc[0]
    return frame[[c.ENTITY_ID, c.ACCOUNT_ID, _ANCHOR]]


def _relabel_in_groups(moved: DataFrame, edges: DataFrame) -> DataFrame:
    """`_relabel` with each entity's parts found in one Python call of its own (union-find over
    its kept edges, `map_groups`): no connected-components job, whose fixed cost (tens of Spark
    jobs a round) is most of a round over a few small entities."""
    rows = moved.select(
        c.ENTITY_ID, c.ACCOUNT_ID, F.lit(None).cast("string").alias(_END)
    ).unionByName(
        edges.select(
            c.ENTITY_ID,
            F.col(c.ACCOUNT_ID_L).alias(c.ACCOUNT_ID),
            F.col(c.ACCOUNT_ID_R).alias(_END),
        )
    )
    parts = map_groups(rows, c.ENTITY_ID, _parts_of, _RELABEL_SCHEMA)
    return parts.select(
        c.ACCOUNT_ID,
        F.col(c.ENTITY_ID).alias(_PREVIOUS_ENTITY_ID),
        entity_id_of(F.col(_ANCHOR)).alias(c.ENTITY_ID),
    )


def _relabel(
    moved: DataFrame, edges: DataFrame, clustering: ClusteringConfig, *, grouped: bool = False
) -> DataFrame:
    """`(account_id, previous_entity_id, entity_id)` of the `moved` accounts (`account_id`,
    `entity_id`), re-clustered over `edges` (`entity_id`, `account_id_l`, `account_id_r`: each
    edge inside one entity; accounts left without an edge become singletons): with GraphX
    connected components, or with `grouped` one entity at a time in Python
    (`_relabel_in_groups`, the same result)."""
    if grouped:
        return _relabel_in_groups(moved, edges)
    graph = edges.select(
        vertex_id(c.ACCOUNT_ID_L).alias("src"), vertex_id(c.ACCOUNT_ID_R).alias("dst")
    )
    components = connected_components(graph, config=clustering).withColumnRenamed("id", c.VERTEX_ID)
    labelled = (
        moved.withColumn(c.VERTEX_ID, vertex_id())
        .join(components, on=c.VERTEX_ID, how="left")
        .select(
            c.ACCOUNT_ID,
            F.col(c.ENTITY_ID).alias(_PREVIOUS_ENTITY_ID),
            F.coalesce(F.col(c.COMPONENT), F.col(c.VERTEX_ID)).alias(c.COMPONENT),
        )
    )
    anchors = labelled.groupBy(c.COMPONENT).agg(F.min(c.ACCOUNT_ID).alias(_ANCHOR))
    return labelled.join(anchors, on=c.COMPONENT).select(
        c.ACCOUNT_ID, _PREVIOUS_ENTITY_ID, entity_id_of(F.col(_ANCHOR)).alias(c.ENTITY_ID)
    )


def _short_number(value: Column) -> Column:
    """A double as text with three significant digits and no trailing zeros (0.004, 0.0667)."""
    text = F.format_string("%.3g", value)
    text = F.regexp_replace(text, r"(\.[0-9]*?)0+(e|$)", "$1$2")
    return F.regexp_replace(text, r"\.(e|$)", "$1")


def _sizes_text(sizes: Column, parts: Column) -> Column:
    """`40 and 35`, `8, 8 and 7`, or past five parts `40, 35, 20, 10, 9, ...` (largest first)."""
    parts = parts.cast("int")

    def joined(values: Column) -> Column:
        return F.array_join(F.transform(values, lambda v: v.cast("string")), ", ")

    few = F.concat(
        joined(F.slice(sizes, 1, parts - 1)),
        F.lit(" and "),
        F.element_at(sizes, parts).cast("string"),
    )
    many = F.concat(joined(F.slice(sizes, 1, _LISTED_PARTS)), F.lit(", ..."))
    return F.when(parts <= _LISTED_PARTS, few).otherwise(many)


def _reason(config: ClusterControlConfig) -> Column:
    n = F.col(c.ACCOUNT_COUNT).cast("string")
    size_reason = F.when(
        F.col(_SIZE_FLAG), F.concat(n, F.lit(f" accounts > max_size {config.max_size}"))
    )
    density_reason = F.when(
        F.col(_DENSITY_FLAG),
        F.concat(
            F.lit("density "),
            _short_number(F.col(DENSITY)),
            F.lit(f" < {config.min_density:g} with "),
            n,
            F.lit(" accounts"),
        ),
    )
    bridge_reason = F.when(
        F.col(METHOD) == "bridges",
        F.concat(
            F.lit("bridge edges ("),
            F.col(CUT_SIZE).cast("string"),
            F.lit(") hold "),
            F.col(PARTS).cast("string"),
            F.lit(" parts of "),
            _sizes_text(F.col(PART_SIZES), F.col(PARTS)),
            F.lit(" accounts"),
        ),
    )
    value_cut_reason = F.when(
        F.col(METHOD) == "value_cut",
        F.concat(
            F.col(VALUE_CUT_SIZE).cast("string"),
            F.when(F.col(VALUE_CUT_SIZE) == 1, F.lit(" edge resting")).otherwise(
                F.lit(" edges resting")
            ),
            F.lit(" only on one shared "),
            F.col(CUT_ATTRIBUTE),
            F.when(F.col(VALUE_CUT_SIZE) == 1, F.lit(" holds ")).otherwise(F.lit(" hold ")),
            F.col(PARTS).cast("string"),
            F.lit(" parts of "),
            _sizes_text(F.col(PART_SIZES), F.col(PARTS)),
            F.lit(" accounts"),
        ),
    )
    return F.concat_ws("; ", size_reason, density_reason, bridge_reason, value_cut_reason)


def _round_splits(
    plan: DataFrame,
    relabelled: DataFrame,
    dropped: DataFrame,
    round_number: int,
    config: ClusterControlConfig,
) -> DataFrame:
    """The `splits` rows of one round: the acted-on entities that now have two or more parts."""
    parts = (
        relabelled.groupBy(_PREVIOUS_ENTITY_ID, c.ENTITY_ID)
        .agg(F.count(F.lit(1)).alias("part_size"))
        .groupBy(F.col(_PREVIOUS_ENTITY_ID).alias(c.ENTITY_ID))
        .agg(
            F.count(F.lit(1)).alias(PARTS),
            F.sort_array(F.collect_list("part_size"), asc=False).alias(PART_SIZES),
        )
        .where(F.col(PARTS) >= 2)
    )
    removed = dropped.groupBy(c.ENTITY_ID).agg(F.count(F.lit(1)).alias(REMOVED_EDGES))
    return (
        parts.join(plan, on=c.ENTITY_ID)
        .join(removed, on=c.ENTITY_ID, how="left")
        .select(
            c.ENTITY_ID,
            F.lit(round_number).alias(ROUND),
            _reason(config).alias(c.REASON),
            METHOD,
            THRESHOLD,
            F.coalesce(F.col(REMOVED_EDGES), F.lit(0)).cast("long").alias(REMOVED_EDGES),
            F.col(PARTS).cast("long").alias(PARTS),
            F.col(PART_SIZES).cast("array<long>").alias(PART_SIZES),
            F.col(c.ACCOUNT_COUNT).cast("long").alias(c.ACCOUNT_COUNT),
            EDGE_COUNT,
            DENSITY,
            MIN_WEIGHT,
        )
    )


def control_statistics(
    membership: DataFrame,
    edges: DataFrame,
    splits: DataFrame,
    *,
    rounds: int = 0,
    unsplittable: int = 0,
    unchecked: int = 0,
) -> DataFrame:
    """One row for logging: `entity_count`, `largest_entity`, `size_p50`, `size_p90`,
    `size_p99` (approximate percentiles of the account count over all entities, singletons
    included), `mean_density` (over entities of two or more accounts, edges being the edges
    that hold the entity after control), `split_count` (rows of `splits`), `rounds` (rounds
    that split or thinned an entity), `unsplittable` (flagged entities with no weak cut and no
    edge below `max_threshold`) and `unchecked` (parts made by the last allowed round, not
    examined again)."""
    sizes = membership.groupBy(c.ENTITY_ID).agg(F.count(F.lit(1)).alias(c.ACCOUNT_COUNT))
    edge_counts = edges.groupBy(c.ENTITY_ID).agg(F.count(F.lit(1)).alias(EDGE_COUNT))
    n = F.col(c.ACCOUNT_COUNT).cast("double")
    per_entity = sizes.join(edge_counts, on=c.ENTITY_ID, how="left").withColumn(
        DENSITY,
        F.when(
            F.col(c.ACCOUNT_COUNT) >= 2,
            F.coalesce(F.col(EDGE_COUNT), F.lit(0)) / (n * (n - 1) / 2),
        ),
    )
    quantiles = F.percentile_approx(c.ACCOUNT_COUNT, [0.5, 0.9, 0.99])
    summary = per_entity.agg(
        F.count(F.lit(1)).alias("entity_count"),
        F.max(c.ACCOUNT_COUNT).alias("largest_entity"),
        quantiles.alias("quantiles"),
        F.avg(DENSITY).alias("mean_density"),
    )
    return summary.crossJoin(splits.agg(F.count(F.lit(1)).alias("split_count"))).select(
        "entity_count",
        "largest_entity",
        F.col("quantiles")[0].alias("size_p50"),
        F.col("quantiles")[1].alias("size_p90"),
        F.col("quantiles")[2].alias("size_p99"),
        "mean_density",
        "split_count",
        F.lit(rounds).alias("rounds"),
        F.lit(unsplittable).alias("unsplittable"),
        F.lit(unchecked).alias("unchecked"),
    )


def _cutter(config: ClusterControlConfig, spark: SparkSession) -> Callable[[DataFrame], DataFrame]:
    """Materialise a frame and cut its lineage, as `lineage_cut` says (`auto`: `local` when
    the executors run in the driver's process, see `resolution.lineage`)."""
    if resolved_cut(config.lineage_cut, spark) == "local":
        # Lazy: the block is kept by the first job that computes the frame (the round's next
        # action), which saves a job per cut.
        return lambda frame: frame.localCheckpoint(eager=False)

    def reliable(frame: DataFrame) -> DataFrame:
        # Writing a reliable checkpoint runs a second job over the frame: persisted, the frame
        # (connected components' output among them) is computed once.
        persisted = frame.persist()
        checkpointed = persisted.checkpoint(eager=True)
        persisted.unpersist()
        return checkpointed

    return reliable


def control_clusters(
    accounts: DataFrame,
    match_edges: DataFrame,
    membership: DataFrame,
    *,
    config: ClusterControlConfig,
    clustering: ClusteringConfig,
    blocking_keys: DataFrame | None = None,
) -> ControlledClusters:
    """Split the entities of `membership` that are too large for their evidence.

    `accounts` needs `account_id` (every account gets one membership row; one missing from
    `membership` is a singleton); `match_edges` needs `account_id_l`, `account_id_r` and
    `match_weight` (pairs in either order, duplicates keep their highest weight; edges across
    entities, self-pairs and null ids are ignored; a null weight is never weak and never
    dropped); `membership` needs `account_id`, `entity_id` (from `assign_entities`).
    `blocking_keys` needs `account_id`, `attribute`, `value_key`: the distinct blockable values
    each account holds (those that made candidate pairs: of a blocking rule, held by 2 to
    `max_block_size` accounts); without it (or with `value_cut: false`) no value cut is
    searched (`blockable_keys` selects them from the counted keys). The rules are in the module
    docstring and `ClusterControlConfig`; with `enabled: false` the membership comes back as it
    is. Runs a few small actions and connected components per
    round and cuts each round's results from their lineage (`lineage_cut`); connected
    components needs the session's checkpoint directory set. Example::

        membership = assign_entities(accounts_std, match_edges, config=clustering)
        controlled = control_clusters(
            accounts_std, match_edges, membership,
            config=ClusterControlConfig(), clustering=clustering,
            blocking_keys=blockable_keys(counted_keys, config=BlockingConfig()),
        )
        controlled.splits.select("entity_id", "round", "reason").show(truncate=False)
    """
    require_columns(accounts, "accounts", [c.ACCOUNT_ID])
    require_columns(match_edges, "match_edges", [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_WEIGHT])
    require_columns(membership, "membership", [c.ACCOUNT_ID, c.ENTITY_ID])
    if blocking_keys is not None:
        require_columns(blocking_keys, "blocking_keys", [c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY])
    problems = config.problems() + clustering.problems()
    if problems:
        raise ConfigError("invalid cluster control configuration:\n  " + "\n  ".join(problems))
    spark = accounts.sparkSession
    no_splits = spark.createDataFrame([], SPLITS_SCHEMA)
    members = _complete_membership(accounts, membership)
    if not config.enabled:
        edges = _entity_edges(match_edges, members)
        return ControlledClusters(members, no_splits, control_statistics(members, edges, no_splits))

    value_keys = (
        blocking_keys.select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY)
        if blocking_keys is not None and config.value_cut
        else None
    )
    no_value_cuts = spark.createDataFrame([], _VALUE_CUT_SCHEMA)
    cut = _cutter(config, spark)
    # Round 1 examines every entity; a later round only the parts the previous round made
    # (an entity it did not act on cannot change). So each round settles the entities it leaves
    # alone and carries only the parts forward: later rounds work on (and checkpoint) a few
    # thousand rows, not the whole membership and edges again (at 1,000,000 accounts a round
    # over everything took 35 to 45 s on 2 cores).
    members = cut(members)
    edges = cut(_entity_edges(match_edges, members))
    settled_members: list[DataFrame] = []
    settled_edges: list[DataFrame] = []
    examined: DataFrame | None = None
    round_splits: list[DataFrame] = []
    rounds = unsplittable = unchecked = 0
    for round_number in range(1, config.max_rounds + 1):
        stats = _entity_stats(members, edges)
        cuts = cut(_find_cuts(edges, stats, config))
        if value_keys is None:
            value_cuts = no_value_cuts
        else:
            # After round 1 the parts are a few accounts: read only their keys (a broadcast
            # semi join, a scan instead of a shuffle of every account's keys).
            round_keys = (
                value_keys
                if round_number == 1
                else value_keys.join(
                    F.broadcast(members.select(c.ACCOUNT_ID)), on=c.ACCOUNT_ID, how="left_semi"
                )
            )
            value_cuts = cut(_find_value_cuts(edges, stats, round_keys, config))
        plan = cut(_plan(stats, cuts, value_cuts, config))
        flagged = (
            plan.groupBy(METHOD)
            .agg(F.count(F.lit(1)).alias("_flagged"), F.max(c.ACCOUNT_COUNT).alias("_largest"))
            .collect()
        )
        by_method = {str(row[METHOD]): int(row["_flagged"]) for row in flagged}
        largest = max((int(row["_largest"]) for row in flagged if row[METHOD] != "none"), default=0)
        unsplittable += by_method.pop("none", 0)
        logger.info(
            "cluster control round %d: flagged entities by method %s", round_number, by_method
        )
        if not by_method:
            break
        rounds = round_number
        raised = plan.where(F.col(METHOD) == "threshold").select(c.ENTITY_ID, THRESHOLD)
        value_cut = plan.where(F.col(METHOD) == "value_cut").select(c.ENTITY_ID)
        dropped = (
            cuts.select(c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R)
            .unionByName(
                value_cuts.join(value_cut, on=c.ENTITY_ID, how="left_semi").select(
                    c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R
                )
            )
            .unionByName(
                edges.join(raised, on=c.ENTITY_ID)
                .where(F.col(c.MATCH_WEIGHT) < F.col(THRESHOLD))
                .select(c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R)
            )
        )
        acted = cut(plan.where(F.col(METHOD) != "none").select(c.ENTITY_ID))
        acted_edges = edges.join(acted, on=c.ENTITY_ID, how="left_semi").join(
            dropped, on=[c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R], how="left_anti"
        )
        relabelled = cut(
            _relabel(
                members.join(acted, on=c.ENTITY_ID, how="left_semi"),
                acted_edges,
                clustering,
                grouped=largest <= config.grouped_relabel_max_accounts,
            )
        )
        # Built on this round's checkpointed frames only: no cut needed.
        round_splits.append(_round_splits(plan, relabelled, dropped, round_number, config))
        # Only acted-on entities lose edges (every dropped edge is of a cut, a value cut or a
        # raised threshold, all acted on), so the others settle with their edges as they are.
        settled_members.append(members.join(acted, on=c.ENTITY_ID, how="left_anti"))
        settled_edges.append(edges.join(acted, on=c.ENTITY_ID, how="left_anti"))
        new_ids = relabelled.select(c.ACCOUNT_ID, c.ENTITY_ID)
        members = new_ids
        edges = cut(
            acted_edges.drop(c.ENTITY_ID)
            .join(new_ids.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L), on=c.ACCOUNT_ID_L)
            .select(c.ENTITY_ID, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_WEIGHT)
        )
        examined = relabelled.select(c.ENTITY_ID).distinct()
    else:
        # The last allowed round split something: its parts were never examined.
        unchecked = examined.count() if examined is not None else 0
        logger.warning(
            "cluster control stopped after max_rounds=%d with %d parts not re-examined",
            config.max_rounds,
            unchecked,
        )
    for settled in settled_members:
        members = settled.unionByName(members)
    for settled in settled_edges:
        edges = settled.unionByName(edges)
    splits = no_splits
    for frame in round_splits:
        splits = splits.unionByName(frame)
    logger.info(
        "cluster control: %d rounds, %d flagged entities could not be split",
        rounds,
        unsplittable,
    )
    statistics = control_statistics(
        members, edges, splits, rounds=rounds, unsplittable=unsplittable, unchecked=unchecked
    )
    return ControlledClusters(membership=members, splits=splits, statistics=statistics)
