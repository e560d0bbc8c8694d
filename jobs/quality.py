"""Data-quality checks on the job's inputs and outputs, run by Great Expectations 1.x.

Spark prepares the frames to check (problem rows from joins, derived flags: the small
`find_*` / `flag_*` functions below, which run nothing); Great Expectations evaluates every
check, one expectation suite and one validation per prepared frame, through an ephemeral data
context on the caller's Spark session. A check is one named rule (`accounts.account_id_unique`)
made of one or more expectations; its severity is `fail` (blocking: the job exits 3) or
`warn`, by default as in `DEFAULT_SEVERITIES`, overridable per check in the config.

Results hold counts only: no row value is fetched to the driver or written into a report,
since ids and attributes may be sensitive. Nothing is cached here (GX's own persisting of
batches is turned off); a validation runs one to four Spark jobs per frame, about fourteen
for the outputs, so a caller whose frames are expensive to recompute persists them first.

The job validates both suites of a run through one `QualityRun`, which keeps the validation
results so that `QualityRun.build_data_docs` can render them as one Great Expectations Data Docs
site (`quality.data_docs`); the pages show what the results hold: counts, never a row value.

The job entry point sets `GX_ANALYTICS_ENABLED=false` before any validation runs (GX 1.24.1
ships no analytics code any more; other 1.x releases read the variable).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features import columns as cols
from resolution.errors import ConfigError, InputError, QualityCheckError, ResolutionError

# Great Expectations is imported where it is used, not with this module (which `jobs.config`
# imports for `QualityConfig`): importing it takes some 4 s of CPU, which the job spends while
# the Spark session's JVM starts (`jobs.resolve_entities`), not before.
if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.metadata_types import FailureSeverity

    from resolution.incremental import WriteScopes

logger = logging.getLogger(__name__)

Severity = Literal["fail", "warn"]
FAIL: Final = "fail"
WARN: Final = "warn"
SEVERITIES: Final[tuple[Severity, ...]] = (FAIL, WARN)

INPUTS: Final = "inputs"
OUTPUTS: Final = "outputs"

# Columns derived only for these checks (never written to a table).
ACCOUNT_ID_BLANK: Final = "account_id_blank"
PAIR_ORDERED: Final = "pair_ordered"
IN_ACCEPTED: Final = "in_accepted"
MEMBERSHIP_ROWS: Final = "membership_rows"

# Check names ------------------------------------------------------------------------------
ACCOUNTS_ACCOUNT_ID_NOT_NULL: Final = "accounts.account_id_not_null"
ACCOUNTS_ACCOUNT_ID_NOT_EMPTY: Final = "accounts.account_id_not_empty"
ACCOUNTS_ACCOUNT_ID_UNIQUE: Final = "accounts.account_id_unique"
ACCOUNTS_ROW_COUNT_POSITIVE: Final = "accounts.row_count_positive"

MEMBERSHIP_ACCOUNT_ID_NOT_NULL: Final = "entity_membership.account_id_not_null"
MEMBERSHIP_ACCOUNT_ID_UNIQUE: Final = "entity_membership.account_id_unique"
MEMBERSHIP_ENTITY_ID_NOT_NULL: Final = "entity_membership.entity_id_not_null"
MEMBERSHIP_COVERS_ACCEPTED: Final = "entity_membership.covers_accepted_accounts"
ENTITIES_ENTITY_ID_NOT_NULL: Final = "entities.entity_id_not_null"
ENTITIES_ENTITY_ID_UNIQUE: Final = "entities.entity_id_unique"
ENTITIES_COUNT_MATCHES_MEMBERSHIP: Final = "entities.account_count_matches_membership"
ENTITIES_COUNT_BELOW_MAX: Final = "entities.account_count_below_max"
EDGES_PROBABILITY_IN_UNIT_INTERVAL: Final = "match_edges.probability_in_unit_interval"
EDGES_ORDERED_PAIR: Final = "match_edges.ordered_pair"
EDGES_REFER_TO_KNOWN_ACCOUNTS: Final = "match_edges.refers_to_known_accounts"
EDGES_PAIR_UNIQUE: Final = "match_edges.pair_unique"
ENTITIES_LARGEST_GROWTH: Final = "entities.largest_within_growth_of_previous_run"
ENTITIES_COUNT_CHANGE: Final = "entities.count_within_change_of_previous_run"
PREVIOUS_RUN_CHECKS: Final = (ENTITIES_LARGEST_GROWTH, ENTITIES_COUNT_CHANGE)

INPUT_CHECKS: Final[Mapping[str, Severity]] = MappingProxyType(
    {
        ACCOUNTS_ACCOUNT_ID_NOT_NULL: FAIL,
        ACCOUNTS_ACCOUNT_ID_NOT_EMPTY: FAIL,
        ACCOUNTS_ACCOUNT_ID_UNIQUE: FAIL,
        ACCOUNTS_ROW_COUNT_POSITIVE: WARN,
    }
)
OUTPUT_CHECKS: Final[Mapping[str, Severity]] = MappingProxyType(
    {
        MEMBERSHIP_ACCOUNT_ID_NOT_NULL: FAIL,
        MEMBERSHIP_ACCOUNT_ID_UNIQUE: FAIL,
        MEMBERSHIP_ENTITY_ID_NOT_NULL: FAIL,
        MEMBERSHIP_COVERS_ACCEPTED: FAIL,
        ENTITIES_ENTITY_ID_NOT_NULL: FAIL,
        ENTITIES_ENTITY_ID_UNIQUE: FAIL,
        ENTITIES_COUNT_MATCHES_MEMBERSHIP: FAIL,
        # Giant entities are the failure most reported of entity resolution (hub values,
        # blanks); worth a look, not a reason to withhold the run.
        ENTITIES_COUNT_BELOW_MAX: WARN,
        EDGES_PROBABILITY_IN_UNIT_INTERVAL: FAIL,
        EDGES_ORDERED_PAIR: FAIL,
        EDGES_REFER_TO_KNOWN_ACCOUNTS: FAIL,
        # A repeated pair does not change the clustering; it points at a blocking bug.
        EDGES_PAIR_UNIQUE: WARN,
        # Against the previous succeeded run: a jump is worth a look (a new hub value, a
        # changed config), not by itself a wrong result.
        ENTITIES_LARGEST_GROWTH: WARN,
        ENTITIES_COUNT_CHANGE: WARN,
    }
)
DEFAULT_SEVERITIES: Final[Mapping[str, Severity]] = MappingProxyType(
    {**INPUT_CHECKS, **OUTPUT_CHECKS}
)

DEFAULT_MAX_ENTITY_ACCOUNTS: Final = 1000
# Against the previous succeeded run: the largest entity may grow to this many times its size,
# and the number of entities may change by this share.
DEFAULT_MAX_LARGEST_GROWTH: Final = 2.0
DEFAULT_MAX_ENTITY_COUNT_CHANGE: Final = 0.5

# What an incremental run's output checks read (`QualityConfig.incremental_outputs`): the rows
# it wrote (its MERGE scopes) and whole-table counts, or every row of the tables.
CHANGED_ROWS: Final = "changed"
WHOLE_TABLES: Final = "whole"
INCREMENTAL_OUTPUTS: Final = (CHANGED_ROWS, WHOLE_TABLES)

# Java regex; (?U) makes \s match Unicode white space (U+3000 ideographic space included).
_BLANK_PATTERN: Final = r"(?U)^\s*$"

# Counts only: no row value reaches the report (values may be sensitive), and with no
# partial list to fill GX skips the Spark jobs that fetch unexpected values.
_RESULT_FORMAT: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "result_format": "BASIC",
        "partial_unexpected_count": 0,
        "exclude_unexpected_values": True,
    }
)


def _gx_severity(severity: Severity) -> FailureSeverity:
    """GX's severity of a check of `severity`: critical for `fail`, warning for `warn`."""
    from great_expectations.expectations.metadata_types import FailureSeverity

    return FailureSeverity.CRITICAL if severity == FAIL else FailureSeverity.WARNING


