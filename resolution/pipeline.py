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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial, reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features import columns as c
from resolution.blocking import (
    build_candidate_pairs,
    count_value_holders,
    extract_blocking_keys,
    find_hub_values,
    set_aside_desk_phones,
)
from resolution.cluster_control import blockable_keys, control_clusters
from resolution.clustering import assign_entities, summarise_entities
from resolution.comparisons import (
    account_profiles,
    compare_pairs,
    profile_fields,
    value_holders,
    with_values,
)
from resolution.config import BlockingConfig, ModelConfig, ResolutionConfig, rule_attributes
from resolution.errors import ConfigError, InputError
from resolution.fellegi_sunter import (
    EMResult,
    FellegiSunterModel,
    default_m,
    estimate_em,
    estimate_m_em,
    estimate_prior,
    estimate_tf_reference,
    estimate_u,
    gamma_column,
    sample_random_pairs,
    score_pairs,
    weighted_patterns,
)
from resolution.incremental import (
    REMOVED,
    STANDS,
    UNCHANGED,
    WriteScopes,
    accounts_with,
    affected_accounts,
    affected_region,
    change_counts,
    cut_lineage,
    edge_fates,
    few_touched,
    merged_keys,
    population_sizes,
    rescored_accounts,
    state_keys,
    stored_profile_fields,
    write_scopes,
)
from resolution.lineage import StageHook, unstaged
from resolution.network import entity_leads, entity_links
from resolution.scoring import accept_matches
from resolution.scoring import score_pairs as evidence_scores
from resolution.shared_keys import update_shared_keys
from resolution.stable_ids import CLUSTER, assign_stable_ids

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    """Every intermediate and final DataFrame of one resolution, and the model used.

    `model` is the Fellegi-Sunter model used (None with `model.kind: evidence`, whose
    `comparison_vectors` are the candidate pairs); `training` says how the model was trained,
    None when the run was given one or used the evidence score. `hub_cap` is the hub cap
    this population got (`BlockingConfig.hub_cap`); `model_source` where the scores came from:
    `evidence`, `trained` (on this data), `given` (the caller's model: `model.load_from` or
    the run an incremental run continues) or `pretrained` (`small_population_model`).
    `profiles` are the account profiles the comparisons read
    (`resolution.comparisons.account_profiles`; of the affected accounts only in an
    incremental run; None with the evidence score).
    """

    blocking_keys: DataFrame
    hub_values: DataFrame
    candidate_pairs: DataFrame
    comparison_vectors: DataFrame
    scored_pairs: DataFrame
    match_edges: DataFrame
    entity_membership: DataFrame
    entities: DataFrame
    model: FellegiSunterModel | None
    training: Training | None
    account_count: int
    hub_cap: int = 0
    model_source: str = "evidence"
    entity_splits: DataFrame | None = None
    cluster_statistics: DataFrame | None = None
    entity_changes: DataFrame | None = None
    incremental: IncrementalParts | None = None
    profiles: DataFrame | None = None


@dataclass(frozen=True)
class IncrementalParts:
    """What an incremental run recomputed (see `resolution.incremental`): the `affected`
    accounts (`account_id`, `rescored`: the holders of a touched value, and which of them had
    their pairs scored again), the `region` (accounts whose entity was recomputed), the
    `changes` per account (new, changed, unchanged, removed), the `new_edges` accepted among
    the rescored pairs, and the `scopes` of the output rows that can have changed: the job
    MERGEs only those."""

    affected: DataFrame
    region: DataFrame
    changes: DataFrame
    new_edges: DataFrame
    scopes: WriteScopes
    # The keys extracted for the new and changed accounts (as extracted: no desk phones), which
    # their `account_state` rows keep.
    keys: DataFrame
    # How the population's holder counts were had: "recounted" (every key, as a full run does)
    # or "updated" (`resolution.shared_keys`: the values the change reached).
    holder_counts: str = "recounted"


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


@dataclass(frozen=True)
class PreviousEntities:
    """The resolved state a run continues: the previous run's `entity_membership`
    (`account_id`, `entity_id`) and every entity id issued so far (`entity_id`; None when
    the previous membership's ids are all there is)."""

    membership: DataFrame
    known_ids: DataFrame | None = None


