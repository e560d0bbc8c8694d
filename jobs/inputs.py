"""Read the contract's input datasets, check them, and split accepted rows from quarantined ones.

A dataset is found by name in IN_DIR as `NAME.parquet` (file or folder), `NAME/` holding a Delta
table, or `NAME.csv`. A missing required dataset or column is an `InputError` (exit 2) naming
the file and the column. A row with a malformed value is quarantined with its reason; accepted
plus quarantined rows equal the rows read, for every dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from resolution.errors import InputError

logger = logging.getLogger(__name__)

CORRUPT = "_corrupt_record"
RECORD = "_record"
REASONS = "_reasons"
_MAX_SHOWN_VALUE = 40


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: T.DataType
    required: bool = False
    allowed: tuple[str, ...] = ()
    sensitive: bool = False
    non_negative: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    required: bool = False

    @property
    def schema(self) -> T.StructType:
        return T.StructType([T.StructField(col.name, col.type, True) for col in self.columns])


_S, _TS, _L = T.StringType(), T.TimestampType(), T.LongType()

CONTRACT: dict[str, DatasetSpec] = {
    c.ACCOUNTS: DatasetSpec(
        c.ACCOUNTS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.PLATFORM, _S),
            ColumnSpec(c.REGISTERED_AT, _TS),
            ColumnSpec(c.SHOP_NAME, _S),
            ColumnSpec(c.LEGAL_NAME, _S),
            ColumnSpec(c.ID_TYPE, _S, allowed=c.ID_TYPES),
            ColumnSpec(c.ID_NUMBER, _S, sensitive=True),
            ColumnSpec(c.PHONE, _S),
            ColumnSpec(c.EMAIL, _S),
            ColumnSpec(c.REGISTRATION_IP, _S),
            ColumnSpec(c.DEVICE_ID, _S),
            ColumnSpec(c.COUNTRY, _S),
            ColumnSpec(c.PROVINCE, _S),
            ColumnSpec(c.CITY, _S),
            ColumnSpec(c.ADDRESS, _S),
        ),
        required=True,
    ),
    c.PAYMENT_INSTRUMENTS: DatasetSpec(
        c.PAYMENT_INSTRUMENTS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.INSTRUMENT_TYPE, _S, required=True, allowed=c.INSTRUMENT_TYPES),
            ColumnSpec(c.INSTRUMENT_ID, _S, required=True, sensitive=True),
            ColumnSpec(c.HOLDER_NAME, _S),
            ColumnSpec(c.BANK_NAME, _S),
            ColumnSpec(c.ADDED_AT, _TS),
        ),
    ),
    c.LOGISTICS: DatasetSpec(
        c.LOGISTICS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.ROLE, _S, required=True, allowed=c.LOGISTICS_ROLES),
            ColumnSpec(c.CONTACT_NAME, _S),
            ColumnSpec(c.CONTACT_PHONE, _S),
            ColumnSpec(c.ADDRESS, _S),
            ColumnSpec(c.CITY, _S),
            ColumnSpec(c.PROVINCE, _S),
            ColumnSpec(c.POSTCODE, _S),
            ColumnSpec(c.COUNTRY, _S),
            ColumnSpec(c.SHIPMENT_COUNT, _L, non_negative=True),
            ColumnSpec(c.FIRST_USED_AT, _TS),
            ColumnSpec(c.LAST_USED_AT, _TS),
        ),
    ),
    c.ENFORCEMENT_SIGNALS: DatasetSpec(
        c.ENFORCEMENT_SIGNALS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.SIGNAL_TYPE, _S, required=True, allowed=c.SIGNAL_TYPES),
            ColumnSpec(c.SIGNAL_COUNT, _L, non_negative=True),
            ColumnSpec(c.OBSERVED_AT, _TS),
        ),
    ),
}


@dataclass(frozen=True)
class DatasetCounts:
    """Rows read, accepted and quarantined for one dataset; `read == accepted + quarantined`."""

    read: int
    accepted: int
    quarantined: int


@dataclass(frozen=True)
class LoadedInputs:
    """Accepted rows per dataset (contract columns and types), the quarantine and the counts."""

    accepted: dict[str, DataFrame]
    quarantine: DataFrame
    counts: dict[str, DatasetCounts]
    sources: dict[str, str]


def locate_dataset(in_dir: Path, name: str) -> tuple[Path, str] | None:
    """`(path, format)` of dataset `name` in `in_dir`, or None when it is absent."""
    found: list[tuple[Path, str]] = []
    parquet, csv, folder = in_dir / f"{name}.parquet", in_dir / f"{name}.csv", in_dir / name
    if parquet.exists():
        found.append((parquet, "parquet"))
    if csv.is_file():
        found.append((csv, "csv"))
    if (folder / "_delta_log").is_dir():
        found.append((folder, "delta"))
    if len(found) > 1:
        names = ", ".join(str(path) for path, _ in found)
        raise InputError(f"{in_dir}: dataset {name!r} is given more than once ({names}); keep one")
    return found[0] if found else None


def _read_raw(spark: SparkSession, path: Path, fmt: str) -> DataFrame:
    try:
        if fmt == "csv":
            header = spark.read.option("header", True).option("inferSchema", False).csv(str(path))
            # Header names as written, less a UTF-8 byte-order mark and surrounding spaces (files
            # saved by spreadsheet programs); the schema is applied by position.
            schema = T.StructType(
                [
                    T.StructField(name.lstrip("\ufeff").strip(), T.StringType(), True)
                    for name in header.columns
                ]
                + [T.StructField(CORRUPT, T.StringType(), True)]
            )
            return (
                spark.read.schema(schema)
                .option("header", True)
                .option("multiLine", True)
                .option("escape", '"')
                .option("encoding", "UTF-8")
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT)
                .csv(str(path))
            )
        if fmt == "delta":
            return spark.read.format("delta").load(str(path))
        return spark.read.parquet(str(path))
    except AnalysisException as error:
        first_line = str(error).strip().splitlines()[0]
        raise InputError(f"{path}: cannot be read as {fmt}: {first_line}") from error


def _shown(value: Column) -> Column:
    return F.substring(value.cast("string"), 1, _MAX_SHOWN_VALUE)


def _masked(value: Column) -> Column:
    """A sensitive number reduced to its last four characters, for the quarantine record."""
    compact = F.regexp_replace(value.cast("string"), r"[\s\-]", "")
    return F.when(value.isNull(), F.lit(None)).otherwise(
        F.concat(F.lit("****"), F.when(F.length(compact) >= 8, F.substring(compact, -4, 4)))
    )


def _masked_line(line: Column) -> Column:
    """A malformed CSV line with every run of 8+ digits (possible numbers) masked."""
    return F.regexp_replace(line, r"[0-9][0-9 \-]{6,}[0-9]", "****")


def _epoch_to_timestamp(value: Column) -> Column:
    """An integer epoch to a timestamp, its unit read from its magnitude.

    Parquet files written by pandas hold nanosecond timestamps, which Spark reads as longs
    (`spark.sql.legacy.parquet.nanosAsLong`); integers in other units are accepted the same way.
    """
    magnitude = F.abs(value)
    return (
        F.when(magnitude >= F.lit(10**17), F.timestamp_micros(F.floor(value / 1000)))
        .when(magnitude >= F.lit(10**14), F.timestamp_micros(value))
        .when(magnitude >= F.lit(10**11), F.timestamp_millis(value))
        .otherwise(F.timestamp_seconds(value))
    )


def _typed(source: Column, given: T.DataType, wanted: T.DataType) -> Column:
    if given == wanted:
        return source
    if isinstance(wanted, T.TimestampType) and isinstance(given, T.IntegralType):
        return _epoch_to_timestamp(source)
    return source.try_cast(wanted)


def _conform(raw: DataFrame, spec: DatasetSpec, path: Path) -> DataFrame:
    """Contract columns in contract types, the masked record and `_reasons` (the problems)."""
    present = [name for name in raw.columns if name != CORRUPT]
    missing = [col.name for col in spec.columns if col.required and col.name not in present]
    if missing:
        raise InputError(
            f"{path}: required column {missing[0]!r} is missing "
            f"(found: {', '.join(present) or 'no columns'})"
        )
    sensitive = {col.name for col in spec.columns if col.sensitive}
    masked = [
        _masked(F.col(name)).alias(name) if name in sensitive else F.col(name) for name in present
    ]
    record = F.to_json(F.struct(*masked))
    problems: list[Column] = []
    if CORRUPT in raw.columns:
        record = F.coalesce(_masked_line(F.col(CORRUPT)), record)
    selected: list[Column] = []
    for col in spec.columns:
        if col.name not in present:
            selected.append(F.lit(None).cast(col.type).alias(col.name))
            continue
        source = F.col(col.name)
        value = _typed(source, raw.schema[col.name].dataType, col.type)
        if isinstance(col.type, T.StringType):
            value = F.when(F.trim(value) != F.lit(""), value)
        else:
            given = source.isNotNull() & (F.trim(source.cast("string")) != F.lit(""))
            problems.append(
                F.when(
                    given & value.isNull(),
                    F.concat(
                        F.lit(f"{col.name}: not a valid {col.type.simpleString()}: "),
                        _shown(source),
                    ),
                )
            )
        if col.required:
            problems.append(F.when(value.isNull(), F.lit(f"{col.name}: missing")))
        if col.allowed:
            value = F.trim(value)
            problems.append(
                F.when(
                    value.isNotNull() & ~value.isin(*col.allowed),
                    F.concat(
                        F.lit(f"{col.name}: not one of {', '.join(col.allowed)}: "), _shown(value)
                    ),
                )
            )
        if col.non_negative:
            problems.append(F.when(value < 0, F.lit(f"{col.name}: negative")))
        selected.append(value.alias(col.name))
    reasons = F.array_compact(F.array(*problems))
    if CORRUPT in raw.columns:
        # A line that does not parse has no trustworthy fields: its one reason is the line.
        reasons = F.when(
            F.col(CORRUPT).isNotNull(), F.array(F.lit("row: malformed CSV line"))
        ).otherwise(reasons)
    return raw.select(*selected, record.alias(RECORD), reasons.alias(REASONS))


def _add_reason(flagged: DataFrame, condition: Column, reason: str) -> DataFrame:
    return flagged.withColumn(
        REASONS,
        F.when(condition, F.array_append(F.col(REASONS), F.lit(reason))).otherwise(F.col(REASONS)),
    )


def flag_duplicate_accounts(flagged: DataFrame) -> DataFrame:
    """Quarantine all but one row of each duplicated account id.

    The row kept is the one whose masked record sorts first, so the choice depends on the data
    alone, not on partitioning or file order.
    """
    clean = F.size(F.col(REASONS)) == 0
    by_id = Window.partitionBy(c.ACCOUNT_ID, clean).orderBy(F.col(RECORD))
    ranked = flagged.withColumn("_rank", F.row_number().over(by_id))
    return _add_reason(
        ranked, clean & (F.col("_rank") > 1), "account_id: duplicate of another accounts row"
    ).drop("_rank")


def flag_orphans(flagged: DataFrame, accepted_accounts: DataFrame) -> DataFrame:
    """Quarantine rows whose account_id is not an accepted account."""
    known = accepted_accounts.select(c.ACCOUNT_ID, F.lit(True).alias("_known"))
    joined = flagged.join(known, on=c.ACCOUNT_ID, how="left")
    orphan = (F.size(F.col(REASONS)) == 0) & F.col("_known").isNull()
    return _add_reason(
        joined, orphan, "account_id: not an accepted account (absent from accounts or quarantined)"
    ).drop("_known")


def _split(flagged: DataFrame, spec: DatasetSpec, run_id: str) -> tuple[DataFrame, DataFrame]:
    accepted = flagged.where(F.size(F.col(REASONS)) == 0).select(
        *[col.name for col in spec.columns]
    )
    quarantined = flagged.where(F.size(F.col(REASONS)) > 0).select(
        F.lit(spec.name).alias(c.DATASET),
        F.col(RECORD).alias(c.RECORD),
        F.array_join(F.col(REASONS), "; ").alias(c.REASON),
        F.lit(run_id).alias(c.RUN_ID),
    )
    return accepted, quarantined


def _count(flagged: DataFrame) -> DatasetCounts:
    row = flagged.agg(
        F.count(F.lit(1)).alias("read"),
        F.sum(F.when(F.size(F.col(REASONS)) == 0, 1).otherwise(0)).alias("accepted"),
    ).first()
    assert row is not None
    read, accepted = int(row["read"]), int(row["accepted"] or 0)
    return DatasetCounts(read=read, accepted=accepted, quarantined=read - accepted)


def empty_dataset(spark: SparkSession, name: str) -> DataFrame:
    """An empty frame with the contract's columns of dataset `name`."""
    return spark.createDataFrame([], CONTRACT[name].schema)


