"""Tests of jobs.quality: real Great Expectations suites on a real local Spark session."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from features import columns as cols
from jobs.quality import (
    INPUT_CHECKS,
    OUTPUT_CHECKS,
    PREVIOUS_RUN_CHECKS,
    PreviousRun,
    QualityConfig,
    QualityReport,
    QualityRun,
    find_entity_size_problems,
    find_membership_coverage_problems,
    find_unknown_edge_endpoints,
    flag_blank_account_ids,
    flag_ordered_pairs,
    validate_inputs,
    validate_outputs,
)
from resolution.errors import ConfigError, InputError, QualityCheckError, ResolutionError
from resolution.incremental import WriteScopes


@pytest.fixture(scope="module", autouse=True)
def _gx_analytics_off() -> Iterator[None]:
    """The job turns Great Expectations' analytics off; so do the tests."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GX_ANALYTICS_ENABLED", "false")
        yield


# Data -------------------------------------------------------------------------------------
ACCEPTED_SCHEMA = "account_id string, shop_name string, phone string"
MEMBERSHIP_SCHEMA = "account_id string, entity_id string, run_id string"
ENTITIES_SCHEMA = "entity_id string, account_count long, run_id string"
EDGES_SCHEMA = (
    "account_id_l string, account_id_r string, match_probability double, "
    "match_weight double, run_id string"
)

# Unicode, full-width and whitespace ids are valid ids; so are empty and null shop names.
ACCEPTED = [
    ("acc-001", "老王的店", "+86 138-0013-8000"),
    ("acc-002", "", None),
    ("店铺003", None, "13800138000"),
    ("ＦＵＬＬ４", "Ｆｕｌｌ Ｗｉｄｔｈ", None),
    (" acc 005 ", "  ", "0086 13800138000"),
]
MEMBERSHIP = [
    ("acc-001", "ent-X1", "run-1"),
    ("acc-002", "ent-X1", "run-1"),
    ("店铺003", "ent-X1", "run-1"),
    ("ＦＵＬＬ４", "实体-2", "run-1"),
    (" acc 005 ", "ent-X3", "run-1"),
]
ENTITIES = [("ent-X1", 3, "run-1"), ("实体-2", 1, "run-1"), ("ent-X3", 1, "run-1")]
# 'a' < '店' in Spark's binary string order, so every pair below is ordered; 0 and 1 are
# the inclusive bounds of a probability.
EDGES = [
    ("acc-001", "acc-002", 1.0, 12.5, "run-1"),
    ("acc-002", "店铺003", 0.0, -3.0, "run-1"),
    ("acc-001", "店铺003", 0.93, 3.7, "run-1"),
]


# A run with no previous run to compare with runs every output check but those two.
FIRST_RUN_CHECKS = {k: v for k, v in OUTPUT_CHECKS.items() if k not in PREVIOUS_RUN_CHECKS}


def run_outputs(
    spark: SparkSession,
    *,
    accepted: Sequence[tuple[Any, ...]] = ACCEPTED,
    membership: Sequence[tuple[Any, ...]] = MEMBERSHIP,
    entities: Sequence[tuple[Any, ...]] = ENTITIES,
    edges: Sequence[tuple[Any, ...]] = EDGES,
    config: QualityConfig | None = None,
    previous: PreviousRun | None = None,
    run: QualityRun | None = None,
    scope: WriteScopes | None = None,
) -> QualityReport:
    return validate_outputs(
        accepted_accounts=spark.createDataFrame(accepted, ACCEPTED_SCHEMA),
        entity_membership=spark.createDataFrame(membership, MEMBERSHIP_SCHEMA),
        entities=spark.createDataFrame(entities, ENTITIES_SCHEMA),
        match_edges=spark.createDataFrame(edges, EDGES_SCHEMA),
        config=config or QualityConfig(),
        previous=previous,
        run=run,
        scope=scope,
    )


def outcomes(report: QualityReport) -> dict[str, tuple[str, bool]]:
    """Every check of the report: name -> (severity, success)."""
    return {result.check: (result.severity, result.success) for result in report.results}


