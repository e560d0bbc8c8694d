"""Incremental resolution: the change detection and the sets of accounts an incremental run
re-pairs and recomputes (resolution.incremental), and the membership comparison of the
incremental benchmark."""

from __future__ import annotations

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from jobs.benchmark_incremental import same_membership_share
from jobs.resolve_entities import _same_hub_cap
from resolution.blocking import build_candidate_pairs, count_value_holders
from resolution.config import BlockingConfig
from resolution.incremental import (
    RESCORED,
    STANDS,
    accepted_changes,
    account_changes,
    affected_accounts,
    affected_region,
    change_counts,
    edge_fates,
    input_fingerprints,
    kept_edges,
    merged_keys,
    population_sizes,
    state_keys,
    state_rows,
    stored_profile_fields,
    write_scopes,
)

KEY = b"test key"
ACCOUNTS = "account_id string, shop_name string, phone string"
PAYMENTS = "account_id string, instrument_type string, instrument_id string"
LOGISTICS = "account_id string, role string, address string"
KEYS = "account_id string, attribute string, value_key string"


def _fingerprints(spark: SparkSession, accounts, payments, logistics=()):  # type: ignore[no-untyped-def]
    rows = input_fingerprints(
        spark.createDataFrame(list(accounts), ACCOUNTS),
        spark.createDataFrame(list(payments), PAYMENTS),
        spark.createDataFrame(list(logistics), LOGISTICS),
        key=KEY,
    ).collect()
    return {r[c.ACCOUNT_ID]: r["fingerprint"] for r in rows}


def test_fingerprints_see_any_change_of_an_account_or_its_rows_but_not_row_order(
    spark: SparkSession,
) -> None:
    accounts = [("a", "shop a", "1"), ("b", "shop b", "2")]
    payments = [("a", "card", "4111"), ("a", "alipay", "x@y"), ("b", "card", "5500")]
    before = _fingerprints(spark, accounts, payments)
    assert set(before) == {"a", "b"} and before["a"] != before["b"]
    assert all(len(v) == 64 and "4111" not in v for v in before.values())
    # Same rows in another order: same fingerprints.
    assert _fingerprints(spark, accounts[::-1], payments[::-1]) == before
    # A payment row changed: only that account's fingerprint moves.
    moved = _fingerprints(spark, accounts, [("a", "card", "4112"), *payments[1:]])
    assert moved["a"] != before["a"] and moved["b"] == before["b"]
    # A logistics row added, and a field of the account row changed.
    assert _fingerprints(spark, accounts, payments, [("b", "return", "x")])["b"] != before["b"]
    assert _fingerprints(spark, [("a", "shop a", "9"), accounts[1]], payments)["a"] != before["a"]
    # Another key, other fingerprints (keyed, not a plain hash of the numbers).
    other = input_fingerprints(
        spark.createDataFrame(accounts, ACCOUNTS),
        spark.createDataFrame(payments, PAYMENTS),
        spark.createDataFrame([], LOGISTICS),
        key=b"another key",
    ).collect()
    assert {r["fingerprint"] for r in other}.isdisjoint(before.values())


def test_fingerprints_tell_a_value_moved_to_another_column_and_a_repeated_row(
    spark: SparkSession,
) -> None:
    """A row's nulls count (the hash skips them), and so does each copy of a row."""
    accounts = [("a", "shop a", None)]
    before = _fingerprints(spark, accounts, [])
    assert _fingerprints(spark, [("a", None, "shop a")], [])["a"] != before["a"]
    payments = [("a", "card", "4111")]
    once = _fingerprints(spark, accounts, payments)["a"]
    assert _fingerprints(spark, accounts, payments * 2)["a"] != once != before["a"]


