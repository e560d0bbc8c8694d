"""Load a YAML file under conf/ into typed, frozen, validated config.

Every problem (unknown key, wrong type, value out of range) is collected and reported at once
in one `ConfigError`.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from features.config import StandardiseConfig
from jobs.outputs import MERGED_TABLES
from jobs.quality import QualityConfig
from resolution.config import ResolutionConfig
from resolution.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "conf" / "default.yaml"
# The Fellegi-Sunter model a population too small to train on is scored with (model.pretrained).
PRETRAINED_MODEL = PROJECT_ROOT / "conf" / "models" / "fellegi_sunter_generated.json"
EXTENDS = "extends"


# The driver JVM's defaults (SparkConfig.driver_java_options): the parallel collector, a code
# cache that does not fill, class metadata room for Spark's, Delta's and GraphX's classes
# (each growth of the default 21 MB threshold was a full collection), and C2 compilation only
# for methods 8x hotter than HotSpot's default thresholds (the lukewarm planning code stays in
# C1; the tasks' loops still reach C2).
DRIVER_JAVA_OPTIONS = (
    "-XX:+UseParallelGC -XX:ReservedCodeCacheSize=1g -XX:MetaspaceSize=256m "
    "-XX:Tier4InvocationThreshold=40000 -XX:Tier4MinInvocationThreshold=8000 "
    "-XX:Tier4CompileThreshold=50000 -XX:Tier4BackEdgeThreshold=200000"
)


@dataclass(frozen=True)
class SparkConfig:
    """Session settings. `master` null: spark-submit's master, else `local[*]`.

    `options` are passed to the session builder after the project's own settings, so they
    can override them (YAML booleans become `true` / `false`).

    `rows_per_partition`: a stage's materialised frame with fewer rows a partition than this
    is merged into fewer partitions (never fewer than the default parallelism; null: never),
    see `jobs.progress.StageClock`.

    `local_checkpoints`: with a local master, a stage's materialised frame is kept as a local
    checkpoint (lineage cut, nothing added to Spark's cache) instead of persisted; with
    executors of their own it is persisted either way (`jobs.progress.StageClock`).

    `driver_java_options`: JVM options of the driver when the job starts it (not under
    spark-submit, whose driver is running already: give them there with
    `--driver-java-options`). Locally the driver's JVM runs the tasks too. The defaults are
    measured (docs/benchmarks.md, session 37): on 2 cores a run spent more CPU compiling
    Spark's own planning code with the C2 JIT and in G1's concurrent threads than some of
    its stages did; the parallel collector, a larger code cache and later C2 compilation of
    lukewarm methods took an incremental run at 1,000,000 accounts from 217 s to 166 s. An
    `spark.driver.extraJavaOptions` in `options` is appended after them, so its flags win.
    null or empty: none.

    `driver_heap_at_start`: a driver the job starts gets its whole heap at once (`-Xms` equal to
    `spark.driver.memory` of `options`, placed before `driver_java_options`, so an `-Xms` there
    wins). The parallel collector otherwise starts small and grows the heap with full
    collections as the stage frames accumulate: at 1,000,000 accounts an incremental run had
    ten of them, 8 s of pauses, and the collector's threads used a third less CPU without them
    (docs/benchmarks.md, session 39). Linux gives the JVM only the pages it touches.
    """

    master: str | None = None
    app_name: str = "seller-entity-resolution"
    shuffle_partitions: int = 8
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    checkpoint_dir: str | None = None
    rows_per_partition: int | None = 50_000
    local_checkpoints: bool = True
    driver_java_options: str | None = DRIVER_JAVA_OPTIONS
    driver_heap_at_start: bool = True

    def problems(self) -> list[str]:
        found = []
        if self.shuffle_partitions < 1:
            found.append(f"spark.shuffle_partitions: must be >= 1, got {self.shuffle_partitions}")
        if self.rows_per_partition is not None and self.rows_per_partition < 1:
            found.append(
                f"spark.rows_per_partition: must be >= 1 or null, got {self.rows_per_partition}"
            )
        return found


@dataclass(frozen=True)
class HashingConfig:
    """Where the HMAC key for identity, card and bank numbers comes from.

    The key is read from the environment variable `key_env`, else from `key_file`; without
    either, `allow_demo_key` lets a local run use a fixed, public demo key (with a warning).
    Outside Spark's local mode the demo key is refused whatever `allow_demo_key` says
    (`jobs.hash_key.load_hash_key`).
    """

    key_env: str = "SELLER_ER_HASH_KEY"
    key_file: str | None = None
    allow_demo_key: bool = True

    def problems(self) -> list[str]:
        return [] if self.key_env else ["hashing.key_env: must not be empty"]


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking: a sqlite store under the local folder `dir` (default `OUT_DIR/_mlflow`
    when OUT_DIR is local), or the MLflow tracking server at `uri` (`http(s)://...`,
    `databricks`, `sqlite:///...`), whose artifact store then holds the artifacts. An OUT_DIR
    in object storage needs one of the two (a sqlite store cannot live there)."""

    dir: str | None = None
    uri: str | None = None
    experiment: str = "seller-entity-resolution"

    def problems(self) -> list[str]:
        found = [] if self.experiment else ["tracking.experiment: must not be empty"]
        if self.dir and self.uri:
            found.append("tracking: set dir or uri, not both")
        if self.uri is not None and not self.uri.strip():
            found.append("tracking.uri: must not be empty (leave it null for the default)")
        return found


@dataclass(frozen=True)
class OutputsConfig:
    """Delta table properties and maintenance of the output tables (see README, "History").

    Every output table gets `delta.logRetentionDuration` = `log_retention` (how long its
    commit history, and so time travel by version, is kept) and
    `delta.deletedFileRetentionDuration` = `deleted_file_retention` (how long files a later
    commit replaced stay readable). At the end of every `maintenance_every_runs`-th succeeded
    run (VACUUM lists and checks every file: about a minute a table on a busy 2-core machine),
    with `vacuum`, files older than that are deleted; a ledger table (`quarantine`,
    `entity_changes`, `entity_splits`, `runs`: one small commit per run) with more than
    `compact_min_files` data files is compacted first (OPTIMIZE). Runs older than
    `deleted_file_retention` can then no longer be read by time travel.

    `deletion_vectors`: the tables an incremental run MERGEs into (of `MERGED_TABLES`) that
    are created with Delta deletion vectors. A MERGE into such a table marks the rows it
    replaces in a small vector file instead of rewriting every data file that holds one (a 1%
    change touches nearly every file). Readers must support deletion vectors: Spark and
    delta-spark do; delta-rs (the `deltalake` package, polars) 1.6 refuses such a table. So
    the default is the internal `account_state` only, which only the job reads; maintenance
    compacts these tables like the ledgers (OPTIMIZE also rewrites files with many deleted
    rows).

    `parallel_writes`: how many of the run's independent writes (one per output table, and
    the table properties at the end) run at once, from driver threads (`jobs.concurrency`);
    the entity network and leads are then computed alongside the output checks and writes.
    It also bounds the threads that check the datasets after the accounts and standardise
    them. 1 runs everything one by one.
    """

    log_retention: str = "interval 30 days"
    deleted_file_retention: str = "interval 7 days"
    compact_min_files: int = 16
    vacuum: bool = True
    maintenance_every_runs: int = 10
    deletion_vectors: tuple[str, ...] = ("account_state",)
    parallel_writes: int = 3
    # Local folder for the run's files beside the tables (quality reports, Data Docs, charts,
    # models): null means OUT_DIR when it is local, else a temporary folder removed at the end
    # (the files stay in MLflow either way).
    files_dir: str | None = None

    def problems(self) -> list[str]:
        found = []
        for name in ("log_retention", "deleted_file_retention"):
            value = getattr(self, name)
            parts = value.split()
            if len(parts) != 3 or parts[0] != "interval" or not parts[1].isdigit():
                found.append(f"outputs.{name}: expected 'interval <n> <unit>', got {value!r}")
        if self.maintenance_every_runs < 1:
            found.append(
                f"outputs.maintenance_every_runs: must be >= 1, got {self.maintenance_every_runs}"
            )
        if self.parallel_writes < 1:
            found.append(f"outputs.parallel_writes: must be >= 1, got {self.parallel_writes}")
        if self.compact_min_files < 2:
            found.append(f"outputs.compact_min_files: must be >= 2, got {self.compact_min_files}")
        unknown = [name for name in self.deletion_vectors if name not in MERGED_TABLES]
        if unknown:
            found.append(
                f"outputs.deletion_vectors: {', '.join(map(repr, unknown))} is not a table an "
                f"incremental run MERGEs into (one of {', '.join(MERGED_TABLES)})"
            )
        return found


@dataclass(frozen=True)
class InputsConfig:
    """Reading the input datasets (`jobs.inputs`).

    `broadcast_unknown_ids`: a dataset's rows are checked against the accepted accounts by
    their distinct ids first; when at most this many of them are unknown (orphans: few), they
    are broadcast and the rows flagged as they are scanned, otherwise every row is joined with
    the accepted ids (a shuffle of the rows as read)."""

    broadcast_unknown_ids: int = 100_000

    def problems(self) -> list[str]:
        if self.broadcast_unknown_ids < 0:
            return [f"inputs.broadcast_unknown_ids: must be >= 0, got {self.broadcast_unknown_ids}"]
        return []


@dataclass(frozen=True)
class JobConfig:
    """The whole job's configuration, one section per YAML top-level key."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    hashing: HashingConfig = field(default_factory=HashingConfig)
    standardise: StandardiseConfig = field(default_factory=StandardiseConfig)
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    # Resolve only new and changed accounts against the last succeeded run in OUT_DIR (as
    # --incremental does); a run without such a base resolves in full.
    incremental: bool = False

    def problems(self) -> list[str]:
        return (
            self.spark.problems()
            + self.inputs.problems()
            + self.hashing.problems()
            + self.standardise.problems()
            + self.resolution.problems()
            + self.tracking.problems()
            + self.outputs.problems()
        )


def _describe(expected: Any) -> str:
    return getattr(expected, "__name__", str(expected))


def _convert(value: Any, expected: Any, where: str, errors: list[str]) -> Any:
    """Convert a YAML value to the annotated type, recording a problem instead of raising."""
    origin = typing.get_origin(expected)
    args = typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(value, inner, where, errors)
    if dataclasses.is_dataclass(expected):
        return _build(expected, value, where, errors)
    if origin is tuple:
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {value!r}")
            return ()
        return tuple(
            _convert(item, args[0], f"{where}[{i}]", errors) for i, item in enumerate(value)
        )
    if origin in (collections.abc.Mapping, dict) or expected is Mapping:
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping, got {value!r}")
            return MappingProxyType({})
        value_type = args[1] if args else Any
        return MappingProxyType(
            {str(k): _convert(v, value_type, f"{where}.{k}", errors) for k, v in value.items()}
        )
    if expected is Any:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        errors.append(f"{where}: expected {_describe(expected)}, got {value!r}")
        return None
    return value


def _build(cls: Any, raw: Any, where: str, errors: list[str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{where or 'config'}: expected a mapping, got {raw!r}")
        return cls()
    if hasattr(cls, "from_mapping"):
        try:
            return cls.from_mapping(raw)
        except ConfigError as error:
            errors.append(str(error))
            return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            prefix = f"{where}." if where else ""
            errors.append(f"{prefix}{key}: unknown setting (known: {', '.join(sorted(known))})")
    values = {}
    for name in known & set(raw):
        prefix = f"{where}." if where else ""
        values[name] = _convert(raw[name], hints[name], f"{prefix}{name}", errors)
    try:
        return cls(**values)
    except TypeError as error:  # a value left None by a recorded conversion problem
        errors.append(f"{where or 'config'}: {error}")
        return cls()


def parse_config(raw: Mapping[str, Any] | None, *, source: str = "<mapping>") -> JobConfig:
    """Typed config from an already-parsed mapping; raises `ConfigError` with every problem."""
    errors: list[str] = []
    config = _build(JobConfig, dict(raw or {}), "", errors)
    if not errors:
        errors.extend(config.problems())
    if errors:
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(errors))
    return typing.cast(JobConfig, config)


def merge_settings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it: mappings merge key by key, anything else (lists
    included) is replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(config_path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: config file not found")
    if config_path.resolve() in chain:
        raise ConfigError(f"{config_path}: 'extends' goes round in a circle")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: not valid YAML: {error}") from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping at the top, got {raw!r}")
    base = raw.pop(EXTENDS, None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{config_path}: {EXTENDS}: expected a file name, got {base!r}")
    parent = _read_yaml(config_path.parent / base, (*chain, config_path.resolve()))
    return merge_settings(parent, raw)


def load_config(path: str | Path | None = None) -> JobConfig:
    """Load and validate a YAML config (default `conf/default.yaml`).

    A file may start from another with `extends: default.yaml` (a path relative to the file):
    its settings are laid over that file's (mappings merged, lists and values replaced).

    Example::

        config = load_config("conf/local.yaml")
        config.resolution.blocking.max_block_size
    """
    config_path = Path(path) if path is not None else DEFAULT_CONFIG
    return parse_config(_read_yaml(config_path), source=str(config_path))