def expected_outcomes(
    checks: Mapping[str, str], *failed: str, severities: Mapping[str, str] | None = None
) -> dict[str, tuple[str, bool]]:
    """Every check of a suite passing except `failed`, at default severities unless given."""
    assert set(failed) <= set(checks), f"not a check of this suite: {set(failed) - set(checks)}"
    merged = {**checks, **(severities or {})}
    return {check: (merged[check], check not in failed) for check in checks}


# Outputs suite ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_report(spark: SparkSession) -> QualityReport:
    return run_outputs(spark)


@pytest.fixture(scope="module")
def duplicated_membership_report(spark: SparkSession) -> QualityReport:
    return run_outputs(spark, membership=[*MEMBERSHIP, ("acc-002", "ent-X1", "run-1")])


def test_clean_outputs_pass_every_check(clean_report: QualityReport) -> None:
    assert outcomes(clean_report) == expected_outcomes(FIRST_RUN_CHECKS)
    assert clean_report.suite == "outputs"
    assert clean_report.success
    assert clean_report.failed_blocking == ()
    assert {result.check: result.observed for result in clean_report.results} == {
        "entity_membership.account_id_not_null": "0 null account_id in 5 rows",
        "entity_membership.account_id_unique": "0 rows share an account_id",
        "entity_membership.entity_id_not_null": "0 null entity_id in 5 rows",
        "entity_membership.covers_accepted_accounts": (
            "0 account ids missing, repeated or not accepted"
        ),
        "entities.entity_id_not_null": "0 null entity_id in 3 rows",
        "entities.entity_id_unique": "0 rows share an entity_id",
        "entities.account_count_matches_membership": (
            "0 null account_count; 0 account_count below 1; "
            "0 entities whose account_count differs from membership"
        ),
        "entities.account_count_below_max": "largest entity has 3 accounts (bound 1000)",
        "match_edges.probability_in_unit_interval": (
            "0 null match_probability in 3 rows; 0 match_probability outside [0, 1]"
        ),
        "match_edges.ordered_pair": "0 pairs without account_id_l < account_id_r",
        "match_edges.refers_to_known_accounts": "0 edge endpoints not among accepted accounts",
        "match_edges.pair_unique": "0 rows repeat a pair",
    }


def test_duplicated_membership_row_fails_uniqueness_coverage_and_counts(
    duplicated_membership_report: QualityReport,
) -> None:
    # The extra row also makes entity e-1 hold 4 membership rows against account_count 3.
    assert outcomes(duplicated_membership_report) == expected_outcomes(
        FIRST_RUN_CHECKS,
        "entity_membership.account_id_unique",
        "entity_membership.covers_accepted_accounts",
        "entities.account_count_matches_membership",
    )
    assert not duplicated_membership_report.success
    assert {r.check: r.observed for r in duplicated_membership_report.failed_blocking} == {
        "entity_membership.account_id_unique": "2 rows share an account_id",
        "entity_membership.covers_accepted_accounts": (
            "1 account ids missing, repeated or not accepted"
        ),
        "entities.account_count_matches_membership": (
            "0 null account_count; 0 account_count below 1; "
            "1 entities whose account_count differs from membership"
        ),
    }


def test_raise_for_blocking_names_failed_checks(
    duplicated_membership_report: QualityReport, clean_report: QualityReport
) -> None:
    with pytest.raises(QualityCheckError, match=r"entity_membership\.account_id_unique"):
        duplicated_membership_report.raise_for_blocking()
    clean_report.raise_for_blocking()


def test_report_json_holds_counts_but_no_row_values(
    duplicated_membership_report: QualityReport,
) -> None:
    text = duplicated_membership_report.to_json()
    document = json.loads(text)
    assert document["suite"] == "outputs"
    assert document["success"] is False
    assert [result["check"] for result in document["results"]] == list(FIRST_RUN_CHECKS)
    assert set(document["raw"]) == {
        "entity_membership",
        "membership_coverage_problems",
        "entities",
        "entity_size_problems",
        "match_edges",
        "unknown_edge_endpoints",
    }
    for account_id, *_ in ACCEPTED:
        assert account_id not in text