@dataclass(frozen=True)
class Training:
    """What training found: the model, and per EM session its rules, pair count and result
    (None when the session had no candidate pairs)."""

    model: FellegiSunterModel
    sessions: tuple[tuple[tuple[str, ...], int, EMResult | None], ...]


def _session_pairs(candidate_gammas: DataFrame, rules: tuple[str, ...]) -> DataFrame:
    return candidate_gammas.where(
        F.exists(F.col(c.SHARED_ATTRIBUTES), lambda s: s.getField(c.ATTRIBUTE).isin(*rules))
    )


def train_model(
    accounts_std: DataFrame,
    profiles: DataFrame,
    candidate_gammas: DataFrame,
    *,
    config: ModelConfig,
    holders: dict[str, int],
    account_count: int,
    hub_cap: int | None = None,
) -> Training:
    """u from random pairs; m by EM per training session; then the prior of two random
    accounts matching (see `ModelConfig`). All in Spark: only level counts reach the driver.
    `hub_cap`: as in `compare_pairs`, for the random pairs too, so that u is estimated on the
    levels the candidate pairs are scored on.

    Each session runs EM over the candidate pairs its rules found, with the comparisons that
    look at those rules' attributes set to "no information": those agree by construction, so
    letting them vote would explain every candidate pair as a match (EM's known collapse when
    u comes from random pairs and m from blocked pairs).
    """
    comparisons = [spec.comparison() for spec in config.comparisons]
    random_pairs = sample_random_pairs(
        accounts_std, id_column=c.ACCOUNT_ID, pairs=config.random_pairs, seed=config.seed
    )
    # Compared once and kept: u reads them, and training over all pairs reads them again
    # (comparing the random pairs is most of the training's time).
    random_gammas = compare_pairs(
        random_pairs, profiles, config.comparisons, holders=holders, hub_cap=hub_cap
    ).persist()
    try:
        u = estimate_u(random_gammas, comparisons, smoothing=config.u_smoothing)
        if config.training == "all_pairs":
            return _train_over_all_pairs(
                random_gammas,
                candidate_gammas,
                comparisons=comparisons,
                u=u,
                config=config,
                account_count=account_count,
            )
    finally:
        random_gammas.unpersist()
    estimates: dict[str, list[tuple[float, ...]]] = {x.name: [] for x in comparisons}
    sessions = []
    for rules in config.training_sessions:
        blocked = {a for rule in rules for a in rule_attributes(rule)}
        fixed = [s.name for s in config.comparisons if blocked & set(s.attributes)]
        pairs = _session_pairs(candidate_gammas, rules)
        for name in fixed:
            pairs = pairs.withColumn(gamma_column(name), F.lit(-1))
        pair_count = pairs.count()
        if pair_count == 0:
            logger.info("EM session %s: no candidate pairs, skipped", list(rules))
            sessions.append((rules, 0, None))
            continue
        result = estimate_m_em(
            pairs,
            comparisons,
            u=u,
            initial_prior=config.initial_prior,
            max_iterations=config.em_max_iterations,
            tolerance=config.em_tolerance,
        )
        logger.info(
            "EM session %s: %d pairs, %d iterations, converged %s; m estimated for %s",
            list(rules),
            pair_count,
            result.iterations,
            result.converged,
            [x.name for x in comparisons if x.name not in fixed],
        )
        for x in comparisons:
            if x.name not in fixed:
                estimates[x.name].append(result.model.m[x.name])
        sessions.append((rules, pair_count, result))
    m: dict[str, tuple[float, ...]] = {}
    for x in comparisons:
        found = estimates[x.name]
        if not found:
            m[x.name] = default_m(x)
            logger.warning(
                "no training session estimates m of %s (every session blocks on its "
                "attributes or found no pairs); using the default %s",
                x.name,
                m[x.name],
            )
            continue
        mean = [sum(values) / len(found) for values in zip(*found, strict=True)]
        total = sum(mean)
        m[x.name] = tuple(v / total for v in mean)
    unscaled = FellegiSunterModel(comparisons, m=m, u=u, prior=config.initial_prior)
    prior = estimate_prior(
        candidate_gammas, unscaled, total_pairs=account_count * (account_count - 1) // 2
    )
    model = FellegiSunterModel(comparisons, m=m, u=u, prior=prior)
    logger.info("trained model:\n%s", model.describe())
    return Training(model=model, sessions=tuple(sessions))