# Config -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QualityConfig:
    """Severity overrides and bounds of the quality checks, validated on construction.

    `severities` maps a check name to `fail` or `warn` and overrides `DEFAULT_SEVERITIES`
    for that check only. `max_entity_accounts` is the size above which an entity is reported
    by `entities.account_count_below_max`. `data_docs`: render each run's validations as
    Great Expectations Data Docs (`QualityRun.build_data_docs`). `incremental_outputs`: what
    an incremental run's output checks read: `changed`, the rows it wrote and whole-table
    counts (`validate_outputs(scope=...)`), or `whole`, every row of the tables.

    Example::

        config = QualityConfig.from_mapping(
            {"severities": {"match_edges.pair_unique": "fail"}, "max_entity_accounts": 500}
        )
        config.severity_of("match_edges.pair_unique")  # "fail"
    """

    severities: Mapping[str, str] = field(default_factory=dict)
    max_entity_accounts: int = DEFAULT_MAX_ENTITY_ACCOUNTS
    max_largest_growth: float = DEFAULT_MAX_LARGEST_GROWTH
    max_entity_count_change: float = DEFAULT_MAX_ENTITY_COUNT_CHANGE
    data_docs: bool = True
    incremental_outputs: str = CHANGED_ROWS

    def __post_init__(self) -> None:
        problems = _severity_problems(self.severities)
        problems.extend(_max_entity_accounts_problems(self.max_entity_accounts))
        problems.extend(_run_change_problems(self.max_largest_growth, self.max_entity_count_change))
        problems.extend(_data_docs_problems(self.data_docs))
        problems.extend(_incremental_outputs_problems(self.incremental_outputs))
        if problems:
            raise ConfigError(_config_message(problems))
        # A read-only copy, so that a frozen config stays frozen.
        object.__setattr__(self, "severities", MappingProxyType(dict(self.severities)))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> QualityConfig:
        """Build the config from the `quality` section of the YAML config (None: defaults).

        Accepted keys: `severities` (check name -> `fail` | `warn`), `max_entity_accounts`
        (positive integer), `max_largest_growth` (number >= 1), `max_entity_count_change`
        (number > 0), `data_docs` (boolean) and `incremental_outputs` (`changed` | `whole`).
        Every problem found is reported in one `ConfigError`.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(
                _config_message([f"quality: expected a mapping, got {type(raw).__name__}"])
            )
        problems: list[str] = []
        known_keys = (
            "severities",
            "max_entity_accounts",
            "max_largest_growth",
            "max_entity_count_change",
            "data_docs",
            "incremental_outputs",
        )
        problems.extend(
            f"quality.{key}: unknown setting (known: {', '.join(known_keys)})"
            for key in raw
            if key not in known_keys
        )
        severities = raw.get("severities")
        if severities is None:  # an empty `severities:` in YAML
            severities = {}
        if not isinstance(severities, Mapping):
            problems.append(
                f"quality.severities: expected a mapping of check name to severity, "
                f"got {type(severities).__name__}"
            )
            severities = {}
        problems.extend(_severity_problems(severities))
        max_entity_accounts = raw.get("max_entity_accounts", DEFAULT_MAX_ENTITY_ACCOUNTS)
        problems.extend(_max_entity_accounts_problems(max_entity_accounts))
        growth = raw.get("max_largest_growth", DEFAULT_MAX_LARGEST_GROWTH)
        change = raw.get("max_entity_count_change", DEFAULT_MAX_ENTITY_COUNT_CHANGE)
        problems.extend(_run_change_problems(growth, change))
        data_docs = raw.get("data_docs", True)
        problems.extend(_data_docs_problems(data_docs))
        incremental_outputs = raw.get("incremental_outputs", CHANGED_ROWS)
        problems.extend(_incremental_outputs_problems(incremental_outputs))
        if problems:
            raise ConfigError(_config_message(problems))
        return cls(
            severities=dict(severities),
            max_entity_accounts=max_entity_accounts,
            max_largest_growth=float(growth),
            max_entity_count_change=float(change),
            data_docs=data_docs,
            incremental_outputs=incremental_outputs,
        )

    def severity_of(self, check: str) -> Severity:
        """The severity of `check`: the override if there is one, else the default."""
        override = self.severities.get(check)
        if override is None:
            return DEFAULT_SEVERITIES[check]
        return FAIL if override == FAIL else WARN


def _severity_problems(severities: Mapping[Any, Any]) -> list[str]:
    problems: list[str] = []
    for check, severity in severities.items():
        if check not in DEFAULT_SEVERITIES:
            problems.append(
                f"quality.severities: unknown check {check!r} "
                f"(known: {', '.join(sorted(DEFAULT_SEVERITIES))})"
            )
        if severity not in SEVERITIES:
            problems.append(
                f"quality.severities.{check}: severity {severity!r} is not one of "
                f"{', '.join(SEVERITIES)}"
            )
    return problems


def _run_change_problems(growth: Any, change: Any) -> list[str]:
    problems = []
    if isinstance(growth, bool) or not isinstance(growth, int | float) or not growth >= 1.0:
        problems.append(f"quality.max_largest_growth: expected a number >= 1, got {growth!r}")
    if isinstance(change, bool) or not isinstance(change, int | float) or not change > 0.0:
        problems.append(f"quality.max_entity_count_change: expected a number > 0, got {change!r}")
    return problems


def _data_docs_problems(value: Any) -> list[str]:
    if not isinstance(value, bool):
        return [f"quality.data_docs: expected true or false, got {value!r}"]
    return []


def _incremental_outputs_problems(value: Any) -> list[str]:
    if value not in INCREMENTAL_OUTPUTS:
        return [
            f"quality.incremental_outputs: expected one of {', '.join(INCREMENTAL_OUTPUTS)}, "
            f"got {value!r}"
        ]
    return []


@dataclass(frozen=True)
class PreviousRun:
    """What the quality checks compare a run with: the previous succeeded run's number of
    entities and its largest entity (from its `runs` row)."""

    run_id: str
    entities: int
    largest_entity: int


def _max_entity_accounts_problems(value: Any) -> list[str]:
    # bool is an int subclass: `true` in YAML must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return [f"quality.max_entity_accounts: {value!r} is not a positive integer"]
    return []


def _config_message(problems: Sequence[str]) -> str:
    return "; ".join(problems)


# Results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """The verdict of one named check.

    `observed` says what was seen in a few words with counts only (never a row value).
    """

    suite: str
    check: str
    severity: str
    success: bool
    observed: str


@dataclass(frozen=True)
class QualityReport:
    """The checks of one suite, in a fixed order, with the raw GX results per frame."""

    suite: str
    results: tuple[CheckResult, ...]
    raw: dict[str, Any]

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """Every failed check, blocking or not."""
        return tuple(result for result in self.results if not result.success)

    @property
    def failed_blocking(self) -> tuple[CheckResult, ...]:
        """The failed checks of severity `fail`."""
        return tuple(result for result in self.failed if result.severity == FAIL)

    @property
    def success(self) -> bool:
        """True when no blocking check failed (failed `warn` checks are allowed)."""
        return not self.failed_blocking

    def raise_for_blocking(self) -> None:
        """Raise `QualityCheckError` naming every failed blocking check, if there is one."""
        if self.failed_blocking:
            raise QualityCheckError(
                f"blocking data-quality check(s) failed in suite {self.suite!r}: "
                + "; ".join(f"{r.check} ({r.observed})" for r in self.failed_blocking)
            )

    def to_json(self) -> str:
        """The report as JSON: suite, success, one object per check, raw GX results."""
        return json.dumps(
            {
                "suite": self.suite,
                "success": self.success,
                "results": [asdict(result) for result in self.results],
                "raw": self.raw,
            },
            ensure_ascii=False,
            sort_keys=True,
        )


# One run's context and its Data Docs --------------------------------------------------------
DATA_DOCS_SITE: Final = "run"


def _ephemeral_context() -> AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # tqdm bars on stderr would interleave with the job's log lines.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


class QualityRun:
    """The Great Expectations context of one job run.

    Every suite validated with `run=` this object goes through one ephemeral context, which
    keeps the validation results in memory under the GX run name `run_id`, so that
    `build_data_docs` renders them all as one Data Docs site. Each suite is validated once
    per `QualityRun` (GX refuses a second suite of the same name).

    Example::

        checks = QualityRun("run-1")
        report = validate_inputs(accounts, config=config, run=checks)
        checks.build_data_docs(Path("out/_quality/run-1/data_docs"))  # -> .../index.html
    """

    def __init__(self, run_id: str) -> None:
        from great_expectations.core.run_identifier import RunIdentifier

        self.run_id = run_id
        self.context = _ephemeral_context()
        # One run time for every suite: the Data Docs index lists them as one run.
        self.gx_run_id = RunIdentifier(run_name=run_id, run_time=datetime.now(UTC))

    def build_data_docs(self, folder: Path) -> Path:
        """Render this run's validation results and expectation suites as a Data Docs site in
        `folder` (replacing a site built there before); returns the site's `index.html`.

        The pages show what the results hold: expectations, success, counts and observed
        statistics, never a row value (`_RESULT_FORMAT` keeps unexpected values out).
        """
        if folder.exists():
            if any(folder.iterdir()) and not (folder / "index.html").is_file():
                raise ResolutionError(
                    f"{folder} holds files but no Data Docs site: not replacing it; choose "
                    "another folder or empty it"
                )
            shutil.rmtree(folder)
        site: dict[str, Any] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "site_section_builders": {
                # This run's results only; GX's default filter would drop a run whose name
                # contains "profiling" (its profiling section, which the job has none of).
                "validations": {"run_name_filter": {"equals": self.run_id}},
                "profiling": "None",
            },
        }
        if DATA_DOCS_SITE in self.context.list_data_docs_sites():
            self.context.update_data_docs_site(DATA_DOCS_SITE, site)
        else:
            self.context.add_data_docs_site(DATA_DOCS_SITE, site)
        self.context.build_data_docs(site_names=[DATA_DOCS_SITE])
        _drop_unused_images(folder)
        index = folder / "index.html"
        if not index.is_file():
            raise ResolutionError(f"Great Expectations built no Data Docs index at {index}")
        logger.info("Great Expectations Data Docs of run %s: %s", self.run_id, index)
        return index


def _drop_unused_images(folder: Path) -> None:
    """Delete the images of GX's static folder that no page or stylesheet of the site names
    (its tutorial GIFs: 3.4 MB of the 4 MB a site would otherwise take, in every run)."""
    images = folder / "static" / "images"
    if not images.is_dir():
        return
    pages = "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for path in folder.rglob("*")
        if path.suffix in (".html", ".css")
    )
    for image in images.iterdir():
        if image.is_file() and image.name not in pages:
            image.unlink()


# Preparation: DataFrame -> DataFrame, nothing runs ----------------------------------------
def flag_blank_account_ids(accounts: DataFrame) -> DataFrame:
    """Select `account_id` and add `account_id_blank`: true for '' or whitespace only.

    Whitespace is Unicode's (tab, full-width space U+3000 too), where Spark's `trim` strips
    only ASCII spaces. A null `account_id` gives a null flag (nulls have their own check).
    """
    return accounts.select(
        cols.ACCOUNT_ID,
        F.col(cols.ACCOUNT_ID).rlike(_BLANK_PATTERN).alias(ACCOUNT_ID_BLANK),
    )


def find_membership_coverage_problems(
    accepted_accounts: DataFrame, *, entity_membership: DataFrame
) -> DataFrame:
    """Accounts not covered exactly once: missing, duplicated, or not an accepted account.

    Returns `account_id`, `in_accepted` (bool), `membership_rows` (long), one row per
    offending account id, empty when membership covers the accepted accounts exactly once
    each. A null id on either side never counts as covered.
    """
    accepted_ids = (
        accepted_accounts.select(cols.ACCOUNT_ID).distinct().withColumn(IN_ACCEPTED, F.lit(True))
    )
    membership_rows = entity_membership.groupBy(cols.ACCOUNT_ID).agg(
        F.count(F.lit(1)).alias(MEMBERSHIP_ROWS)
    )
    in_accepted = F.coalesce(F.col(IN_ACCEPTED), F.lit(False))
    rows = F.coalesce(F.col(MEMBERSHIP_ROWS), F.lit(0).cast("long"))
    return (
        accepted_ids.join(membership_rows, on=cols.ACCOUNT_ID, how="full_outer")
        .select(cols.ACCOUNT_ID, in_accepted.alias(IN_ACCEPTED), rows.alias(MEMBERSHIP_ROWS))
        .where(~(F.col(IN_ACCEPTED) & (F.col(MEMBERSHIP_ROWS) == 1)))
    )


def find_entity_size_problems(entities: DataFrame, *, entity_membership: DataFrame) -> DataFrame:
    """Entities whose `account_count` differs from their number of membership rows.

    Returns `entity_id`, `account_count`, `membership_rows` (long, 0 when none), one row per
    offending entity id: an entity without members, members of an unknown entity, a null
    entity id or count. Equal counts per entity imply sum(account_count) == membership rows.
    """
    membership_rows = entity_membership.groupBy(cols.ENTITY_ID).agg(
        F.count(F.lit(1)).alias(MEMBERSHIP_ROWS)
    )
    counts_match = F.coalesce(F.col(cols.ACCOUNT_COUNT) == F.col(MEMBERSHIP_ROWS), F.lit(False))
    return (
        entities.select(cols.ENTITY_ID, cols.ACCOUNT_COUNT)
        .join(membership_rows, on=cols.ENTITY_ID, how="full_outer")
        .where(~counts_match)
        .select(
            cols.ENTITY_ID,
            cols.ACCOUNT_COUNT,
            F.coalesce(F.col(MEMBERSHIP_ROWS), F.lit(0).cast("long")).alias(MEMBERSHIP_ROWS),
        )
    )


def flag_ordered_pairs(match_edges: DataFrame) -> DataFrame:
    """Select the pair and probability columns and add `pair_ordered`: l < r, never null.

    A null id on either side gives false: such a pair is not ordered.
    """
    ordered = F.coalesce(F.col(cols.ACCOUNT_ID_L) < F.col(cols.ACCOUNT_ID_R), F.lit(False))
    return match_edges.select(
        cols.ACCOUNT_ID_L,
        cols.ACCOUNT_ID_R,
        cols.MATCH_PROBABILITY,
        ordered.alias(PAIR_ORDERED),
    )


def find_unknown_edge_endpoints(
    match_edges: DataFrame, *, accepted_accounts: DataFrame
) -> DataFrame:
    """Edge endpoints (`account_id`, one row per endpoint) that are not accepted accounts.

    Null endpoints are kept: a null id is no accepted account.
    """
    endpoints = match_edges.select(F.col(cols.ACCOUNT_ID_L).alias(cols.ACCOUNT_ID)).unionByName(
        match_edges.select(F.col(cols.ACCOUNT_ID_R).alias(cols.ACCOUNT_ID))
    )
    return endpoints.join(
        accepted_accounts.select(cols.ACCOUNT_ID), on=cols.ACCOUNT_ID, how="left_anti"
    )


# Suites -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Expect:
    """One expectation of a check; `observed` is formatted with the GX result's fields."""

    check: str
    expectation: Expectation
    observed: str


