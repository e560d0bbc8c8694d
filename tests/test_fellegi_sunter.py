"""The Fellegi-Sunter model: EM recovery on simulated pairs, scoring, u, sampling, errors."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features import columns as c
from resolution.errors import ConfigError, InputError
from resolution.fellegi_sunter import (
    EM_PSEUDO_COUNT,
    Comparison,
    FellegiSunterModel,
    comparison_patterns,
    estimate_em,
    estimate_m_em,
    estimate_tf_reference,
    estimate_u,
    sample_random_pairs,
    score_pairs,
    weighted_patterns,
)

EMAIL = Comparison("email", ("different", "exact"), tf_adjusted=True)
NAME = Comparison("name", ("different", "fuzzy", "exact"))
PHONE = Comparison("phone", ("different", "prefix", "exact"))
COMPARISONS = (EMAIL, NAME, PHONE)
GAMMAS = "gamma_email int, gamma_name int, gamma_phone int"

TRUE_PRIOR = 0.05
TRUE_M = {"email": (0.1, 0.9), "name": (0.1, 0.3, 0.6), "phone": (0.15, 0.25, 0.6)}
TRUE_U = {"email": (0.98, 0.02), "name": (0.85, 0.12, 0.03), "phone": (0.9, 0.08, 0.02)}
PHONE_NULL_RATE = 0.1  # phone missing at random on either side: level -1


def _simulate_levels(rng: np.random.Generator, is_match: np.ndarray) -> np.ndarray:
    """One row of levels per pair: drawn from m for matches and from u for the others."""
    columns = []
    for comparison in COMPARISONS:
        k = len(comparison.levels)
        from_m = rng.choice(k, size=is_match.size, p=TRUE_M[comparison.name])
        from_u = rng.choice(k, size=is_match.size, p=TRUE_U[comparison.name])
        columns.append(np.where(is_match, from_m, from_u))
    columns[2] = np.where(rng.random(is_match.size) < PHONE_NULL_RATE, -1, columns[2])
    return np.column_stack(columns)


def _pairs_from_levels(spark: SparkSession, levels: np.ndarray) -> DataFrame:
    """Pair rows rebuilt in Spark from the (few) distinct patterns and their counts.

    The patterns arrive as one JSON literal, so no Python worker has to decode rows.
    """
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    rows = [
        {"gamma_email": int(p[0]), "gamma_name": int(p[1]), "gamma_phone": int(p[2]), "n": int(n)}
        for p, n in zip(patterns, counts, strict=True)
    ]
    counted = spark.range(1).select(
        F.inline(F.from_json(F.lit(json.dumps(rows)), f"array<struct<{GAMMAS}, n int>>"))
    )
    return counted.select(
        "gamma_email", "gamma_name", "gamma_phone", F.explode(F.sequence(F.lit(1), F.col("n")))
    ).drop("col")


def test_em_recovers_known_m_and_prior(
    spark: SparkSession, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(20240611)
    # 200,000 candidate pairs (10,000 matches): the sampling error of an m near 0.5 is then
    # about 0.005, so a 0.02 tolerance tests EM, not luck. Only the patterns go to Spark.
    candidate_levels = _simulate_levels(rng, rng.random(200_000) < TRUE_PRIOR)
    random_levels = _simulate_levels(rng, np.zeros(20_000, dtype=bool))
    candidates = _pairs_from_levels(spark, candidate_levels)
    random_pairs = _pairs_from_levels(spark, random_levels)

    u = estimate_u(random_pairs, COMPARISONS)
    for name, truth in TRUE_U.items():
        assert u[name] == pytest.approx(truth, abs=0.005)

    with caplog.at_level(logging.INFO, logger="resolution.fellegi_sunter"):
        # Splink's default convergence threshold; each iteration is one Spark job.
        result = estimate_m_em(candidates, COMPARISONS, u=u, tolerance=1e-4)

    assert result.converged
    assert result.iterations == len(result.history) < 25
    assert result.history[-1]["max_change"] < 1e-4
    assert result.model.prior == pytest.approx(TRUE_PRIOR, abs=0.02)
    for name, truth in TRUE_M.items():
        assert result.model.m[name] == pytest.approx(truth, abs=0.02), name
    assert dict(result.model.u) == u  # fix_u: u stays as estimated
    assert "EM iteration 1: prior" in caplog.text


def test_one_em_step_matches_a_hand_computation(spark: SparkSession) -> None:
    patterns = {(1, 2, -1): 2, (0, 0, None): 3, (1, 2, 2): 1, (0, 1, 0): 2}
    gammas = spark.createDataFrame(
        [pattern for pattern, n in patterns.items() for _ in range(n)], GAMMAS
    )
    prior = 0.2
    names = [x.name for x in COMPARISONS]

    def likelihood(table: dict[str, tuple[float, ...]], pattern: tuple) -> float:  # type: ignore[type-arg]
        levels = [(name, g) for name, g in zip(names, pattern, strict=True) if g is not None]
        return math.prod(table[name][g] for name, g in levels if g >= 0)

    posterior = {
        p: prior
        * likelihood(TRUE_M, p)
        / (prior * likelihood(TRUE_M, p) + (1 - prior) * likelihood(TRUE_U, p))
        for p in patterns
    }

    new_prior = sum(n * posterior[p] for p, n in patterns.items()) / 8

    def m_step(weight: dict[tuple, float], share: float) -> dict[str, tuple[float, ...]]:  # type: ignore[type-arg]
        step = {}
        for i, x in enumerate(COMPARISONS):
            # every level gets the M-step's pseudo-count of half a pair, split between m and u
            # as the pairs are (the new prior)
            at = [
                sum(n * weight[p] for p, n in patterns.items() if p[i] == level)
                + EM_PSEUDO_COUNT * share
                for level in range(len(x.levels))
            ]
            step[x.name] = tuple(a / sum(at) for a in at)
        return step

    result = estimate_m_em(
        gammas,
        COMPARISONS,
        u=TRUE_U,
        initial_m=TRUE_M,
        initial_prior=prior,
        max_iterations=1,
        fix_u=False,
    )
    expected_m = m_step(posterior, new_prior)
    expected_u = m_step({p: 1 - q for p, q in posterior.items()}, 1 - new_prior)
    assert not result.converged and result.iterations == 1
    assert result.model.prior == pytest.approx(new_prior)
    for name in names:
        assert result.model.m[name] == pytest.approx(expected_m[name])
        assert result.model.u[name] == pytest.approx(expected_u[name])
    assert result.history[0]["m"] == {name: list(ps) for name, ps in result.model.m.items()}


def test_comparison_patterns_counts_each_pattern(spark: SparkSession) -> None:
    gammas = spark.createDataFrame(
        [(1, 2, -1), (1, 2, -1), (0, 0, None), (0, 0, None), (0, 0, None), (1, 2, 2)], GAMMAS
    )
    patterns = {tuple(r) for r in comparison_patterns(gammas, COMPARISONS).collect()}
    assert patterns == {(1, 2, -1, 2), (0, 0, None, 3), (1, 2, 2, 1)}


def test_term_frequency_adjustment_discounts_a_hub_value(spark: SparkSession) -> None:
    model = FellegiSunterModel(
        comparisons=(EMAIL,), m={"email": (0.1, 0.9)}, u={"email": (0.99, 0.01)}, prior=0.01
    )
    pairs = spark.createDataFrame(
        [
            ("hub_l", "hub_r", 1, 0.5),  # a value half the population shares
            ("rare_l", "rare_r", 1, 1e-5),
            ("no_tf_l", "no_tf_r", 1, None),  # exact, tf unknown: no adjustment
            ("zero_l", "zero_r", 1, 0.0),  # clamped to 1e-12
            ("diff_l", "diff_r", 0, 0.5),  # tf only adjusts the exact level
        ],
        "account_id_l string, account_id_r string, gamma_email int, tf_email double",
    )
    scored = {r[c.ACCOUNT_ID_L]: r for r in score_pairs(pairs, model).collect()}
    prior_weight = math.log2(0.01 / 0.99)
    exact = math.log2(0.9 / 0.01)

    assert scored["hub_l"][c.MATCH_WEIGHT] == pytest.approx(
        prior_weight + exact + math.log2(0.01 / 0.5)
    )
    assert scored["rare_l"][c.MATCH_WEIGHT] - scored["hub_l"][c.MATCH_WEIGHT] == pytest.approx(
        math.log2(0.5 / 1e-5)
    )
    assert scored["hub_l"][c.MATCH_PROBABILITY] < 0.9 < scored["rare_l"][c.MATCH_PROBABILITY]
    assert scored["no_tf_l"][c.MATCH_WEIGHT] == pytest.approx(prior_weight + exact)
    assert scored["zero_l"][c.MATCH_WEIGHT] == pytest.approx(
        prior_weight + exact + math.log2(0.01 / 1e-12)
    )
    assert scored["diff_l"][c.MATCH_WEIGHT] == pytest.approx(prior_weight + math.log2(0.1 / 0.99))
    hub_evidence = scored["hub_l"][c.EVIDENCE][0]
    assert hub_evidence["tf_adjustment"] == pytest.approx(math.log2(0.01 / 0.5))
    assert hub_evidence["weight"] == pytest.approx(exact + math.log2(0.01 / 0.5))


def _three_comparison_model() -> FellegiSunterModel:
    return FellegiSunterModel(
        comparisons=(Comparison("email", ("different", "exact")), NAME, PHONE),
        m=TRUE_M,
        u=TRUE_U,
        prior=TRUE_PRIOR,
    )


def _rounded(evidence: list) -> list[tuple]:  # type: ignore[type-arg]
    """(comparison, level, weight, tf_adjustment) with the weights rounded to 9 places."""
    return [(e[0], e[1], round(e[2], 9), round(e[3], 9)) for e in evidence]


def test_evidence_explains_the_weight_and_null_levels_weigh_nothing(spark: SparkSession) -> None:
    model = _three_comparison_model()
    pairs = spark.createDataFrame(
        [
            ("a", "b", 1, 1, 2),
            ("a", "c", 1, 1, -1),  # phone unknown
            ("a", "d", 1, 1, None),  # phone unknown, as a null
            ("b", "c", 0, -1, -1),
        ],
        f"account_id_l string, account_id_r string, {GAMMAS}",
    )
    scored = {
        (r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): r for r in score_pairs(pairs, model).collect()
    }
    w = model.weights()
    prior_weight = math.log2(TRUE_PRIOR / (1 - TRUE_PRIOR))

    assert _rounded(scored[("a", "b")][c.EVIDENCE]) == _rounded(
        [
            ("email", "exact", w["email"][1], 0.0),
            ("name", "fuzzy", w["name"][1], 0.0),
            ("phone", "exact", w["phone"][2], 0.0),
        ]
    )
    no_phone = _rounded(
        [
            ("email", "exact", w["email"][1], 0.0),
            ("name", "fuzzy", w["name"][1], 0.0),
            ("phone", "null", 0.0, 0.0),
        ]
    )
    assert _rounded(scored[("a", "c")][c.EVIDENCE]) == no_phone
    assert _rounded(scored[("a", "d")][c.EVIDENCE]) == no_phone
    assert _rounded(scored[("b", "c")][c.EVIDENCE]) == _rounded(
        [
            ("email", "different", w["email"][0], 0.0),
            ("name", "null", 0.0, 0.0),
            ("phone", "null", 0.0, 0.0),
        ]
    )
    assert scored[("a", "c")][c.MATCH_WEIGHT] == pytest.approx(
        scored[("a", "b")][c.MATCH_WEIGHT] - w["phone"][2]
    )
    for row in scored.values():
        explained = prior_weight + sum(e["weight"] for e in row[c.EVIDENCE])
        assert row[c.MATCH_WEIGHT] == pytest.approx(explained)
        odds = 2.0 ** row[c.MATCH_WEIGHT]
        assert row[c.MATCH_PROBABILITY] == pytest.approx(odds / (1 + odds))


def test_estimate_u_smooths_unseen_levels(spark: SparkSession) -> None:
    gammas = spark.createDataFrame(
        [(0, 0, -1), (0, 0, None), (0, 1, -1), (1, 0, -1), (-1, 0, -1)], GAMMAS
    )
    u = estimate_u(gammas, COMPARISONS, smoothing=1.0)
    assert u["email"] == pytest.approx((4 / 6, 2 / 6))  # 3 and 1 of 4 non-null, +1 each
    assert u["name"] == pytest.approx((5 / 8, 2 / 8, 1 / 8))  # "exact" never seen: 1/8 > 0
    assert u["phone"] == pytest.approx((1 / 3, 1 / 3, 1 / 3))  # no information at all
    assert all(math.fsum(ps) == pytest.approx(1.0) for ps in u.values())

    unsmoothed = estimate_u(gammas.where(F.col("gamma_phone").isNull()), (EMAIL, NAME), smoothing=0)
    assert unsmoothed == {"email": (1.0, 0.0), "name": (1.0, 0.0, 0.0)}


def test_sample_random_pairs_is_deterministic_distinct_and_ordered(spark: SparkSession) -> None:
    # Generated in Spark (no Python worker per job): acc0000..acc0499, then a Unicode id, a
    # null id and a duplicate.
    numbered = spark.range(500).select(F.format_string("acc%04d", "id").alias("account_id"))
    extra = spark.range(1).select(
        F.explode(F.array(F.lit("账户-全角"), F.lit(None).cast("string"), F.lit("acc0001")))
    )
    accounts = numbered.unionByName(extra.toDF("account_id"))

    def draw(seed: int, frame: DataFrame = accounts) -> list[tuple[str, str]]:
        pairs = sample_random_pairs(frame, id_column="account_id", pairs=1000, seed=seed)
        return [tuple(r) for r in pairs.collect()]

    first = draw(7)
    assert draw(7, accounts.repartition(3)) == first  # partitioning does not matter
    assert len(first) == len(set(first)) == 1000
    assert all(left < right for left, right in first)  # l < r, so no self pairs
    assert set(draw(8)) != set(first)
    assert {None} & {x for pair in first for x in pair} == set()

    few = spark.createDataFrame([("x",), ("y",), ("z",)], "account_id string")
    everything = sample_random_pairs(few, id_column="account_id", pairs=1000, seed=1)
    assert {tuple(r) for r in everything.collect()} == {("x", "y"), ("x", "z"), ("y", "z")}


def test_model_round_trips_through_json() -> None:
    model = FellegiSunterModel(comparisons=COMPARISONS, m=TRUE_M, u=TRUE_U, prior=TRUE_PRIOR)
    restored = FellegiSunterModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored == model
    assert restored.comparisons[0].tf_adjusted
    assert model.bayes_factors()["name"] == pytest.approx((0.1 / 0.85, 0.3 / 0.12, 0.6 / 0.03))
    table = model.describe()
    assert "exact +tf" in table and "fuzzy" in table and f"{math.log2(20):+.3f}" in table


def test_invalid_models_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"m\['name'\]: probabilities sum to 0.9") as info:
        FellegiSunterModel(
            comparisons=COMPARISONS,
            m={**TRUE_M, "name": (0.1, 0.2, 0.6)},
            u={**TRUE_U, "phone": (0.5, 0.5)},
            prior=0.05,
        )
    assert "u['phone']: 2 probabilities for 3 levels" in str(info.value)  # all at once
    with pytest.raises(ConfigError, match="prior: must be in"):
        FellegiSunterModel(comparisons=COMPARISONS, m=TRUE_M, u=TRUE_U, prior=1.0)
    with pytest.raises(ConfigError, match="lacks \\['u'\\]"):
        FellegiSunterModel.from_dict({"comparisons": [], "m": {}, "prior": 0.1})
    with pytest.raises(ConfigError, match=r"comparisons\[0\] needs 'name' and 'levels'"):
        FellegiSunterModel.from_dict(
            {"comparisons": [{"name": "x"}], "m": {}, "u": {}, "prior": 0.1}
        )
    with pytest.raises(ConfigError, match="at least 2 levels"):
        Comparison("email", ("exact",))


def test_bad_gamma_inputs_name_the_column(spark: SparkSession) -> None:
    model = _three_comparison_model()
    no_phone = spark.createDataFrame([(1, 1)], "gamma_email int, gamma_name int")
    with pytest.raises(InputError, match=r"missing column 'gamma_phone'.*found: \['gamma_email'"):
        score_pairs(no_phone, model)
    with pytest.raises(InputError, match="missing column 'gamma_phone'"):
        estimate_u(no_phone, COMPARISONS)
    text_levels = spark.createDataFrame(
        [(1, 1, "2")], "gamma_email int, gamma_name int, gamma_phone string"
    )
    with pytest.raises(InputError, match="'gamma_phone' must be an integer level"):
        comparison_patterns(text_levels, COMPARISONS)
    tf_model = FellegiSunterModel(
        comparisons=(EMAIL,), m={"email": (0.1, 0.9)}, u={"email": (0.99, 0.01)}, prior=0.01
    )
    with pytest.raises(InputError, match="missing column 'tf_email'"):
        score_pairs(spark.createDataFrame([(1,)], "gamma_email int"), tf_model)

    out_of_range = spark.createDataFrame([(1, 3, 0), (1, 0, -2)], GAMMAS)
    with pytest.raises(
        InputError, match=r"'gamma_name' holds levels 0\.\.3, outside -1\.\.2"
    ) as info:
        estimate_u(out_of_range, COMPARISONS)
    assert "'gamma_phone' holds levels -2..0" in str(info.value)
    with pytest.raises(InputError, match="'gamma_name' holds levels 0..3"):
        estimate_m_em(out_of_range, COMPARISONS, u=TRUE_U, max_iterations=1)
    with pytest.raises(PySparkException, match="'gamma_name' holds level 3, outside -1..2"):
        score_pairs(out_of_range.limit(1), model).collect()


def test_em_over_all_pairs_recovers_m_u_and_prior_from_candidates_and_a_weighted_sample(
    spark: SparkSession,
) -> None:
    # A population of 1,000,000 pairs with 0.4% matches. Blocking proposes the pairs that
    # agree exactly on email or phone; the rest are stood for by 200,000 of them, each weighing
    # (others / 200,000). u starts from a random sample of all pairs, matches included. The
    # few matches blocking misses (email and phone both off) are what m of "email different"
    # is learnt from, so the sample has to hold enough of them.
    rng = np.random.default_rng(20261130)
    prior = 0.004
    population = _simulate_levels(rng, rng.random(1_000_000) < prior)
    blocked = (population[:, 0] == 1) | (population[:, 2] == 2)
    candidates, others = population[blocked], population[~blocked]
    sample = others[rng.choice(len(others), size=200_000, replace=False)]
    start_u = estimate_u(
        _pairs_from_levels(spark, population[rng.choice(len(population), size=20_000)]),
        COMPARISONS,
    )
    parts = [
        (_pairs_from_levels(spark, candidates), 1.0),
        (_pairs_from_levels(spark, sample), len(others) / len(sample)),
    ]
    patterns = weighted_patterns(parts, COMPARISONS)
    assert patterns.agg(F.sum("pair_count")).first()[0] == pytest.approx(1_000_000)

    result = estimate_em(
        patterns,
        COMPARISONS,
        u=start_u,
        initial_prior=0.3 * len(candidates) / len(population),
        max_iterations=100,
        fix_u=False,
    )

    assert result.converged
    assert result.model.prior == pytest.approx(prior, rel=0.1)
    for name in TRUE_M:
        assert result.model.m[name] == pytest.approx(TRUE_M[name], abs=0.03), name
        assert result.model.u[name] == pytest.approx(TRUE_U[name], abs=0.003), name


def test_a_level_no_pair_reaches_weighs_about_nothing(spark: SparkSession) -> None:
    # 100 candidate matches and 100,000 non-matches; nobody reaches the "prefix" phone level.
    matches = [(1, 2, 2)] * 100
    non_matches = [(0, 0, 0)] * 1000
    gammas = _pairs_from_levels(spark, np.array(matches + non_matches * 100))
    result = estimate_m_em(gammas, COMPARISONS, u=TRUE_U, fix_u=False, max_iterations=30)
    unseen = result.model.weights()["phone"][1]
    assert abs(unseen) < 0.5  # equal pseudo-counts would weigh it log2(100,000 / 100) ~ +10
    assert result.model.weights()["phone"][2] > 10


def test_tf_reference_is_the_mean_tf_of_chance_agreements_and_scores_relative_to_it(
    spark: SparkSession,
) -> None:
    email_only = FellegiSunterModel(
        comparisons=(EMAIL,), m={"email": (0.5, 0.5)}, u={"email": (0.999, 0.001)}, prior=1e-4
    )
    rows = "account_id_l string, account_id_r string, gamma_email int, tf_email double"
    # candidates: exact agreements on a rare value (matches, by the weight) and on a hub value
    candidates = spark.createDataFrame(
        [("a", "b", 1, 1e-5), ("c", "d", 1, 0.02), ("e", "f", 0, None)], rows
    )
    sample = spark.createDataFrame([("g", "h", 1, 0.02), ("i", "j", 0, None)], rows)
    reference = estimate_tf_reference([(candidates, 1.0), (sample, 9.0)], email_only)
    # the hub agreements are non-matches (P ~ 0.05); the rare one is a match (P ~ 0.05 too:
    # no tf in the E-step), so it weighs its share: (0.02 * 10 + 1e-5) / 11
    p = 1e-4 * 500 / (1e-4 * 500 + (1 - 1e-4))
    expected = ((1 - p) * (0.02 * 10 + 1e-5)) / ((1 - p) * 11)
    assert reference["email"] == pytest.approx(expected)

    model = FellegiSunterModel(
        comparisons=(EMAIL,),
        m=email_only.m,
        u=email_only.u,
        prior=email_only.prior,
        tf_reference=reference,
    )
    restored = FellegiSunterModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored.tf_reference == {"email": pytest.approx(expected)}
    scored = {r[c.ACCOUNT_ID_L]: r for r in score_pairs(candidates, restored).collect()}
    assert scored["a"][c.EVIDENCE][0]["tf_adjustment"] == pytest.approx(math.log2(expected / 1e-5))
    assert scored["c"][c.EVIDENCE][0]["tf_adjustment"] == pytest.approx(math.log2(expected / 0.02))
    assert scored["a"][c.MATCH_PROBABILITY] > 0.9 > scored["c"][c.MATCH_PROBABILITY]
    with pytest.raises(ConfigError, match="tf_reference: 'name' is not a tf-adjusted"):
        FellegiSunterModel(
            comparisons=COMPARISONS, m=TRUE_M, u=TRUE_U, prior=0.1, tf_reference={"name": 0.1}
        )


def test_max_weight_caps_a_comparison_when_scoring_and_survives_json(spark: SparkSession) -> None:
    capped_phone = Comparison("phone", ("different", "prefix", "exact"), max_weight=2.0)
    model = FellegiSunterModel(
        comparisons=(EMAIL, NAME, capped_phone), m=TRUE_M, u=TRUE_U, prior=TRUE_PRIOR
    )
    w = model.weights()
    assert w["phone"][2] == pytest.approx(math.log2(0.6 / 0.02))  # about 4.9: over the cap
    assert w["phone"][1] == pytest.approx(math.log2(0.25 / 0.08))  # about 1.6: under it
    pairs = spark.createDataFrame(
        [("a", "b", 1, 2, 2, None), ("a", "c", 1, 2, 1, None)],
        f"account_id_l string, account_id_r string, {GAMMAS}, tf_email double",
    )
    scored = {r[c.ACCOUNT_ID_R]: r for r in score_pairs(pairs, model).collect()}
    phone = {
        k: [e for e in r[c.EVIDENCE] if e["comparison"] == "phone"][0] for k, r in scored.items()
    }
    assert phone["b"]["weight"] == pytest.approx(2.0)
    assert phone["c"]["weight"] == pytest.approx(w["phone"][1])
    uncapped = score_pairs(
        pairs, FellegiSunterModel(comparisons=COMPARISONS, m=TRUE_M, u=TRUE_U, prior=TRUE_PRIOR)
    )
    before = {r[c.ACCOUNT_ID_R]: r[c.MATCH_WEIGHT] for r in uncapped.collect()}
    assert scored["b"][c.MATCH_WEIGHT] == pytest.approx(before["b"] - (w["phone"][2] - 2.0))
    assert scored["c"][c.MATCH_WEIGHT] == pytest.approx(before["c"])

    restored = FellegiSunterModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored == model and restored.comparisons[2].max_weight == 2.0
    assert "(scored +2)" in model.describe()
    with pytest.raises(ConfigError, match="max_weight must be > 0"):
        Comparison("phone", ("different", "exact"), max_weight=0.0)
