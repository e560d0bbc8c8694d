"""Delta Lake writes of the contract's output tables, and the `runs` ledger.

Replaced tables (`entity_membership`, `entities`, `match_edges`, `hub_values`, `entity_links`,
`entity_leads`) are overwritten
in one Delta commit each. Ledger tables (`quarantine`, `entity_changes`, `entity_splits`, `runs`)
keep every run's rows; a run's
rows are written with `replaceWhere run_id = ...` in one commit, so a re-run with the same run
id replaces its own rows and never duplicates them.

Every table carries its description and column comments from `jobs.table_docs`: columns get
theirs in the write itself (field metadata `{"comment": ...}`: an overwrite replaces the schema
with the frame's, a ledger table keeps the comments it was created with, a MERGE keeps the
table's schema), and `set_properties` and `set_column_comments` bring any table whose text
differs (an older table, a ledger created before a comment changed) up to date, with one
`ALTER TABLE` each and none when nothing differs.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from jobs import table_docs
from jobs.concurrency import run_together
from jobs.storage import Location
from resolution.errors import ResolutionError

logger = logging.getLogger(__name__)

REPLACED_TABLES = (
    "account_state",
    "shared_keys",
    "entity_membership",
    "entities",
    "match_edges",
    "hub_values",
    "entity_links",
    "entity_leads",
)
LEDGER_TABLES = ("quarantine", "entity_changes", "entity_splits", "runs")
# The tables an incremental run MERGEs into (`OutputWriter.merge`); the others it replaces.
MERGED_TABLES = ("entity_membership", "entities", "match_edges", "account_state")
DELETION_VECTORS_PROPERTY = "delta.enableDeletionVectors"
# Delta operations that change no row: what a succeeded run commits after its writes (table
# properties, column comments, compaction, vacuum). Any other commit changes rows.
ROWLESS_OPERATIONS = frozenset(
    {
        "SET TBLPROPERTIES",
        "UNSET TBLPROPERTIES",
        "CHANGE COLUMN",
        "OPTIMIZE",
        "VACUUM START",
        "VACUUM END",
        "UPGRADE PROTOCOL",
    }
)
RUNS = "runs"

# run ids go into a replaceWhere predicate: only this alphabet is accepted (no quoting issues).
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Delta turns the table property `comment` into the table's description.
DESCRIPTION_PROPERTY = "comment"

RUNS_SCHEMA = T.StructType(
    [
        T.StructField(c.RUN_ID, T.StringType(), False),
        T.StructField("started_at", T.TimestampType(), True),
        T.StructField("finished_at", T.TimestampType(), True),
        T.StructField("status", T.StringType(), False),
        T.StructField("table_versions", T.StringType(), True),
        T.StructField("input_counts", T.StringType(), True),
        T.StructField("output_counts", T.StringType(), True),
        T.StructField("config", T.StringType(), True),
        T.StructField("error", T.StringType(), True),
    ]
)


@dataclass(frozen=True)
class RunRecord:
    """One row of the `runs` table."""

    run_id: str
    started_at: datetime
    status: str
    finished_at: datetime | None = None
    table_versions: Mapping[str, int] | None = None
    input_counts: Mapping[str, Mapping[str, int]] | None = None
    output_counts: Mapping[str, int] | None = None
    config: str | None = None
    error: str | None = None


def merge_source(
    frame: DataFrame, held: DataFrame, keys: list[str], *, broadcast_frame_keys: bool = False
) -> DataFrame:
    """The source of `OutputWriter.merge`: `frame`'s rows with `_delete` false, and a row with
    `_delete` true (other columns null) for each key of `held` that `frame` lacks.

    `broadcast_frame_keys`: `frame` is small (a broadcast scope's rows), so the lookup of its
    keys is broadcast. The hint goes on `frame`'s keys, the anti join's right side: Spark cannot
    build a left anti join's left side, and a hint on `held` was ignored with a warning per
    query.
    """
    kept = frame.select(*keys)
    if broadcast_frame_keys:
        kept = F.broadcast(kept)
    gone = held.join(kept, on=keys, how="left_anti").select(
        *[
            F.col(field.name)
            if field.name in keys
            else F.lit(None).cast(field.dataType).alias(field.name)
            for field in frame.schema.fields
        ],
        F.lit(True).alias("_delete"),
    )
    return frame.withColumn("_delete", F.lit(False)).unionByName(gone)


class OutputWriter:
    """Writes one run's tables under `out_dir` (a local folder or a URI) and remembers the
    Delta version of each."""

    def __init__(
        self,
        spark: SparkSession,
        out_dir: Path | Location | str,
        run_id: str,
        *,
        deletion_vectors: Iterable[str] = (),
    ) -> None:
        """`deletion_vectors`: the tables to create with Delta deletion vectors
        (`OutputsConfig.deletion_vectors`)."""
        if not RUN_ID_PATTERN.match(run_id):
            raise ValueError(
                f"run id {run_id!r}: use 1-128 letters, digits, '.', '_', ':' or '-', "
                "starting with a letter or digit"
            )
        self._spark = spark
        # Absolute: Delta's SQL path identifiers (ALTER TABLE delta.`path`) need one.
        self._out_dir = Location.parse(out_dir)
        self._run_id = run_id
        self._deletion_vectors = frozenset(deletion_vectors)
        self.table_versions: dict[str, int] = {}

    def path(self, table: str) -> str:
        return str(self._out_dir / table)

    def _version(self, table: str) -> int:
        history = DeltaTable.forPath(self._spark, self.path(table)).history(1)
        row = history.select("version").first()
        assert row is not None
        return int(row["version"])

    def set_properties(self, properties: Mapping[str, str], *, workers: int = 1) -> None:
        """Give every table this run wrote these Delta table properties and its description
        from `jobs.table_docs` (the `comment` property), in one commit per table and only
        where something differs; `workers` tables at a time (`jobs.concurrency`)."""
        self._each_table(partial(self._set_table_properties, properties=properties), workers)

    def set_column_comments(self, *, workers: int = 1) -> None:
        """Give the columns of every table this run wrote their comments from
        `jobs.table_docs`, in one `ALTER TABLE ... ALTER COLUMN` per table and only where a
        comment differs (normally none: the writes carry them); `workers` tables at a time."""
        self._each_table(self._set_table_column_comments, workers)

    def describe_tables(self, properties: Mapping[str, str], *, workers: int = 1) -> None:
        """`set_properties` and `set_column_comments` in one pass: each table's properties
        then its column comments, `workers` tables at a time (the end of a run)."""

        def describe(table: str, path: str, delta: DeltaTable) -> None:
            self._set_table_properties(table, path, delta, properties=properties)
            self._set_table_column_comments(table, path, delta)

        self._each_table(describe, workers)

    def _each_table(self, action: Callable[[str, str, DeltaTable], None], workers: int) -> None:
        """`action(table, path, delta)` for every Delta table this run wrote (and `runs`),
        `workers` at a time; the table is opened once for it."""

        def on(table: str) -> None:
            path = self.path(table)
            if DeltaTable.isDeltaTable(self._spark, path):
                action(table, path, DeltaTable.forPath(self._spark, path))

        run_together(
            [(table, partial(on, table)) for table in [*self.table_versions, RUNS]],
            workers=workers,
        )

    def _set_table_properties(
        self, table: str, path: str, delta: DeltaTable, *, properties: Mapping[str, str]
    ) -> None:
        current, description = self._metadata(path)
        wanted = {k: v for k, v in properties.items() if current.get(k) != v}
        vectors = self._deletion_vectors_setting(table, current)
        if vectors is not None:
            wanted[DELETION_VECTORS_PROPERTY] = vectors
        doc = table_docs.TABLES.get(table)
        if doc is not None and description != doc.table_comment:
            wanted[DESCRIPTION_PROPERTY] = doc.table_comment
        if not wanted:
            return
        settings = ", ".join(
            f"{sql_string(k)} = {sql_string(v)}" for k, v in sorted(wanted.items())
        )
        self._spark.sql(f"ALTER TABLE delta.{sql_identifier(path)} SET TBLPROPERTIES ({settings})")
        logger.info("%s: set %s", path, ", ".join(sorted(wanted)))

    def _metadata(self, path: str) -> tuple[dict[str, str], str | None]:
        """The table properties and description of the Delta table at `path`, from its
        metadata alone. (`DeltaTable.detail()` also counts the table's files and bytes, which
        reconstructs the snapshot's state: a Spark job or two for every table, every run.)"""
        where = f"delta.{sql_identifier(path)}"
        properties = {
            row["key"]: row["value"]
            for row in self._spark.sql(f"SHOW TBLPROPERTIES {where}").collect()
        }
        described = [
            (row["col_name"], row["data_type"])
            for row in self._spark.sql(f"DESCRIBE TABLE EXTENDED {where}").collect()
        ]
        # The columns come first: the table's own rows follow this heading.
        heading = ("# Detailed Table Information", "")
        table_rows = described[described.index(heading) + 1 :] if heading in described else []
        description = dict(table_rows).get("Comment") or None
        return properties, description

    def _deletion_vectors_setting(self, table: str, current: Mapping[str, str]) -> str | None:
        """The value `delta.enableDeletionVectors` of `table` must be set to, or None when it
        is right: "true" for the configured tables, "false" for a MERGEd table that had them
        and is no longer configured (its existing vectors stay valid; new writes add none)."""
        enabled = current.get(DELETION_VECTORS_PROPERTY, "false").lower() == "true"
        if table in self._deletion_vectors and not enabled:
            return "true"
        if table in MERGED_TABLES and table not in self._deletion_vectors and enabled:
            return "false"
        return None

    def _set_table_column_comments(self, table: str, path: str, delta: DeltaTable) -> None:
        doc = table_docs.TABLES.get(table)
        if doc is None:
            return
        # A property change earlier in the same pass leaves the schema as it was.
        schema = delta.toDF().schema
        changes = [
            f"{sql_identifier(field.name)} COMMENT {sql_string(doc.comments[field.name])}"
            for field in schema.fields
            if field.name in doc.comments
            and field.metadata.get("comment") != doc.comments[field.name]
        ]
        if not changes:
            return
        self._spark.sql(
            f"ALTER TABLE delta.{sql_identifier(path)} ALTER COLUMN {', '.join(changes)}"
        )
        logger.info("%s: commented %d columns", path, len(changes))

    def maintain(self, *, compact_min_files: int, vacuum: bool) -> dict[str, int]:
        """Compact the ledger tables and the tables with deletion vectors (an incremental
        MERGE adds a few small files to them each run; OPTIMIZE also rewrites the files with
        many deleted rows) with more than `compact_min_files` files, then (with `vacuum`)
        delete every written table's files older than its retention. Returns the number of
        files per table before maintenance."""
        files: dict[str, int] = {}
        for table in [*self.table_versions, RUNS]:
            path = self.path(table)
            if not DeltaTable.isDeltaTable(self._spark, path):
                continue
            delta = DeltaTable.forPath(self._spark, path)
            detail = delta.detail().first()
            files[table] = int(detail["numFiles"]) if detail is not None else 0
            compacted = table in LEDGER_TABLES or table in self._deletion_vectors
            if compacted and files[table] > compact_min_files:
                delta.optimize().executeCompaction()
                logger.info("%s: compacted %d files", path, files[table])
            if vacuum:
                delta.vacuum()
        return files

    def replace(self, table: str, frame: DataFrame) -> int:
        """Overwrite `table` with `frame` plus this run's id; returns the new Delta version."""
        writer = (
            with_comments(frame.withColumn(c.RUN_ID, F.lit(self._run_id)), table=table)
            .write.format("delta")
            .mode("overwrite")
            .option("overwriteSchema", "true")
        )
        if table in self._deletion_vectors:
            # A table property given at the write: the table has the feature from its first
            # version (an incremental run's MERGE then writes vectors, not whole files).
            writer = writer.option(DELETION_VECTORS_PROPERTY, "true")
        writer.save(self.path(table))
        version = self._version(table)
        self.table_versions[table] = version
        logger.info("wrote %s (Delta version %d)", self.path(table), version)
        return version

    def merge(
        self,
        table: str,
        frame: DataFrame,
        keys: list[str],
        *,
        scope: DataFrame | None = None,
        compare: bool = True,
        broadcast_scope: bool = False,
    ) -> int:
        """Make `table` hold exactly `frame` (plus run ids) with one Delta MERGE on `keys`:
        rows that are new or differ are inserted or updated (with this run's id), rows whose
        key is gone are deleted, and equal rows are left alone (they keep the id of the run
        that wrote them). Used by incremental runs, where most rows do not change; creates the
        table on first use. Returns the new Delta version.

        `scope` (the `keys` columns) limits the MERGE to the rows with those keys, in `frame`
        and in the table: rows with other keys are left as they are, whether or not `frame`
        holds them. An incremental run passes the keys its change can reach
        (`resolution.incremental.WriteScopes`), so it writes a few rows, not the table.
        `broadcast_scope`: the scope is small enough to broadcast, so `frame` is scanned for
        its rows rather than shuffled.

        The comparison is the MERGE's own: a matched row is updated only when a column differs
        (null-safe), so the source is `frame`'s rows and the keys to delete, and the table is
        read once, by Delta's join, not also to build the source. `compare=False` (needs
        `scope`) writes every row of `frame` in the scope, equal or not: for a scope whose
        rows all changed (`account_state`: the new, changed and removed accounts)."""
        path = self.path(table)
        if not compare and scope is None:
            raise ValueError(f"{path}: a MERGE without comparison needs a scope")
        if not DeltaTable.isDeltaTable(self._spark, path):
            if scope is not None:
                raise ResolutionError(
                    f"{path}: a scoped MERGE needs the table to exist (a run that limits its "
                    "changes continues a run that wrote it)"
                )
            return self.replace(table, frame)
        if scope is not None:
            scope = scope.select(*keys).distinct()
            frame = frame.join(
                F.broadcast(scope) if broadcast_scope else scope, on=keys, how="left_semi"
            )
            held = scope  # a key the table does not hold deletes nothing
        else:
            held = self._spark.read.format("delta").load(path).select(*keys)
        source = merge_source(frame, held, keys, broadcast_frame_keys=broadcast_scope)
        columns = frame.columns
        compared = [name for name in columns if name not in keys] if compare else []
        self._apply(path, source, keys, columns, compared)
        return self._merged(table, path)

    def _apply(
        self,
        path: str,
        source: DataFrame,
        keys: list[str],
        columns: list[str],
        compared: list[str],
    ) -> None:
        """One Delta MERGE of `source` (`columns` and `_delete`) into the table at `path`; a
        matched row is updated only when one of `compared` differs (all rows when empty)."""
        source = source.withColumn(c.RUN_ID, F.lit(self._run_id))
        on = " AND ".join(f"t.`{name}` = s.`{name}`" for name in keys)
        update = "NOT s._delete"
        if compared:
            same = " AND ".join(f"t.`{name}` <=> s.`{name}`" for name in compared)
            update = f"{update} AND NOT ({same})"
        (
            DeltaTable.forPath(self._spark, path)
            .alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedDelete(condition="s._delete")
            .whenMatchedUpdate(
                condition=update, set={name: f"s.`{name}`" for name in [*columns, c.RUN_ID]}
            )
            .whenNotMatchedInsert(
                condition="NOT s._delete",
                values={name: f"s.`{name}`" for name in [*columns, c.RUN_ID]},
            )
            .execute()
        )

    def roll_back(self, table: str, version: int) -> int | None:
        """Give `table` the rows of its Delta `version` again if a later commit changed them;
        returns the version restored to, or None when no later commit changed a row.

        An incremental run reads its base at the Delta versions the last succeeded run
        recorded, but MERGEs into each table's latest version: a run killed or failed between
        its writes leaves rows there that no succeeded run wrote, and a MERGE within the next
        run's own scope would keep those outside it (and record them as its own). So before
        merging, each table whose commits after `version` include one that changes rows is
        restored (Delta RESTORE, one commit; the abandoned versions stay readable by time
        travel) to the last version before that commit: the base's rows, with whatever
        compaction or table properties came after them. A table restored so already is left
        as it is."""
        delta = DeltaTable.forPath(self._spark, self.path(table))
        later = (
            delta.history()
            .where(F.col("version") > F.lit(version))
            .select("version", "operation", "operationParameters")
            .orderBy("version")
            .collect()
        )
        changing = [row for row in later if row["operation"] not in ROWLESS_OPERATIONS]
        if not changing:
            return None
        target = int(changing[0]["version"]) - 1
        last = changing[-1]
        if last["operation"] == "RESTORE" and (last["operationParameters"] or {}).get(
            "version"
        ) == str(target):
            return None  # restored already (by a run that then did not succeed either)
        logger.warning(
            "%s: version %d onwards were written after the last succeeded run (version %d) by "
            "a run that did not succeed (%s); restoring version %d before merging",
            self.path(table),
            changing[0]["version"],
            version,
            ", ".join(sorted({str(row["operation"]) for row in changing})),
            target,
        )
        delta.restoreToVersion(target)
        return target

    def _merged(self, table: str, path: str) -> int:
        version = self._version(table)
        self.table_versions[table] = version
        logger.info("merged this run's changes into %s (Delta version %d)", path, version)
        return version

    def replace_run_rows(self, table: str, frame: DataFrame) -> int:
        """Replace this run's rows of a ledger table (created on first use)."""
        predicate = f"{c.RUN_ID} = '{self._run_id}'"  # safe: run ids match RUN_ID_PATTERN
        (
            with_comments(frame, table=table)
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", predicate)
            .save(self.path(table))
        )
        version = self._version(table)
        if table != RUNS:
            self.table_versions[table] = version
        logger.info("wrote this run's rows of %s (Delta version %d)", self.path(table), version)
        return version

    def record_run(self, record: RunRecord) -> int:
        """Write (or replace) this run's row of `runs`."""
        row = (
            record.run_id,
            record.started_at,
            record.finished_at,
            record.status,
            json.dumps(dict(record.table_versions), sort_keys=True)
            if record.table_versions is not None
            else None,
            json.dumps({k: dict(v) for k, v in record.input_counts.items()}, sort_keys=True)
            if record.input_counts is not None
            else None,
            json.dumps(dict(record.output_counts), sort_keys=True)
            if record.output_counts is not None
            else None,
            record.config,
            record.error,
        )
        return self.replace_run_rows(RUNS, self._spark.createDataFrame([row], RUNS_SCHEMA))


def with_comments(frame: DataFrame, *, table: str) -> DataFrame:
    """`frame` with each column's comment from `jobs.table_docs` in its field metadata, so that
    the write that creates or overwrites `table` records them (columns missing from the docs
    are logged and left without one)."""
    _warn_undocumented(table, frame.columns)
    comments = table_docs.TABLES[table].comments if table in table_docs.TABLES else {}
    return frame.select(
        *[
            F.col(sql_identifier(name)).alias(
                name, metadata={**frame.schema[name].metadata, "comment": comments[name]}
            )
            if name in comments
            else F.col(sql_identifier(name))
            for name in frame.columns
        ]
    )


def _warn_undocumented(table: str, columns: list[str]) -> None:
    missing = table_docs.undocumented_columns(table, columns)
    if missing:
        logger.warning(
            "%s: no description of column(s) %s in jobs/table_docs.py: written without a comment",
            table,
            ", ".join(missing),
        )


def sql_string(text: str) -> str:
    """`text` as a Spark SQL string literal (Spark's default parser: backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_identifier(name: str) -> str:
    """`name` as a back-quoted Spark SQL identifier (a path of `delta.<path>` too)."""
    return "`" + name.replace("`", "``") + "`"
