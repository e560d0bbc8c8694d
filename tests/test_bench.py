"""The benchmark's pure parts: input rows for Splink, the value cap, the pairwise evaluation.

No Spark session and no Splink: bench/convert.py and bench/evaluate.py are plain pandas.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.convert import (
    account_rows,
    clean_alnum,
    clean_phone,
    clean_text,
    drop_common_values,
)
from bench.evaluate import pairwise_scores
from bench.run import Result, summarise, table


@pytest.mark.parametrize(
    ("cleaner", "raw", "expected"),
    [
        (clean_phone, "+86 138-0013-8000", "13800138000"),
        (clean_phone, "0086 13800138000", "13800138000"),
        (clean_phone, "１３８００１３８０００", "13800138000"),  # full-width digits
        (clean_phone, "8613800138000", "13800138000"),
        (clean_phone, "021-6234 5678", "02162345678"),  # no country code: digits only
        (clean_phone, " - ", None),
        (clean_phone, None, None),
        (clean_text, "  Zhang   WEI ", "zhang wei"),
        (clean_text, "ＡＢＣ＠ＱＱ．ＣＯＭ", "abc@qq.com"),  # full-width letters
        (clean_text, "   ", None),
        (clean_text, float("nan"), None),
        (clean_alnum, "44011119851018077x ", "44011119851018077x"),
        (clean_alnum, "6222 0212-3456 7890", "6222021234567890"),
        (clean_alnum, "浙江省 杭州市, 文化路１号。", "浙江省杭州市文化路1号"),
        (clean_alnum, "--", None),
    ],
)
def test_cleaners(cleaner, raw, expected) -> None:
    assert cleaner(raw) == expected


def test_account_rows_one_row_per_account_with_lists() -> None:
    accounts = pd.DataFrame(
        {
            "account_id": ["A1", " A2 ", "A1", None, "  ", "A3"],
            "legal_name": ["张伟", "WANG  Fang ", "dup", "no id", "blank id", None],
            "id_number": ["11010119900307803x", None, None, None, None, "ＡＢ-12"],
            "phone": ["+86 138-0013-8000", "0086 13900139000", None, None, None, "n/a"],
            "email": [" Zhang@QQ.com", None, None, None, None, ""],
            "device_id": ["DEV-1", "dev-1", None, None, None, None],
            "city": ["Hangzhou ", "杭州市", None, None, None, None],
        }
    )
    payment_instruments = pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A1", "A2", "A2", "ZZ", "A2"],
            "instrument_type": ["card", "card", "alipay", "other", "wallet", "card", "card"],
            "instrument_id": [
                "6222 0212 3456 7890",
                "6222-0212-3456-7890",  # the same card written another way
                "2088000011112222",
                "COLLECT-01",
                None,  # no value: ignored
                "999",  # account not among the accounts: ignored
                "4000 1111",
            ],
        }
    )
    logistics = pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A2", "A3"],
            "role": ["return", "pickup", "warehouse", "ship_from"],
            "address": ["杭州市 文化路１号", "Pickup Point 7", "杭州市文化路1号。", None],
            "contact_phone": ["+8613800138000", None, "139 0013 9000", "１３７００１３７０００"],
        }
    )

    rows = account_rows(accounts, payment_instruments, logistics)

    expected = pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3"],
            "legal_name": ["张伟", "wang fang", None],
            "shop_name": [None, None, None],
            "id_number": ["11010119900307803x", None, "ab12"],
            "phone": ["13800138000", "13900139000", None],
            "email": ["zhang@qq.com", None, None],
            "registration_ip": [None, None, None],
            "device_id": ["dev-1", "dev-1", None],
            "city": ["hangzhou", "杭州市", None],
            "address": [None, None, None],
            "payment_ids": [["2088000011112222", "6222021234567890"], ["40001111"], None],
            "collection_ids": [None, ["collect01"], None],
            "logistics_addresses": [["杭州市文化路1号"], ["杭州市文化路1号"], None],
            "pickup_addresses": [["pickuppoint7"], None, None],
            "contact_phones": [["13800138000"], ["13900139000"], ["13700137000"]],
        },
        dtype=object,
    )
    pd.testing.assert_frame_equal(rows, expected)


def test_account_rows_without_optional_datasets() -> None:
    rows = account_rows(pd.DataFrame({"account_id": ["A1"], "email": ["X@Y.CN"]}))
    assert rows.loc[0, "email"] == "x@y.cn"
    assert rows.loc[0, "payment_ids"] is None
    assert rows.loc[0, "contact_phones"] is None


def test_account_rows_names_the_columns_found_when_account_id_is_missing() -> None:
    with pytest.raises(ValueError, match=r"account_id.*\['id'\]"):
        account_rows(pd.DataFrame({"id": ["A1"]}))


def test_drop_common_values_nulls_values_held_by_too_many_accounts() -> None:
    rows = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D"],
            "registration_ip": ["1.1.1.1", "1.1.1.1", "1.1.1.1", "2.2.2.2"],
            "pickup_addresses": [["hub", "mine"], ["hub"], ["hub", "hub"], None],
        },
        dtype=object,
    )

    capped, dropped = drop_common_values(
        rows, columns=["registration_ip", "pickup_addresses"], max_holders=2
    )

    expected = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D"],
            "registration_ip": [None, None, None, "2.2.2.2"],
            "pickup_addresses": [["mine"], None, None, None],
        },
        dtype=object,
    )
    pd.testing.assert_frame_equal(capped, expected)
    assert dropped == {"registration_ip": 1, "pickup_addresses": 1}
    unchanged, none_dropped = drop_common_values(rows, columns=["pickup_addresses"], max_holders=3)
    pd.testing.assert_frame_equal(unchanged, rows)
    assert none_dropped == {"pickup_addresses": 0}


def _brute_force(membership: dict[str, str], truth: dict[str, str]) -> tuple[int, int, int]:
    """(true positive, predicted, true) pairs over the truth's accounts, by enumeration; an
    account without membership is alone."""
    accounts = sorted(truth)
    cluster = {a: membership.get(a, f"alone:{a}") for a in accounts}
    tp = predicted = true = 0
    for a, b in itertools.combinations(accounts, 2):
        same_cluster, same_entity = cluster[a] == cluster[b], truth[a] == truth[b]
        predicted += same_cluster
        true += same_entity
        tp += same_cluster and same_entity
    return tp, predicted, true


def test_pairwise_scores_small_example() -> None:
    # Truth T1 {a, b, c}, T2 {d, e}, T3 {f}; predicted 1 {a, b, d}, 2 {c}, 3 {e, f};
    # z has a cluster but no truth (ignored); f's cluster id "1" is a string like the others.
    truth = pd.DataFrame(
        {"account_id": list("abcdef"), "entity_id": ["T1", "T1", "T1", "T2", "T2", "T3"]}
    )
    membership = pd.DataFrame({"account_id": list("abcdefz"), "cluster_id": [1, 1, 2, 1, 3, 3, 1]})

    scores = pairwise_scores(membership, truth, cluster_column="cluster_id")

    # Predicted pairs ab ad bd ef = 4, true pairs ab ac bc de = 4, both: ab.
    assert (scores.true_positive_pairs, scores.predicted_pairs, scores.true_pairs) == (1, 4, 4)
    assert (scores.pairwise_precision, scores.pairwise_recall, scores.pairwise_f1) == (
        0.25,
        0.25,
        0.25,
    )
    assert scores.accounts == 6
    assert scores.missing_accounts == 0
    assert scores.largest_cluster == 3
    # B-cubed per account (precision, recall): a, b (2/3, 2/3); c (1, 1/3); d (1/3, 1/2);
    # e (1/2, 1/2); f (1/2, 1).
    assert scores.bcubed_precision == pytest.approx((2 / 3 * 2 + 1 + 1 / 3 + 1 / 2 * 2) / 6)
    assert scores.bcubed_recall == pytest.approx((2 / 3 * 2 + 1 / 3 + 1 / 2 * 2 + 1) / 6)


def test_pairwise_scores_conventions_when_there_are_no_pairs() -> None:
    truth = pd.DataFrame({"account_id": ["a", "b"], "entity_id": ["T1", "T2"]})
    membership = pd.DataFrame({"account_id": ["a", "b"], "entity_id": ["E1", "E2"]})
    scores = pairwise_scores(membership, truth)
    assert (scores.pairwise_precision, scores.pairwise_recall, scores.pairwise_f1) == (1, 1, 1)


def test_pairwise_scores_rejects_repeated_accounts() -> None:
    membership = pd.DataFrame({"account_id": ["a"], "entity_id": ["E1"]})
    truth = pd.DataFrame({"account_id": ["a", "a"], "entity_id": ["T1", "T2"]})
    with pytest.raises(ValueError, match="truth holds an account_id more than once"):
        pairwise_scores(membership, truth)
    with pytest.raises(ValueError, match=r"membership lacks \['entity_id'\]; columns found"):
        pairwise_scores(membership.rename(columns={"entity_id": "x"}), truth)


@given(
    truth_labels=st.lists(st.integers(0, 4), min_size=1, max_size=14),
    cluster_labels=st.lists(st.integers(0, 4) | st.none(), min_size=14, max_size=14),
)
def test_pairwise_scores_equal_brute_force_counts(truth_labels, cluster_labels) -> None:
    truth = {f"a{i}": f"T{label}" for i, label in enumerate(truth_labels)}
    # None: the account has no membership row; every third account outside the truth has one.
    membership = {
        f"a{i}": f"C{label}"
        for i, label in enumerate(cluster_labels)
        if label is not None and (f"a{i}" in truth or i % 3 == 0)
    }
    scores = pairwise_scores(
        pd.DataFrame({"account_id": list(membership), "entity_id": list(membership.values())}),
        pd.DataFrame({"account_id": list(truth), "entity_id": list(truth.values())}),
    )
    tp, predicted, true = _brute_force(membership, truth)
    assert (scores.true_positive_pairs, scores.predicted_pairs, scores.true_pairs) == (
        tp,
        predicted,
        true,
    )
    assert scores.pairwise_precision == (1.0 if predicted == 0 else tp / predicted)
    assert scores.pairwise_recall == (1.0 if true == 0 else tp / true)
    assert scores.missing_accounts == sum(1 for a in truth if a not in membership)


def _result(tool: str, repeat: int, wall: float, memory: int) -> Result:
    return Result(
        tool=tool,
        accounts=1000,
        repeat=repeat,
        status="ok",
        exit_code=0,
        wall_seconds=wall,
        peak_rss_bytes=memory,
        peak_jvm_rss_bytes=memory // 2 if tool == "ours" else 0,
        memory_samples=10,
        candidate_pairs=500.0,
        scores={
            "pairwise_precision": 0.9,
            "pairwise_recall": 0.8,
            "pairwise_f1": 0.85,
            "bcubed_f1": 0.9,
        },
    )


def test_summary_takes_medians_and_ratios_and_table_shows_failures() -> None:
    results = [
        _result("ours", 1, 30.0, 3 * 2**30),
        _result("ours", 2, 10.0, 2 * 2**30),
        _result("ours", 3, 20.0, 4 * 2**30),
        _result("splink", 1, 4.0, 2**30),
        _result("splink", 2, 6.0, 2**30),
        Result("splink", 2000, 1, "failed", 137, 5.0, 0, 0, 1),
    ]

    summary = summarise(results)

    ours = next(row for row in summary if row["tool"] == "ours")
    assert (ours["wall_seconds"], ours["peak_rss_bytes"]) == (20.0, 3 * 2**30)
    assert ours["wall_ratio_vs_splink"] == 4.0
    assert ours["memory_ratio_vs_splink"] == 3.0
    lines = table(summary).splitlines()
    assert lines[2] == (
        "| ours | 1,000 | 20.0 | 3.00 GiB (1.50 GiB) | 500 | 0.9000 | 0.8000 | 0.8500"
        " | 4.00 | 3.00 |"
    )
    assert lines[3] == "| splink | 1,000 | 5.0 | 1.00 GiB | 500 | 0.9000 | 0.8000 | 0.8500 |  |  |"
    assert lines[4] == "| splink | 2,000 | failed |  |  |  |  |  |  |  |"
