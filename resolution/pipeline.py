"""The pure resolution pipeline: standardised DataFrames in, resolved DataFrames out.

`resolve` wires blocking, scoring and clustering together. It runs no action of its own except
inside connected components (an iterative graph algorithm has to). The caller decides what is
materialised through `checkpoint`: a function applied to each stage's output (the job persists,
counts and logs there; tests pass nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame

from resolution.blocking import (
    build_candidate_pairs,
    count_value_holders,
    extract_blocking_keys,
    find_hub_values,
)
from resolution.clustering import assign_entities, summarise_entities
from resolution.config import ResolutionConfig
from resolution.scoring import accept_matches, score_pairs

StageHook = Callable[[str, DataFrame], DataFrame]


def _unchanged(_name: str, frame: DataFrame) -> DataFrame:
    return frame


@dataclass(frozen=True)
class Resolution:
    """Every intermediate and final DataFrame of one resolution."""

    blocking_keys: DataFrame
    hub_values: DataFrame
    candidate_pairs: DataFrame
    scored_pairs: DataFrame
    match_edges: DataFrame
    entity_membership: DataFrame
    entities: DataFrame


def resolve(
    accounts_std: DataFrame,
    payments_std: DataFrame,
    logistics_std: DataFrame,
    *,
    config: ResolutionConfig,
    checkpoint: StageHook = _unchanged,
) -> Resolution:
    """Resolve standardised accounts into entities.

    Inputs are the outputs of `features.standardise` (payments and logistics may be empty
    frames with the same columns). Example::

        resolution = resolve(accounts_std, payments_std, logistics_std, config=ResolutionConfig())
        resolution.entity_membership.show()
    """
    counted_keys = checkpoint(
        "blocking_keys",
        count_value_holders(
            extract_blocking_keys(accounts_std, payments_std, logistics_std, config=config.blocking)
        ),
    )
    hub_values = checkpoint("hub_values", find_hub_values(counted_keys, config=config.blocking))
    candidate_pairs = checkpoint(
        "candidate_pairs", build_candidate_pairs(counted_keys, config=config.blocking)
    )
    scored_pairs = score_pairs(candidate_pairs, config=config.scoring)
    match_edges = checkpoint("match_edges", accept_matches(scored_pairs, config=config.scoring))
    entity_membership = checkpoint(
        "entity_membership",
        assign_entities(accounts_std, match_edges, config=config.clustering),
    )
    entities = checkpoint("entities", summarise_entities(entity_membership))
    return Resolution(
        blocking_keys=counted_keys,
        hub_values=hub_values,
        candidate_pairs=candidate_pairs,
        scored_pairs=scored_pairs,
        match_edges=match_edges,
        entity_membership=entity_membership,
        entities=entities,
    )