@dataclass(frozen=True)
class _FrameChecks:
    name: str
    frame: DataFrame
    expects: tuple[_Expect, ...]


def validate_inputs(
    accounts: DataFrame, *, config: QualityConfig, run: QualityRun | None = None
) -> QualityReport:
    """Validate the accepted accounts: ids present, non-empty, unique; some rows at all.

    Requires column `account_id`. Runs one GX validation (a few Spark jobs), in `run`'s
    context when given (kept for its Data Docs), else in a context of its own.

    Example::

        report = validate_inputs(accepted_accounts, config=QualityConfig.from_mapping(None))
        if not report.success:
            report.raise_for_blocking()
    """
    import great_expectations.expectations as gxe

    _require_columns(accounts, name=cols.ACCOUNTS, columns=(cols.ACCOUNT_ID,), error=InputError)
    frames = (
        _FrameChecks(
            name=cols.ACCOUNTS,
            frame=flag_blank_account_ids(accounts),
            expects=(
                _Expect(
                    ACCOUNTS_ACCOUNT_ID_NOT_NULL,
                    gxe.ExpectColumnValuesToNotBeNull(column=cols.ACCOUNT_ID),
                    "{unexpected_count} null account_id in {element_count} rows",
                ),
                _Expect(
                    ACCOUNTS_ACCOUNT_ID_NOT_EMPTY,
                    gxe.ExpectColumnValuesToBeInSet(column=ACCOUNT_ID_BLANK, value_set=[False]),
                    "{unexpected_count} empty or blank account_id",
                ),
                _Expect(
                    ACCOUNTS_ACCOUNT_ID_UNIQUE,
                    gxe.ExpectColumnValuesToBeUnique(column=cols.ACCOUNT_ID),
                    "{unexpected_count} rows share an account_id",
                ),
                _Expect(
                    ACCOUNTS_ROW_COUNT_POSITIVE,
                    gxe.ExpectTableRowCountToBeBetween(min_value=1),
                    "{observed_value} rows",
                ),
            ),
        ),
    )
    return _run_suite(INPUTS, frames, config=config, checks=INPUT_CHECKS, run=run)


