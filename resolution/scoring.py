"""The evidence score: a hand-weighted match weight per candidate pair (`model.kind: evidence`).

Each blocking rule the pair shares adds a log2 Bayes factor from config, lowered by how common
the shared value is (a value held by n accounts is about n-1 times likelier to be shared by
chance than one held by two). The evidence behind the score stays on the pair. The trained
alternative is `resolution.fellegi_sunter` (`model.kind: fellegi_sunter`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features import columns as c
from resolution.config import EvidenceConfig, ModelConfig
from resolution.fellegi_sunter import probability_from_weight


def _weight_of(attribute: Column, weights: dict[str, float]) -> Column:
    if not weights:
        return F.lit(0.0)
    table = F.create_map(*[F.lit(x) for kv in sorted(weights.items()) for x in kv])
    return F.coalesce(F.element_at(table, attribute).cast("double"), F.lit(0.0))


def score_pairs(candidate_pairs: DataFrame, *, config: EvidenceConfig) -> DataFrame:
    """Add `evidence`, `match_weight` and `match_probability` to candidate pairs.

    Requires `shared_attributes` (from `resolution.blocking.build_candidate_pairs`). `evidence`
    is an array of `struct(attribute, shared_values, holders, weight)`: why the pair scored as
    it did. weight = weights[attribute] - frequency_penalty * log2(max(holders - 1, 1)).
    """
    weights = dict(config.weights)

    def contribution(shared: Column) -> Column:
        holders = F.greatest(shared.getField("holders") - F.lit(1), F.lit(1)).cast("double")
        penalty = F.lit(float(config.frequency_penalty)) * F.log2(holders)
        return _weight_of(shared.getField("attribute"), weights) - penalty

    evidence = F.transform(
        F.col(c.SHARED_ATTRIBUTES),
        lambda shared: F.struct(
            shared.getField("attribute").alias("attribute"),
            shared.getField("shared_values").alias("shared_values"),
            shared.getField("holders").alias("holders"),
            contribution(shared).alias("weight"),
        ),
    )
    total = F.aggregate(
        F.col(c.EVIDENCE), F.lit(0.0), lambda acc, item: acc + item.getField("weight")
    )
    return (
        candidate_pairs.withColumn(c.EVIDENCE, evidence)
        .withColumn(c.MATCH_WEIGHT, F.lit(float(config.prior_weight)) + total)
        .withColumn(c.MATCH_PROBABILITY, probability_from_weight(F.col(c.MATCH_WEIGHT)))
        .drop(c.SHARED_ATTRIBUTES)
    )


def accept_matches(scored_pairs: DataFrame, *, config: ModelConfig) -> DataFrame:
    """The scored pairs whose probability reaches the threshold."""
    return scored_pairs.where(F.col(c.MATCH_PROBABILITY) >= F.lit(config.threshold))