def _train_over_all_pairs(
    random_gammas: DataFrame,
    candidate_gammas: DataFrame,
    *,
    comparisons: list,
    u: dict[str, tuple[float, ...]],
    config: ModelConfig,
    account_count: int,
) -> Training:
    """m, u and the prior by one EM over every pair of accounts (see `ModelConfig`).

    All pairs = the candidate pairs (each once) + the other pairs, stood for by the random
    pairs that are not candidates, each weighing (other pairs) / (such random pairs). u starts
    from the random pairs' level frequencies and is re-estimated: a random sample counts the
    few true links it contains as chance agreements, which puts u of a private card or device
    as high as m times the prior and leaves every single-asset link at P = 0.5.
    """
    key = [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R]
    candidate_keys = candidate_gammas.select(*key)
    others_sample = random_gammas.join(candidate_keys, on=key, how="left_anti").persist()
    sampled = others_sample.count()
    candidates = candidate_keys.count()
    total_pairs = account_count * (account_count - 1) // 2
    other_pairs = max(total_pairs - candidates, 0)
    if sampled == 0 or candidates == 0:
        others_sample.unpersist()
        raise InputError(
            f"training over all pairs needs candidate pairs ({candidates}) and random pairs "
            f"outside them ({sampled}); with so few accounts ({account_count}) use a saved "
            "model (model.load_from) or model.kind: evidence"
        )
    weight = other_pairs / sampled
    parts = [(candidate_gammas, 1.0), (others_sample, weight)]
    logger.info(
        "EM over all %d pairs: %d candidate pairs and %d random other pairs weighing %.1f each",
        total_pairs,
        candidates,
        sampled,
        weight,
    )
    try:
        result = estimate_em(
            weighted_patterns(parts, comparisons),
            comparisons,
            u=u,
            initial_prior=config.initial_prior * candidates / total_pairs,
            max_iterations=config.em_max_iterations,
            tolerance=config.em_tolerance,
            fix_u=False,
        )
        references = estimate_tf_reference(parts, result.model)
    finally:
        others_sample.unpersist()
    fitted = result.model
    model = FellegiSunterModel(
        fitted.comparisons, m=fitted.m, u=fitted.u, prior=fitted.prior, tf_reference=references
    )
    logger.info("trained model:\n%s", model.describe())
    return Training(model=model, sessions=((("all_pairs",), total_pairs, result),))


def comparison_attributes(config: ResolutionConfig) -> tuple[str, ...]:
    """The attributes the comparisons read, in a stable order."""
    seen: dict[str, None] = {}
    for spec in config.model.comparisons:
        for attribute in spec.attributes:
            seen.setdefault(attribute, None)
    return tuple(seen)


def _cut(checkpoint: StageHook, name: str, frame: DataFrame) -> DataFrame:
    """`frame` through the stage hook with its lineage cut (`cut=True`; with the job's clock
    and a local master, computed straight into a local checkpoint: `StageClock.materialise`).

    The blocking keys are a union of some twenty projections of the standardised inputs, each
    holding the standardisation's expressions, and setting the desk phones aside reads them
    four times: with whole lineages every later plan carried that tree, and at 20,000
    accounts the plans filled a 4g driver heap (Catalyst trees, not data: "Failed to allocate
    a page", stages 2-3x slower, then OutOfMemoryError in the leads).
    """
    return checkpoint(name, frame, cut=True)


def _counted_keys(keys: DataFrame, *, config: BlockingConfig, checkpoint: StageHook) -> DataFrame:
    """The population's blocking keys (extracted, or merged with the state's) with desk phones
    set aside and holders counted: stage `blocking_keys`, lineage cut."""
    aside = set_aside_desk_phones(keys, max_block_size=config.max_block_size)
    return _cut(checkpoint, "blocking_keys", count_value_holders(aside))