def _against_previous(previous: PreviousRun | None, config: QualityConfig) -> tuple[_Expect, ...]:
    """The checks of this run's entities against the previous succeeded run's."""
    import great_expectations.expectations as gxe

    if previous is None:
        return ()
    largest = int(previous.largest_entity * config.max_largest_growth)
    low = int(previous.entities * (1.0 - config.max_entity_count_change))
    high = int(previous.entities * (1.0 + config.max_entity_count_change)) + 1
    return (
        _Expect(
            ENTITIES_LARGEST_GROWTH,
            gxe.ExpectColumnMaxToBeBetween(column=cols.ACCOUNT_COUNT, max_value=largest),
            "largest entity has {observed_value} accounts; run "
            f"{previous.run_id} had {previous.largest_entity} (bound {largest}: "
            f"x{config.max_largest_growth:g})",
        ),
        _Expect(
            ENTITIES_COUNT_CHANGE,
            gxe.ExpectTableRowCountToBeBetween(min_value=max(low, 0), max_value=high),
            "{observed_value} entities; run "
            f"{previous.run_id} had {previous.entities} (bounds {max(low, 0)}-{high})",
        ),
    )


def validate_outputs(
    *,
    accepted_accounts: DataFrame,
    entity_membership: DataFrame,
    entities: DataFrame,
    match_edges: DataFrame,
    config: QualityConfig,
    previous: PreviousRun | None = None,
    run: QualityRun | None = None,
    scope: WriteScopes | None = None,
) -> QualityReport:
    """Validate the output tables against each other and the accepted accounts (and, with
    `previous`, the entity sizes against the previous succeeded run's), in `run`'s context
    when given (kept for its Data Docs), else in a context of its own.

    Requires `account_id` (accepted_accounts); `account_id`, `entity_id` (entity_membership);
    `entity_id`, `account_count` (entities); `account_id_l`, `account_id_r`,
    `match_probability` (match_edges). Runs six GX validations, one per prepared frame.

    `scope`: the keys of the rows an incremental run wrote (its MERGE scopes; every other row
    of the tables is the previous run's, validated by it). The row checks then read those
    rows only: the membership of `scope.accounts` and their coverage of the accepted accounts
    among them, the entities of `scope.entities` and their member counts, the edges of
    `scope.edges` and their endpoints. What the rest cannot vouch for is checked on the whole
    tables, by counts: as many membership rows as accepted accounts (with the coverage of
    the scope, every accepted account once), and the largest entity and the number of
    entities (`entity_sizes`). Eight validations.

    Example::

        report = validate_outputs(
            accepted_accounts=accepted, entity_membership=membership, entities=entities,
            match_edges=edges, config=QualityConfig.from_mapping(None),
        )
        report.raise_for_blocking()
    """
    for name, frame, required in (
        ("accepted_accounts", accepted_accounts, (cols.ACCOUNT_ID,)),
        ("entity_membership", entity_membership, (cols.ACCOUNT_ID, cols.ENTITY_ID)),
        ("entities", entities, (cols.ENTITY_ID, cols.ACCOUNT_COUNT)),
        (
            "match_edges",
            match_edges,
            (cols.ACCOUNT_ID_L, cols.ACCOUNT_ID_R, cols.MATCH_PROBABILITY),
        ),
    ):
        _require_columns(frame, name=name, columns=required, error=ResolutionError)
    membership = entity_membership.select(cols.ACCOUNT_ID, cols.ENTITY_ID)
    entity_counts = entities.select(cols.ENTITY_ID, cols.ACCOUNT_COUNT)
    kept: list[DataFrame] = []  # persisted for the validations, released after them
    if scope is None:
        frames = _frames(
            members=membership,
            accepted=accepted_accounts,
            entities=entity_counts,
            entity_members=membership,
            edges=match_edges,
            known=accepted_accounts,
            config=config,
            previous=previous,
        )
    else:
        frames = _scoped_frames(
            scope,
            accepted_accounts=accepted_accounts.select(cols.ACCOUNT_ID),
            membership=membership,
            entities=entity_counts,
            match_edges=match_edges,
            config=config,
            previous=previous,
            kept=kept,
        )
    checks = OUTPUT_CHECKS
    if previous is None:  # a first run: nothing to compare with, so those checks are not run
        checks = MappingProxyType(
            {
                name: severity
                for name, severity in OUTPUT_CHECKS.items()
                if name not in PREVIOUS_RUN_CHECKS
            }
        )
    try:
        return _run_suite(OUTPUTS, frames, config=config, checks=checks, run=run)
    finally:
        for frame in kept:
            frame.unpersist()