def test_accepted_changes_drop_or_remove_accounts_without_an_accepted_row(
    spark: SparkSession,
) -> None:
    """As read: n1, n2 new, c1, c2 changed, u unchanged, r removed. Accepted among those read
    again: n1 and c1. n2 (all its rows quarantined) is no account; c2 (now quarantined) is
    removed; u stays unchanged (its rows were not read again)."""
    seen = spark.createDataFrame(
        [("n1", "new"), ("n2", "new"), ("c1", "changed"), ("c2", "changed")]
        + [("u", "unchanged"), ("r", "removed")],
        "account_id string, change string",
    )
    accepted = spark.createDataFrame([("n1",), ("c1",)], "account_id string")
    rows = accepted_changes(seen, accepted).collect()
    assert {r[c.ACCOUNT_ID]: r["change"] for r in rows} == {
        "n1": "new",
        "c1": "changed",
        "c2": "removed",
        "u": "unchanged",
        "r": "removed",
    }


def test_account_changes_classifies_new_changed_unchanged_and_removed(spark: SparkSession) -> None:
    now = spark.createDataFrame(
        [("a", "1"), ("b", "2"), ("c", "3")], "account_id string, fingerprint string"
    )
    state = spark.createDataFrame(
        [("a", "1"), ("b", "x"), ("d", "4")], "account_id string, fingerprint string"
    )
    changes = {r[c.ACCOUNT_ID]: r["change"] for r in account_changes(now, state).collect()}
    assert changes == {"a": "unchanged", "b": "changed", "c": "new", "d": "removed"}


def test_an_incremental_run_needs_the_hub_cap_of_its_base(spark: SparkSession) -> None:
    """The counts of each change, the population before and now, and whether the hub cap
    (1% of the accounts, 20 at least) stays: 1,500 -> 1,520 accounts keeps 20; 1,500 ->
    2,500 moves it to 25, and the run must resolve in full."""

    def changes(new: int, changed: int, unchanged: int, removed: int):  # type: ignore[no-untyped-def]
        kinds = ["new"] * new + ["changed"] * changed + ["unchanged"] * unchanged
        kinds += ["removed"] * removed
        rows = [(f"a{i}", kind) for i, kind in enumerate(kinds)]
        return spark.createDataFrame(rows, "account_id string, change string")

    grown = changes(1_030, 40, 1_430, 30)
    assert change_counts(grown) == {"new": 1_030, "changed": 40, "unchanged": 1_430, "removed": 30}
    assert population_sizes(change_counts(grown)) == (1_500, 2_500)
    assert not _same_hub_cap(change_counts(grown), BlockingConfig())
    assert _same_hub_cap(change_counts(grown), BlockingConfig(hub_share=None))
    assert _same_hub_cap(change_counts(changes(50, 40, 1_430, 30)), BlockingConfig())
    only = change_counts(changes(0, 0, 3, 0))
    assert only == {"new": 0, "changed": 0, "unchanged": 3, "removed": 0}


def test_state_round_trips_keys_and_merges_touched_accounts(spark: SparkSession) -> None:
    fingerprints = spark.createDataFrame(
        [("a", "fa"), ("b", "fb"), ("c", "fc")], "account_id string, fingerprint string"
    )
    keys = spark.createDataFrame(
        [("a", "phone", "p1"), ("a", "card", "k1"), ("b", "card", "k1")], KEYS
    )
    profile = T.StructType([T.StructField(c.NAME_KEY, T.StringType())])
    state = state_rows(fingerprints, keys, stored_type=profile)
    rows = {r[c.ACCOUNT_ID]: r for r in state.collect()}
    assert rows["c"]["blocking_keys"] == []  # an account without keys keeps its state row
    assert [rows[a]["profile"] for a in "abc"] == [None, None, None]  # none compared
    assert state.schema["profile"].dataType == profile
    assert sorted(tuple(r) for r in state_keys(state).collect()) == sorted(
        tuple(r) for r in keys.collect()
    )
    changes = spark.createDataFrame(
        [("a", "changed"), ("b", "unchanged"), ("c", "removed"), ("e", "new")],
        "account_id string, change string",
    )
    touched = spark.createDataFrame([("a", "phone", "p2"), ("e", "card", "k1")], KEYS)
    merged = sorted(tuple(r) for r in merged_keys(state, changes, touched).collect())
    assert merged == [("a", "phone", "p2"), ("b", "card", "k1"), ("e", "card", "k1")]