def test_account_missing_from_membership_fails_coverage(spark: SparkSession) -> None:
    # The singleton entity e-3 goes with its only account, so entity counts still agree.
    report = run_outputs(spark, membership=MEMBERSHIP[:-1], entities=ENTITIES[:-1])
    assert outcomes(report) == expected_outcomes(
        FIRST_RUN_CHECKS, "entity_membership.covers_accepted_accounts"
    )


def test_probability_above_one_null_or_nan_fails(spark: SparkSession) -> None:
    # NaN sorts above every double in Spark, so it is outside [0, 1] too.
    edges = [
        ("acc-001", "acc-002", 1.2, 12.5, "run-1"),
        ("acc-002", "店铺003", None, -3.0, "run-1"),
        ("acc-001", "店铺003", math.nan, 3.7, "run-1"),
    ]
    report = run_outputs(spark, edges=edges)
    assert outcomes(report) == expected_outcomes(
        FIRST_RUN_CHECKS, "match_edges.probability_in_unit_interval"
    )
    assert [r.observed for r in report.failed] == [
        "1 null match_probability in 3 rows; 2 match_probability outside [0, 1]"
    ]


def test_no_edges_at_all_pass_and_read_as_zero_not_none(spark: SparkSession) -> None:
    # GX reports no unexpected count for a frame without rows.
    report = run_outputs(spark, edges=[])
    assert outcomes(report) == expected_outcomes(FIRST_RUN_CHECKS)
    observed = {result.check: result.observed for result in report.results}
    assert observed["match_edges.probability_in_unit_interval"] == (
        "0 null match_probability in 0 rows; 0 match_probability outside [0, 1]"
    )
    assert observed["match_edges.pair_unique"] == "0 rows repeat a pair"


def test_edge_with_left_id_above_right_fails_ordering(spark: SparkSession) -> None:
    edges = [*EDGES[:-1], ("店铺003", "acc-001", 0.93, 3.7, "run-1")]
    report = run_outputs(spark, edges=edges)
    assert outcomes(report) == expected_outcomes(FIRST_RUN_CHECKS, "match_edges.ordered_pair")


def test_edge_to_unknown_account_fails_referential_check(spark: SparkSession) -> None:
    edges = [*EDGES, ("acc-002", "zz-unknown", 0.8, 2.0, "run-1")]
    report = run_outputs(spark, edges=edges)
    assert outcomes(report) == expected_outcomes(
        FIRST_RUN_CHECKS, "match_edges.refers_to_known_accounts"
    )
    assert [r.observed for r in report.failed] == ["1 edge endpoints not among accepted accounts"]


def test_warn_failures_do_not_block(spark: SparkSession) -> None:
    # ordered_pair fails and is overridden to warn; the size bound of 2 trips the warn-level
    # entities.account_count_below_max (entity e-1 has 3 accounts).
    config = QualityConfig.from_mapping(
        {"severities": {"match_edges.ordered_pair": "warn"}, "max_entity_accounts": 2}
    )
    edges = [*EDGES[:-1], ("店铺003", "acc-001", 0.93, 3.7, "run-1")]
    report = run_outputs(spark, edges=edges, config=config)
    assert outcomes(report) == expected_outcomes(
        FIRST_RUN_CHECKS,
        "match_edges.ordered_pair",
        "entities.account_count_below_max",
        severities={"match_edges.ordered_pair": "warn"},
    )
    assert report.success
    assert report.failed_blocking == ()
    assert {r.check: r.observed for r in report.failed} == {
        "entities.account_count_below_max": "largest entity has 3 accounts (bound 2)",
        "match_edges.ordered_pair": "1 pairs without account_id_l < account_id_r",
    }
    report.raise_for_blocking()


# What an incremental run wrote: entity ent-X1 (its three accounts and their edges), or
# entity 实体-2 (its one account, no edge).
RING = (["acc-001", "acc-002", "店铺003"], ["ent-X1"], [(a, b) for a, b, *_ in EDGES])
SINGLE = (["ＦＵＬＬ４"], ["实体-2"], [])
SCOPED_FRAMES = {
    "entity_membership",
    "membership_rows",
    "membership_coverage_problems",
    "entities",
    "entity_sizes",
    "entity_size_problems",
    "match_edges",
    "unknown_edge_endpoints",
}