def _scoped_frames(
    scope: WriteScopes,
    *,
    accepted_accounts: DataFrame,
    membership: DataFrame,
    entities: DataFrame,
    match_edges: DataFrame,
    config: QualityConfig,
    previous: PreviousRun | None,
    kept: list[DataFrame],
) -> list[_FrameChecks]:
    """The frames `validate_outputs` checks within `scope` (see there). The rows of the scope
    are persisted (added to `kept`, for the caller to release): Great Expectations computes
    each metric with a Spark job of its own, and each would otherwise scan the whole tables
    again for them (some 12 scans of the 1,000,000 membership rows at 1,000,000 accounts)."""
    import great_expectations.expectations as gxe

    def keys(frame: DataFrame, *names: str) -> DataFrame:
        narrow = frame.select(*names).distinct()
        return F.broadcast(narrow) if scope.broadcast else narrow

    def keep(frame: DataFrame) -> DataFrame:
        kept.append(frame.persist())
        return frame

    accounts = keys(scope.accounts, cols.ACCOUNT_ID)
    entity_ids = keys(scope.entities, cols.ENTITY_ID)
    pair = [cols.ACCOUNT_ID_L, cols.ACCOUNT_ID_R]
    members = keep(membership.join(accounts, on=cols.ACCOUNT_ID, how="left_semi"))
    entities_in = keep(entities.join(entity_ids, on=cols.ENTITY_ID, how="left_semi"))
    entity_members = keep(membership.join(entity_ids, on=cols.ENTITY_ID, how="left_semi"))
    edges = keep(
        match_edges.select(*pair, cols.MATCH_PROBABILITY).join(
            keys(scope.edges, *pair), on=pair, how="left_semi"
        )
    )
    endpoints = (
        edges.select(F.col(cols.ACCOUNT_ID_L).alias(cols.ACCOUNT_ID))
        .unionByName(edges.select(F.col(cols.ACCOUNT_ID_R).alias(cols.ACCOUNT_ID)))
        .distinct()
    )
    # The accepted accounts the checks look up (of the scope, and the edges' endpoints), found
    # by one scan of the accepted accounts: a left anti join of the endpoints cannot broadcast
    # its left side.
    wanted = scope.accounts.select(cols.ACCOUNT_ID).unionByName(endpoints).distinct()
    near = keep(
        accepted_accounts.join(
            F.broadcast(wanted) if scope.broadcast else wanted, on=cols.ACCOUNT_ID, how="left_semi"
        )
    )
    accepted = near.join(accounts, on=cols.ACCOUNT_ID, how="left_semi")
    known = near.join(endpoints, on=cols.ACCOUNT_ID, how="left_semi")
    accepted_count = accepted_accounts.where(F.col(cols.ACCOUNT_ID).isNotNull()).distinct().count()
    counted = _FrameChecks(
        "membership_rows",
        membership.select(cols.ACCOUNT_ID),
        (
            _Expect(
                MEMBERSHIP_COVERS_ACCEPTED,
                gxe.ExpectTableRowCountToEqual(value=accepted_count),
                f"{{observed_value}} membership rows for {accepted_count} accepted accounts",
            ),
        ),
    )
    frames = _frames(
        members=members,
        accepted=accepted,
        entities=entities_in,
        entity_members=entity_members,
        edges=edges,
        known=known,
        config=config,
        previous=previous,
        whole_entities=entities,
    )
    return [frames[0], counted, *frames[1:]]