def load_inputs(spark: SparkSession, in_dir: Path, *, run_id: str) -> LoadedInputs:
    """Read every dataset present in `in_dir`; accounts first (the others refer to it).

    The flagged frames are persisted (each is read once and used three times: counts, accepted,
    quarantined); the caller unpersists nothing and the session's end releases them.
    """
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: input folder not found")
    accepted: dict[str, DataFrame] = {}
    quarantined: list[DataFrame] = []
    counts: dict[str, DatasetCounts] = {}
    sources: dict[str, str] = {}
    for name in c.INPUT_DATASETS:
        spec = CONTRACT[name]
        located = locate_dataset(in_dir, name)
        if located is None:
            if spec.required:
                raise InputError(
                    f"{in_dir / (name + '.parquet')}: required dataset {name!r} not found "
                    f"(looked for {name}.parquet, {name}.csv and a Delta table {name}/)"
                )
            logger.info("dataset %s: absent (optional), treated as empty", name)
            accepted[name] = empty_dataset(spark, name)
            counts[name] = DatasetCounts(0, 0, 0)
            continue
        path, fmt = located
        sources[name] = str(path)
        flagged = _conform(_read_raw(spark, path, fmt), spec, path)
        if name == c.ACCOUNTS:
            flagged = flag_duplicate_accounts(flagged)
        else:
            flagged = flag_orphans(flagged, accepted[c.ACCOUNTS])
        flagged = flagged.persist()
        counts[name] = _count(flagged)
        accepted[name], rejected = _split(flagged, spec, run_id)
        quarantined.append(rejected)
        logger.info(
            "dataset %s (%s, %s): %d rows read, %d accepted, %d quarantined",
            name,
            fmt,
            path,
            counts[name].read,
            counts[name].accepted,
            counts[name].quarantined,
        )
    quarantine = quarantined[0]
    for part in quarantined[1:]:
        quarantine = quarantine.unionByName(part)
    return LoadedInputs(accepted=accepted, quarantine=quarantine, counts=counts, sources=sources)