def test_state_keeps_each_profile_without_its_holder_counts(spark: SparkSession) -> None:
    """The profile fields a Fellegi-Sunter run compared are kept per account and come back as
    they went in; the holder counts (`values`), which change with the population, are not."""
    fingerprints = spark.createDataFrame(
        [("a", "fa"), ("b", "fb")], "account_id string, fingerprint string"
    )
    keys = spark.createDataFrame([("a", "phone", "p1")], KEYS)
    profiles = spark.createDataFrame(
        [("a", "zhang wei", ["zhang", "wei"], {"phone": [("p1", 2)]})],
        f"account_id string, {c.NAME_KEY} string, {c.NAME_TOKENS} array<string>, "
        "values map<string, array<struct<value_key: string, holders: bigint>>>",
    )
    state = state_rows(fingerprints, keys, profiles)
    assert state.schema["profile"].dataType.fieldNames() == [c.NAME_KEY, c.NAME_TOKENS]
    back = {r[c.ACCOUNT_ID]: r.asDict() for r in stored_profile_fields(state).collect()}
    assert back["a"] == {
        c.ACCOUNT_ID: "a",
        c.NAME_KEY: "zhang wei",
        c.NAME_TOKENS: ["zhang", "wei"],
    }
    assert back["b"] == {c.ACCOUNT_ID: "b", c.NAME_KEY: None, c.NAME_TOKENS: None}
    with pytest.raises(ValueError, match="stored_type"):
        state_rows(fingerprints, keys)


@pytest.mark.parametrize(
    ("broadcast", "rescore", "given_keys"),
    [
        (False, "touched", False),
        (True, "touched", False),
        (False, "holders", False),
        (True, "touched", True),
        (False, "holders", True),
    ],
)
def test_affected_accounts_are_the_touched_and_the_holders_of_their_blockable_values(
    spark: SparkSession, broadcast: bool, rescore: str, given_keys: bool
) -> None:
    config = BlockingConfig(
        rules=("card", "device", "registered_address"),
        max_block_size=3,
        incremental_rescore=rescore,
    )
    before = spark.createDataFrame(
        [
            ("t", "card", "k1"),  # t changes: k1 -> k2
            ("x", "card", "k1"),
            ("y", "card", "k2"),
            ("z", "device", "d9"),  # not related to t
            ("r", "device", "d1"),  # r is removed; u shared d1 with it
            ("u", "device", "d1"),
            *[(f"v{i}", "device", "d5") for i in range(3)],  # at the cap: pairs them
            *[(f"h{i}", "registered_address", "hub") for i in range(4)],
        ],
        KEYS,
    )
    now = spark.createDataFrame(
        [
            ("t", "card", "k2"),
            ("t", "registered_address", "hub"),  # a hub: pairs nobody, affects nobody
            ("x", "card", "k1"),
            ("y", "card", "k2"),
            ("z", "device", "d9"),
            ("u", "device", "d1"),
            ("n", "phone", "p"),  # new, with a value nobody else has
            ("n", "device", "d5"),  # ... and one that it makes a hub: v0-v2 are unpaired
            *[(f"v{i}", "device", "d5") for i in range(3)],
            *[(f"h{i}", "registered_address", "hub") for i in range(4)],
        ],
        KEYS,
    )
    changes = spark.createDataFrame(
        [("t", "changed"), ("r", "removed"), ("n", "new")]
        + [
            (a, "unchanged") for a in ("x", "y", "z", "u", "v0", "v1", "v2", "h0", "h1", "h2", "h3")
        ],
        "account_id string, change string",
    )
    # given_keys: the touched accounts' values come from their freshly extracted keys, not
    # from a scan of the population's counted keys; the answer is the same.
    touched_keys = now.where(F.col(c.ACCOUNT_ID).isin("t", "n")) if given_keys else None
    affected = affected_accounts(
        count_value_holders(now),
        before,
        changes,
        config=config,
        broadcast=broadcast,
        touched_keys=touched_keys,
    )
    # x held k1 with t (before), y holds k2 with t (now), u held d1 with removed r, and the
    # v's lose their pairs through d5, which n pushed over the cap.
    rows = {r[c.ACCOUNT_ID]: r[RESCORED] for r in affected.collect()}
    assert sorted(rows) == ["n", "t", "u", "v0", "v1", "v2", "x", "y"]
    # Rescored: the touched accounts and the holders of d5, which crossed the cap; x, y and u
    # keep the pairs they had (only a holder count moved) unless every holder is rescored.
    expected = ["n", "t", "v0", "v1", "v2"] if rescore == "touched" else sorted(rows)
    assert sorted(a for a, again in rows.items() if again) == expected