def small_population_model(
    account_count: int, pretrained: FellegiSunterModel | None, config: ModelConfig
) -> FellegiSunterModel | None:
    """`pretrained` when `account_count` accounts are too few to train on (under
    `model.min_training_accounts`) and it has the configured comparisons; else None (train)."""
    if pretrained is None or account_count >= config.min_training_accounts:
        return None
    try:
        check_model(pretrained, config)
    except ConfigError as error:
        logger.warning(
            "%d accounts, under model.min_training_accounts (%d), but the pretrained model does "
            "not fit (%s): training on them",
            account_count,
            config.min_training_accounts,
            error,
        )
        return None
    logger.info(
        "%d accounts, under model.min_training_accounts (%d): scoring with the pretrained "
        "model (model.pretrained) instead of training",
        account_count,
        config.min_training_accounts,
    )
    return pretrained


def for_population(config: ResolutionConfig, account_count: int) -> ResolutionConfig:
    """`config` with the hub cap of `account_count` accounts (`BlockingConfig.hub_cap`) as
    `blocking.max_block_size`, which every later step reads (blocking, desk phones, the
    comparisons' hub rule, the value cut)."""
    blocking = config.blocking.for_population(account_count)
    if blocking.max_block_size != config.blocking.max_block_size:
        logger.info(
            "hub cap %d accounts for %d accounts (blocking.hub_share %s, min_hub_size %d; "
            "max_block_size %d)",
            blocking.max_block_size,
            account_count,
            config.blocking.hub_share,
            config.blocking.min_hub_size,
            config.blocking.max_block_size,
        )
    return replace(config, blocking=blocking)


def _hub_cap(config: ResolutionConfig) -> int | None:
    """The holder count above which a shared value informs no comparison (None: every value
    informs, `model.hub_values_inform`)."""
    return None if config.model.hub_values_inform else config.blocking.max_block_size


def _comparison_vectors(
    candidate_pairs: DataFrame,
    profiles: DataFrame,
    config: ResolutionConfig,
    *,
    holders: dict[str, int],
    checkpoint: StageHook,
) -> DataFrame:
    """The candidate pairs' comparison levels (`compare_pairs` with the hub cap), checkpointed
    as `comparison_vectors`."""
    return checkpoint(
        "comparison_vectors",
        compare_pairs(
            candidate_pairs,
            profiles,
            config.model.comparisons,
            holders=holders,
            hub_cap=_hub_cap(config),
        ),
    )


def resolve(
    accounts_std: DataFrame,
    payments_std: DataFrame,
    logistics_std: DataFrame,
    *,
    config: ResolutionConfig,
    model: FellegiSunterModel | None = None,
    checkpoint: StageHook = unstaged,
    run_id: str = "run",
    previous: PreviousEntities | None = None,
    pretrained: FellegiSunterModel | None = None,
) -> Resolution:
    """Resolve standardised accounts into entities.

    Inputs are the outputs of `features.standardise` (payments and logistics may be empty
    frames with the same columns). Without `model`, one is trained on this data (see
    `train_model`), unless the population is too small to train on and `pretrained` is given
    (`small_population_model`). After connected components, `resolution.cluster_control`
    re-examines and splits over-merged entities (unless disabled); then
    `resolution.stable_ids` gives each entity the id of the `previous` entity it continues
    (`run_id` salts new ids that would repeat one; without `previous` every entity is born).
    Example::

        resolution = resolve(accounts_std, payments_std, logistics_std, config=ResolutionConfig())
        resolution.entity_membership.show()
    """
    if model is not None:
        if config.model.kind != "fellegi_sunter":
            raise ConfigError("a saved model is scored only with model.kind: fellegi_sunter")
        check_model(model, config.model)
    account_count = accounts_std.count()
    config = for_population(config, account_count)
    compared = comparison_attributes(config) if config.model.kind == "fellegi_sunter" else ()
    wanted = tuple(dict.fromkeys(config.blocking.rules + compared))
    extracted = _cut(
        checkpoint,
        "key_extraction",
        extract_blocking_keys(accounts_std, payments_std, logistics_std, attributes=wanted),
    )
    counted_keys = _counted_keys(extracted, config=config.blocking, checkpoint=checkpoint)
    hub_values = checkpoint("hub_values", find_hub_values(counted_keys, config=config.blocking))
    candidate_pairs = checkpoint(
        "candidate_pairs", build_candidate_pairs(counted_keys, config=config.blocking)
    )
    training = None
    profiles = None
    source = "evidence" if config.model.kind == "evidence" else "given"
    if config.model.kind == "evidence":
        comparison_vectors = candidate_pairs
        scored_pairs = evidence_scores(candidate_pairs, config=config.model.evidence)
    else:
        compared_keys = counted_keys.where(F.col(c.ATTRIBUTE).isin(*compared))
        profiles = checkpoint(
            "account_profiles", account_profiles(accounts_std, logistics_std, compared_keys)
        )
        holders = value_holders(compared_keys, config.model.comparisons)
        hub_cap = _hub_cap(config)
        comparison_vectors = _comparison_vectors(
            candidate_pairs, profiles, config, holders=holders, checkpoint=checkpoint
        )
        if model is None:
            model = small_population_model(account_count, pretrained, config.model)
            source = "trained" if model is None else "pretrained"
        if model is None:
            training = train_model(
                accounts_std,
                profiles,
                comparison_vectors,
                config=config.model,
                holders=holders,
                account_count=account_count,
                hub_cap=hub_cap,
            )
            model = training.model
        scored_pairs = score_pairs(comparison_vectors, model)
    match_edges = checkpoint("match_edges", accept_matches(scored_pairs, config=config.model))
    clusters, splits, statistics = _controlled_clusters(
        accounts_std, match_edges, counted_keys, config=config, checkpoint=checkpoint
    )
    entity_membership, entity_changes, entities = _stable_entities(
        clusters.withColumnRenamed(c.ENTITY_ID, CLUSTER),
        previous,
        run_id=run_id,
        checkpoint=checkpoint,
    )
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
        hub_cap=config.blocking.max_block_size,
        model_source=source,
        entity_splits=splits,
        cluster_statistics=statistics,
        entity_changes=entity_changes,
        profiles=profiles,
    )


