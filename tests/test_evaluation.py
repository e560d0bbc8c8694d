"""Blocking diagnostics, threshold curve, histograms, their charts and their MLflow logging."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession

from jobs.charts import (
    draw_threshold_curve,
    write_entity_sizes,
    write_threshold_curve,
    write_weight_distribution,
)
from jobs.tracking import RunTracker, tracking_uri
from resolution.config import ClusteringConfig
from resolution.errors import ResolutionError
from resolution.evaluation import (
    blocking_diagnostics,
    entity_size_histogram,
    lead_precision,
    threshold_curve,
    weight_histogram,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRUTH = "account_id string, entity_id string"
SCORED = "account_id_l string, account_id_r string, match_weight double, match_probability double"


@pytest.fixture(scope="module")
def truth(spark: SparkSession) -> DataFrame:
    # T1 {a,b,c}, T2 {d,e}, T3 {f,g}, T4 {h, z}; z is not among the accounts (quarantined),
    # and y's entity is unknown. True pairs among the accounts: 3 + 1 + 1 + 0 = 5.
    return spark.createDataFrame(
        [
            ("a", "T1"),
            ("b", "T1"),
            ("c", "T1"),
            ("d", "T2"),
            ("e", "T2"),
            ("f", "T3"),
            ("g", "T3"),
            ("h", "T4"),
            ("z", "T4"),
            ("y", None),
        ],
        TRUTH,
    )


@pytest.fixture(scope="module")
def scored_pairs(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            ("a", "b", 4.0, 0.95),  # true
            ("b", "c", 2.0, 0.80),  # true
            ("c", "d", 3.0, 0.90),  # false
            ("c", "e", -1.0, 0.30),  # false
            ("f", "h", 0.5, 0.60),  # false
            ("d", "e", 0.0, 0.50),  # true
            ("g", "h", None, None),  # false, never accepted, no weight
            ("a", "x", 8.0, 0.97),  # x has no truth: counted false
        ],
        SCORED,
    )


def test_blocking_diagnostics_direct_and_reachable_completeness(
    spark: SparkSession, truth: DataFrame
) -> None:
    accounts = spark.createDataFrame([(a,) for a in "abcdefgh"], "account_id string")
    # A chain a-b-c joins T1; d and e are joined only through c; f, g are never compared.
    candidate_pairs = spark.createDataFrame(
        [("a", "b"), ("b", "c"), ("c", "d"), ("c", "e"), ("f", "h"), ("b", "a"), ("g", "g")],
        "account_id_l string, account_id_r string",
    )
    by_rule = spark.createDataFrame([("phone", 3), ("card", 2)], "rule string, pair_count long")
    result = blocking_diagnostics(
        candidate_pairs,
        accounts,
        truth=truth,
        pairs_by_rule=by_rule,
        clustering=ClusteringConfig(engine="graphx"),
    )
    assert (result.accounts, result.candidate_pairs, result.possible_pairs) == (8, 5, 28)
    assert result.pairs_compared_share == pytest.approx(5 / 28)
    assert result.reduction_ratio == pytest.approx(23 / 28)
    # Direct: a-b, b-c. Reachable: component {a..e} holds T1's 3 pairs and T2's d-e.
    assert (result.true_pairs, result.true_pairs_compared, result.true_pairs_reachable) == (5, 2, 4)
    assert result.pair_completeness == pytest.approx(0.4)
    assert result.pair_completeness_reachable == pytest.approx(0.8)
    assert result.pairs_by_rule == {"phone": 3, "card": 2}
    assert result.as_metrics() == pytest.approx(
        {
            "blocking_accounts": 8.0,
            "blocking_candidate_pairs": 5.0,
            "blocking_possible_pairs": 28.0,
            "blocking_reduction_ratio": 23 / 28,
            "blocking_pairs_compared_share": 5 / 28,
            "blocking_true_pairs": 5.0,
            "blocking_true_pairs_compared": 2.0,
            "blocking_true_pairs_reachable": 4.0,
            "blocking_pair_completeness": 0.4,
            "blocking_pair_completeness_reachable": 0.8,
            "blocking_pairs_rule_card": 2.0,
            "blocking_pairs_rule_phone": 3.0,
        }
    )


def test_blocking_diagnostics_without_truth_and_with_bad_columns(spark: SparkSession) -> None:
    accounts = spark.createDataFrame([("a",), ("b",), ("c",), ("c",)], "account_id string")
    pairs = spark.createDataFrame([("a", "b")], "account_id_l string, account_id_r string")
    by_attribute = spark.createDataFrame(
        [("ship-from address", 1)], "attribute string, pair_count long"
    )
    result = blocking_diagnostics(pairs, accounts, pairs_by_rule=by_attribute)
    assert (result.accounts, result.candidate_pairs, result.possible_pairs) == (3, 1, 3)
    assert result.reduction_ratio == pytest.approx(2 / 3)
    assert result.true_pairs is None and result.pair_completeness is None
    assert result.as_metrics() == pytest.approx(
        {
            "blocking_accounts": 3.0,
            "blocking_candidate_pairs": 1.0,
            "blocking_possible_pairs": 3.0,
            "blocking_reduction_ratio": 2 / 3,
            "blocking_pairs_compared_share": 1 / 3,
            "blocking_pairs_rule_ship-from address": 1.0,
        }
    )
    with pytest.raises(ResolutionError, match="lacks column.*account_id_r; found: left, right"):
        blocking_diagnostics(
            spark.createDataFrame([("a", "b")], "left string, right string"), pairs
        )
    unnamed = spark.createDataFrame([("x", 1)], "name string, pair_count long")
    with pytest.raises(ResolutionError, match=r"lacks column rule \(or attribute\); found: name"):
        blocking_diagnostics(pairs, accounts, pairs_by_rule=unnamed)


def test_threshold_curve_counts_uncompared_true_pairs_as_missed(
    spark: SparkSession, truth: DataFrame, scored_pairs: DataFrame
) -> None:
    accounts = spark.createDataFrame([(a,) for a in "abcdefgh"], "account_id string")
    in_accounts = truth.join(accounts, on="account_id", how="left_semi")
    curve = threshold_curve(scored_pairs, in_accounts, thresholds=[0.99, 0.5, 0.85, 0.5])
    expected = pd.DataFrame(
        {
            "threshold": [0.5, 0.85, 0.99],
            # 0.5: a-b, b-c, c-d, f-h, d-e, a-x; 0.85: a-b, c-d, a-x; 0.99: none.
            "accepted_pairs": [6, 3, 0],
            "true_positive_pairs": [3, 1, 0],
            "true_pairs": [5, 5, 5],  # f-g was never scored: it still counts
            "precision": [0.5, 1 / 3, 1.0],
            "recall": [0.6, 0.2, 0.0],
            "f1": [6 / 11, 0.25, 0.0],
        }
    )
    pd.testing.assert_frame_equal(curve, expected)
    with pytest.raises(ResolutionError, match="thresholds is empty"):
        threshold_curve(scored_pairs, truth, thresholds=[])


def test_weight_histogram_bins_and_truth_split(truth: DataFrame, scored_pairs: DataFrame) -> None:
    # Weights -1, 0, 0.5, 2, 3, 4, 8 over [-1, 8] in 3 bins of width 3: [-1,2) [2,5) [5,8].
    plain = weight_histogram(scored_pairs, bins=3)
    assert plain.to_dict("list") == {
        "bin": [0, 1, 2],
        "bin_lower": [-1.0, 2.0, 5.0],
        "bin_upper": [2.0, 5.0, 8.0],
        "pairs": [3, 3, 1],
    }
    split = weight_histogram(scored_pairs, bins=3, truth=truth)
    assert split["pairs"].tolist() == [3, 3, 1]
    assert split["true_pairs"].tolist() == [1, 2, 0]  # d-e | a-b, b-c
    assert split["false_pairs"].tolist() == [2, 1, 1]  # c-e, f-h | c-d | a-x
    assert int(split["pairs"].sum()) == 7  # every pair with a weight
    assert (split["true_pairs"] + split["false_pairs"]).tolist() == split["pairs"].tolist()
    empty = weight_histogram(scored_pairs.where("match_weight is null"), bins=3, truth=truth)
    assert empty.empty and list(empty.columns)[-2:] == ["true_pairs", "false_pairs"]


def test_entity_size_histogram_predicted_and_true(spark: SparkSession, truth: DataFrame) -> None:
    membership = spark.createDataFrame(
        [("a", "P1"), ("b", "P1"), ("c", "P1"), ("d", "P1"), ("e", "P2"), ("f", "P3")]
        + [("g", "P4"), ("h", "P5")],
        TRUTH,
    )
    sizes = entity_size_histogram(membership, truth)
    # Predicted: P1 of 4 and four singletons; true (z dropped): T1 3, T2 2, T3 2, T4 1.
    assert sizes.to_dict("list") == {
        "entity_size": [1, 2, 3, 4],
        "predicted_entities": [4, 0, 0, 1],
        "true_entities": [1, 2, 1, 0],
    }
    assert entity_size_histogram(membership).columns.tolist() == [
        "entity_size",
        "predicted_entities",
    ]


def _is_png(path: Path) -> bool:
    return path.stat().st_size > len(PNG_SIGNATURE) and path.read_bytes()[:8] == PNG_SIGNATURE


def test_charts_write_png_files(tmp_path: Path) -> None:
    histogram = pd.DataFrame(
        {
            "bin": [0, 1, 2],
            "bin_lower": [-1.0, 2.0, 5.0],
            "bin_upper": [2.0, 5.0, 8.0],
            "pairs": [30, 3, 1],
            "true_pairs": [1, 2, 0],
            "false_pairs": [29, 1, 1],
        }
    )
    curve = pd.DataFrame(
        {
            "threshold": [0.5, 0.9],
            "precision": [0.5, 0.9],
            "recall": [0.8, 0.4],
            "f1": [0.6, 0.55],
        }
    )
    sizes = pd.DataFrame(
        {
            "entity_size": [1, 2, 40],
            "predicted_entities": [900, 30, 1],
            "true_entities": [800, 0, 2],
        }
    )
    written = [
        write_weight_distribution(histogram, tmp_path / "charts" / "weights.png"),
        write_weight_distribution(
            histogram.drop(columns=["true_pairs", "false_pairs"]), tmp_path / "plain.png"
        ),
        write_weight_distribution(histogram.iloc[0:0], tmp_path / "empty.png"),
        write_threshold_curve(curve, tmp_path / "curve.png", threshold=0.9),
        write_entity_sizes(sizes, tmp_path / "sizes.png"),
    ]
    assert [path.name for path in written] == [
        "weights.png",
        "plain.png",
        "empty.png",
        "curve.png",
        "sizes.png",
    ]
    assert all(_is_png(path) for path in written)


def test_tracker_logs_charts_to_mlflow(tmp_path: Path) -> None:
    curve = pd.DataFrame(
        {"threshold": [0.5, 0.9], "precision": [0.5, 0.9], "recall": [0.8, 0.4], "f1": [0.6, 0.55]}
    )
    png = write_threshold_curve(curve, tmp_path / "threshold_curve.png")
    folder = tmp_path / "mlflow"
    with RunTracker(folder, "evaluation-test", "run-1") as tracker:
        assert tracker.log_chart(png) == "charts/threshold_curve.png"
        assert tracker.log_chart(draw_threshold_curve(curve), name="figure.png") == (
            "charts/figure.png"
        )
        with pytest.raises(ValueError, match="needs `name`"):
            tracker.log_chart(draw_threshold_curve(curve))
        tracker.log_metrics({"blocking_reduction_ratio": 0.75})
    client = MlflowClient(tracking_uri(folder))
    assert tracker.mlflow_run_id is not None
    listed = client.list_artifacts(tracker.mlflow_run_id, "charts")
    assert sorted((item.path, item.file_size > 0) for item in listed) == [
        ("charts/figure.png", True),
        ("charts/threshold_curve.png", True),
    ]
    local = Path(
        client.download_artifacts(tracker.mlflow_run_id, "charts/figure.png", str(tmp_path))
    )
    assert _is_png(local)
    run = client.get_run(tracker.mlflow_run_id)
    assert run.data.metrics["blocking_reduction_ratio"] == pytest.approx(0.75)


def test_lead_precision_counts_leads_on_true_operators_with_signals(spark) -> None:  # type: ignore[no-untyped-def]
    truth = spark.createDataFrame(
        [("a1", "T1"), ("a2", "T1"), ("a3", "T1"), ("b1", "T2"), ("b2", "T2"), ("c1", "T3")],
        "account_id string, entity_id string",
    )
    membership = spark.createDataFrame(
        # E1 mostly T1 (a hit: T1 has 3 accounts and a signal); E2 is T2 (no signal);
        # E3 is the singleton T3 (signal, but one account); E4 is not among the top 3.
        [("a1", "E1"), ("a2", "E1"), ("b1", "E1"), ("a3", "E4"), ("b2", "E2"), ("c1", "E3")],
        "account_id string, entity_id string",
    )
    leads = spark.createDataFrame(
        [("E1", 1), ("E2", 2), ("E3", 3), ("E4", 4)], "entity_id string, lead_rank int"
    )
    signals = spark.createDataFrame([("a3",), ("c1",)], "account_id string")
    assert lead_precision(leads, membership, truth, signals, top=3) == (1, 3)
    assert lead_precision(leads, membership, truth, signals, top=4) == (2, 4)
