"""An incremental run's update of the shared keys equals a full recount of the population."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.blocking import count_value_holders, set_aside_desk_phones
from resolution.config import BlockingConfig
from resolution.incremental import (
    BLOCKING_KEYS,
    KEY_PROBES,
    RESCORED,
    affected_accounts,
    key_probes,
)
from resolution.lineage import unstaged
from resolution.shared_keys import shared_rows, update_shared_keys

KEYS = "account_id string, attribute string, value_key string"
RULES = ("card", "device", "contact_phone", "warehouse_address")


def _state(keys: DataFrame, *, probes: bool) -> DataFrame:
    """`account_state`'s account id and kept keys (as extracted) for `keys`, with their
    `key_probes` (as a run writes them) or without (as runs before them wrote the state: the
    update then explodes the keys)."""
    state = keys.groupBy(c.ACCOUNT_ID).agg(
        F.array_sort(F.collect_list(F.struct(c.ATTRIBUTE, c.VALUE_KEY))).alias(BLOCKING_KEYS)
    )
    return state.withColumn(KEY_PROBES, key_probes(F.col(BLOCKING_KEYS))) if probes else state


def _full(keys: DataFrame, cap: int) -> DataFrame:
    """What a full run keeps: desk phones judged over the population, holders counted."""
    return shared_rows(count_value_holders(set_aside_desk_phones(keys, max_block_size=cap)))


def _rows(frame: DataFrame) -> list[tuple]:
    return sorted(
        tuple(r)
        for r in frame.select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT).collect()
    )


def _changes(spark: SparkSession, before: DataFrame, now: DataFrame, touched: dict[str, str]):  # type: ignore[no-untyped-def]
    ids = {r[0] for r in before.select(c.ACCOUNT_ID).collect()} | {
        r[0] for r in now.select(c.ACCOUNT_ID).collect()
    }
    rows = [(a, touched.get(a, "unchanged")) for a in sorted(ids)]
    return spark.createDataFrame(rows, "account_id string, change string")


def _label(account: str, phone: str, address: str) -> list[tuple[str, str, str]]:
    return [
        (account, "contact_phone", phone),
        (account, "label_phone_address", f"{phone}|{address}"),
    ]


@pytest.mark.parametrize("probes", [True, False], ids=["probes", "keys"])
@pytest.mark.parametrize("broadcast", [True, False])
def test_update_equals_a_full_recount_when_an_address_becomes_a_hub(
    spark: SparkSession, broadcast: bool, probes: bool
) -> None:
    """With a cap of 4, warehouse A1 has 4 holders on day 1 and a fifth (the new account n) on
    day 2: it becomes a hub, so phone P, which l0 and l1 print only on labels at A1, turns into
    their desk phone, while l2 (who prints P at a second, small address too) and o keep it as a
    contact phone. l1's phone R, printed at the hub A6 nobody touched, stays a desk phone when
    l1 is judged again. The changed account t starts printing Q, the desk phone of unchanged d0
    (held once, kept as a desk phone), at a small address. The removed account r leaves card K
    to x alone."""
    cap = 4
    config = BlockingConfig(rules=RULES, max_block_size=cap, incremental_rescore="touched")
    common = [
        ("w0", "warehouse_address", "A1"),
        *_label("l0", "P", "A1"),
        *_label("l1", "P", "A1"),
        *_label("l1", "R", "A6"),
        *_label("l2", "P", "A1"),
        *_label("l2", "P", "A3"),
        *_label("o", "P", "A4"),
        *[(f"h{i}", "registered_address", "A6") for i in range(5)],  # A6: a hub
        *[(f"g{i}", "registered_address", "H") for i in range(5)],  # H: a hub
        *_label("d0", "Q", "H"),
        ("x", "card", "K"),
        ("y", "device", "D"),
        ("z", "device", "D"),
    ]
    # Keys are distinct per account, as extracted (l2 prints P at two addresses).
    before = spark.createDataFrame(
        [*common, ("t", "device", "D"), ("r", "card", "K")],
        KEYS,
    ).distinct()
    touched_now = [
        ("n", "warehouse_address", "A1"),
        ("t", "device", "D"),
        *_label("t", "Q", "A5"),
    ]
    now = spark.createDataFrame([*common, *touched_now], KEYS).distinct()
    changes = _changes(spark, before, now, {"n": "new", "t": "changed", "r": "removed"})
    previous = _full(before, cap)
    # Day 1 as the test means it: P a contact phone of four, R and Q desk phones.
    assert ("l0", "contact_phone", "P", 4) in _rows(previous)
    assert ("l1", "desk_phone", "R", 1) in _rows(previous)
    assert ("d0", "desk_phone", "Q", 1) in _rows(previous)

    update = update_shared_keys(
        _state(before, probes=probes),
        changes,
        spark.createDataFrame(touched_now, KEYS),
        previous,
        config=config,
        broadcast=broadcast,
        checkpoint=unstaged,
    )
    expected = _full(now, cap)
    assert _rows(update.shared) == _rows(expected)
    rows = _rows(update.shared)
    assert ("l0", "desk_phone", "P", 2) in rows and ("l1", "desk_phone", "R", 1) in rows
    assert ("l2", "contact_phone", "P", 2) in rows and ("o", "contact_phone", "P", 2) in rows
    assert ("d0", "desk_phone", "Q", 1) in rows
    assert not [r for r in rows if r[2] == "K"]  # x holds K alone now
    assert update.rejudged == 3  # every unchanged account with a label at A1: l0, l1, l2
    affected = {r[c.ACCOUNT_ID]: r[RESCORED] for r in update.affected.collect()}
    # The touched and re-judged accounts, and the holders of P (its contact holders fell from 4
    # to 2), of D (t's device), of K (which r held with x) and of A1 (w0, with n now).
    assert sorted(affected) == ["l0", "l1", "l2", "n", "o", "t", "w0", "x", "y", "z"]
    assert sorted(a for a, again in affected.items() if again) == ["l0", "l1", "l2", "n", "t"]


@pytest.mark.parametrize("probes", [True, False], ids=["probes", "keys"])
def test_update_affects_the_accounts_a_recount_affects(spark: SparkSession, probes: bool) -> None:
    """Without desk phones, the affected accounts and the rescored ones are those
    `affected_accounts` finds from the population's recounted keys, and the shared keys those of
    a recount: a value pushed over the cap, one left by a removed account, one a changed
    account moved to."""
    for rescore in ("touched", "holders"):
        config = BlockingConfig(
            rules=("card", "device", "registered_address"),
            max_block_size=3,
            incremental_rescore=rescore,
        )
        common = [
            ("x", "card", "k1"),
            ("y", "card", "k2"),
            ("z", "device", "d9"),
            ("u", "device", "d1"),
            *[(f"v{i}", "device", "d5") for i in range(3)],
            *[(f"h{i}", "registered_address", "hub") for i in range(4)],
        ]
        before = spark.createDataFrame([*common, ("t", "card", "k1"), ("r", "device", "d1")], KEYS)
        touched_now = [
            ("t", "card", "k2"),
            ("t", "registered_address", "hub"),
            ("n", "phone", "p"),
            ("n", "device", "d5"),
        ]
        now = spark.createDataFrame([*common, *touched_now], KEYS)
        changes = _changes(spark, before, now, {"t": "changed", "r": "removed", "n": "new"})
        update = update_shared_keys(
            _state(before, probes=probes),
            changes,
            spark.createDataFrame(touched_now, KEYS),
            _full(before, 3),
            config=config,
            broadcast=True,
            checkpoint=unstaged,
        )
        assert _rows(update.shared) == _rows(_full(now, 3))
        recounted = affected_accounts(
            count_value_holders(now), before, changes, config=config, broadcast=True
        )
        assert sorted(tuple(r) for r in update.affected.collect()) == sorted(
            tuple(r) for r in recounted.collect()
        )
        assert update.rejudged == 0
