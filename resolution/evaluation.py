"""Accuracy against ground truth, and diagnostics of blocking and scoring, computed in Spark.

Pairwise precision and recall count pairs of accounts placed in one entity; B-cubed (Bagga and
Baldwin, 1998) averages per-account precision and recall of the account's predicted entity
against its true one. Everything is derived from the contingency table of (predicted, true)
entity cells in one aggregation; only that one row reaches the driver.

Blocking is judged by reduction ratio and pair completeness (Christen, "Data Matching", 2012,
ch. 7): the share of all pairs that blocking spares, and the share of true pairs it keeps. True
pairs are counted from entity sizes (C(n, 2) per entity), never enumerated. The threshold curve,
weight histogram and entity-size histogram return small pandas frames for charts; each is one or
two Spark aggregations whose result has at most a few hundred rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from features import columns as c
from resolution.clustering import connected_components, vertex_id
from resolution.config import ClusteringConfig
from resolution.errors import ResolutionError, require_columns

_RULE = "rule"
_PAIR_COUNT = "pair_count"
_IS_TRUE = "is_true"


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


def _pairs_of(size: Column) -> Column:
    """n * (n - 1): twice the number of pairs among n accounts, kept in exact long arithmetic."""
    return size.cast("long") * (size.cast("long") - 1)


def _unordered_pairs(pairs: DataFrame) -> DataFrame:
    """Distinct `(account_id_l < account_id_r)` pairs; self pairs and reversed repeats dropped."""
    left, right = F.col(c.ACCOUNT_ID_L), F.col(c.ACCOUNT_ID_R)
    return (
        pairs.where(left != right)
        .select(
            F.least(left, right).alias(c.ACCOUNT_ID_L),
            F.greatest(left, right).alias(c.ACCOUNT_ID_R),
        )
        .distinct()
    )


def _label_pairs(pairs: DataFrame, truth: DataFrame) -> DataFrame:
    """Add boolean `is_true`: both accounts are in `truth` and share its `entity_id`.

    An account missing from truth cannot be confirmed, so its pairs are labelled false.
    """
    entity_l, entity_r = f"{c.ENTITY_ID}_l", f"{c.ENTITY_ID}_r"
    truth_ids = truth.select(c.ACCOUNT_ID, c.ENTITY_ID).where(F.col(c.ENTITY_ID).isNotNull())
    return (
        pairs.join(
            truth_ids.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L).withColumnRenamed(
                c.ENTITY_ID, entity_l
            ),
            on=c.ACCOUNT_ID_L,
            how="left",
        )
        .join(
            truth_ids.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_R).withColumnRenamed(
                c.ENTITY_ID, entity_r
            ),
            on=c.ACCOUNT_ID_R,
            how="left",
        )
        .withColumn(_IS_TRUE, F.coalesce(F.col(entity_l) == F.col(entity_r), F.lit(False)))
        .drop(entity_l, entity_r)
    )


def _twice_true_pairs(truth: DataFrame) -> DataFrame:
    """One row, `twice_true_pairs`: sum over true entities of n * (n - 1)."""
    sizes = (
        truth.where(F.col(c.ENTITY_ID).isNotNull())
        .groupBy(c.ENTITY_ID)
        .agg(F.count(F.lit(1)).alias("n"))
    )
    return sizes.agg(F.coalesce(F.sum(_pairs_of(F.col("n"))), F.lit(0)).alias("twice_true_pairs"))


_METRIC_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_\-./ ]")


@dataclass(frozen=True)
class BlockingDiagnostics:
    """How much blocking saves and how many true pairs it keeps; `as_metrics()` for MLflow.

    The truth-based figures are None when no truth was given. `pair_completeness` counts true
    pairs that are candidate pairs; `pair_completeness_reachable` counts true pairs whose accounts
    are connected through candidate pairs, the most that clustering accepted candidates can join.
    """

    accounts: int
    candidate_pairs: int
    possible_pairs: int
    reduction_ratio: float
    pairs_compared_share: float
    true_pairs: int | None = None
    true_pairs_compared: int | None = None
    true_pairs_reachable: int | None = None
    pair_completeness: float | None = None
    pair_completeness_reachable: float | None = None
    pairs_by_rule: dict[str, int] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, float]:
        """Flat `blocking_*` floats; truth figures only when known, one `blocking_pairs_rule_*`
        per rule (characters MLflow rejects in a metric name become `_`)."""
        metrics = {
            f"blocking_{name}": float(value)
            for name, value in asdict(self).items()
            if name != "pairs_by_rule" and value is not None
        }
        for rule, count in sorted(self.pairs_by_rule.items()):
            metrics[f"blocking_pairs_rule_{_METRIC_NAME_UNSAFE.sub('_', rule)}"] = float(count)
        return metrics


def _rules(pairs_by_rule: DataFrame) -> dict[str, int]:
    # `resolution.blocking.summarise_pairs_by_attribute` names its rule column `attribute`.
    rule_column = _RULE if _RULE in pairs_by_rule.columns else c.ATTRIBUTE
    if rule_column not in pairs_by_rule.columns:
        raise ResolutionError(
            f"pairs_by_rule lacks column {_RULE} (or {c.ATTRIBUTE}); "
            f"found: {', '.join(pairs_by_rule.columns)}"
        )
    require_columns(pairs_by_rule, "pairs_by_rule", [_PAIR_COUNT])
    return {
        str(row[0]): int(row[1] or 0)
        for row in pairs_by_rule.select(rule_column, _PAIR_COUNT).collect()
    }


def blocking_diagnostics(
    candidate_pairs: DataFrame,
    accounts: DataFrame,
    *,
    truth: DataFrame | None = None,
    pairs_by_rule: DataFrame | None = None,
    clustering: ClusteringConfig | None = None,
) -> BlockingDiagnostics:
    """Reduction ratio and pair completeness of `candidate_pairs` over `accounts`.

    `candidate_pairs` needs `account_id_l`, `account_id_r` (each unordered pair counts once,
    self pairs are ignored); `accounts` needs `account_id`; `truth` (`account_id`, `entity_id`,
    one row per account) is restricted to `accounts`, and rows with a null entity are ignored.
    Reachable completeness runs connected components over the candidate pairs with the engine of
    `clustering` (default `ClusteringConfig()`); the caller sets Spark's checkpoint directory.
    `pairs_by_rule` (`rule` or `attribute`, `pair_count`) is collected into `pairs_by_rule`.
    Example::

        diagnostics = blocking_diagnostics(resolution.candidate_pairs, accounts_std, truth=truth)
        print(diagnostics.reduction_ratio, diagnostics.pair_completeness)
    """
    require_columns(candidate_pairs, "candidate_pairs", [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R])
    require_columns(accounts, "accounts", [c.ACCOUNT_ID])
    if truth is not None:
        require_columns(truth, "truth", [c.ACCOUNT_ID, c.ENTITY_ID])
    rules = {} if pairs_by_rule is None else _rules(pairs_by_rule)

    account_ids = accounts.select(c.ACCOUNT_ID).where(F.col(c.ACCOUNT_ID).isNotNull()).distinct()
    pairs = _unordered_pairs(candidate_pairs.select(c.ACCOUNT_ID_L, c.ACCOUNT_ID_R))
    if truth is None:
        row = (
            account_ids.agg(F.count(F.lit(1)).alias("accounts"))
            .crossJoin(pairs.agg(F.count(F.lit(1)).alias("candidates")))
            .first()
        )
    else:
        known = truth.select(c.ACCOUNT_ID, c.ENTITY_ID).where(F.col(c.ENTITY_ID).isNotNull())
        known = known.join(account_ids, on=c.ACCOUNT_ID, how="left_semi")
        labelled = _label_pairs(pairs, known)
        row = (
            account_ids.agg(F.count(F.lit(1)).alias("accounts"))
            .crossJoin(
                labelled.agg(
                    F.count(F.lit(1)).alias("candidates"),
                    F.count(F.when(F.col(_IS_TRUE), 1)).alias("compared"),
                )
            )
            .crossJoin(_reachable_counts(pairs, known, clustering or ClusteringConfig()))
            .first()
        )
    assert row is not None
    n_accounts, candidates = int(row["accounts"]), int(row["candidates"])
    possible = n_accounts * (n_accounts - 1) // 2
    share = 0.0 if possible == 0 else candidates / possible
    counts = BlockingDiagnostics(
        accounts=n_accounts,
        candidate_pairs=candidates,
        possible_pairs=possible,
        reduction_ratio=1.0 - share,
        pairs_compared_share=share,
        pairs_by_rule=rules,
    )
    if truth is None:
        return counts
    true_pairs = int(row["twice_true_pairs"]) // 2
    compared = int(row["compared"])
    reachable = int(row["twice_reachable"]) // 2
    return replace(
        counts,
        true_pairs=true_pairs,
        true_pairs_compared=compared,
        true_pairs_reachable=reachable,
        pair_completeness=_ratio(compared, true_pairs),
        pair_completeness_reachable=_ratio(reachable, true_pairs),
    )


def _reachable_counts(pairs: DataFrame, known: DataFrame, config: ClusteringConfig) -> DataFrame:
    """One row: `twice_true_pairs` and `twice_reachable`, from (true entity x component) cells.

    A cell of n accounts holds C(n, 2) true pairs joined by a candidate path; summing n_ij *
    (n_j - 1) over the cells of true entity j gives n_j * (n_j - 1), its C(n_j, 2) doubled.
    """
    edges = pairs.select(
        vertex_id(c.ACCOUNT_ID_L).alias("src"), vertex_id(c.ACCOUNT_ID_R).alias("dst")
    )
    components = connected_components(edges, config=config).withColumnRenamed("id", c.VERTEX_ID)
    # An account in no candidate pair is its own component, labelled with its own vertex id (no
    # clash: a component's label is the vertex id of one of its members).
    located = (
        known.withColumn(c.VERTEX_ID, vertex_id())
        .join(components, on=c.VERTEX_ID, how="left")
        .select(c.ENTITY_ID, F.coalesce(F.col(c.COMPONENT), F.col(c.VERTEX_ID)).alias(c.COMPONENT))
    )
    cells = located.groupBy(c.ENTITY_ID, c.COMPONENT).agg(F.count(F.lit(1)).alias("n_ij"))
    n_j = F.sum("n_ij").over(Window.partitionBy(c.ENTITY_ID))
    return (
        cells.withColumn("n_j", n_j)
        .agg(
            F.sum(_pairs_of(F.col("n_ij"))).alias("twice_reachable"),
            F.sum(F.col("n_ij").cast("long") * (F.col("n_j").cast("long") - 1)).alias(
                "twice_true_pairs"
            ),
        )
        .select(
            F.coalesce(F.col("twice_reachable"), F.lit(0)).alias("twice_reachable"),
            F.coalesce(F.col("twice_true_pairs"), F.lit(0)).alias("twice_true_pairs"),
        )
    )


def threshold_curve(
    scored_pairs: DataFrame, truth: DataFrame, *, thresholds: Sequence[float]
) -> pd.DataFrame:
    """Pairwise precision, recall and F1 of accepting pairs with `match_probability >= t`.

    `scored_pairs` needs `account_id_l`, `account_id_r`, `match_probability` (null is never
    accepted); `truth` needs `account_id`, `entity_id` (one row per account). Recall's
    denominator is every true within-entity pair of `truth`, so a pair never compared counts
    as missed; a pair with an account missing from truth counts as false. One Spark job.
    Returns one row per distinct threshold, ascending: `threshold`, `accepted_pairs`,
    `true_positive_pairs`, `true_pairs`, `precision`, `recall`, `f1` (precision is 1.0 when
    nothing is accepted). Example::

        curve = threshold_curve(resolution.scored_pairs, truth, thresholds=[0.5, 0.9, 0.99])
    """
    require_columns(
        scored_pairs, "scored_pairs", [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_PROBABILITY]
    )
    require_columns(truth, "truth", [c.ACCOUNT_ID, c.ENTITY_ID])
    levels = sorted({float(t) for t in thresholds})
    if not levels:
        raise ResolutionError("threshold_curve: thresholds is empty; pass at least one")
    if any(not math.isfinite(t) for t in levels):
        raise ResolutionError(f"threshold_curve: thresholds must be finite, got {levels}")

    labelled = _label_pairs(
        scored_pairs.select(c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_PROBABILITY), truth
    )
    probability, is_true = F.col(c.MATCH_PROBABILITY), F.col(_IS_TRUE)
    counts = []
    for i, level in enumerate(levels):
        accepted = probability >= F.lit(level)
        counts.append(F.count(F.when(accepted, 1)).alias(f"accepted_{i}"))
        counts.append(F.count(F.when(accepted & is_true, 1)).alias(f"hits_{i}"))
    row = labelled.agg(*counts).crossJoin(_twice_true_pairs(truth)).first()
    assert row is not None
    true_pairs = int(row["twice_true_pairs"]) // 2
    records = []
    for i, level in enumerate(levels):
        accepted_pairs, hits = int(row[f"accepted_{i}"]), int(row[f"hits_{i}"])
        precision, recall = _ratio(hits, accepted_pairs), _ratio(hits, true_pairs)
        records.append(
            (level, accepted_pairs, hits, true_pairs, precision, recall, _f1(precision, recall))
        )
    return pd.DataFrame.from_records(
        records,
        columns=[
            "threshold",
            "accepted_pairs",
            "true_positive_pairs",
            "true_pairs",
            "precision",
            "recall",
            "f1",
        ],
    )


def weight_histogram(
    scored_pairs: DataFrame, *, bins: int = 60, truth: DataFrame | None = None
) -> pd.DataFrame:
    """Counts of `match_weight` in `bins` equal-width bins from its minimum to its maximum.

    Null weights are left out. With `truth` (`account_id`, `entity_id`) each bin is split into
    true and false pairs (a pair with an account missing from truth is false). Returns every
    bin, empty ones included: `bin`, `bin_lower`, `bin_upper`, `pairs`, and with truth
    `true_pairs`, `false_pairs`; no rows when no pair has a weight. Bins are half-open except the
    last, which holds the maximum; when all weights are equal, bin 0 holds them all. One Spark
    job (the range is a one-row aggregate joined to every pair). Example::

        histogram = weight_histogram(resolution.scored_pairs, bins=40, truth=truth)
    """
    require_columns(scored_pairs, "scored_pairs", [c.MATCH_WEIGHT])
    if bins < 1:
        raise ResolutionError(f"weight_histogram: bins must be >= 1, got {bins}")
    columns = ["bin", "bin_lower", "bin_upper", "pairs"]
    if truth is not None:
        require_columns(scored_pairs, "scored_pairs", [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R])
        require_columns(truth, "truth", [c.ACCOUNT_ID, c.ENTITY_ID])
        columns += ["true_pairs", "false_pairs"]
    weights = scored_pairs.where(F.col(c.MATCH_WEIGHT).isNotNull())
    bounds = weights.agg(F.min(c.MATCH_WEIGHT).alias("low"), F.max(c.MATCH_WEIGHT).alias("high"))
    low, high = F.col("low"), F.col("high")
    width = F.when(high > low, (high - low) / F.lit(bins)).otherwise(F.lit(1.0))
    index = F.least(
        F.floor((F.col(c.MATCH_WEIGHT) - low) / width).cast("int"), F.lit(bins - 1)
    ).alias("bin")
    counts = [F.count(F.lit(1)).alias("pairs")]
    if truth is None:
        binned = weights
    else:
        binned = _label_pairs(weights.select(c.ACCOUNT_ID_L, c.ACCOUNT_ID_R, c.MATCH_WEIGHT), truth)
        counts.append(F.count(F.when(F.col(_IS_TRUE), 1)).alias("true_pairs"))
        counts.append(F.count(F.when(~F.col(_IS_TRUE), 1)).alias("false_pairs"))
    rows = (
        binned.crossJoin(bounds)
        .groupBy(index)
        .agg(F.first("low").alias("low"), F.first("high").alias("high"), *counts)
        .collect()
    )
    if not rows:
        return pd.DataFrame(columns=columns)
    bottom, top = float(rows[0]["low"]), float(rows[0]["high"])
    step = (top - bottom) / bins if top > bottom else 1.0
    found = {int(row["bin"]): row for row in rows}
    records = []
    for i in range(bins):
        counted = found.get(i)
        record: list[float | int] = [i, bottom + i * step, bottom + (i + 1) * step]
        record += [0 if counted is None else int(counted[name]) for name in columns[3:]]
        records.append(record)
    return pd.DataFrame.from_records(records, columns=columns)


def entity_size_histogram(membership: DataFrame, truth: DataFrame | None = None) -> pd.DataFrame:
    """How many entities have each size: `entity_size`, `predicted_entities` [, `true_entities`].

    `membership` and `truth` both need `account_id`, `entity_id`; truth is restricted to the
    accounts of `membership` so both sides count the same accounts. Sizes that occur on either
    side appear once, ascending, with 0 where the other side has none. One Spark job.
    Example::

        sizes = entity_size_histogram(resolution.entity_membership, truth)
    """
    require_columns(membership, "membership", [c.ACCOUNT_ID, c.ENTITY_ID])

    def count_sizes(frame: DataFrame, alias: str) -> DataFrame:
        return (
            frame.where(F.col(c.ENTITY_ID).isNotNull())
            .groupBy(c.ENTITY_ID)
            .agg(F.count(F.lit(1)).alias("entity_size"))
            .groupBy("entity_size")
            .agg(F.count(F.lit(1)).alias(alias))
        )

    sizes = count_sizes(membership, "predicted_entities")
    columns = ["entity_size", "predicted_entities"]
    if truth is not None:
        require_columns(truth, "truth", [c.ACCOUNT_ID, c.ENTITY_ID])
        restricted = truth.select(c.ACCOUNT_ID, c.ENTITY_ID).join(
            membership.select(c.ACCOUNT_ID), on=c.ACCOUNT_ID, how="left_semi"
        )
        sizes = sizes.join(count_sizes(restricted, "true_entities"), on="entity_size", how="full")
        columns.append("true_entities")
    records = sorted(tuple(int(row[name] or 0) for name in columns) for row in sizes.collect())
    return pd.DataFrame.from_records(records, columns=columns)


def lead_precision(
    entity_leads: DataFrame,
    entity_membership: DataFrame,
    truth: DataFrame,
    signals: DataFrame,
    *,
    top: int = 20,
) -> tuple[int, int]:
    """(hits, leads looked at): how many of the `top` leads are true multi-account operators
    with enforcement signals.

    A lead is a hit when the true entity most of its accounts belong to (ties: smallest id)
    has at least two accounts and at least one of them has a signal. `entity_leads` needs
    `entity_id`, `lead_rank`; `entity_membership` and `truth` `account_id`, `entity_id`;
    `signals` `account_id`. Only the top leads and their accounts are looked at; one small
    collect of at most `top` rows. Example::

        hits, looked_at = lead_precision(leads, membership, truth, signals, top=20)
    """
    require_columns(entity_leads, "entity_leads", [c.ENTITY_ID, "lead_rank"])
    require_columns(entity_membership, "entity_membership", [c.ACCOUNT_ID, c.ENTITY_ID])
    require_columns(truth, "truth", [c.ACCOUNT_ID, c.ENTITY_ID])
    require_columns(signals, "signals", [c.ACCOUNT_ID])
    leads = entity_leads.where(F.col("lead_rank") <= F.lit(top)).select(c.ENTITY_ID, "lead_rank")
    true_of = truth.select(c.ACCOUNT_ID, F.col(c.ENTITY_ID).alias("_true"))
    members = entity_membership.select(c.ACCOUNT_ID, c.ENTITY_ID).join(leads, on=c.ENTITY_ID)
    votes = (
        members.join(true_of, on=c.ACCOUNT_ID, how="left")
        .groupBy(c.ENTITY_ID, "_true")
        .agg(F.count(F.lit(1)).alias("_votes"))
    )
    best = Window.partitionBy(c.ENTITY_ID).orderBy(F.desc("_votes"), F.asc_nulls_last("_true"))
    majority = votes.withColumn("_rank", F.row_number().over(best)).where("_rank = 1")
    true_sizes = truth.groupBy(F.col(c.ENTITY_ID).alias("_true")).agg(
        F.count(F.lit(1)).alias("_size")
    )
    flagged = (
        signals.select(c.ACCOUNT_ID)
        .distinct()
        .join(true_of, on=c.ACCOUNT_ID)
        .select("_true")
        .distinct()
        .withColumn("_signals", F.lit(True))
    )
    rows = (
        majority.join(true_sizes, on="_true", how="left")
        .join(flagged, on="_true", how="left")
        .select(
            (
                (F.coalesce(F.col("_size"), F.lit(0)) >= 2)
                & F.coalesce(F.col("_signals"), F.lit(False))
            ).alias("_hit")
        )
        .collect()
    )
    return sum(1 for row in rows if row["_hit"]), len(rows)
