"""Accuracy against ground truth, computed in Spark from membership and truth.

Pairwise precision and recall count pairs of accounts placed in one entity; B-cubed (Bagga and
Baldwin, 1998) averages per-account precision and recall of the account's predicted entity
against its true one. Everything is derived from the contingency table of (predicted, true)
entity cells in one aggregation; only that one row reaches the driver.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from features import columns as c


def _ratio(numerator: float, denominator: float) -> float:
    # An empty denominator means nothing was claimed (or nothing was there to find): no error.
    return 1.0 if denominator == 0 else numerator / denominator


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Evaluation:
    """Accuracy figures; `as_metrics()` gives them flat, for MLflow."""

    accounts: int
    predicted_pairs: int
    true_pairs: int
    true_positive_pairs: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    true_entities: int
    entities_recovered_exactly: int
    largest_predicted_entity: int
    largest_true_entity: int

    def as_metrics(self) -> dict[str, float]:
        return {f"eval_{name}": float(value) for name, value in asdict(self).items()}


def evaluate(entity_membership: DataFrame, truth: DataFrame) -> Evaluation:
    """Compare `(account_id, entity_id)` membership with `(account_id, entity_id)` truth.

    Only accounts present in both are counted (quarantined accounts have no membership).
    Example::

        evaluation = evaluate(membership, truth)
        print(evaluation.pairwise_f1, evaluation.bcubed_f1)
    """
    joined = entity_membership.select(c.ACCOUNT_ID, c.ENTITY_ID).join(
        truth.select(c.ACCOUNT_ID, F.col(c.ENTITY_ID).alias(c.TRUE_ENTITY_ID)), on=c.ACCOUNT_ID
    )
    cells = joined.groupBy(c.ENTITY_ID, c.TRUE_ENTITY_ID).agg(F.count(F.lit(1)).alias("n_ij"))
    predicted = F.sum("n_ij").over(Window.partitionBy(c.ENTITY_ID))
    true = F.sum("n_ij").over(Window.partitionBy(c.TRUE_ENTITY_ID))
    sized = cells.withColumn("n_i", predicted).withColumn("n_j", true)
    n_ij, n_i, n_j = F.col("n_ij"), F.col("n_i"), F.col("n_j")
    row = sized.agg(
        F.sum(n_ij).alias("accounts"),
        F.sum(n_ij * (n_ij - 1) / 2).alias("tp"),
        # Sum over cells of C(n_i, 2) * n_ij / n_i equals the sum over entities of C(n_i, 2).
        F.sum((n_i - 1) / 2 * n_ij).alias("predicted_pairs"),
        F.sum((n_j - 1) / 2 * n_ij).alias("true_pairs"),
        F.sum(n_ij * n_ij / n_i).alias("bcubed_p"),
        F.sum(n_ij * n_ij / n_j).alias("bcubed_r"),
        F.sum(n_ij / n_j).alias("true_entities"),
        F.sum(F.when((n_ij == n_i) & (n_ij == n_j), 1).otherwise(0)).alias("exact"),
        F.max(n_i).alias("largest_predicted"),
        F.max(n_j).alias("largest_true"),
    ).first()
    assert row is not None
    accounts = int(row["accounts"] or 0)
    tp = round(row["tp"] or 0.0)
    predicted_pairs = round(row["predicted_pairs"] or 0.0)
    true_pairs = round(row["true_pairs"] or 0.0)
    precision = _ratio(tp, predicted_pairs)
    recall = _ratio(tp, true_pairs)
    b_precision = _ratio(row["bcubed_p"] or 0.0, accounts)
    b_recall = _ratio(row["bcubed_r"] or 0.0, accounts)
    return Evaluation(
        accounts=accounts,
        predicted_pairs=predicted_pairs,
        true_pairs=true_pairs,
        true_positive_pairs=tp,
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        true_entities=round(row["true_entities"] or 0.0),
        entities_recovered_exactly=int(row["exact"] or 0),
        largest_predicted_entity=int(row["largest_predicted"] or 0),
        largest_true_entity=int(row["largest_true"] or 0),
    )