def write_scopes(
    spark: SparkSession,
    written: tuple[list[str], list[str], list[tuple[str, str]]],
    *,
    broadcast: bool = False,
) -> WriteScopes:
    accounts, entities, pairs = written
    ids = spark.createDataFrame([(a,) for a in accounts], "account_id string")
    return WriteScopes(
        accounts=ids,
        entities=spark.createDataFrame([(e,) for e in entities], "entity_id string"),
        edges=spark.createDataFrame(pairs, "account_id_l string, account_id_r string"),
        state=ids,
        broadcast=broadcast,
    )


def test_scoped_checks_read_the_written_rows_and_count_the_whole_tables(
    spark: SparkSession,
) -> None:
    report = run_outputs(spark, scope=write_scopes(spark, RING))
    assert outcomes(report) == expected_outcomes(FIRST_RUN_CHECKS)
    assert set(json.loads(report.to_json())["raw"]) == SCOPED_FRAMES
    observed = {result.check: result.observed for result in report.results}
    assert observed["entity_membership.account_id_not_null"] == "0 null account_id in 3 rows"
    assert observed["entity_membership.covers_accepted_accounts"] == (
        "5 membership rows for 5 accepted accounts; 0 account ids missing, repeated or not accepted"
    )
    assert observed["entities.entity_id_not_null"] == "0 null entity_id in 1 rows"
    assert observed["match_edges.probability_in_unit_interval"] == (
        "0 null match_probability in 3 rows; 0 match_probability outside [0, 1]"
    )
    # The largest entity is the whole table's.
    assert observed["entities.account_count_below_max"] == (
        "largest entity has 3 accounts (bound 1000)"
    )


@pytest.mark.parametrize(
    ("written", "failed"),
    [
        (
            RING,
            (
                "entity_membership.entity_id_not_null",
                "entities.account_count_matches_membership",
            ),
        ),
        # The row is outside what the run wrote: the base run's row, checked by that run.
        (SINGLE, ()),
    ],
    ids=["written", "not-written"],
)
def test_scoped_checks_find_a_broken_row_the_run_wrote(
    spark: SparkSession, written: Any, failed: tuple[str, ...]
) -> None:
    membership = [("acc-001", None, "run-1"), *MEMBERSHIP[1:]]
    report = run_outputs(spark, membership=membership, scope=write_scopes(spark, written))
    assert outcomes(report) == expected_outcomes(FIRST_RUN_CHECKS, *failed)


def test_scoped_checks_count_an_account_missing_outside_the_written_rows(
    spark: SparkSession,
) -> None:
    report = run_outputs(
        spark,
        membership=MEMBERSHIP[:-1],
        entities=ENTITIES[:-1],
        scope=write_scopes(spark, RING),
    )
    assert outcomes(report) == expected_outcomes(
        FIRST_RUN_CHECKS, "entity_membership.covers_accepted_accounts"
    )
    assert [r.observed for r in report.failed] == [
        "4 membership rows for 5 accepted accounts; 0 account ids missing, repeated or not accepted"
    ]


def test_scoped_checks_find_repeated_and_unknown_written_edges(spark: SparkSession) -> None:
    edges = [*EDGES, EDGES[0], ("acc-002", "zz-unknown", 0.8, 2.0, "run-1")]
    accounts, entities, pairs = RING
    written = (accounts, entities, [*pairs, ("acc-002", "zz-unknown")])
    # Broadcast scopes (the job's when they are small): the same findings.
    report = run_outputs(spark, edges=edges, scope=write_scopes(spark, written, broadcast=True))
    assert outcomes(report) == expected_outcomes(
        FIRST_RUN_CHECKS, "match_edges.refers_to_known_accounts", "match_edges.pair_unique"
    )
    assert {r.check: r.observed for r in report.failed} == {
        "match_edges.refers_to_known_accounts": "1 edge endpoints not among accepted accounts",
        "match_edges.pair_unique": "2 rows repeat a pair",
    }