def _frames(
    *,
    members: DataFrame,
    accepted: DataFrame,
    entities: DataFrame,
    entity_members: DataFrame,
    edges: DataFrame,
    known: DataFrame,
    config: QualityConfig,
    previous: PreviousRun | None,
    whole_entities: DataFrame | None = None,
) -> list[_FrameChecks]:
    """The output checks' frames: `members` (membership rows) and their coverage of
    `accepted`; `entities` and their counts of `entity_members`; `edges` and their endpoints
    among `known`. The entity sizes (largest, number) are checked on `whole_entities` in a
    frame of their own (`entity_sizes`) when given, else on `entities`."""
    sizes = _entity_size_expects(config, previous)
    rows = _entity_row_expects()
    return [
        _FrameChecks("entity_membership", members, _membership_expects()),
        _FrameChecks(
            "membership_coverage_problems",
            find_membership_coverage_problems(accepted, entity_membership=members),
            _no_rows(*_COVERAGE),
        ),
        _FrameChecks("entities", entities, rows if whole_entities is not None else (*rows, *sizes)),
        *(
            []
            if whole_entities is None
            else [_FrameChecks("entity_sizes", whole_entities.select(cols.ACCOUNT_COUNT), sizes)]
        ),
        _FrameChecks(
            "entity_size_problems",
            find_entity_size_problems(entities, entity_membership=entity_members),
            _no_rows(*_SIZE_PROBLEMS),
        ),
        _FrameChecks("match_edges", flag_ordered_pairs(edges), _edge_expects()),
        _FrameChecks(
            "unknown_edge_endpoints",
            find_unknown_edge_endpoints(edges, accepted_accounts=known),
            _no_rows(*_UNKNOWN_ENDPOINTS),
        ),
    ]