def test_candidate_pairs_with_a_focus_are_the_pairs_with_a_focus_end(spark: SparkSession) -> None:
    config = BlockingConfig(rules=("card", "device"), max_block_size=4)
    keys = spark.createDataFrame(
        [
            ("a", "card", "k1"),
            ("b", "card", "k1"),
            ("c", "card", "k1"),
            ("a", "device", "d1"),
            ("b", "device", "d1"),
            ("c", "device", "d2"),
            ("d", "device", "d2"),
            ("e", "device", "d3"),
            ("f", "device", "d3"),
        ],
        KEYS,
    )
    counted = count_value_holders(keys)

    def pairs(frame):  # type: ignore[no-untyped-def]
        return {
            (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): sorted(tuple(s) for s in r[c.SHARED_ATTRIBUTES])
            for r in frame.collect()
        }

    everything = pairs(build_candidate_pairs(counted, config=config))
    focus = spark.createDataFrame([("b",), ("c",)], "account_id string")
    focused = pairs(build_candidate_pairs(counted, config=config, focus=focus))
    # Every pair with b or c at one end, with the same evidence as without a focus (a-b share
    # two values; b-c, a pair of two focus accounts, appears once); e-f and no other.
    assert focused == {
        pair: evidence for pair, evidence in everything.items() if {"b", "c"} & set(pair)
    }
    assert set(focused) == {("a", "b"), ("a", "c"), ("b", "c"), ("c", "d")}
    assert focused[("a", "b")] == [("card", 1, 3), ("device", 1, 2)]


def test_kept_edges_drop_pairs_scored_again_and_removed_ends(spark: SparkSession) -> None:
    edges = spark.createDataFrame(
        [("a", "b", 0.99), ("a", "x", 0.98), ("x", "y", 0.97), ("b", "r", 0.96)],
        "account_id_l string, account_id_r string, match_probability double",
    )
    affected = spark.createDataFrame([("a",), ("b",)], "account_id string")
    changes = spark.createDataFrame([("r", "removed")], "account_id string, change string")
    kept = sorted(tuple(r)[:2] for r in kept_edges(edges, affected, changes).collect())
    assert kept == [("a", "x"), ("x", "y")]
    # With rescored flags: a pair is scored again only when both ends are affected and one
    # is rescored; x-y, two affected accounts neither rescored, keeps its edge.
    flagged = spark.createDataFrame(
        [("a", True), ("b", False), ("x", False), ("y", False)],
        "account_id string, rescored boolean",
    )
    kept = sorted(tuple(r)[:2] for r in kept_edges(edges, flagged, changes).collect())
    assert kept == [("x", "y")]
    # edge_fates: every previous edge once, with its weight, standing or not.
    fates = sorted(
        (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R], r[c.MATCH_PROBABILITY], r[STANDS])
        for r in edge_fates(edges, flagged, changes).collect()
    )
    assert fates == [
        ("a", "b", 0.99, False),
        ("a", "x", 0.98, False),
        ("b", "r", 0.96, False),
        ("x", "y", 0.97, True),
    ]