def resolve_incremental(
    touched_accounts_std: DataFrame,
    touched_payments_std: DataFrame,
    touched_logistics_std: DataFrame,
    *,
    state: DataFrame,
    changes: DataFrame,
    previous: PreviousEntities,
    previous_edges: DataFrame,
    config: ResolutionConfig,
    checkpoint: StageHook = unstaged,
    run_id: str = "run",
    model: FellegiSunterModel | None = None,
    previous_shared: DataFrame | None = None,
    per_change: Mapping[str, int] | None = None,
) -> Resolution:
    """Resolve the new and changed accounts against the population resolved before.

    `touched_*` are the standardised rows of the new and changed accounts only; `state` is the
    previous run's `account_state` and `changes` the `account_changes` of this input against
    it; `previous` the previous run's membership and known ids; `previous_edges` its
    `match_edges` (`account_id_l`, `account_id_r`, `match_probability`, `match_weight`,
    `evidence`). The steps and what can differ from a full run are in
    `resolution.incremental`. Returns a `Resolution` over the whole population (membership,
    entities, all accepted edges) whose `incremental` says what was recomputed; its
    `candidate_pairs` are only the pairs scored again.

    With `model.kind: fellegi_sunter`, `model` is the model to score with (an incremental run
    does not train: the job passes the previous run's model, or `model.load_from`), and
    `state` must keep the profiles of the accounts (`profile`, written by a run that compared
    them): the unchanged accounts' profiles come from there, their values' holder counts from
    the merged keys.

    `previous_shared` is the previous run's `shared_keys` (`resolution.shared_keys`), with the
    same hub cap: with the evidence score, the holder counts are updated from it where the
    change reaches instead of recounted over the population, and `blocking_keys` of the result
    are the shared keys only (what pairing, cluster control, links and leads read). Without
    it, or with a Fellegi-Sunter model, the population's keys are counted again.

    `per_change` is `change_counts(changes)` when the caller has it (counted here otherwise).
    """
    trained = config.model.kind == "fellegi_sunter"
    if trained:
        if model is None:
            raise ConfigError(
                "an incremental run with model.kind: fellegi_sunter scores with a given model "
                "(the previous run's, or model.load_from) and none was given: run in full"
            )
        check_model(model, config.model)
    compared = comparison_attributes(config) if trained else ()
    # Computed once (the standardisation's plan cut off): read by the merged keys and by
    # `affected_accounts`, which takes the touched values from them, not from a scan of the
    # population's keys.
    touched_keys = _cut(
        checkpoint,
        "touched_keys",
        extract_blocking_keys(
            touched_accounts_std,
            touched_payments_std,
            touched_logistics_std,
            attributes=tuple(dict.fromkeys(config.blocking.rules + compared)),
        ),
    )
    changes = cut_lineage(changes)
    if per_change is None:
        per_change = change_counts(changes)
    _, account_count = population_sizes(per_change)
    config = for_population(config, account_count)
    broadcast = few_touched(per_change, config.blocking)
    if previous_shared is not None and not trained:
        # The previous run's shared keys, updated where the change reaches: no pass over the
        # population's 30 keys an account.
        update = update_shared_keys(
            state,
            changes,
            touched_keys,
            previous_shared,
            config=config.blocking,
            broadcast=broadcast,
            checkpoint=checkpoint,
        )
        counted_keys = _cut(checkpoint, "shared_keys", update.shared)
        affected = _cut(checkpoint, "affected_accounts", update.affected)
        holder_counts = "updated"
    else:
        # A Fellegi-Sunter model reads values held once too (profiles, term frequencies), and
        # a base without shared keys (written before they were kept) has nothing to update:
        # the population's keys are merged and counted as in a full run.
        merged = _cut(checkpoint, "key_extraction", merged_keys(state, changes, touched_keys))
        counted_keys = _counted_keys(merged, config=config.blocking, checkpoint=checkpoint)
        affected = _cut(
            checkpoint,
            "affected_accounts",
            affected_accounts(
                counted_keys,
                state_keys(state),
                changes,
                config=config.blocking,
                broadcast=broadcast,
                touched_keys=touched_keys,
            ),
        )
        holder_counts = "recounted"
    hub_values = checkpoint("hub_values", find_hub_values(counted_keys, config=config.blocking))
    rescored = rescored_accounts(affected)
    candidate_pairs = checkpoint(
        "candidate_pairs",
        build_candidate_pairs(
            counted_keys.join(affected, on=c.ACCOUNT_ID, how="left_semi"),
            config=config.blocking,
            focus=None if config.blocking.incremental_rescore == "holders" else rescored,
        ),
    )
    profiles = None
    if trained:
        assert model is not None
        compared_keys = counted_keys.where(F.col(c.ATTRIBUTE).isin(*compared))
        unchanged = accounts_with(changes, UNCHANGED).join(affected, c.ACCOUNT_ID, "left_semi")
        fields = profile_fields(touched_accounts_std, touched_logistics_std).unionByName(
            stored_profile_fields(state.join(unchanged, on=c.ACCOUNT_ID, how="left_semi"))
        )
        profiles = checkpoint(
            "account_profiles",
            with_values(fields, compared_keys.join(affected, on=c.ACCOUNT_ID, how="left_semi")),
        )
        # Holder counts for term frequencies: a pass over the population's keys, made only
        # when a comparison is tf-adjusted.
        tf_adjusted = any(spec.tf_adjusted for spec in config.model.comparisons)
        comparison_vectors = _comparison_vectors(
            candidate_pairs,
            profiles,
            config,
            holders=value_holders(compared_keys, config.model.comparisons) if tf_adjusted else {},
            checkpoint=checkpoint,
        )
        scored_pairs = score_pairs(comparison_vectors, model)
    else:
        comparison_vectors = candidate_pairs
        scored_pairs = evidence_scores(candidate_pairs, config=config.model.evidence)
    edge_columns = [
        name
        for name in (
            c.ACCOUNT_ID_L,
            c.ACCOUNT_ID_R,
            c.MATCH_PROBABILITY,
            c.MATCH_WEIGHT,
            c.EVIDENCE,
        )
        if name in previous_edges.columns
    ]
    new_edges = _cut(
        checkpoint,
        "new_match_edges",
        accept_matches(scored_pairs, config=config.model).select(*edge_columns),
    )
    # Which previous edges stand, decided once: the kept edges and the edges' write scope
    # (what did not stand) both read it.
    fates = _cut(
        checkpoint,
        "edge_fates",
        edge_fates(previous_edges.select(*edge_columns), affected, changes),
    )
    kept = fates.where(F.col(STANDS)).drop(STANDS)
    match_edges = _cut(checkpoint, "match_edges", kept.unionByName(new_edges))
    region = _cut(
        checkpoint,
        "affected_region",
        affected_region(previous.membership, rescored, match_edges, changes),
    )
    # A region of a few hundred thousand ids is broadcast: its keys and edges are then a scan
    # of the population's, not a shuffle of them.
    few = region.count() <= config.blocking.broadcast_region_accounts
    ids = F.broadcast(region) if few else region
    region_edges = match_edges.join(
        ids.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_L), c.ACCOUNT_ID_L, "left_semi"
    ).join(ids.withColumnRenamed(c.ACCOUNT_ID, c.ACCOUNT_ID_R), c.ACCOUNT_ID_R, "left_semi")
    # Cluster control reads the keys of the region's accounts only (their holder counts are
    # the population's): it examines no entity outside. Computed once: its first round reads
    # them three times (at 1,000,000 accounts, three shuffles of 29.5M key rows, 105 s).
    region_keys = cut_lineage(
        counted_keys.where(F.col(c.ACCOUNT_COUNT) >= 2)  # a value held once cuts nothing
        .join(ids, on=c.ACCOUNT_ID, how="left_semi")
        .select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY, c.ACCOUNT_COUNT)
    )
    clusters, splits, statistics = _controlled_clusters(
        region,
        region_edges,
        region_keys,
        config=config,
        checkpoint=checkpoint,
    )
    # Stable ids over the region alone: it holds whole previous entities (those of its
    # accounts and of the removed ones), so each of its clusters meets every predecessor it
    # has there, and an entity outside keeps its id and accounts. Every id issued so far is
    # known, so a new id in the region cannot take an id held outside.
    removed = accounts_with(changes, REMOVED)
    previous_in_region = previous.membership.join(
        region.unionByName(removed), on=c.ACCOUNT_ID, how="left_semi"
    )
    known_ids = (
        previous.known_ids
        if previous.known_ids is not None
        else previous.membership.select(c.ENTITY_ID).distinct()
    )
    stable = assign_stable_ids(
        clusters.select(c.ACCOUNT_ID, F.col(c.ENTITY_ID).alias(CLUSTER)),
        previous_in_region,
        run_id=run_id,
        known_ids=known_ids,
        keep=checkpoint,
    )
    outside = (
        previous.membership.join(region, on=c.ACCOUNT_ID, how="left_anti")
        .join(removed, on=c.ACCOUNT_ID, how="left_anti")
        .select(c.ACCOUNT_ID, c.ENTITY_ID)
    )
    # Cut, not only persisted: they read the previous run's tables (`_stable_entities`).
    entity_membership = _cut(
        checkpoint, "entity_membership", stable.membership.unionByName(outside)
    )
    entity_changes = _cut(checkpoint, "entity_changes", stable.changes)
    entities = checkpoint("entities", summarise_entities(entity_membership))
    scopes = write_scopes(
        changes,
        region,
        previous_membership=previous.membership,
        membership=entity_membership,
        dropped_edges=fates.where(~F.col(STANDS)),
        new_edges=new_edges,
    )
    # Each MERGE reads its scope more than once (the source's rows and the keys to delete,
    # Delta's own passes), and the MERGEs run side by side, each refreshing the cache of frames
    # that read its table: computed once each, with no lineage back to the previous run's
    # tables. Broadcast when each is as small as a broadcast region may be.
    cut_scopes = [
        _cut(checkpoint, "scope_accounts", scopes.accounts),
        _cut(checkpoint, "scope_entities", scopes.entities),
        _cut(checkpoint, "scope_edges", scopes.edges),
        _cut(checkpoint, "scope_state", scopes.state),
    ]
    scopes = WriteScopes(
        *cut_scopes,
        broadcast=_largest_count(cut_scopes) <= config.blocking.broadcast_region_accounts,
    )
    return Resolution(
        blocking_keys=counted_keys,
        hub_values=hub_values,
        candidate_pairs=candidate_pairs,
        comparison_vectors=comparison_vectors,
        scored_pairs=scored_pairs,
        match_edges=match_edges,
        entity_membership=entity_membership,
        entities=entities,
        model=model if trained else None,
        training=None,
        account_count=account_count,
        hub_cap=config.blocking.max_block_size,
        model_source="given" if trained else "evidence",
        entity_splits=splits,
        cluster_statistics=statistics,
        entity_changes=entity_changes,
        incremental=IncrementalParts(
            affected=affected,
            region=region,
            changes=changes,
            new_edges=new_edges,
            scopes=scopes,
            keys=touched_keys,
            holder_counts=holder_counts,
        ),
        profiles=profiles,
    )