def test_scoped_checks_find_a_written_entity_whose_count_differs_and_bound_the_largest(
    spark: SparkSession,
) -> None:
    # Entity 实体-2 (written) claims 2 accounts for its 1 membership row; entity ent-X1 (3
    # accounts, not written) is above the bound of 2: its size still counts.
    entities = [ENTITIES[0], ("实体-2", 2, "run-1"), ENTITIES[2]]
    config = QualityConfig.from_mapping({"max_entity_accounts": 2})
    report = run_outputs(spark, entities=entities, config=config, scope=write_scopes(spark, SINGLE))
    assert outcomes(report) == expected_outcomes(
        FIRST_RUN_CHECKS,
        "entities.account_count_matches_membership",
        "entities.account_count_below_max",
    )
    assert {r.check: r.observed for r in report.failed} == {
        "entities.account_count_matches_membership": (
            "0 null account_count; 0 account_count below 1; "
            "1 entities whose account_count differs from membership"
        ),
        "entities.account_count_below_max": "largest entity has 3 accounts (bound 2)",
    }


def test_outputs_missing_column_is_reported_with_the_columns_found(spark: SparkSession) -> None:
    entities = spark.createDataFrame(ENTITIES, ENTITIES_SCHEMA).drop(cols.ACCOUNT_COUNT)
    with pytest.raises(ResolutionError, match=r"entities lacks column\(s\) account_count"):
        validate_outputs(
            accepted_accounts=spark.createDataFrame(ACCEPTED, ACCEPTED_SCHEMA),
            entity_membership=spark.createDataFrame(MEMBERSHIP, MEMBERSHIP_SCHEMA),
            entities=entities,
            match_edges=spark.createDataFrame(EDGES, EDGES_SCHEMA),
            config=QualityConfig(),
        )


def test_check_that_gx_cannot_evaluate_raises_instead_of_failing(spark: SparkSession) -> None:
    edges = spark.createDataFrame(
        [("acc-001", "acc-002", "0.97")],
        "account_id_l string, account_id_r string, match_probability string",
    )
    with pytest.raises(
        ResolutionError,
        match=(
            r"could not evaluate quality check\(s\): "
            r"match_edges\.probability_in_unit_interval on match_edges: .*StringType"
        ),
    ):
        validate_outputs(
            accepted_accounts=spark.createDataFrame(ACCEPTED, ACCEPTED_SCHEMA),
            entity_membership=spark.createDataFrame(MEMBERSHIP, MEMBERSHIP_SCHEMA),
            entities=spark.createDataFrame(ENTITIES, ENTITIES_SCHEMA),
            match_edges=edges,
            config=QualityConfig(),
        )


# Inputs suite -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("accounts", "failed"),
    [
        pytest.param(ACCEPTED, (), id="clean"),
        pytest.param(
            [*ACCEPTED, (None, "无名", None)], ("accounts.account_id_not_null",), id="null_id"
        ),
        pytest.param(
            [*ACCEPTED, ("店铺003", "重复", None)], ("accounts.account_id_unique",), id="duplicate"
        ),
        pytest.param(
            [*ACCEPTED, ("", None, None), ("\t ", None, None)],
            ("accounts.account_id_not_empty",),
            id="empty_and_blank",
        ),
        pytest.param(
            [*ACCEPTED, (None, None, None), (None, None, None), ("acc-001", None, None)],
            ("accounts.account_id_not_null", "accounts.account_id_unique"),
            id="nulls_and_duplicate",
        ),
    ],
)
def test_input_suite(
    spark: SparkSession, accounts: list[tuple[Any, ...]], failed: tuple[str, ...]
) -> None:
    report = validate_inputs(
        spark.createDataFrame(accounts, ACCEPTED_SCHEMA), config=QualityConfig()
    )
    assert report.suite == "inputs"
    assert outcomes(report) == expected_outcomes(INPUT_CHECKS, *failed)
    assert report.success is (not failed)


def test_input_suite_on_no_rows_only_warns(spark: SparkSession) -> None:
    report = validate_inputs(spark.createDataFrame([], ACCEPTED_SCHEMA), config=QualityConfig())
    assert outcomes(report) == expected_outcomes(INPUT_CHECKS, "accounts.row_count_positive")
    assert report.success
    assert [r.observed for r in report.failed] == ["0 rows"]


