"""Stable entity ids across runs: matching, new ids and the change log on tiny inline data.

Expected ids are computed here with `hashlib`, independently of Spark's `sha2`; the property
test checks the Spark implementation against a plain-Python one of the same rules.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.errors import ResolutionError
from resolution.stable_ids import (
    BORN,
    CHANGE_TYPE,
    CLUSTER,
    MERGED_INTO,
    OVERLAP_COUNT,
    RELATED_ENTITY_ID,
    RETIRED,
    SPLIT_FROM,
    StableIds,
    assign_stable_ids,
)

RUN = "run-2"
CLUSTERS = "account_id string, cluster string"
MEMBERSHIP = "account_id string, entity_id string"

Change = tuple[str, str, str | None, int, int | None]


def _plain(account_id: str) -> str:
    return "E" + hashlib.sha256(account_id.encode()).hexdigest()[:16]


def _salted(account_id: str, run_id: str = RUN) -> str:
    return _plain(f"{account_id}|{run_id}")


def _rows(groups: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    return [(account, key) for key, accounts in groups.items() for account in accounts]


def _clusters(spark: SparkSession, groups: Mapping[str, Iterable[str]]) -> DataFrame:
    return spark.createDataFrame(_rows(groups), CLUSTERS)


def _previous(spark: SparkSession, groups: Mapping[str, Iterable[str]]) -> DataFrame:
    return spark.createDataFrame(_rows(groups), MEMBERSHIP)


def _collected(stable: StableIds) -> tuple[dict[str, str], set[Change]]:
    # One Spark job for both results: within one query Spark reuses their shared shuffles.
    rows = (
        stable.membership.withColumn("part", F.lit("membership"))
        .unionByName(stable.changes.withColumn("part", F.lit("changes")), allowMissingColumns=True)
        .collect()
    )
    membership = [r for r in rows if r["part"] == "membership"]
    accounts = [r[c.ACCOUNT_ID] for r in membership]
    assert len(accounts) == len(set(accounts)), "an account has two ids"
    changes = [
        (r[c.ENTITY_ID], r[CHANGE_TYPE], r[RELATED_ENTITY_ID], r[c.ACCOUNT_COUNT], r[OVERLAP_COUNT])
        for r in rows
        if r["part"] == "changes"
    ]
    assert len(changes) == len(set(changes))
    return {r[c.ACCOUNT_ID]: r[c.ENTITY_ID] for r in membership}, set(changes)


def test_first_run_gives_todays_ids_and_every_cluster_is_born(spark: SparkSession) -> None:
    clusters = spark.createDataFrame(
        [("a2", "k1"), ("a1", "k1"), ("账户", "k2"), ("s1", None), ("s2", None), (None, "k1")],
        CLUSTERS,
    )
    membership, changes = _collected(assign_stable_ids(clusters, None, run_id=RUN))
    assert membership == {  # a null cluster leaves its account alone; a null account is dropped
        "a1": _plain("a1"),
        "a2": _plain("a1"),
        "账户": _plain("账户"),
        "s1": _plain("s1"),
        "s2": _plain("s2"),
    }
    assert changes == {
        (_plain("a1"), BORN, None, 2, None),
        (_plain("账户"), BORN, None, 1, None),
        (_plain("s1"), BORN, None, 1, None),
        (_plain("s2"), BORN, None, 1, None),
    }


def test_unchanged_rerun_keeps_every_id_and_writes_no_changes(spark: SparkSession) -> None:
    previous = _previous(spark, {"E-old-1": ["a1", "a2", "a3"], "E-old-2": ["b1"]})
    clusters = _clusters(spark, {"x": ["a3", "a2", "a1"], "y": ["b1"]})
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert membership == {"a1": "E-old-1", "a2": "E-old-1", "a3": "E-old-1", "b1": "E-old-2"}
    assert changes == set()


def test_merge_keeps_the_larger_predecessor(spark: SparkSession) -> None:
    previous = _previous(spark, {"P-big": ["b1", "b2", "b3"], "P-small": ["a1", "a2"]})
    clusters = _clusters(spark, {"x": ["a1", "a2", "b1", "b2", "b3"]})
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert membership == dict.fromkeys(["a1", "a2", "b1", "b2", "b3"], "P-big")
    assert changes == {("P-small", MERGED_INTO, "P-big", 2, 2)}


def test_split_leaves_the_id_with_the_largest_part(spark: SparkSession) -> None:
    previous = _previous(spark, {"P": ["a1", "a2", "a3", "a4"]})
    clusters = _clusters(spark, {"x": ["a1"], "y": ["a2", "a3", "a4"]})
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    # a1 leaves: its plain id is free (no previous entity held it), so it is issued.
    assert membership == {"a1": _plain("a1"), "a2": "P", "a3": "P", "a4": "P"}
    assert changes == {(_plain("a1"), SPLIT_FROM, "P", 1, 1)}


def test_split_part_whose_plain_id_was_a_previous_id_gets_a_salted_id(
    spark: SparkSession,
) -> None:
    # The previous entity is labelled with a1's hash (as assign_entities did); a1 splits off.
    previous = _previous(spark, {_plain("a1"): ["a1", "a2", "a3"]})
    clusters = _clusters(spark, {"x": ["a1"], "y": ["a2", "a3"]})
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert membership == {"a1": _salted("a1"), "a2": _plain("a1"), "a3": _plain("a1")}
    assert changes == {(_salted("a1"), SPLIT_FROM, _plain("a1"), 1, 1)}


def test_birth_and_a_partly_gone_entity(spark: SparkSession) -> None:
    previous = _previous(spark, {"P": ["a1", "a2", "a3"]})
    clusters = _clusters(spark, {"x": ["a1", "a2"], "y": ["n1", "n2"]})
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    # a3 is gone and P continues without it: no row for P.
    assert membership == {"a1": "P", "a2": "P", "n1": _plain("n1"), "n2": _plain("n1")}
    assert changes == {(_plain("n1"), BORN, None, 2, None)}


def test_retirement(spark: SparkSession) -> None:
    previous = _previous(spark, {"P": ["a1"], "Q": ["z1", "z2"]})
    clusters = _clusters(spark, {"x": ["a1"]})
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert membership == {"a1": "P"}
    assert changes == {("Q", RETIRED, None, 2, None)}


def test_scattered_entity_is_both_merged_into_and_split_from(spark: SparkSession) -> None:
    # P's largest share (2) joins Q's cluster, which keeps Q; P's two remaining accounts form
    # clusters of one: no cluster keeps P.
    previous = _previous(
        spark, {"P": ["a1", "a2", "a3", "a4"], "Q": ["b1", "b2", "b3", "b4", "b5"]}
    )
    clusters = _clusters(
        spark, {"x": ["a1", "a2", "b1", "b2", "b3", "b4", "b5"], "y": ["a3"], "z": ["a4"]}
    )
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert membership == {
        **dict.fromkeys(["a1", "a2", "b1", "b2", "b3", "b4", "b5"], "Q"),
        "a3": _plain("a3"),
        "a4": _plain("a4"),
    }
    assert changes == {
        ("P", MERGED_INTO, "Q", 4, 2),
        (_plain("a3"), SPLIT_FROM, "P", 1, 1),
        (_plain("a4"), SPLIT_FROM, "P", 1, 1),
    }


def test_ties_are_broken_deterministically(spark: SparkSession) -> None:
    previous = _previous(
        spark,
        {
            # merge of equals: the smallest id survives
            "M2": ["m1", "m2"],
            "M1": ["m3", "m4"],
            # equal shares: the larger previous entity survives (t5 is gone)
            "T1": ["t1", "t2"],
            "T2": ["t3", "t4", "t5"],
            # split into equal parts: the part with the smallest account keeps the id
            "S": ["s3", "s4", "s1", "s2"],
            # equal shares of a split: the larger cluster keeps the id
            "L": ["l1", "l2"],
        },
    )
    clusters = _clusters(
        spark,
        {
            "m": ["m1", "m2", "m3", "m4"],
            "t": ["t1", "t2", "t3", "t4"],
            "s-high": ["s3", "s4"],
            "s-low": ["s1", "s2"],
            "l-small": ["l1"],
            "l-big": ["l2", "n1"],
        },
    )
    membership, changes = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert membership == {
        **dict.fromkeys(["m1", "m2", "m3", "m4"], "M1"),
        **dict.fromkeys(["t1", "t2", "t3", "t4"], "T2"),
        **dict.fromkeys(["s1", "s2"], "S"),
        **dict.fromkeys(["s3", "s4"], _plain("s3")),
        **dict.fromkeys(["l2", "n1"], "L"),
        "l1": _plain("l1"),
    }
    assert changes == {
        ("M2", MERGED_INTO, "M1", 2, 2),
        ("T1", MERGED_INTO, "T2", 2, 2),
        (_plain("s3"), SPLIT_FROM, "S", 2, 2),
        (_plain("l1"), SPLIT_FROM, "L", 1, 1),
    }


def test_known_ids_are_never_reissued(spark: SparkSession) -> None:
    # k1 had its own entity once and was retired; now it is back on its own.
    clusters = _clusters(spark, {"x": ["k1"], "y": ["a1"]})
    previous = _previous(spark, {"P": ["a1"]})
    known_ids = spark.createDataFrame([(_plain("k1"),), ("P",), (None,)], "entity_id string")
    membership, changes = _collected(
        assign_stable_ids(clusters, previous, run_id=RUN, known_ids=known_ids)
    )
    assert membership == {"k1": _salted("k1"), "a1": "P"}
    assert changes == {(_salted("k1"), BORN, None, 1, None)}
    # Without the history the plain id comes back: that is what known_ids is for.
    membership, _ = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert membership["k1"] == _plain("k1")


_PREVIOUS_GROUPS = {
    "P": ["a1", "a2", "a3", "a4"],
    "Q": ["b1", "b2"],
    "R": ["r1", "r2"],
    _plain("c1"): ["c1", "c2", "c3"],
}
_CLUSTER_GROUPS = {
    "x": ["a1", "a2", "a3", "b1", "b2"],
    "y": ["a4", "n1"],
    "z": ["n2", "n3"],
    "w": ["c1"],
    "v": ["c2", "c3"],
}


def test_kept_tables_are_computed_once_and_give_the_same_ids(spark: SparkSession) -> None:
    # The pipeline keeps the two tables both results are built from (its stage hook); the ids
    # and changes are those computed without keeping anything.
    clusters = _clusters(spark, _CLUSTER_GROUPS)
    previous = _previous(spark, _PREVIOUS_GROUPS)
    known_ids = spark.createDataFrame(
        [(_plain("c2"),), ("retired-long-ago",), ("P",)], "entity_id string"
    )
    kept: list[str] = []

    def keep(name: str, frame: DataFrame) -> DataFrame:
        kept.append(name)
        return frame.persist()

    with_keep = assign_stable_ids(clusters, previous, run_id=RUN, known_ids=known_ids, keep=keep)
    assert kept == ["stable_id_cells", "stable_id_clusters"]
    assert _collected(with_keep) == _collected(
        assign_stable_ids(clusters, previous, run_id=RUN, known_ids=known_ids)
    )


def test_ids_do_not_depend_on_partitioning_row_order_or_repetition(spark: SparkSession) -> None:
    previous = _previous(spark, _PREVIOUS_GROUPS)
    clusters = _clusters(spark, _CLUSTER_GROUPS)
    expected = _collected(assign_stable_ids(clusters, previous, run_id=RUN))
    assert expected == (
        {
            **dict.fromkeys(["a1", "a2", "a3", "b1", "b2"], "P"),
            "a4": _plain("a4"),
            "n1": _plain("a4"),
            "n2": _plain("n2"),
            "n3": _plain("n2"),
            "c1": _salted("c1"),
            "c2": _plain("c1"),
            "c3": _plain("c1"),
        },
        {
            ("Q", MERGED_INTO, "P", 2, 2),
            ("R", RETIRED, None, 2, None),
            (_plain("a4"), SPLIT_FROM, "P", 2, 1),
            (_plain("n2"), BORN, None, 2, None),
            (_salted("c1"), SPLIT_FROM, _plain("c1"), 1, 1),
        },
    )
    shuffled_previous = spark.createDataFrame(
        list(reversed(_rows(_PREVIOUS_GROUPS))), MEMBERSHIP
    ).repartition(7)
    shuffled_clusters = spark.createDataFrame(
        list(reversed(_rows(_CLUSTER_GROUPS))), CLUSTERS
    ).repartition(7)
    assert _collected(assign_stable_ids(shuffled_clusters, shuffled_previous, run_id=RUN)) == (
        expected
    )
    assert _collected(assign_stable_ids(clusters, previous, run_id=RUN)) == expected


def test_bad_inputs_are_reported(spark: SparkSession) -> None:
    clusters = spark.createDataFrame([("a1", "k")], "account_id string, entity_id string")
    with pytest.raises(ResolutionError, match="clusters lacks column.*cluster; found: account_id"):
        assign_stable_ids(clusters, None, run_id=RUN)
    good = clusters.withColumnRenamed(c.ENTITY_ID, CLUSTER)
    with pytest.raises(ResolutionError, match="previous lacks column.*entity_id"):
        assign_stable_ids(good, good, run_id=RUN)
    with pytest.raises(ResolutionError, match="run_id is empty"):
        assign_stable_ids(good, None, run_id="")


def _oracle(
    clusters: Mapping[str, int], previous: Mapping[str, str], run_id: str
) -> tuple[dict[str, str], set[Change]]:
    """The rules of `resolution.stable_ids`, in plain Python over dicts."""
    groups: dict[int, list[str]] = defaultdict(list)
    for account, key in clusters.items():
        groups[key].append(account)
    anchor_of = {key: min(accounts) for key, accounts in groups.items()}
    size = {anchor_of[key]: len(accounts) for key, accounts in groups.items()}
    previous_size = Counter(previous.values())
    shared = Counter(
        (anchor_of[key], previous[account])
        for account, key in clusters.items()
        if account in previous
    )

    def best_predecessor(anchor: str) -> str | None:
        options = [(-n, -previous_size[p], p) for (a, p), n in shared.items() if a == anchor]
        return min(options)[2] if options else None

    def best_successor(entity: str) -> str | None:
        options = [(-n, -size[a], a) for (a, p), n in shared.items() if p == entity]
        return min(options)[2] if options else None

    ids: dict[str, str] = {}
    changes: set[Change] = set()
    drawn = set(previous_size)
    for anchor in sorted(size):
        predecessor = best_predecessor(anchor)
        if predecessor is not None and best_successor(predecessor) == anchor:
            ids[anchor] = predecessor
            continue
        plain = _plain(anchor)
        ids[anchor] = _salted(anchor, run_id) if plain in drawn else plain
        drawn.add(plain)
        if predecessor is None:
            changes.add((ids[anchor], BORN, None, size[anchor], None))
        else:
            overlap = shared[(anchor, predecessor)]
            changes.add((ids[anchor], SPLIT_FROM, predecessor, size[anchor], overlap))
    kept = set(ids.values())
    for entity, entity_size in previous_size.items():
        if entity in kept:
            continue
        successor = best_successor(entity)
        if successor is None:
            changes.add((entity, RETIRED, None, entity_size, None))
        else:
            overlap = shared[(successor, entity)]
            changes.add((entity, MERGED_INTO, ids[successor], entity_size, overlap))
    membership = {account: ids[anchor_of[key]] for account, key in clusters.items()}
    return membership, changes


# None: the account is absent from that run.
_ASSIGNMENT = st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=1, max_size=10)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=_ASSIGNMENT, second=_ASSIGNMENT, unchanged=st.booleans())
def test_matches_the_rules_on_random_runs(
    spark: SparkSession, first: list[int | None], second: list[int | None], unchanged: bool
) -> None:
    first_clusters = {f"a{i}": k for i, k in enumerate(first) if k is not None}
    if unchanged:
        # The same clustering under other cluster labels.
        second_clusters = {a: 10 - k for a, k in first_clusters.items()}
    else:
        second_clusters = {f"a{i}": k for i, k in enumerate(second) if k is not None}
    # The previous run was a first run: its ids are the plain hashes of its smallest accounts.
    previous, _ = _oracle(first_clusters, {}, "run-1")

    stable = assign_stable_ids(
        spark.createDataFrame(list(second_clusters.items()), "account_id string, cluster long"),
        spark.createDataFrame(list(previous.items()), MEMBERSHIP),
        run_id=RUN,
    )
    membership, changes = _collected(stable)
    assert (membership, changes) == _oracle(second_clusters, previous, RUN)
    assert set(membership) == set(second_clusters)
    # One id per cluster, so each previous id is used at most once.
    assert len(set(membership.values())) == len(set(second_clusters.values()))
    if unchanged:
        assert membership == previous
        assert changes == set()