def _id_expects(column: str, *, not_null: str, unique: str) -> tuple[_Expect, ...]:
    """An id column's expectations: not null (check `not_null`) and unique (`unique`)."""
    import great_expectations.expectations as gxe

    return (
        _Expect(
            not_null,
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            f"{{unexpected_count}} null {column} in {{element_count}} rows",
        ),
        _Expect(
            unique,
            gxe.ExpectColumnValuesToBeUnique(column=column),
            f"{{unexpected_count}} rows share an {column}",
        ),
    )


def _membership_expects() -> tuple[_Expect, ...]:
    import great_expectations.expectations as gxe

    return (
        *_id_expects(
            cols.ACCOUNT_ID,
            not_null=MEMBERSHIP_ACCOUNT_ID_NOT_NULL,
            unique=MEMBERSHIP_ACCOUNT_ID_UNIQUE,
        ),
        _Expect(
            MEMBERSHIP_ENTITY_ID_NOT_NULL,
            gxe.ExpectColumnValuesToNotBeNull(column=cols.ENTITY_ID),
            "{unexpected_count} null entity_id in {element_count} rows",
        ),
    )


def _no_rows(check: str, observed: str) -> tuple[_Expect, ...]:
    """The one expectation of a frame of problems (`find_*`): no row. `observed` formats the
    row count (`{observed_value}`)."""
    import great_expectations.expectations as gxe

    return (_Expect(check, gxe.ExpectTableRowCountToEqual(value=0), observed),)


# The checks of the frames of problems, each a row count (`_no_rows`).
_COVERAGE: Final = (
    MEMBERSHIP_COVERS_ACCEPTED,
    "{observed_value} account ids missing, repeated or not accepted",
)
_SIZE_PROBLEMS: Final = (
    ENTITIES_COUNT_MATCHES_MEMBERSHIP,
    "{observed_value} entities whose account_count differs from membership",
)
_UNKNOWN_ENDPOINTS: Final = (
    EDGES_REFER_TO_KNOWN_ACCOUNTS,
    "{observed_value} edge endpoints not among accepted accounts",
)


def _entity_row_expects() -> tuple[_Expect, ...]:
    import great_expectations.expectations as gxe

    return (
        *_id_expects(
            cols.ENTITY_ID, not_null=ENTITIES_ENTITY_ID_NOT_NULL, unique=ENTITIES_ENTITY_ID_UNIQUE
        ),
        _Expect(
            ENTITIES_COUNT_MATCHES_MEMBERSHIP,
            gxe.ExpectColumnValuesToNotBeNull(column=cols.ACCOUNT_COUNT),
            "{unexpected_count} null account_count",
        ),
        _Expect(
            ENTITIES_COUNT_MATCHES_MEMBERSHIP,
            gxe.ExpectColumnValuesToBeBetween(column=cols.ACCOUNT_COUNT, min_value=1),
            "{unexpected_count} account_count below 1",
        ),
    )


def _entity_size_expects(
    config: QualityConfig, previous: PreviousRun | None
) -> tuple[_Expect, ...]:
    import great_expectations.expectations as gxe

    return (
        _Expect(
            ENTITIES_COUNT_BELOW_MAX,
            gxe.ExpectColumnMaxToBeBetween(
                column=cols.ACCOUNT_COUNT, max_value=config.max_entity_accounts
            ),
            f"largest entity has {{observed_value}} accounts (bound {config.max_entity_accounts})",
        ),
        *_against_previous(previous, config),
    )


