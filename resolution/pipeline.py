"""The pure resolution pipeline: standardised DataFrames in, resolved DataFrames out.

`resolve` wires blocking, comparisons, the Fellegi-Sunter model and clustering together. Its
actions are the ones the model needs (the account count for term frequencies, the u
aggregation over random pairs and the EM iterations, each collecting a handful of numbers) and
connected components (an iterative graph algorithm has to). The caller decides what is
materialised through `checkpoint`: a function applied to each stage's output (the job persists,
counts and logs there; tests pass nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features import columns as c
from resolution.blocking import (
    build_candidate_pairs,
    count_value_holders,
    extract_blocking_keys,
    find_hub_values,
)
from resolution.clustering import assign_entities, summarise_entities
from resolution.comparisons import account_profiles, compare_pairs
from resolution.config import ModelConfig, ResolutionConfig
from resolution.errors import ConfigError
from resolution.fellegi_sunter import (
    EMResult,
    FellegiSunterModel,
    estimate_m_em,
    estimate_u,
    sample_random_pairs,
    score_pairs,
)

logger = logging.getLogger(__name__)

StageHook = Callable[[str, DataFrame], DataFrame]


def _unchanged(_name: str, frame: DataFrame) -> DataFrame:
    return frame


@dataclass(frozen=True)
class Resolution:
    """Every intermediate and final DataFrame of one resolution, and the model used.

    `training` is the EM result when this run trained the model, None when it was given one.
    """

    blocking_keys: DataFrame
    hub_values: DataFrame
    candidate_pairs: DataFrame
    comparison_vectors: DataFrame
    scored_pairs: DataFrame
    match_edges: DataFrame
    entity_membership: DataFrame
    entities: DataFrame
    model: FellegiSunterModel
    training: EMResult | None
    account_count: int


def check_model(model: FellegiSunterModel, config: ModelConfig) -> None:
    """A loaded model must have exactly the configured comparisons and levels."""
    expected = [spec.comparison() for spec in config.comparisons]
    if list(model.comparisons) != expected:
        have = [(x.name, x.levels, x.tf_adjusted) for x in model.comparisons]
        want = [(x.name, x.levels, x.tf_adjusted) for x in expected]
        raise ConfigError(
            f"the loaded model's comparisons {have} differ from model.comparisons in the config "
            f"{want}; train a new model (drop model.load_from) or use the config it was "
            "trained with"
        )


def train_model(
    accounts_std: DataFrame,
    profiles: DataFrame,
    candidate_gammas: DataFrame,
    *,
    config: ModelConfig,
    account_count: int,
) -> EMResult:
    """u from random pairs of accounts, then m and the prior by EM over the candidate pairs.

    Both run in Spark: random pairs are compared exactly as candidate pairs are, and only level
    counts reach the driver.
    """
    comparisons = [spec.comparison() for spec in config.comparisons]
    random_pairs = sample_random_pairs(
        accounts_std, id_column=c.ACCOUNT_ID, pairs=config.random_pairs, seed=config.seed
    )
    random_gammas = compare_pairs(
        random_pairs, profiles, config.comparisons, account_count=account_count
    )
    u = estimate_u(random_gammas, comparisons, smoothing=config.u_smoothing)
    result = estimate_m_em(
        candidate_gammas,
        comparisons,
        u=u,
        initial_prior=config.initial_prior,
        max_iterations=config.em_max_iterations,
        tolerance=config.em_tolerance,
    )
    logger.info("trained model:\n%s", result.model.describe())
    return result


def comparison_attributes(config: ResolutionConfig) -> tuple[str, ...]:
    """The attributes the comparisons read, in a stable order."""
    seen: dict[str, None] = {}
    for spec in config.model.comparisons:
        for attribute in spec.attributes:
            seen.setdefault(attribute, None)
    return tuple(seen)


def resolve(
    accounts_std: DataFrame,
    payments_std: DataFrame,
    logistics_std: DataFrame,
    *,
    config: ResolutionConfig,
    model: FellegiSunterModel | None = None,
    checkpoint: StageHook = _unchanged,
) -> Resolution:
    """Resolve standardised accounts into entities.

    Inputs are the outputs of `features.standardise` (payments and logistics may be empty
    frames with the same columns). Without `model`, one is trained on this data (see
    `train_model`). Example::

        resolution = resolve(accounts_std, payments_std, logistics_std, config=ResolutionConfig())
        resolution.entity_membership.show()
    """
    if model is not None:
        check_model(model, config.model)
    compared = comparison_attributes(config)
    wanted = tuple(dict.fromkeys(config.blocking.rules + compared))
    counted_keys = checkpoint(
        "blocking_keys",
        count_value_holders(
            extract_blocking_keys(accounts_std, payments_std, logistics_std, attributes=wanted)
        ),
    )
    account_count = accounts_std.count()
    hub_values = checkpoint("hub_values", find_hub_values(counted_keys, config=config.blocking))
    candidate_pairs = checkpoint(
        "candidate_pairs", build_candidate_pairs(counted_keys, config=config.blocking)
    )
    profiles = checkpoint(
        "account_profiles",
        account_profiles(
            accounts_std,
            logistics_std,
            counted_keys.where(F.col(c.ATTRIBUTE).isin(*compared)),
        ),
    )
    comparison_vectors = checkpoint(
        "comparison_vectors",
        compare_pairs(
            candidate_pairs, profiles, config.model.comparisons, account_count=account_count
        ),
    )
    training = None
    if model is None:
        training = train_model(
            accounts_std,
            profiles,
            comparison_vectors,
            config=config.model,
            account_count=account_count,
        )
        model = training.model
    scored_pairs = score_pairs(comparison_vectors, model)
    match_edges = checkpoint(
        "match_edges",
        scored_pairs.where(F.col(c.MATCH_PROBABILITY) >= F.lit(config.model.threshold)),
    )
    entity_membership = checkpoint(
        "entity_membership",
        assign_entities(accounts_std, match_edges, config=config.clustering),
    )
    entities = checkpoint("entities", summarise_entities(entity_membership))
    return Resolution(
        blocking_keys=counted_keys,
        hub_values=hub_values,
        candidate_pairs=candidate_pairs,
        comparison_vectors=comparison_vectors,
        scored_pairs=scored_pairs,
        match_edges=match_edges,
        entity_membership=entity_membership,
        entities=entities,
        model=model,
        training=training,
        account_count=account_count,
    )