def test_input_suite_missing_account_id_is_an_input_error(spark: SparkSession) -> None:
    accounts = spark.createDataFrame(ACCEPTED, ACCEPTED_SCHEMA).drop(cols.ACCOUNT_ID)
    with pytest.raises(InputError, match=r"found: shop_name, phone"):
        validate_inputs(accounts, config=QualityConfig())


# Preparation ------------------------------------------------------------------------------
def assert_rows(actual: DataFrame, expected: DataFrame) -> None:
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_flag_blank_account_ids(spark: SparkSession) -> None:
    accounts = spark.createDataFrame(
        [("acc-001",), ("",), (" \t",), (None,), ("　",), ("店铺",), (" a ",)], "account_id string"
    )
    # Tab and the full-width (ideographic) space U+3000 are white space too.
    expected = spark.createDataFrame(
        [
            ("acc-001", False),
            ("", True),
            (" \t", True),
            (None, None),
            ("　", True),
            ("店铺", False),
            (" a ", False),
        ],
        "account_id string, account_id_blank boolean",
    )
    assert_rows(flag_blank_account_ids(accounts), expected)


def test_find_membership_coverage_problems(spark: SparkSession) -> None:
    accepted = spark.createDataFrame(ACCEPTED, ACCEPTED_SCHEMA)
    membership = spark.createDataFrame(
        [
            ("acc-001", "e-1", "run-1"),
            ("acc-002", "e-1", "run-1"),
            ("acc-002", "e-1", "run-1"),
            ("店铺003", "e-1", "run-1"),
            ("ＦＵＬＬ４", "实体-2", "run-1"),
            ("ghost", "e-9", "run-1"),
            (None, "e-9", "run-1"),
        ],
        MEMBERSHIP_SCHEMA,
    )
    expected = spark.createDataFrame(
        [("acc-002", True, 2), (" acc 005 ", True, 0), ("ghost", False, 1), (None, False, 1)],
        "account_id string, in_accepted boolean, membership_rows long",
    )
    assert_rows(find_membership_coverage_problems(accepted, entity_membership=membership), expected)


def test_find_entity_size_problems(spark: SparkSession) -> None:
    entities = spark.createDataFrame(
        [("e-1", 2, "run-1"), ("实体-2", 1, "run-1"), ("e-3", None, "run-1"), ("e-4", 1, "run-1")],
        ENTITIES_SCHEMA,
    )
    membership = spark.createDataFrame(
        [
            ("acc-001", "e-1", "run-1"),
            ("acc-002", "e-1", "run-1"),
            ("店铺003", "e-1", "run-1"),
            ("ＦＵＬＬ４", "实体-2", "run-1"),
            (" acc 005 ", "e-3", "run-1"),
            ("acc-006", None, "run-1"),
        ],
        MEMBERSHIP_SCHEMA,
    )
    expected = spark.createDataFrame(
        [("e-1", 2, 3), ("e-3", None, 1), ("e-4", 1, 0), (None, None, 1)],
        "entity_id string, account_count long, membership_rows long",
    )
    assert_rows(find_entity_size_problems(entities, entity_membership=membership), expected)


def test_flag_ordered_pairs(spark: SparkSession) -> None:
    edges = spark.createDataFrame(
        [
            ("acc-001", "acc-002", 0.9, 1.0, "run-1"),
            ("acc-002", "acc-001", 0.9, 1.0, "run-1"),
            ("acc-001", "acc-001", 0.9, 1.0, "run-1"),
            ("acc-001", "店铺003", None, None, "run-1"),
            (None, "acc-001", 0.9, 1.0, "run-1"),
            ("", "acc-001", 0.9, 1.0, "run-1"),
        ],
        EDGES_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            ("acc-001", "acc-002", 0.9, True),
            ("acc-002", "acc-001", 0.9, False),
            ("acc-001", "acc-001", 0.9, False),
            ("acc-001", "店铺003", None, True),
            (None, "acc-001", 0.9, False),
            ("", "acc-001", 0.9, True),
        ],
        "account_id_l string, account_id_r string, match_probability double, pair_ordered boolean",
    )
    assert_rows(flag_ordered_pairs(edges), expected)