def _edge_expects() -> tuple[_Expect, ...]:
    import great_expectations.expectations as gxe

    return (
        _Expect(
            EDGES_PROBABILITY_IN_UNIT_INTERVAL,
            gxe.ExpectColumnValuesToNotBeNull(column=cols.MATCH_PROBABILITY),
            "{unexpected_count} null match_probability in {element_count} rows",
        ),
        _Expect(
            EDGES_PROBABILITY_IN_UNIT_INTERVAL,
            gxe.ExpectColumnValuesToBeBetween(
                column=cols.MATCH_PROBABILITY, min_value=0.0, max_value=1.0
            ),
            "{unexpected_count} match_probability outside [0, 1]",
        ),
        _Expect(
            EDGES_ORDERED_PAIR,
            gxe.ExpectColumnValuesToBeInSet(column=PAIR_ORDERED, value_set=[True]),
            "{unexpected_count} pairs without account_id_l < account_id_r",
        ),
        _Expect(
            EDGES_PAIR_UNIQUE,
            gxe.ExpectCompoundColumnsToBeUnique(column_list=[cols.ACCOUNT_ID_L, cols.ACCOUNT_ID_R]),
            "{unexpected_count} rows repeat a pair",
        ),
    )


def _require_columns(
    frame: DataFrame,
    *,
    name: str,
    columns: Sequence[str],
    error: type[ResolutionError],
) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise error(
            f"{name} lacks column(s) {', '.join(missing)} needed by the quality checks; "
            f"found: {', '.join(frame.columns) or '(none)'}"
        )


def _exception_messages(exception_info: Mapping[str, Any] | None) -> list[str]:
    """The messages of the errors GX caught while evaluating one expectation.

    GX 1.24 reports an error either at the top level (`{"raised_exception": True, ...}`) or,
    when a metric failed, keyed by the metric's id (`{"MetricConfigurationID(...)": {...}}`).
    """
    if not exception_info:
        return []
    if "raised_exception" in exception_info:
        infos: list[Mapping[str, Any]] = [exception_info]
    else:
        infos = [info for info in exception_info.values() if isinstance(info, Mapping)]
    return [str(info.get("exception_message")) for info in infos if info.get("raised_exception")]


class _ResultFields(dict[str, Any]):
    """GX result fields for `str.format_map`; a field GX did not report shows as '?'. GX
    reports no unexpected count (None) for a frame without rows: none, so 0 (a run that
    accepted no edge)."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        if self.get("element_count") == 0 and self.get("unexpected_count") is None:
            self["unexpected_count"] = 0

    def __missing__(self, key: str) -> str:
        return "?"


def _run_suite(
    suite: str,
    frames: Sequence[_FrameChecks],
    *,
    config: QualityConfig,
    checks: Mapping[str, Severity],
    run: QualityRun | None = None,
) -> QualityReport:
    """Run one GX validation per frame in `run`'s context (else a fresh ephemeral one); fold
    the results into checks."""
    import great_expectations as gx

    context = run.context if run is not None else _ephemeral_context()
    # persist=False: by default GX persists every batch DataFrame and never unpersists it.
    datasource = context.data_sources.add_spark(name=f"{suite}_frames", persist=False)

    outcomes: dict[str, list[tuple[bool, str]]] = {check: [] for check in checks}
    errors: list[str] = []
    raw: dict[str, Any] = {}
    for frame_checks in frames:
        logger.info("quality suite %s: validating %s", suite, frame_checks.name)
        batch_definition = datasource.add_dataframe_asset(
            name=frame_checks.name
        ).add_batch_definition_whole_dataframe(name=f"{frame_checks.name}_whole")
        expectation_suite = gx.ExpectationSuite(name=f"{suite}.{frame_checks.name}")
        for expect in frame_checks.expects:
            expectation = expect.expectation
            expectation.meta = {"check": expect.check}
            expectation.severity = _gx_severity(config.severity_of(expect.check))
            expectation_suite.add_expectation(expectation)
        # The context's suite store gives each expectation its id (None before): map back
        # from the ids, since a validation result names its expectation by id only.
        expectation_suite = context.suites.add(expectation_suite)
        by_id = {
            str(expectation.id): expect
            for expectation, expect in zip(
                expectation_suite.expectations, frame_checks.expects, strict=True
            )
        }
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(
                name=f"{suite}.{frame_checks.name}",
                data=batch_definition,
                suite=expectation_suite,
            )
        )
        result = validation.run(
            batch_parameters={"dataframe": frame_checks.frame},
            result_format=dict(_RESULT_FORMAT),
            run_id=None if run is None else run.gx_run_id,
        )
        raw[frame_checks.name] = result.to_json_dict()
        for expectation_result in result.results:
            configuration = expectation_result.expectation_config
            if configuration is None:
                raise ResolutionError(
                    f"Great Expectations returned a result without its expectation for "
                    f"frame {frame_checks.name!r} of suite {suite!r}"
                )
            expect = by_id[str(configuration.id)]
            messages = _exception_messages(expectation_result.exception_info)
            if messages:
                errors.extend(
                    f"{expect.check} on {frame_checks.name}: {message}" for message in messages
                )
                continue
            observed = expect.observed.format_map(_ResultFields(expectation_result.result))
            outcomes[expect.check].append((bool(expectation_result.success), observed))
    if errors:
        raise ResolutionError(
            "Great Expectations could not evaluate quality check(s): " + "; ".join(errors)
        )

    results = tuple(
        CheckResult(
            suite=suite,
            check=check,
            severity=config.severity_of(check),
            success=all(success for success, _ in outcomes[check]),
            observed="; ".join(observed for _, observed in outcomes[check]),
        )
        for check in checks
    )
    report = QualityReport(suite=suite, results=results, raw=raw)
    for failed in report.failed:
        logger.log(
            logging.ERROR if failed.severity == FAIL else logging.WARNING,
            "quality check %s failed (severity %s): %s",
            failed.check,
            failed.severity,
            failed.observed,
        )
    logger.info(
        "quality suite %s: %d checks, %d failed, %d blocking",
        suite,
        len(results),
        len(report.failed),
        len(report.failed_blocking),
    )
    return report