def _largest_count(frames: Sequence[DataFrame]) -> int:
    """The row count of the largest of `frames`, counted in one Spark job for all of them."""
    tagged = [frame.select(F.lit(i).alias("_frame")) for i, frame in enumerate(frames)]
    counts = reduce(DataFrame.unionByName, tagged).groupBy("_frame").count().collect()
    return max((int(row["count"]) for row in counts), default=0)


def _controlled_clusters(
    accounts: DataFrame,
    match_edges: DataFrame,
    counted_keys: DataFrame,
    *,
    config: ResolutionConfig,
    checkpoint: StageHook,
) -> tuple[DataFrame, DataFrame | None, DataFrame | None]:
    """Connected components, then cluster control (when enabled): (membership, splits,
    statistics). `counted_keys` (with holder counts) give the values edges rest on, for the
    value cut."""
    clusters = checkpoint(
        "clusters", assign_entities(accounts, match_edges, config=config.clustering)
    )
    if not config.cluster_control.enabled:
        return clusters, None, None
    controlled = control_clusters(
        accounts,
        match_edges,
        clusters,
        config=config.cluster_control,
        clustering=config.clustering,
        blocking_keys=blockable_keys(counted_keys, config=config.blocking),
    )
    clusters = checkpoint("controlled_clusters", controlled.membership)
    splits = checkpoint("entity_splits", controlled.splits)
    return clusters, splits, controlled.statistics