def test_find_unknown_edge_endpoints(spark: SparkSession) -> None:
    accepted = spark.createDataFrame(ACCEPTED, ACCEPTED_SCHEMA)
    edges = spark.createDataFrame(
        [
            ("acc-001", "店铺003", 0.9, 1.0, "run-1"),
            ("acc-001", "zz-unknown", 0.9, 1.0, "run-1"),
            (None, "acc 005", 0.9, 1.0, "run-1"),
            ("ＦＵＬＬ４", "ｚｚ", 0.9, 1.0, "run-1"),
        ],
        EDGES_SCHEMA,
    )
    # "acc 005" is not " acc 005 ": ids are compared as they are, untrimmed.
    expected = spark.createDataFrame(
        [("zz-unknown",), (None,), ("acc 005",), ("ｚｚ",)], "account_id string"
    )
    assert_rows(find_unknown_edge_endpoints(edges, accepted_accounts=accepted), expected)


# Config -----------------------------------------------------------------------------------
def test_config_defaults() -> None:
    config = QualityConfig.from_mapping(None)
    assert config == QualityConfig()
    assert config.max_entity_accounts == 1000
    assert {check: config.severity_of(check) for check in OUTPUT_CHECKS} == dict(OUTPUT_CHECKS)
    assert config.severity_of("accounts.row_count_positive") == "warn"
    assert config.severity_of("accounts.account_id_unique") == "fail"


def test_config_override_and_empty_yaml_section() -> None:
    config = QualityConfig.from_mapping(
        {"severities": {"match_edges.pair_unique": "fail"}, "max_entity_accounts": 50}
    )
    assert config.severity_of("match_edges.pair_unique") == "fail"
    assert config.max_entity_accounts == 50
    assert QualityConfig.from_mapping({"severities": None}) == QualityConfig()
    with pytest.raises(TypeError):
        config.severities["match_edges.pair_unique"] = "warn"  # type: ignore[index]


def test_config_unknown_check_is_named_with_every_other_problem() -> None:
    with pytest.raises(ConfigError) as raised:
        QualityConfig.from_mapping(
            {
                "severities": {
                    "match_edges.no_such_check": "warn",
                    "entities.entity_id_unique": "error",
                },
                "max_entity_accounts": True,
                "treshold": 3,
            }
        )
    message = str(raised.value)
    assert "quality.severities: unknown check 'match_edges.no_such_check'" in message
    assert (
        "quality.severities.entities.entity_id_unique: severity 'error' is not one of fail, warn"
        in (message)
    )
    assert "quality.max_entity_accounts: True is not a positive integer" in message
    assert "quality.treshold: unknown setting" in message


def test_config_data_docs_switch() -> None:
    assert QualityConfig().data_docs is True
    assert QualityConfig.from_mapping({"data_docs": False}).data_docs is False
    with pytest.raises(ConfigError, match="quality.data_docs: expected true or false, got 'no'"):
        QualityConfig.from_mapping({"data_docs": "no", "max_entity_accounts": 5})
    with pytest.raises(ConfigError, match="quality.data_docs: expected true or false, got 1"):
        QualityConfig(data_docs=1)  # type: ignore[arg-type]


def test_config_incremental_outputs_setting() -> None:
    assert QualityConfig().incremental_outputs == "changed"
    assert QualityConfig.from_mapping({"incremental_outputs": "whole"}).incremental_outputs == (
        "whole"
    )
    with pytest.raises(
        ConfigError,
        match="quality.incremental_outputs: expected one of changed, whole, got 'all'",
    ):
        QualityConfig.from_mapping({"incremental_outputs": "all"})


def test_config_built_directly_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"unknown check 'accounts\.typo'"):
        QualityConfig(severities={"accounts.typo": "warn"})


def test_config_rejects_a_non_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping, got list"):
        QualityConfig.from_mapping(["severities"])  # type: ignore[arg-type]


