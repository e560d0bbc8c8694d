"""Entity ids that survive across runs: this run's clusters matched to the previous run's entities.

Connected components label an entity with its smallest account id, so an entity's id changes as
soon as that account leaves it, and a merge or split renames everything involved. Here each of
this run's clusters is matched to the previous run's entities by the accounts they share, and
keeps a previous id where each is the other's best match:

- **Mutual best match.** Cluster C's best predecessor is the previous entity P it shares most
  accounts with (ties: the larger previous entity, then the smallest id). P's best successor
  is the cluster holding most of P's accounts (ties: the larger cluster, then the cluster whose
  smallest account id is smallest). C keeps P's id iff P is C's best predecessor and C is P's
  best successor, so each previous id is used at most once. On a merge the larger predecessor
  survives; on a split the largest part keeps the id.
- **New ids.** A cluster that keeps no id gets `E` + the first 16 hex characters of SHA-256 of
  its smallest account id, as `resolution.clustering.assign_entities` labels entities (a first
  run gives exactly those ids). When that id is taken (it was a previous entity's id, it is in
  `known_ids`, or a cluster with a smaller smallest account id drew the same id this run), the
  cluster gets SHA-256 of `smallest account id + "|" + run_id` instead: an id is never issued
  to two entities, and a retired id is not re-issued while it is in `known_ids`.

Everything is a function of the account ids and cluster contents alone, never of partitioning,
row order or core count. A salted id colliding with another id has probability about n^2 / 2^65
(3e-8 at a million ids); it is not checked.

`changes` holds one row per id whose fate is news; an entity that kept its id has no row, even
when some of its accounts left or new ones joined. By `change_type`:

- `born`: `entity_id` is the new id of a cluster none of whose accounts was in a previous
  entity; `related_entity_id` and `overlap_count` are null; `account_count` is its size.
- `split_from`: `entity_id` is the new id of a cluster holding accounts of previous entities
  (it kept no id: its best predecessor P continued as another cluster, or P's accounts went
  mostly elsewhere); `related_entity_id` is P, `overlap_count` the accounts it shares with P,
  `account_count` its size.
- `merged_into`: `entity_id` is a previous id that no cluster kept while some of its accounts
  are still here; `related_entity_id` is the id of the cluster holding most of them,
  `overlap_count` how many it holds; `account_count` is the previous entity's size.
- `retired`: `entity_id` is a previous id none of whose accounts is in this run;
  `related_entity_id` and `overlap_count` are null; `account_count` is the previous size.

A `split_from` row's P is usually continued by another cluster; when P's best successor kept
another id, P also has a `merged_into` row (its accounts scattered: most went into a cluster
that kept another id, some into this new one). A `merged_into` row's related id is usually a
continued id, but may be a new id (the accounts of several previous entities met in a cluster
whose own best predecessor continued elsewhere).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from features import columns as c
from resolution.errors import ResolutionError, require_columns

logger = logging.getLogger(__name__)

# Columns of this module's inputs and outputs. They belong in `features.columns` with the
# others; they are here until that module can take them.
CLUSTER = "cluster"
CHANGE_TYPE = "change_type"
RELATED_ENTITY_ID = "related_entity_id"
OVERLAP_COUNT = "overlap_count"

# Values of `change_type`.
BORN = "born"
SPLIT_FROM = "split_from"
MERGED_INTO = "merged_into"
RETIRED = "retired"
CHANGE_TYPES = (BORN, SPLIT_FROM, MERGED_INTO, RETIRED)

# Working columns.
_ANCHOR = "anchor_account_id"
_PREVIOUS_ID = "previous_entity_id"
_SHARED = "shared_count"
_CLUSTER_SIZE = "cluster_size"
_PREVIOUS_SIZE = "previous_size"
_PREDECESSOR_RANK = "predecessor_rank"
_SUCCESSOR_RANK = "successor_rank"
_KEPT = "kept"
_NEW_ID = "new_entity_id"


@dataclass(frozen=True)
class StableIds:
    """This run's membership under stable ids, and what changed since the previous run.

    `membership`: `(account_id, entity_id)`, one row per account of the clusters.
    `changes`: `(entity_id, change_type, related_entity_id, account_count, overlap_count)`, one
    row per born, split, merged or retired id (see the module docstring).
    """

    membership: DataFrame
    changes: DataFrame


def _hashed_id(key: Column) -> Column:
    """`E` + the first 16 hex characters of SHA-256 of `key` (as `assign_entities` labels)."""
    return F.concat(F.lit("E"), F.substring(F.sha2(key, 256), 1, 16))


def _anchored(clusters: DataFrame) -> DataFrame:
    """`(account_id, anchor_account_id)`: each account with its cluster's smallest account id,
    which names the cluster from here on. A null cluster leaves the account on its own."""
    # Null-cluster accounts are spread over window partitions rather than sorted as one.
    loose = F.when(F.col(CLUSTER).isNull(), F.col(c.ACCOUNT_ID))
    smallest = F.min(c.ACCOUNT_ID).over(Window.partitionBy(CLUSTER, loose))
    return clusters.where(F.col(c.ACCOUNT_ID).isNotNull()).select(
        c.ACCOUNT_ID,
        F.when(F.col(CLUSTER).isNull(), F.col(c.ACCOUNT_ID)).otherwise(smallest).alias(_ANCHOR),
    )


def _ranked_cells(members: DataFrame, previous_members: DataFrame) -> DataFrame:
    """The contingency table of (cluster, previous entity), ranked both ways.

    One row per non-empty cell `(anchor_account_id, previous_entity_id, shared_count)`: a null
    previous id counts the cluster's accounts that are new, a null anchor the previous entity's
    accounts that are gone. With each cell: `cluster_size`, `previous_size`, and its rank among
    the cluster's predecessors and among the previous entity's successors, where real partners
    rank before the null cell. The orders are total (anchors and previous ids are unique), so the
    winners never depend on partitioning or row order.
    """
    cells = (
        members.join(previous_members, on=c.ACCOUNT_ID, how="full")
        .groupBy(_ANCHOR, _PREVIOUS_ID)
        .agg(F.count(F.lit(1)).alias(_SHARED))
    )
    # The null cells (one per cluster with new accounts, one per previous entity with gone
    # accounts: millions of them) each get their own window partition instead of one huge
    # one; their sizes and ranks in that partition are never read.
    by_cluster = Window.partitionBy(_ANCHOR, F.when(F.col(_ANCHOR).isNull(), F.col(_PREVIOUS_ID)))
    by_previous = Window.partitionBy(
        _PREVIOUS_ID, F.when(F.col(_PREVIOUS_ID).isNull(), F.col(_ANCHOR))
    )
    predecessor_order = by_cluster.orderBy(
        F.col(_PREVIOUS_ID).isNull(), F.desc(_SHARED), F.desc(_PREVIOUS_SIZE), F.asc(_PREVIOUS_ID)
    )
    successor_order = by_previous.orderBy(
        F.col(_ANCHOR).isNull(), F.desc(_SHARED), F.desc(_CLUSTER_SIZE), F.asc(_ANCHOR)
    )
    return (
        cells.withColumn(_CLUSTER_SIZE, F.sum(_SHARED).over(by_cluster))
        .withColumn(_PREVIOUS_SIZE, F.sum(_SHARED).over(by_previous))
        .withColumn(_SUCCESSOR_RANK, F.row_number().over(successor_order))
        .withColumn(_PREDECESSOR_RANK, F.row_number().over(predecessor_order))
        .withColumn(
            _KEPT,
            F.col(_ANCHOR).isNotNull()
            & F.col(_PREVIOUS_ID).isNotNull()
            & (F.col(_PREDECESSOR_RANK) == 1)
            & (F.col(_SUCCESSOR_RANK) == 1),
        )
    )


def _identified(per_cluster: DataFrame, taken_ids: DataFrame, *, run_id: str) -> DataFrame:
    """`per_cluster` with its `entity_id`: the kept previous id; else the plain hash of the
    anchor, unless a taken id or a smaller anchor claims it; else the hash salted with run_id.

    Every cluster claims one id: a kept cluster its previous id, the others their plain hash.
    Taken ids (no anchor) come first in each claim, so an unkept cluster gets its plain id only
    if nobody before it claimed that id; a kept cluster's id is taken by construction and it
    ignores its rank.
    """
    plain = _hashed_id(F.col(_ANCHOR))
    claimed = per_cluster.withColumn(
        _NEW_ID, F.when(F.col(_KEPT), F.col(_PREVIOUS_ID)).otherwise(plain)
    )
    # Only the taken ids some cluster claims matter: every id issued so far (a million rows
    # after a few runs) need not be ranked with the claims of a region's few thousand clusters.
    taken = taken_ids.select(F.col(c.ENTITY_ID).alias(_NEW_ID)).join(
        claimed.select(_NEW_ID), on=_NEW_ID, how="left_semi"
    )
    claims = claimed.unionByName(taken, allowMissingColumns=True)
    claim = F.row_number().over(Window.partitionBy(_NEW_ID).orderBy(F.asc_nulls_first(_ANCHOR)))
    salted = _hashed_id(F.concat(F.col(_ANCHOR), F.lit("|"), F.lit(run_id)))
    return (
        claims.withColumn("claim", claim)
        .where(F.col(_ANCHOR).isNotNull())
        .withColumn(
            c.ENTITY_ID,
            F.when(F.col(_KEPT) | (F.col("claim") == 1), F.col(_NEW_ID)).otherwise(salted),
        )
        .drop("claim", _NEW_ID)
    )


def assign_stable_ids(
    clusters: DataFrame,
    previous: DataFrame | None,
    *,
    run_id: str,
    known_ids: DataFrame | None = None,
    keep: Callable[[str, DataFrame], DataFrame] | None = None,
) -> StableIds:
    """Give this run's clusters the previous run's entity ids where they continue an entity.

    `clusters` needs `account_id` and `cluster` (any key, e.g. the `entity_id` of
    `assign_entities`), one row per account; a null account id is dropped, a null cluster makes
    the account an entity of its own. `previous` is the previous run's `entity_membership`
    (`account_id`, `entity_id`; one row per account, rows with a null in either are ignored),
    or None on a first run, where every cluster is `born` with the id `assign_entities` would
    give it. `known_ids` (`entity_id`) lists every id ever issued, e.g. from the history of
    `changes`; none of them is issued again. `run_id` salts a new id whose plain form is taken.
    The rules and the meaning of each change are in the module docstring. Nothing runs until
    the caller acts on a result. Both results are built from the same two tables (the ranked
    cells of clusters by previous entities, and each cluster's id): `keep(name, frame)`, when
    given, is applied to each (a persist, or the pipeline's stage hook), so that using both
    results computes them once.

    Example::

        stable = assign_stable_ids(
            membership.withColumnRenamed("entity_id", "cluster"),
            previous_membership,
            run_id="2024-06-01",
            known_ids=entity_changes.select("entity_id"),
        )
        stable.membership.show()
        stable.changes.groupBy("change_type").count().show()
    """
    if not run_id:
        raise ResolutionError("assign_stable_ids: run_id is empty; pass the run's id")
    require_columns(clusters, "clusters", [c.ACCOUNT_ID, CLUSTER])
    if previous is not None:
        require_columns(previous, "previous", [c.ACCOUNT_ID, c.ENTITY_ID])
    if known_ids is not None:
        require_columns(known_ids, "known_ids", [c.ENTITY_ID])

    logger.info(
        "stable ids for run %s: previous membership %s, known ids %s",
        run_id,
        "given" if previous is not None else "none (first run)",
        "given" if known_ids is not None else "none",
    )
    members = _anchored(clusters)
    if previous is None:
        # An empty frame of the right shape keeps one code path; Spark prunes it away.
        previous_members = clusters.select(
            c.ACCOUNT_ID, F.lit(None).cast("string").alias(_PREVIOUS_ID)
        ).where(F.lit(False))
    else:
        previous_members = previous.where(
            F.col(c.ACCOUNT_ID).isNotNull() & F.col(c.ENTITY_ID).isNotNull()
        ).select(c.ACCOUNT_ID, F.col(c.ENTITY_ID).cast("string").alias(_PREVIOUS_ID))

    cells = _ranked_cells(members, previous_members)
    if keep is not None:
        cells = keep("stable_id_cells", cells)
    # Per cluster its best predecessor cell (the null cell when no account is from before);
    # per previous entity its best successor cell (the null cell when every account is gone).
    per_cluster = cells.where(F.col(_ANCHOR).isNotNull() & (F.col(_PREDECESSOR_RANK) == 1))
    per_previous = cells.where(F.col(_PREVIOUS_ID).isNotNull() & (F.col(_SUCCESSOR_RANK) == 1))

    taken_ids = per_previous.select(F.col(_PREVIOUS_ID).alias(c.ENTITY_ID))
    if known_ids is not None:
        taken_ids = taken_ids.unionByName(
            known_ids.where(F.col(c.ENTITY_ID).isNotNull()).select(
                F.col(c.ENTITY_ID).cast("string").alias(c.ENTITY_ID)
            )
        )
    cluster_ids = _identified(per_cluster, taken_ids, run_id=run_id)
    if keep is not None:
        cluster_ids = keep("stable_id_clusters", cluster_ids)

    membership = members.join(cluster_ids.select(_ANCHOR, c.ENTITY_ID), on=_ANCHOR).select(
        c.ACCOUNT_ID, c.ENTITY_ID
    )

    has_predecessor = F.col(_PREVIOUS_ID).isNotNull()
    newcomers = cluster_ids.where(~F.col(_KEPT)).select(
        c.ENTITY_ID,
        F.when(has_predecessor, F.lit(SPLIT_FROM)).otherwise(F.lit(BORN)).alias(CHANGE_TYPE),
        F.col(_PREVIOUS_ID).alias(RELATED_ENTITY_ID),
        F.col(_CLUSTER_SIZE).alias(c.ACCOUNT_COUNT),
        F.when(has_predecessor, F.col(_SHARED)).alias(OVERLAP_COUNT),
    )
    successor_ids = cluster_ids.select(_ANCHOR, F.col(c.ENTITY_ID).alias(RELATED_ENTITY_ID))
    has_successor = F.col(_ANCHOR).isNotNull()
    departed = (
        per_previous.where(~F.col(_KEPT))
        .join(successor_ids, on=_ANCHOR, how="left")
        .select(
            F.col(_PREVIOUS_ID).alias(c.ENTITY_ID),
            F.when(has_successor, F.lit(MERGED_INTO)).otherwise(F.lit(RETIRED)).alias(CHANGE_TYPE),
            RELATED_ENTITY_ID,
            F.col(_PREVIOUS_SIZE).alias(c.ACCOUNT_COUNT),
            F.when(has_successor, F.col(_SHARED)).alias(OVERLAP_COUNT),
        )
    )
    return StableIds(membership=membership, changes=newcomers.unionByName(departed))
