"""Connected components over accepted match edges, and entities from components.

Accounts become graph vertices through `xxhash64(account_id)`: a long id that depends on the
account id alone (not on partitioning, row order or core count), which both engines need for a
deterministic labelling (each component is labelled with its smallest vertex id). Two distinct
account ids colliding in 64 bits has probability about n^2 / 2^65 (3e-8 at a million accounts).
"""

from __future__ import annotations

import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.config import ClusteringConfig
from resolution.errors import ClusteringError

logger = logging.getLogger(__name__)

_GRAPHFRAMES_CLASS = "org.graphframes.GraphFrame"
_GRAPHX_ADAPTER_CLASS = "sellerer.graphx.ConnectedComponents"


def vertex_id(account_id: str = c.ACCOUNT_ID) -> F.Column:
    """The long vertex id of an account: a 64-bit hash of its id, stable across runs."""
    return F.xxhash64(F.col(account_id))


def _require_class(spark: SparkSession, class_name: str, remedy: str) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    if not jvm.org.apache.spark.util.Utils.classIsLoadable(class_name):
        raise ClusteringError(f"{class_name} is not on the Spark classpath; {remedy}")


def _graphframes_components(edges: DataFrame, config: ClusteringConfig) -> DataFrame:
    _require_class(
        edges.sparkSession,
        _GRAPHFRAMES_CLASS,
        "add the GraphFrames jar (spark-submit --packages "
        "io.graphframes:graphframes-spark4_2.13:0.12.3) or set clustering.engine: graphx",
    )
    from graphframes import GraphFrame

    vertices = (
        edges.select(F.col("src").alias("id"))
        .unionByName(edges.select(F.col("dst").alias("id")))
        .distinct()
    )
    components = GraphFrame(vertices, edges).connectedComponents(
        algorithm=config.algorithm,
        checkpointInterval=config.checkpoint_interval,
        broadcastThreshold=config.broadcast_threshold,
        useLabelsAsComponents=False,
        max_iter=config.max_iterations,
    )
    return components.select("id", c.COMPONENT)


def _graphx_components(edges: DataFrame, config: ClusteringConfig) -> DataFrame:
    spark = edges.sparkSession
    _require_class(
        spark,
        _GRAPHX_ADAPTER_CLASS,
        "run `make setup` (it builds .jars/seller-er-graphx.jar) and pass that jar to Spark",
    )
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    adapter = jvm.sellerer.graphx.ConnectedComponents
    result = adapter.run(edges._jdf, config.max_iterations, config.storage_level)
    return DataFrame(result, spark)


def edge_partitions(edge_count: int, *, parallelism: int, edges_per_partition: int) -> int:
    """How many partitions connected components runs its `edge_count` edges in: one per
    `edges_per_partition` edges, and at least one per core (`parallelism`).

    >>> edge_partitions(200_000, parallelism=2, edges_per_partition=1_000_000)
    2
    >>> edge_partitions(30_000_000, parallelism=2, edges_per_partition=1_000_000)
    30
    """
    return max(parallelism, -(-edge_count // edges_per_partition), 1)


def connected_components(edges: DataFrame, *, config: ClusteringConfig) -> DataFrame:
    """`(id, component)` for every vertex of `edges` (long columns `src`, `dst`).

    `component` is the smallest vertex id of the component. The engine and its parameters come
    from `config`; an engine whose classes are missing raises `ClusteringError` (there is no
    silent switch to the other engine). The caller sets Spark's checkpoint directory.

    The edges are counted and coalesced to `edge_partitions` first: every superstep of the
    algorithm runs a task per partition, and the edges of an incremental run's region (a union
    of checkpointed frames) came in 32 partitions. Measured on 2 cores, 208,381 edges of
    101,262 accounts: 38.6 s in 32 partitions, 24.4 s in 16, 3.2 s in 2.
    """
    spark = edges.sparkSession
    counted = edges.select("src", "dst").persist(StorageLevel.MEMORY_AND_DISK)
    try:
        edge_count = counted.count()
        partitions = edge_partitions(
            edge_count,
            parallelism=spark.sparkContext.defaultParallelism,
            edges_per_partition=config.edges_per_partition,
        )
        sized = counted.coalesce(partitions)
        logger.info(
            "connected components with engine=%s algorithm=%s checkpoint_interval=%d: "
            "%d edges in %d partitions",
            config.engine,
            config.algorithm,
            config.checkpoint_interval,
            edge_count,
            sized.rdd.getNumPartitions(),
        )
        if config.engine == "graphframes":
            return _graphframes_components(sized, config)
        return _graphx_components(sized, config)
    finally:
        counted.unpersist()


def assign_entities(
    accounts: DataFrame, match_edges: DataFrame, *, config: ClusteringConfig
) -> DataFrame:
    """`(account_id, entity_id)` for every account in `accounts`, singletons included.

    `match_edges` needs `account_id_l`, `account_id_r`. An entity id is `E` followed by the
    first 16 hex characters of SHA-256 of the smallest account id in the entity, so it is the
    same whatever the partitioning, and unchanged while that account stays in the entity.
    """
    edges = match_edges.select(
        vertex_id(c.ACCOUNT_ID_L).alias("src"), vertex_id(c.ACCOUNT_ID_R).alias("dst")
    )
    components = connected_components(edges, config=config)
    vertices = accounts.select(c.ACCOUNT_ID, vertex_id().alias(c.VERTEX_ID))
    labelled = vertices.join(
        components.withColumnRenamed("id", c.VERTEX_ID), on=c.VERTEX_ID, how="left"
    ).select(c.ACCOUNT_ID, F.coalesce(F.col(c.COMPONENT), F.col(c.VERTEX_ID)).alias(c.COMPONENT))
    anchors = labelled.groupBy(c.COMPONENT).agg(F.min(c.ACCOUNT_ID).alias("anchor_account_id"))
    return labelled.join(anchors, on=c.COMPONENT).select(
        c.ACCOUNT_ID,
        F.concat(F.lit("E"), F.substring(F.sha2(F.col("anchor_account_id"), 256), 1, 16)).alias(
            c.ENTITY_ID
        ),
    )


def summarise_entities(entity_membership: DataFrame) -> DataFrame:
    """`(entity_id, account_count)`: one row per entity."""
    return entity_membership.groupBy(c.ENTITY_ID).agg(F.count(F.lit(1)).alias(c.ACCOUNT_COUNT))