def test_entities_are_compared_with_the_previous_run(spark: SparkSession) -> None:
    # The clean outputs have 3 entities, the largest of 3 accounts.
    steady = run_outputs(spark, previous=PreviousRun("run-0", entities=3, largest_entity=2))
    assert outcomes(steady) == expected_outcomes(OUTPUT_CHECKS)
    jumped = run_outputs(spark, previous=PreviousRun("run-0", entities=10, largest_entity=1))
    assert outcomes(jumped) == expected_outcomes(OUTPUT_CHECKS, *PREVIOUS_RUN_CHECKS)
    assert jumped.success and not jumped.failed_blocking  # warnings only, by default
    observed = {result.check: result.observed for result in jumped.results}
    assert observed["entities.largest_within_growth_of_previous_run"] == (
        "largest entity has 3 accounts; run run-0 had 1 (bound 2: x2)"
    )
    assert observed["entities.count_within_change_of_previous_run"] == (
        "3 entities; run run-0 had 10 (bounds 5-16)"
    )


# Data Docs --------------------------------------------------------------------------------
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _site_text(folder: Path) -> str:
    """The site's pages, without the random UUIDs GX gives its page elements.

    A UUID such as ``cbbf5ebb-8433-4669-b49e-1cd547372d6b`` holds ``e-1`` and could hold
    ``acc-001``: left in, it would make the no-row-value checks fail by chance.
    """
    pages = "\n".join(page.read_text(encoding="utf-8") for page in sorted(folder.rglob("*.html")))
    return _UUID.sub("<uuid>", pages)


def test_data_docs_show_both_suites_of_a_run_and_no_row_value(
    spark: SparkSession, tmp_path: Path
) -> None:
    # "profiling" in the run name: GX's default filter would hide such a run's validations.
    checks = QualityRun("run-profiling-7")
    accounts = spark.createDataFrame([*ACCEPTED, ACCEPTED[0]], ACCEPTED_SCHEMA)
    inputs = validate_inputs(accounts, config=QualityConfig(), run=checks)
    duplicated = [*MEMBERSHIP, ("acc-002", "ent-X1", "run-1")]
    outputs = run_outputs(spark, membership=duplicated, run=checks)
    assert not inputs.success and not outputs.success  # failed checks: the pages say why
    folder = tmp_path / "data_docs"
    (folder / "stale").mkdir(parents=True)
    (folder / "index.html").write_text("an earlier build", encoding="utf-8")
    (folder / "stale" / "page.html").write_text("an earlier build", encoding="utf-8")

    index = checks.build_data_docs(folder)

    assert index == folder / "index.html"
    assert not (folder / "stale").exists()  # replaced, not added to
    # validations/SUITE/FRAME/RUN_NAME/RUN_TIME/BATCH.html: one page per validated frame.
    validations = folder / "validations"
    pages = [p.relative_to(validations).parts for p in validations.rglob("*.html")]
    assert sorted(page[:3] for page in pages if len(page) == 5) == [
        ("inputs", "accounts", "run-profiling-7"),
        *[
            ("outputs", frame, "run-profiling-7")
            for frame in sorted(json.loads(outputs.to_json())["raw"])
        ],
    ]
    text = _site_text(folder)
    assert "run-profiling-7" in text
    for account_id, *_ in ACCEPTED:
        assert account_id.strip() not in text
    for entity_id in ("ent-X1", "实体-2", "ent-X3"):
        assert entity_id not in text
    # Only the images a page names are kept (GX copies 3.4 MB of tutorial GIFs otherwise).
    kept = sorted(p.name for p in (folder / "static" / "images").iterdir())
    assert "favicon.ico" in kept and not [name for name in kept if name.endswith(".gif")]
    assert all(name in text for name in kept)


def test_data_docs_never_replace_a_folder_that_is_no_site(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ResolutionError, match="holds files but no Data Docs site"):
        QualityRun("run-1").build_data_docs(tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_data_docs_failure_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from jobs.resolve_entities import _publish_data_docs

    class Broken(QualityRun):
        def build_data_docs(self, folder: Path) -> Path:
            raise OSError("disk full")

    class Tracker:
        def log_artifacts(self, folder: Path, artifact_path: str) -> None:
            raise AssertionError("nothing to log")

    with caplog.at_level(logging.WARNING, logger="jobs.resolve_entities"):
        _publish_data_docs(Broken("run-1"), tmp_path / "docs", Tracker())  # type: ignore[arg-type]
    assert "Great Expectations Data Docs not written" in caplog.text
    assert "OSError: disk full" in caplog.text