def _stable_entities(
    clusters: DataFrame,
    previous: PreviousEntities | None,
    *,
    run_id: str,
    checkpoint: StageHook,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Stable ids for `clusters` (`account_id`, `cluster`): (membership, changes, entities)."""
    stable = assign_stable_ids(
        clusters,
        None if previous is None else previous.membership,
        run_id=run_id,
        known_ids=None if previous is None else previous.known_ids,
        keep=checkpoint,
    )
    # Cut, not only persisted, when they read the previous run's membership: writing that
    # table drops the cached data of every frame that reads it (Spark's cache is refreshed by
    # path on a Delta write), and the writes, links, leads and metrics that follow computed
    # the stable ids again (seen in the event log of a 1,000,000-account incremental run:
    # some 40 s).
    keep = checkpoint if previous is None else partial(_cut, checkpoint)
    entity_membership = keep("entity_membership", stable.membership)
    entity_changes = keep("entity_changes", stable.changes)
    entities = checkpoint("entities", summarise_entities(entity_membership))
    return entity_membership, entity_changes, entities


@dataclass(frozen=True)
class Investigation:
    """What the enforcement team reads: the entity network and the ranked leads."""

    entity_links: DataFrame
    entity_leads: DataFrame


def investigate(
    entity_membership: DataFrame,
    blocking_keys: DataFrame,
    signals: DataFrame,
    match_edges: DataFrame | None,
    *,
    config: ResolutionConfig,
    entities: DataFrame | None = None,
) -> Investigation:
    """`entity_links` and `entity_leads` (`resolution.network`) of resolved entities.

    `blocking_keys` is `Resolution.blocking_keys` (hashed value keys, with holder counts);
    `signals` the accepted `enforcement_signals` rows (may be empty); `entities`
    (`Resolution.entities`, optional) gives the leads their account counts. Example::

        found = investigate(resolution.entity_membership, resolution.blocking_keys, signals,
                            resolution.match_edges, config=ResolutionConfig())
        found.entity_leads.orderBy("lead_rank").show(20, truncate=False)
    """
    membership = entity_membership.select(c.ACCOUNT_ID, c.ENTITY_ID)
    return Investigation(
        entity_links=entity_links(membership, blocking_keys, config=config.network),
        entity_leads=entity_leads(
            membership,
            signals,
            blocking_keys,
            match_edges=match_edges,
            entities=entities,
            config=config.leads,
        ),
    )