def test_affected_region_is_whole_previous_entities_one_edge_out_plus_new_accounts(
    spark: SparkSession,
) -> None:
    membership = spark.createDataFrame(
        [
            ("a", "E1"),
            ("b", "E1"),
            ("c", "E2"),
            ("d", "E2"),
            ("e", "E3"),
            ("r", "E4"),
            ("s", "E5"),
            ("t", "E5"),
        ],
        "account_id string, entity_id string",
    )
    affected = spark.createDataFrame([("a",), ("n",)], "account_id string")
    # a kept an edge to c (cluster control had cut it between E1 and E2).
    edges = spark.createDataFrame(
        [("a", "c"), ("a", "b")], "account_id_l string, account_id_r string"
    )
    changes = spark.createDataFrame(
        [("n", "new"), ("r", "removed"), ("s", "removed")], "account_id string, change string"
    )
    region = affected_region(membership, affected, edges, changes)
    # t is in the region: its entity lost s, whatever held them together may have gone with it.
    assert sorted(r[c.ACCOUNT_ID] for r in region.collect()) == ["a", "b", "c", "d", "n", "t"]


def test_write_scopes_are_the_rows_an_incremental_run_can_have_changed(
    spark: SparkSession,
) -> None:
    previous = spark.createDataFrame(
        [("a", "E1"), ("b", "E1"), ("c", "E2"), ("x", "E3"), ("y", "E3"), ("r", "E4")],
        "account_id string, entity_id string",
    )
    now = spark.createDataFrame(
        [("a", "E1"), ("b", "E9"), ("n", "E9"), ("c", "E2"), ("x", "E3"), ("y", "E3")],
        "account_id string, entity_id string",
    )
    region = spark.createDataFrame([("a",), ("b",), ("n",)], "account_id string")
    changes = spark.createDataFrame(
        [("n", "new"), ("b", "changed"), ("r", "removed"), ("a", "unchanged")],
        "account_id string, change string",
    )
    pairs = "account_id_l string, account_id_r string"
    # Of the previous edges (a, b), (x, y) and (c, r), (x, y) stands.
    dropped = spark.createDataFrame([("a", "b"), ("c", "r")], pairs)
    new_edges = spark.createDataFrame([("b", "n")], pairs)
    scopes = write_scopes(
        changes,
        region,
        previous_membership=previous,
        membership=now,
        dropped_edges=dropped,
        new_edges=new_edges,
    )

    def ids(frame, *columns):  # type: ignore[no-untyped-def]
        return sorted(tuple(r[name] for name in columns) for r in frame.collect())

    assert ids(scopes.accounts, c.ACCOUNT_ID) == [("a",), ("b",), ("n",), ("r",)]
    assert ids(scopes.entities, c.ENTITY_ID) == [("E1",), ("E4",), ("E9",)]
    assert ids(scopes.edges, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R) == [
        ("a", "b"),
        ("b", "n"),
        ("c", "r"),
    ]
    assert ids(scopes.state, c.ACCOUNT_ID) == [("b",), ("n",), ("r",)]


def test_same_membership_share_counts_accounts_whose_entity_is_identical() -> None:
    left = pd.DataFrame({"account_id": list("abcdef"), "entity_id": ["1", "1", "2", "2", "3", "4"]})
    right = pd.DataFrame(
        {"account_id": list("abcdef"), "entity_id": ["x", "x", "y", "z", "w", "w"]}
    )
    # a, b: same entity on both sides; c, d split; e, f merged.
    assert same_membership_share(left, right) == pytest.approx(2 / 6)
    assert same_membership_share(left, left.assign(entity_id=left["entity_id"] + "!")) == 1.0
